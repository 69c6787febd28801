"""Checks on the candidate's own address before it gets any user traffic.

Golden predictions compare the scores the deployed candidate returns with the scores of the same
artifact computed here: any difference means the serving path (image, settings, libraries) does
not reproduce the model that was tested.
"""

from pathlib import Path

import httpx
import numpy as np

from pipelines.data import DataSpec, generate, records
from service.artifact import read_metadata
from service.features import encode_records
from service.model import ScoringModel

GOLDEN_ROWS = 32
TOLERANCE = 1e-6


def golden_transactions() -> list[dict[str, object]]:
    return records(generate(DataSpec(n_rows=GOLDEN_ROWS * 10, seed=2024)), range(GOLDEN_ROWS))


def smoke_problems(client: httpx.Client, model_dir: Path) -> list[str]:
    """Everything wrong with the candidate as reached through `client`; empty when healthy."""
    problems: list[str] = []
    try:
        if (status := client.get("/readyz").status_code) != 200:
            return [f"/readyz answered {status}"]
        version = client.get("/version").json()
        expected_sha = read_metadata(model_dir).sha256
        if version.get("model_sha256") != expected_sha:
            problems.append(
                f"serves model sha256 {version.get('model_sha256')}, expected {expected_sha}"
            )
        rows = golden_transactions()
        response = client.post("/v1/predict/batch", json={"instances": rows})
        if response.status_code != 200:
            return [
                *problems,
                f"golden batch answered {response.status_code}: {response.text[:200]}",
            ]
        served = np.array([p["fraud_probability"] for p in response.json()["predictions"]])
    except httpx.HTTPError as error:
        return [*problems, f"candidate unreachable: {error!r}"]
    expected = ScoringModel.pipeline(model_dir).score_rows(encode_records(rows))
    worst = float(np.max(np.abs(served - expected)))
    if worst > TOLERANCE:
        problems.append(
            f"golden predictions differ from the artifact's by up to {worst:.3g} "
            f"(tolerance {TOLERANCE:g}): the serving path changes the model's output"
        )
    return problems
