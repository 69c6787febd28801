"""The smoke check's golden reference is the artifact's scikit-learn pipeline, so a serving path
that scores differently, the compiled one included, is caught before any traffic."""

from pathlib import Path

import httpx
import numpy as np

from pipelines.rollout.smoke import golden_transactions, smoke_problems
from service.artifact import read_metadata
from service.features import encode_records
from service.model import ScoringModel


def candidate(model_dir: Path, shift: float) -> httpx.Client:
    """A candidate that serves the compiled model's scores, moved by `shift`."""
    served = ScoringModel.load(model_dir)
    assert served.compiled

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readyz":
            return httpx.Response(200, json={"ready": True})
        if request.url.path == "/version":
            return httpx.Response(200, json={"model_sha256": read_metadata(model_dir).sha256})
        scores = served.score_rows(encode_records(golden_transactions())) + shift
        return httpx.Response(200, json={"predictions": [
            {"fraud_probability": float(p)} for p in np.clip(scores, 0, 1)
        ]})  # fmt: skip

    return httpx.Client(base_url="http://candidate", transport=httpx.MockTransport(answer))


def test_the_compiled_path_passes_when_it_scores_like_the_pipeline(model_dir: Path) -> None:
    assert not smoke_problems(candidate(model_dir, 0.0), model_dir)


def test_a_conversion_bug_is_caught_against_the_pipeline(model_dir: Path) -> None:
    (problem,) = smoke_problems(candidate(model_dir, 1e-3), model_dir)
    assert "golden predictions differ from the artifact's by up to 0.001" in problem
    assert not ScoringModel.pipeline(model_dir).compiled
