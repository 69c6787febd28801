"""The rollout record in Cloud Storage, against answers shaped like the JSON API's."""

import json
import time

import httpx
import pytest

from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud.state_object import StateObject
from pipelines.rollout.state import Decision, RolloutState

NAME = "rollouts/fraud-scorer/rollout-state.json"


def record() -> RolloutState:
    return RolloutState(
        rollout_id="abc", environment="dev", stable="fraud-scorer-1111111-001",
        candidate="fraud-scorer-2222222-002", candidate_model_dir="models/v2",
        started_at=time.time(),
        decisions=[Decision(at=time.time(), action="start", reason="roll out")],
    )  # fmt: skip


def test_a_record_is_saved_and_loaded_whole_by_object_name() -> None:
    stored: dict[str, bytes] = {}
    seen: list[httpx.Request] = []

    def storage(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            stored[request.url.params["name"]] = request.content
            return httpx.Response(200, json={})
        path = request.url.raw_path.decode()
        assert "/o/rollouts%2Ffraud-scorer%2Frollout-state.json?alt=media" in path
        return httpx.Response(200, content=stored[NAME])

    store = StateObject(httpx.Client(transport=httpx.MockTransport(storage)), "b-dev", NAME)
    state = record()
    store.save(state)
    assert store.load() == state
    upload = seen[0]
    assert upload.url.path == "/upload/storage/v1/b/b-dev/o"
    assert upload.url.params["uploadType"] == "media"
    assert upload.headers["content-type"] == "application/json"
    assert json.loads(upload.content)["candidate"] == "fraud-scorer-2222222-002"


def test_no_object_is_no_rollout_yet() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(404)))
    assert StateObject(client, "b-dev", NAME).load() is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(403, text="caller does not have storage.objects.get"), "answered 403"),
        (httpx.Response(200, text="<html>"), "not a rollout record"),
    ],
)
def test_a_refusal_or_a_foreign_object_is_an_error_naming_the_object(
    answer: httpx.Response, message: str
) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda _: answer))
    with pytest.raises(DeployError, match=message) as raised:
        StateObject(client, "b-dev", NAME).load()
    assert f"gs://b-dev/{NAME}" in str(raised.value)
