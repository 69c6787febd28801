"""A fake Google Cloud for the Cloud Run platform, fake at each of its boundaries only.

- the Pulumi CLI: fake_pulumi.py, run as a subprocess, applies transitions to a world file;
- the Admin API: answers what the world serves, shaped like `services.get` (v2 REST);
- Cloud Monitoring's Prometheus API: answers the platform's PromQL from simulated users whose
  requests follow the live split, each revision behaving as its image's profile says;
- Cloud Storage: keeps the rollout record in memory, answering like the JSON API;
- the tagged URL: a real service process on 127.0.0.1 serving the candidate's model.
"""

import json
import math
import re
import stat
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx

from environments.stack_settings import load_file
from pipelines.rollout.platforms.cloudrun.google_auth import CredentialsError
from pipelines.rollout.platforms.cloudrun.metrics import CLOUD_MONITORING_API, PrometheusWindows
from pipelines.rollout.platforms.cloudrun.platform import CloudRunPlatform
from pipelines.rollout.platforms.cloudrun.pulumi_stack import PulumiStack
from pipelines.rollout.platforms.cloudrun.service_api import BY_REVISION, RUN_API, ServiceApi
from pipelines.rollout.platforms.cloudrun.state_object import StateObject, StorageObject
from service.metrics import _LATENCY_BUCKETS, _SCORE_BUCKETS  # pyright: ignore[reportPrivateUsage]
from tests.pipelines.rollout.platforms.cloudrun import fake_pulumi

SETTINGS = load_file("dev")
STABLE_IMAGE = f"{SETTINGS.registry}/fraud-scorer@sha256:{'1' * 64}"
STABLE_SHA = "1" * 40
NEVER_READY = (
    "error: update failed\n  gcp:cloudrunv2:Service (app-service):\n    error: 1 error occurred:\n"
    "\t* Error waiting to update Service: Error code 9, message: Revision "
    "'fraud-scorer-2222222-002' is not ready and cannot serve traffic. The user-provided "
    "container failed the configured startup probe checks.\n"
)


def image(n: int) -> str:
    return f"{SETTINGS.registry}/fraud-scorer@sha256:{str(n) * 64}"


@dataclass(frozen=True)
class Profile:
    """How a revision built from an image behaves under real users."""

    error_rate: float = 0.002
    latency_s: float = 0.02
    scores_skew: float = 8.0  # CDF 1 - (1 - s)^k: mass near zero, as a fraud model's

    def score_cdf(self, upper: float) -> float:
        return 1.0 if upper >= 1 else 1 - (1 - upper) ** self.scores_skew


WRONG_SCORES = Profile(scores_skew=1.5)


@dataclass
class FakeClock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeCloud:  # pylint: disable=too-many-instance-attributes  # one fake per boundary
    tmp: Path
    profiles: dict[str, Profile]  # image -> behaviour; images not listed behave well
    servers: dict[str, str]  # image -> URL of a local service process serving its model
    users_per_second: float = 20.0
    metrics_lag_s: float = 0.0
    monitoring_status: int = 200
    credentials_expired: bool = False
    clock: FakeClock = field(default_factory=FakeClock)
    objects: dict[str, bytes] = field(default_factory=dict[str, bytes])
    series: dict[str, list[tuple[float, dict[str, float]]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def __post_init__(self) -> None:
        self.world_path = self.tmp / "world.json"
        self.executable = self.tmp / "pulumi"
        script = Path(fake_pulumi.__file__)
        self.executable.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
        self.executable.chmod(self.executable.stat().st_mode | stat.S_IXUSR)
        self.save({"outputs": {}, "live": [], "fail": {}, "calls": []})
        self.stack().transition("deploy", image=STABLE_IMAGE, git_sha=STABLE_SHA)
        world = self.world
        world["calls"] = []  # the first release is the stable one every scenario starts from
        self.save(world)

    # --- the world file the fake CLI shares -------------------------------------------------
    @property
    def world(self) -> dict[str, Any]:
        return json.loads(self.world_path.read_text(encoding="utf-8"))

    def save(self, world: dict[str, Any]) -> None:
        self.world_path.write_text(json.dumps(world), encoding="utf-8")

    def fail(self, action: str, output: str) -> None:
        world = self.world
        world["fail"][action] = output
        self.save(world)

    def transitions(self) -> list[str]:
        """The `pulumi up` calls, as `action[:percent]` (`reconcile` for a plain up)."""
        ups = [call["release"] for call in self.world["calls"] if call["argv"][0] == "up"]
        return [
            ":".join(filter(None, (r.get("RELEASE_ACTION", "reconcile"), r.get("RELEASE_PERCENT"))))
            for r in ups
        ]

    def stack(self) -> PulumiStack:
        return PulumiStack(
            "dev",
            executable=str(self.executable),
            environ={"FAKE_CLOUD_WORLD": str(self.world_path)},
        )

    # --- users --------------------------------------------------------------------------------
    def _profiles(self) -> dict[str, Profile]:
        """Each revision behaves as its image does, unless a drill injected errors into it."""
        release = self.world["outputs"].get("release") or {}
        revisions = [r for r in (release.get("stable"), release.get("candidate")) if r]
        profiles = {}
        for revision in revisions:
            profile = self.profiles.get(revision["image"], Profile())
            if rate := revision["spec"]["env"].get("FAULT_ERROR_RATE"):
                profile = replace(profile, error_rate=float(rate))
            profiles[revision["name"]] = profile
        return profiles

    def sleep(self, seconds: float) -> None:
        """Time passes; users send requests along the live split; the collector scrapes."""
        profiles = self._profiles()
        self.clock.now += seconds
        for target in self.world["live"]:
            revision, share = target["revision"], target["percent"] / 100
            profile = profiles.get(revision, Profile())
            history = self.series[revision]
            last = history[-1][1] if history else defaultdict(float)
            served = self.users_per_second * seconds * share
            now: dict[str, float] = defaultdict(float, last)
            now["requests"] += served
            now["errors"] += served * profile.error_rate
            for upper in (*_LATENCY_BUCKETS, math.inf):
                now[f"latency:{upper}"] += served * (upper >= profile.latency_s)
            for upper in (*_SCORE_BUCKETS, math.inf):
                now[f"scores:{upper}"] += served * profile.score_cdf(upper)
            history.append((self.clock.now, now))

    # --- Cloud Monitoring ---------------------------------------------------------------------
    def _value(self, revision: str, key: str, at: float, horizon: float) -> float:
        """A counter's last sample at `at`, among those the backend has by `horizon`."""
        samples = [s[key] for t, s in self.series.get(revision, []) if t <= min(at, horizon)]
        return samples[-1] if samples else 0.0

    def _prometheus(self, request: httpx.Request) -> httpx.Response:
        if self.credentials_expired:  # what google_auth raises when a refresh is refused
            raise CredentialsError("Token has been expired or revoked.", request=request)
        if self.monitoring_status != 200:
            error = {"code": self.monitoring_status, "message": "Quota exceeded for quota metric "
                     "'Time series queries' of service 'monitoring.googleapis.com'"}  # fmt: skip
            return httpx.Response(self.monitoring_status, json={"error": error})
        query, at = request.url.params["query"], float(request.url.params["time"])
        revision = re.search(r'revision="([^"]+)"', query)
        assert revision, query
        name, horizon = revision.group(1), at - self.metrics_lag_s
        visible = [t for t, _ in self.series.get(name, []) if t <= horizon]
        if "shadow_" in query:  # these revisions mirror nothing: no shadow series at all
            rows: list[tuple[dict[str, str], float]] = []
        elif query.startswith("max(timestamp("):
            rows = [({}, visible[-1])] if visible else []
        else:
            seconds = re.search(r"\[(\d+)s\]", query)
            assert seconds, query
            start = at - int(seconds.group(1))
            kind = (
                "latency" if "duration_seconds_bucket" in query
                else "scores" if "prediction_score_bucket" in query
                else None
            )  # fmt: skip
            if kind:
                uppers = _LATENCY_BUCKETS if kind == "latency" else _SCORE_BUCKETS
                rows = [
                    ({"le": "+Inf" if upper == math.inf else str(upper)},
                     self._value(name, f"{kind}:{upper}", at, horizon)
                     - self._value(name, f"{kind}:{upper}", start, horizon))
                    for upper in (*uppers, math.inf)
                ]  # fmt: skip
            else:
                key = "errors" if 'status=~"5.."' in query else "requests"
                rows = [
                    (
                        {},
                        self._value(name, key, at, horizon)
                        - self._value(name, key, start, horizon),
                    )
                ]
        result = [{"metric": labels, "value": [at, str(value)]} for labels, value in rows]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    # --- the Admin API and the tagged URLs ------------------------------------------------
    def _admin(self, request: httpx.Request) -> httpx.Response:
        service = f"projects/{SETTINGS.project}/locations/{SETTINGS.region}/services/fraud-scorer"
        assert str(request.url) == f"{RUN_API}/{service}"
        statuses = []
        for target in self.world["live"]:
            status: dict[str, Any] = {"type": BY_REVISION, "revision": target["revision"]}
            if target["percent"]:  # proto3 JSON leaves out a zero
                status["percent"] = target["percent"]
            if target["tag"]:
                status |= {"tag": target["tag"], "uri": fake_pulumi.tag_url(target["tag"])}
            statuses.append(status)
        body = {"name": service, "uri": fake_pulumi.SERVICE_URL, "trafficStatuses": statuses}
        return httpx.Response(200, json=body)

    def client_for(self, url: str, audience: str) -> httpx.Client:
        assert audience == fake_pulumi.SERVICE_URL
        tagged = {
            fake_pulumi.tag_url(t["tag"]): t["revision"] for t in self.world["live"] if t["tag"]
        }
        release = self.world["outputs"]["release"]
        images = {r["name"]: r["image"] for r in (release["stable"], release.get("candidate")) if r}
        return httpx.Client(base_url=self.servers[images[tagged[url]]], timeout=10)

    # --- Cloud Storage ----------------------------------------------------------------------
    def _storage(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.objects[request.url.params["name"]] = request.content
            return httpx.Response(200, json={"name": request.url.params["name"]})
        name = unquote(request.url.raw_path.decode().split("/o/", 1)[1].split("?")[0])
        if request.method == "DELETE" and name in self.objects:
            del self.objects[name]
            return httpx.Response(204)
        if name not in self.objects:
            return httpx.Response(404, json={"error": {"code": 404, "message": "No such object"}})
        return httpx.Response(200, content=self.objects[name])

    def store(self) -> StateObject:
        client = httpx.Client(transport=httpx.MockTransport(self._storage))
        return StateObject(client, "my-ml-dev-dev-pulumi-state", "rollouts/fraud-scorer/state.json")

    def platform(self) -> CloudRunPlatform:
        admin = httpx.Client(transport=httpx.MockTransport(self._admin))
        monitoring = httpx.Client(
            base_url=CLOUD_MONITORING_API.format(project=SETTINGS.project),
            transport=httpx.MockTransport(self._prometheus),
        )
        return CloudRunPlatform(
            settings=SETTINGS,
            stack=self.stack(),
            service=ServiceApi(admin, SETTINGS.project, SETTINGS.region, SETTINGS.service_name),
            windows=PrometheusWindows(monitoring, clock=self.clock),
            client_for=self.client_for,
            switch=StorageObject(
                httpx.Client(transport=httpx.MockTransport(self._storage)),
                SETTINGS.model_bucket_name,
                SETTINGS.shadow_switch_name,
            ),
        )
