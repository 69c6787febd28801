"""The live state of a Cloud Run service, read from the Admin API (v2, REST): which revision
serves how much, and each tag's URL. Read only: Pulumi is the only writer of traffic.

https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.services
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from environments.traffic import Target, TrafficError, TrafficSplit
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud.platform import TrafficDriftError
from pipelines.rollout.platforms.cloud.rest import read_json

RUN_API = "https://run.googleapis.com/v2"
BY_REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"


@dataclass(frozen=True)
class LiveService:
    """What Cloud Run says about the service now."""

    split: TrafficSplit
    tag_urls: dict[str, str]
    url: str  # the service's own URL: the audience of ID tokens for any of its addresses


def _live(body: Mapping[str, Any]) -> LiveService:
    statuses: Sequence[Mapping[str, Any]] = body.get("trafficStatuses") or []
    latest = [s for s in statuses if s.get("type", BY_REVISION) != BY_REVISION]
    if latest:
        raise TrafficDriftError(
            "traffic follows LATEST, which this program never sets: traffic was changed outside "
            "Pulumi; run `pulumi up` with no RELEASE_* inputs to put the recorded split back"
        )
    try:
        split = TrafficSplit(
            tuple(
                # The API leaves out a zero percent (proto3 JSON omits default values).
                Target(str(s["revision"]), int(s.get("percent", 0)), s.get("tag") or None)
                for s in statuses
            )
        )
    except (KeyError, TrafficError) as error:
        raise DeployError(f"Cloud Run reported an unreadable traffic split: {error}") from error
    urls = {str(s["tag"]): str(s["uri"]) for s in statuses if s.get("tag") and s.get("uri")}
    return LiveService(split, urls, str(body.get("uri", "")))


@dataclass(frozen=True)
class ServiceApi:
    """One service's Admin API resource; `http` is authorized (google_auth.AccessToken)."""

    http: httpx.Client
    project: str
    region: str
    service: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/services/{self.service}"

    def live(self) -> LiveService:
        return _live(read_json(self.http, f"{RUN_API}/{self.name}", "the Cloud Run API"))
