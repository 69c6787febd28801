"""The live traffic of a Cloud Run service, from Admin API answers shaped like the real ones."""

import base64
import json
import time
from typing import Any

import httpx
import pytest

from environments.traffic import canary, stable_only
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud import google_auth
from pipelines.rollout.platforms.cloud.platform import TrafficDriftError, check_no_drift
from pipelines.rollout.platforms.cloudrun.service_api import ServiceApi

NAME = "projects/my-ml-dev/locations/europe-west1/services/fraud-scorer"
DARK_LAUNCHED = {
    "name": NAME,
    "uri": "https://fraud-scorer-xyz-ew.a.run.app",
    "trafficStatuses": [
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "fraud-scorer-aaaaaaa-001",
         "percent": 100},
        # proto3 JSON leaves out a zero percent
        {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "fraud-scorer-bbbbbbb-002",
         "tag": "candidate", "uri": "https://candidate---fraud-scorer-xyz-ew.a.run.app"},
    ],
}  # fmt: skip


def api(status: int, body: dict[str, Any]) -> ServiceApi:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/v2/{NAME}"
        return httpx.Response(status, json=body)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    return ServiceApi(client, "my-ml-dev", "europe-west1", "fraud-scorer")


def test_the_live_split_and_tag_urls_are_read_from_the_service() -> None:
    live = api(200, DARK_LAUNCHED).live()
    assert live.split == canary("fraud-scorer-aaaaaaa-001", "fraud-scorer-bbbbbbb-002", 0)
    assert live.tag_urls == {"candidate": "https://candidate---fraud-scorer-xyz-ew.a.run.app"}
    assert live.url == "https://fraud-scorer-xyz-ew.a.run.app"


def test_traffic_on_latest_is_drift_outside_pulumi() -> None:
    body = {"trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}]}
    with pytest.raises(TrafficDriftError, match="LATEST"):
        api(200, body).live()


def test_an_api_error_names_the_service_and_the_answer() -> None:
    with pytest.raises(
        DeployError,
        match=r"403 for https://run.googleapis.com/v2/projects/my-ml-dev/.*PERMISSION_DENIED",
    ):
        api(403, {"error": {"status": "PERMISSION_DENIED"}}).live()


def test_drift_names_both_splits_and_how_to_reconcile() -> None:
    recorded = canary("v1", "v2", 10)
    check_no_drift(canary("v1", "v2", 10), recorded, "Cloud Run")
    with pytest.raises(
        TrafficDriftError, match=r"Cloud Run serves .*'percent': 100.*recorded .*'percent': 90"
    ):
        check_no_drift(stable_only("v1"), recorded, "Cloud Run")


def unsigned_jwt(expires_at: float) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part({'exp': expires_at, 'aud': 'x'})}.c2ln"


def test_an_id_token_is_reused_until_it_nears_its_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[str] = []

    def fetch(_: object, audience: str) -> str:
        fetched.append(audience)
        return unsigned_jwt(time.time() + (3600 if len(fetched) == 1 else 7200))

    monkeypatch.setattr(google_auth.id_token, "fetch_id_token", fetch)
    auth = google_auth.IdentityToken("https://fraud-scorer-xyz-ew.a.run.app")
    seen: list[str] = []
    client = httpx.Client(
        auth=auth,
        transport=httpx.MockTransport(
            lambda r: seen.append(r.headers["authorization"]) or httpx.Response(200)
        ),
    )
    client.get("https://candidate---fraud-scorer-xyz-ew.a.run.app/readyz")
    client.get("https://candidate---fraud-scorer-xyz-ew.a.run.app/version")
    assert fetched == ["https://fraud-scorer-xyz-ew.a.run.app"], "one token for both requests"
    assert seen[0] == seen[1]
    assert seen[0].startswith("Bearer ")
    auth.expires_at = time.time() - 1  # as if the hour had passed
    client.get("https://candidate---fraud-scorer-xyz-ew.a.run.app/readyz")
    assert len(fetched) == 2


def test_an_access_token_is_refreshed_when_stale() -> None:
    class Credentials:
        valid, token, refreshed = False, "old", 0

        def refresh(self, _: object) -> None:
            self.valid, self.token, self.refreshed = True, "fresh", self.refreshed + 1

    credentials = Credentials()
    client = httpx.Client(
        auth=google_auth.AccessToken(credentials),
        transport=httpx.MockTransport(
            lambda r: httpx.Response(200, text=r.headers["authorization"])
        ),
    )
    assert client.get("https://run.googleapis.com/v2/x").text == "Bearer fresh"
    assert client.get("https://run.googleapis.com/v2/x").text == "Bearer fresh"
    assert credentials.refreshed == 1


def test_credentials_that_cannot_be_refreshed_fail_the_request_with_how_to_fix_it() -> None:
    """An expired federation token is a request that could not be sent: the metrics reader
    turns it into a failed gate (and a rollback), the Admin API reader into a DeployError."""

    class Expired:
        valid, token = False, None

        def refresh(self, _: object) -> None:
            raise google_auth.exceptions.RefreshError("Token has been expired or revoked.")

    client = httpx.Client(
        auth=google_auth.AccessToken(Expired()),
        transport=httpx.MockTransport(lambda _: httpx.Response(200)),
    )
    with pytest.raises(google_auth.CredentialsError, match="auth step must run before") as raised:
        client.get("https://monitoring.googleapis.com/v1/x")
    assert isinstance(raised.value, httpx.HTTPError)
    assert "expired or revoked" in str(raised.value)
    service = ServiceApi(client, "my-ml-dev", "europe-west1", "fraud-scorer")
    with pytest.raises(DeployError, match="did not answer"):
        service.live()
