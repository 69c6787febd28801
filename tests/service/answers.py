"""One batch scored by a service built from given settings, and the check that two services
answered it alike: how the tests compare a scoring path with another."""

from fastapi.testclient import TestClient

from pipelines.data import DataSpec, generate, records
from service.app import create_app
from service.settings import Settings


def batch_answers(settings: Settings, n_rows: int, seed: int) -> list[dict[str, object]]:
    """The `predictions` of one batch of `n_rows` generated transactions."""
    rows = records(generate(DataSpec(n_rows=n_rows, seed=seed)), range(n_rows))
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/predict/batch", json={"instances": rows})
        assert response.status_code == 200, response.text
        return response.json()["predictions"]


def assert_same_answers(one: list[dict[str, object]], other: list[dict[str, object]]) -> None:
    """Probabilities within the smoke check's 1e-6, the same decisions and flags."""
    assert len(one) == len(other)
    for a, b in zip(one, other, strict=True):
        assert abs(float(a["fraud_probability"]) - float(b["fraud_probability"])) <= 1e-6  # type: ignore[arg-type]
        assert (a["is_fraud"], a["low_confidence"]) == (b["is_fraud"], b["low_confidence"])
