"""A fake Google Cloud for the cloud platforms, fake at each of their boundaries only.

- the Pulumi CLI: fake_pulumi.py, run as a subprocess, applies transitions to a world file;
- Cloud Run's Admin API: answers what the world serves, shaped like `services.get` (v2 REST);
- or, on Kubernetes, the cluster's API server: the HTTPRoute the program's own rules make of
  what the world serves (accepted by the gateway), the Deployments' readiness, the gateway's
  address; and the gateway itself, which routes a request by its `X-Rollout-Tag` header;
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

from environments import http_route
from environments.stack_settings import StackSettings, load_file
from environments.traffic import TrafficSplit
from pipelines.rollout.platforms.cloud.google_auth import CredentialsError
from pipelines.rollout.platforms.cloud.platform import CloudPlatform, Serving
from pipelines.rollout.platforms.cloud.prometheus import CLOUD_MONITORING_API, PrometheusWindows
from pipelines.rollout.platforms.cloud.pulumi_stack import PulumiStack
from pipelines.rollout.platforms.cloud.state_object import StateObject, StorageObject
from pipelines.rollout.platforms.cloudrun.service_api import BY_REVISION, RUN_API, ServiceApi
from pipelines.rollout.platforms.cloudrun.serving import CloudRunServing
from pipelines.rollout.platforms.kubernetes.cluster_api import ClusterApi
from pipelines.rollout.platforms.kubernetes.serving import KubernetesServing
from service.metrics import _LATENCY_BUCKETS, _SCORE_BUCKETS  # pyright: ignore[reportPrivateUsage]
from tests.pipelines.rollout.platforms.cloud import fake_pulumi

SETTINGS = load_file("dev")
STABLE_IMAGE = f"{SETTINGS.registry}/fraud-scorer@sha256:{'1' * 64}"
STABLE_SHA = "1" * 40
# What `pulumi up` prints when the new revision never becomes ready, on each platform.
NEVER_READY = {
    "cloudrun": (
        "error: update failed\n  gcp:cloudrunv2:Service (app-service):\n    error: 1 error "
        "occurred:\n\t* Error waiting to update Service: Error code 9, message: Revision "
        "'fraud-scorer-2222222-002' is not ready and cannot serve traffic. The user-provided "
        "container failed the configured startup probe checks.\n"
    ),
    "kubernetes": (
        "error: update failed\n  kubernetes:apps/v1:Deployment "
        "(app-fraud-scorer-2222222-002-deployment):\n    error: 2 errors occurred:\n\t* the "
        'Kubernetes API server reported that "fraud-scorer/fraud-scorer-2222222-002" failed to '
        "fully initialize or become live: Resource operation was cancelled for "
        '"fraud-scorer-2222222-002"\n\t* Minimum number of Pods to consider the application '
        "live was not attained\n"
    ),
}
PLATFORMS = tuple(NEVER_READY)
CLUSTER = "https://34.1.2.3"
GATEWAY_ADDRESS = "34.120.0.1"


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
    kind: str = "cloudrun"  # the platform: cloudrun or kubernetes
    users_per_second: float = 20.0
    metrics_lag_s: float = 0.0
    monitoring_status: int = 200
    credentials_expired: bool = False
    clock: FakeClock = field(default_factory=FakeClock)
    objects: dict[str, bytes] = field(default_factory=dict[str, bytes])
    series: dict[str, list[tuple[float, dict[str, float]]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @property
    def settings(self) -> StackSettings:
        """The dev environment on this fake's platform."""
        return SETTINGS.model_copy(update={"platform": self.kind})

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
            environ={"FAKE_CLOUD_WORLD": str(self.world_path), "FAKE_PLATFORM": self.kind},
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
        assert self.settings.cluster_matcher[1:] in query, query  # GKE: this cluster's series
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

    def _server_of(self, revision: str) -> str:
        """The local process serving the revision's image."""
        release = self.world["outputs"]["release"]
        images = {r["name"]: r["image"] for r in (release["stable"], release.get("candidate")) if r}
        return self.servers[images[revision]]

    def client_for(self, url: str, audience: str) -> httpx.Client:
        assert audience == fake_pulumi.SERVICE_URL
        tagged = {
            fake_pulumi.tag_url(t["tag"]): t["revision"] for t in self.world["live"] if t["tag"]
        }
        return httpx.Client(base_url=self._server_of(tagged[url]), timeout=10)

    # --- the cluster's API server and its gateway -----------------------------------------
    def _cluster(self, request: httpx.Request) -> httpx.Response:
        path, namespace = request.url.path, SETTINGS.namespace
        routes = f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/"
        if path == f"{routes}fraud-scorer":
            generation = len(self.world["calls"]) + 1  # a new one for each `pulumi up`
            accepted = [
                {"type": kind, "status": "True", "observedGeneration": generation}
                for kind in ("Accepted", "ResolvedRefs")
            ]
            split = TrafficSplit.from_dict(self.world["live"])
            return httpx.Response(200, json={
                "metadata": {"name": "fraud-scorer", "namespace": namespace,
                             "generation": generation},
                "spec": {"rules": http_route.rules(split)},
                "status": {"parents": [{"parentRef": {"name": "fraud-scorer"},
                                        "conditions": accepted}]},
            })  # fmt: skip
        deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments/"
        if path.startswith(deployments):
            name = path.removeprefix(deployments)
            if name not in {t["revision"] for t in self.world["live"]}:
                return httpx.Response(404, json={"kind": "Status", "reason": "NotFound"})
            status = {"observedGeneration": 1, "readyReplicas": 1, "replicas": 1}
            return httpx.Response(200, json={"metadata": {"generation": 1}, "status": status})
        if (
            path
            == f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/gateways/fraud-scorer"
        ):
            status = {"addresses": [{"type": "IPAddress", "value": GATEWAY_ADDRESS}]}
            return httpx.Response(200, json={"status": status})
        return httpx.Response(404, json={"kind": "Status", "reason": "NotFound", "path": path})

    def _gateway(self, request: httpx.Request) -> httpx.Response:
        """Routes as the HTTPRoute says: a tagged request to its revision, others by weight."""
        assert request.url.host == GATEWAY_ADDRESS
        tag = request.headers.get(http_route.TAG_HEADER)
        split = TrafficSplit.from_dict(self.world["live"])
        revision = (
            split.tagged(tag) if tag else max(split.targets, key=lambda t: t.percent).revision
        )
        if revision is None:
            return httpx.Response(404, text="no route")
        with httpx.Client(base_url=self._server_of(revision), timeout=10) as upstream:
            answer = upstream.request(
                request.method,
                request.url.raw_path.decode(),
                content=request.content,
                headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
            )
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    def serving(self) -> Serving:
        if self.kind == "cloudrun":
            admin = httpx.Client(transport=httpx.MockTransport(self._admin))
            service = ServiceApi(admin, SETTINGS.project, SETTINGS.region, SETTINGS.service_name)
            return CloudRunServing(service, self.client_for, SETTINGS.public)
        cluster = ClusterApi(
            CLUSTER, SETTINGS.namespace, None, transport=httpx.MockTransport(self._cluster)
        )
        gateway = httpx.MockTransport(self._gateway)
        return KubernetesServing(
            cluster,
            SETTINGS.service_name,
            SETTINGS.public,
            lambda url: httpx.Client(base_url=url, transport=gateway),
            clock=self.clock,
            sleep=self.sleep,
        )

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

    def platform(self) -> CloudPlatform:
        monitoring = httpx.Client(
            base_url=CLOUD_MONITORING_API.format(project=SETTINGS.project),
            transport=httpx.MockTransport(self._prometheus),
        )
        return CloudPlatform(
            settings=SETTINGS,
            stack=self.stack(),
            serving=self.serving(),
            windows=PrometheusWindows(
                monitoring, where=self.settings.cluster_matcher, clock=self.clock
            ),
            switch=StorageObject(
                httpx.Client(transport=httpx.MockTransport(self._storage)),
                SETTINGS.model_bucket_name,
                SETTINGS.shadow_switch_name,
            ),
        )
