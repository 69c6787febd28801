from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from environments.release import FAULT_KEYS
from service.app import create_app
from service.schemas import Transaction
from service.settings import Settings


def test_predict_returns_a_complete_verdict(
    client: TestClient, transaction: dict[str, object]
) -> None:
    response = client.post("/v1/predict", json=transaction)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "fraud_probability", "is_fraud", "low_confidence",
        "request_id", "model_version", "threshold", "experiment", "variant",
    }  # fmt: skip
    assert (body["experiment"], body["variant"]) == (None, None)
    assert 0 <= body["fraud_probability"] <= 1
    assert body["is_fraud"] == (body["fraud_probability"] >= body["threshold"])
    assert body["model_version"] == "v1"
    assert response.headers["x-request-id"] == body["request_id"]


def test_a_valid_request_id_is_echoed(client: TestClient, transaction: dict[str, object]) -> None:
    response = client.post("/v1/predict", json=transaction, headers={"X-Request-ID": "abc-123"})
    assert response.json()["request_id"] == "abc-123"


def test_an_unsafe_request_id_is_replaced(
    client: TestClient, transaction: dict[str, object]
) -> None:
    """Header values that could forge log lines are not echoed."""
    response = client.post("/v1/predict", json=transaction, headers={"X-Request-ID": "a b\tc"})
    assert response.json()["request_id"] != "a b\tc"
    assert len(response.json()["request_id"]) == 32


def test_batch_answers_in_request_order(client: TestClient, transaction: dict[str, object]) -> None:
    """Each batch element scores as it does alone."""
    cheap = {**transaction, "amount": 3.0}
    risky = {**transaction, "amount": 4_000.0, "channel": "online", "country": "NG", "hour": 3}
    batch = client.post("/v1/predict/batch", json={"instances": [cheap, risky, cheap]}).json()
    alone = [client.post("/v1/predict", json=t).json()["fraud_probability"] for t in (cheap, risky)]
    scores = [p["fraud_probability"] for p in batch["predictions"]]
    assert scores == pytest.approx([alone[0], alone[1], alone[0]])
    assert scores[1] > scores[0]


def test_batch_over_the_limit_is_413(client: TestClient, transaction: dict[str, object]) -> None:
    response = client.post("/v1/predict/batch", json={"instances": [transaction] * 51})
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "body.instances has 51 items; at most 50 are allowed (BATCH_MAX_INSTANCES): split the batch"
    )


def test_empty_batch_is_422(client: TestClient) -> None:
    response = client.post("/v1/predict/batch", json={"instances": []})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "instances"]


def test_body_over_the_byte_limit_is_413(client: TestClient) -> None:
    response = client.post(
        "/v1/predict/batch",
        content=b"x" * (64 * 1024 + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "exceeds 65536 bytes" in response.json()["detail"]


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    """A chunked body without Content-Length is counted as it arrives."""

    def chunks():
        for _ in range(100):
            yield b" " * 1024

    response = client.post(
        "/v1/predict", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("change", "location", "error_type"),
    [
        ({"amount": -5}, "amount", "greater_than_equal"),
        ({"amount": "12"}, "amount", "float_type"),
        ({"hour": 24}, "hour", "less_than_equal"),
        ({"hour": 3.5}, "hour", "int_type"),
        ({"channel": "carrier_pigeon"}, "channel", "literal_error"),
        ({"country": "XX"}, "country", "literal_error"),
        ({"account_age_days": True}, "account_age_days", "int_type"),
        ({"surprise": 1}, "surprise", "extra_forbidden"),
    ],
)
def test_bad_fields_are_422_naming_the_field(
    client: TestClient,
    transaction: dict[str, object],
    change: dict[str, object],
    location: str,
    error_type: str,
) -> None:
    response = client.post("/v1/predict", json={**transaction, **change})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", location]
    assert error["type"] == error_type


def test_missing_field_is_422(client: TestClient, transaction: dict[str, object]) -> None:
    del transaction["hour"]
    (error,) = client.post("/v1/predict", json=transaction).json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "hour"], "missing")


@pytest.mark.parametrize("payload", [b"{not json", b"", b"[1, 2]", b"null", b'{"amount": NaN}'])
def test_malformed_json_is_a_client_error(client: TestClient, payload: bytes) -> None:
    response = client.post(
        "/v1/predict", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_probes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model_version": "v1"}


def test_version_ties_the_response_to_model_and_commit(client: TestClient) -> None:
    body = client.get("/version").json()
    assert body["model_version"] == "v1"
    assert len(body["model_sha256"]) == 64
    assert body["model_metrics"]["roc_auc"] > 0.5
    assert body["environment"] == "development"


def test_metrics_count_requests_scores_and_model(
    client: TestClient, transaction: dict[str, object]
) -> None:
    for _ in range(3):
        client.post("/v1/predict", json=transaction)
    client.post("/v1/predict", json={})
    client.get("/nowhere")
    text = client.get("/metrics").text
    assert (
        'http_requests_total{method="POST",revision="local",route="/v1/predict",status="200"} 3.0'
        in text
    )
    assert (
        'http_requests_total{method="POST",revision="local",route="/v1/predict",status="422"} 1.0'
        in text
    )
    assert 'route="unmatched",status="404"' in text
    assert 'prediction_score_count{revision="local"} 3.0' in text
    assert 'model_info{git_sha="unknown",model_sha256=' in text
    assert "low_confidence_predictions_total" in text


def test_openapi_documents_the_feature_contract(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Transaction"]
    assert set(schema["required"]) == set(Transaction.model_fields)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["hour"]["maximum"] == 23


def test_whole_floats_count_as_integers(client: TestClient, transaction: dict[str, object]) -> None:
    """JSON Schema's integer includes 14.0, so the API accepts it; 14.5 stays an error."""
    assert client.post("/v1/predict", json={**transaction, "hour": 14.0}).status_code == 200
    assert client.post("/v1/predict", json={**transaction, "hour": 14.5}).status_code == 422


@pytest.fixture
def faulty_client(model_dir: Path) -> Iterator[TestClient]:
    settings = Settings(MODEL_DIR=model_dir, FAULT_ERROR_RATE=1.0, FAULT_INVERT_SCORES=True)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_injected_faults_fail_single_predictions_and_invert_scores(
    faulty_client: TestClient, client: TestClient, transaction: dict[str, object]
) -> None:
    response = faulty_client.post("/v1/predict", json=transaction)
    assert response.status_code == 500
    assert "injected fault" in response.json()["detail"]
    batch = {"instances": [transaction]}
    inverted = faulty_client.post("/v1/predict/batch", json=batch).json()["predictions"][0]
    honest = client.post("/v1/predict/batch", json=batch).json()["predictions"][0]
    assert inverted["fraud_probability"] == pytest.approx(1 - honest["fraud_probability"])


def test_faults_are_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="only allowed when ENVIRONMENT=development"):
        Settings(ENVIRONMENT="staging", GIT_SHA="abc", FAULT_LATENCY_MS=100)


def test_a_drill_may_inject_faults_anywhere_but_prod() -> None:
    drill = Settings(ENVIRONMENT="dev", GIT_SHA="abc", DRILL=True, FAULT_ERROR_RATE=0.2)
    assert drill.FAULT_ERROR_RATE == 0.2
    with pytest.raises(ValueError, match="or in a drill outside prod, not prod"):
        Settings(ENVIRONMENT="prod", GIT_SHA="abc", DRILL=True, FAULT_ERROR_RATE=0.2)


def test_the_drill_settings_infra_sets_are_the_services_own() -> None:
    assert set(FAULT_KEYS) | {"DRILL"} <= set(Settings.model_fields)


def test_the_headers_read_by_hand_are_documented_and_validated(
    client: TestClient, transaction: dict[str, object]
) -> None:
    operations = client.get("/openapi.json").json()["paths"]
    for path, expected in {
        "/v1/predict": ["X-User-Id", "X-Shadow-Of"],
        "/v1/predict/batch": ["X-User-Id", "X-Shadow-Of"],
        "/v1/rank": ["X-User-Id"],
    }.items():
        parameters = operations[path]["post"]["parameters"]
        assert [(p["name"], p["in"]) for p in parameters] == [(n, "header") for n in expected]
    response = client.post("/v1/predict", json=transaction, headers={"X-User-Id": "two words"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["header", "X-User-Id"]
    assert "should match pattern" in error["msg"]
