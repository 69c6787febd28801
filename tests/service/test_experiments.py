"""Sticky A/B assignment, prediction and feedback events, and the feedback endpoint."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from scipy import stats

from service.app import create_app
from service.events import EventLog
from service.experiments import Experiment, bucket
from service.settings import Settings

EXPERIMENT = Experiment("threshold-test", "salt-2026-12", 0.3)


@pytest.fixture
def lines() -> list[bytes]:
    return []


@pytest.fixture
def ab_client(model_dir: Path, challenger_dir: Path, lines: list[bytes]) -> Iterator[TestClient]:
    settings = Settings(
        MODEL_DIR=model_dir, EXPERIMENT_NAME=EXPERIMENT.name, EXPERIMENT_SALT=EXPERIMENT.salt,
        EXPERIMENT_ALLOCATION=EXPERIMENT.allocation, EXPERIMENT_CHALLENGER_DIR=challenger_dir,
    )  # fmt: skip
    events = EventLog("rev-1", write=lines.append)
    with TestClient(create_app(settings, events=events)) as client:
        yield client


def events(lines: list[bytes]) -> list[dict[str, object]]:
    return [orjson.loads(line) for chunk in lines for line in chunk.splitlines()]


def test_assignment_is_uniform_over_users() -> None:
    counts = [0] * 20
    for n in range(40_000):
        counts[int(bucket("salt", f"user-{n}") * 20)] += 1
    assert stats.chisquare(counts).pvalue > 1e-4, counts


def test_assignment_is_independent_across_experiments() -> None:
    """Two salts halve the same users independently: each of the four cells holds a quarter."""
    cells = [0, 0, 0, 0]
    for n in range(20_000):
        cells[2 * (bucket("a", f"u{n}") < 0.5) + (bucket("b", f"u{n}") < 0.5)] += 1
    assert stats.chisquare(cells).pvalue > 1e-4, cells


def test_assignment_is_the_same_in_another_process() -> None:
    ids = [f"user-{n}" for n in range(200)]
    code = (
        "from service.experiments import Experiment; import sys; "
        f"e = Experiment({EXPERIMENT.name!r}, {EXPERIMENT.salt!r}, {EXPERIMENT.allocation}); "
        "print(''.join('c' if e.variant(i) == 'challenger' else '.' for i in sys.argv[1:]))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code, *ids], capture_output=True, text=True, check=True
    ).stdout.strip()
    here = "".join("c" if EXPERIMENT.variant(i) == "challenger" else "." for i in ids)
    assert there == here
    assert 0.2 < here.count("c") / len(ids) < 0.4


def test_each_user_gets_their_arm_and_the_events_say_so(
    ab_client: TestClient, transaction: dict[str, object], lines: list[bytes]
) -> None:
    users = [f"customer-{n}" for n in range(40)]
    answers = {
        user: ab_client.post("/v1/predict", json=transaction, headers={"X-User-Id": user}).json()
        for user in users
    }
    for user, body in answers.items():
        variant = EXPERIMENT.variant(user)
        assert (body["experiment"], body["variant"]) == (EXPERIMENT.name, variant)
        assert body["model_version"] == ("v2" if variant == "challenger" else "v1")
    again = ab_client.post("/v1/predict", json=transaction, headers={"X-User-Id": users[0]})
    assert again.json()["variant"] == answers[users[0]]["variant"], "sticky"
    recorded = [e for e in events(lines) if e["event"] == "prediction"]
    assert len(recorded) == len(users) + 1
    first = recorded[0]
    assert first["request_id"] == answers[users[0]]["request_id"]
    assert first["score"] == answers[users[0]]["fraud_probability"]
    assert (first["revision"], first["route"]) == ("rev-1", "predict")
    assert users[0] not in lines[0].decode(), "the user id is recorded only as a pseudonym"
    assert len({e["user_hash"] for e in recorded}) == len(users)
    metrics = ab_client.get("/metrics").text
    assert (
        'experiment_predictions_total{experiment="threshold-test",variant="challenger"}' in metrics
    )


def test_without_a_user_id_the_champion_serves_and_the_request_is_unassigned(
    ab_client: TestClient, transaction: dict[str, object], lines: list[bytes]
) -> None:
    body = ab_client.post("/v1/predict", json=transaction).json()
    assert (body["model_version"], body["variant"]) == ("v1", None)
    (event,) = events(lines)
    assert (event["variant"], event["user_hash"], event["experiment"]) == (
        None,
        None,
        EXPERIMENT.name,
    )


def test_a_batch_is_one_arm_with_one_event_per_transaction(
    ab_client: TestClient, transaction: dict[str, object], lines: list[bytes]
) -> None:
    user = next(f"u{n}" for n in range(100) if EXPERIMENT.variant(f"u{n}") == "challenger")
    body = ab_client.post(
        "/v1/predict/batch", json={"instances": [transaction] * 3}, headers={"X-User-Id": user}
    ).json()
    assert (body["variant"], body["model_version"]) == ("challenger", "v2")
    assert [e["item"] for e in events(lines)] == [0, 1, 2]


def test_feedback_is_accepted_and_recorded_once_per_call(
    ab_client: TestClient, lines: list[bytes]
) -> None:
    feedback = {"request_id": "abc-123", "item": 2, "is_fraud": True}
    response = ab_client.post("/v1/feedback", json=feedback)
    assert response.status_code == 202
    assert response.json() == {"request_id": "abc-123", "item": 2, "recorded": True}
    assert ab_client.post("/v1/feedback", json=feedback).status_code == 202, "a repeat is harmless"
    whole = ab_client.post("/v1/feedback", json={**feedback, "item": 2.0})
    assert whole.json()["item"] == 2, "2.0 is an integer to JSON Schema, so to the API"
    recorded = events(lines)
    assert [e["event"] for e in recorded] == ["feedback"] * 3
    assert {k: recorded[0][k] for k in feedback} == feedback


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"request_id": "a b", "is_fraud": True}, "request_id", "should match pattern"),
        ({"request_id": "abc"}, "is_fraud", "Field required"),
        ({"request_id": "abc", "is_fraud": "yes"}, "is_fraud", "valid boolean"),
        ({"request_id": "abc", "is_fraud": True, "item": -1}, "item", "greater than or equal to 0"),
        ({"request_id": "abc", "is_fraud": True, "label": 1}, "label", "Extra inputs"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field(
    ab_client: TestClient, lines: list[bytes], body: dict[str, object], loc: str, message: str
) -> None:
    response = ab_client.post("/v1/feedback", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == loc
    assert message in error["msg"]
    assert not lines, "nothing is recorded from a refused body"


def test_a_malformed_user_id_is_a_422(
    ab_client: TestClient, transaction: dict[str, object]
) -> None:
    response = ab_client.post("/v1/predict", json=transaction, headers={"X-User-Id": "x" * 129})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "X-User-Id"]


def test_half_an_experiment_is_refused_with_what_is_missing(model_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"EXPERIMENT_SALT \(at least 8 characters\)"):
        Settings(MODEL_DIR=model_dir, EXPERIMENT_NAME="x", EXPERIMENT_CHALLENGER_DIR=model_dir)
    with pytest.raises(ValueError, match="USER_HASH_KEY"):
        Settings(
            ENVIRONMENT="dev", GIT_SHA="abc", EXPERIMENT_NAME="x", EXPERIMENT_SALT="12345678",
            EXPERIMENT_CHALLENGER_DIR=model_dir,
        )  # fmt: skip
