"""The cluster's live state, from API server answers shaped like the real ones."""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from environments.http_route import rules
from environments.traffic import canary, stable_only
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.kubernetes.cluster_api import ClusterApi
from pipelines.rollout.platforms.kubernetes.serving import KubernetesServing
from tests.pipelines.rollout.test_controller import FakeClock

API = "https://34.1.2.3"
ROUTE = "/apis/gateway.networking.k8s.io/v1/namespaces/fraud-scorer/httproutes/fraud-scorer"
GATEWAY = "/apis/gateway.networking.k8s.io/v1/namespaces/fraud-scorer/gateways/fraud-scorer"
DEPLOYMENT = "/apis/apps/v1/namespaces/fraud-scorer/deployments/"


CANARY = canary("v1", "v2", 10)


def route(
    split: Any = CANARY, generation: int = 3, seen: int = 3, status: str = "True"
) -> dict[str, Any]:
    conditions = [
        {"type": "Accepted", "status": status, "observedGeneration": seen, "message": "bad ref"},
        {"type": "ResolvedRefs", "status": "True", "observedGeneration": seen},
    ]
    return {
        "metadata": {"generation": generation},
        "spec": {"rules": rules(split)},
        "status": {"parents": [{"parentRef": {"name": "fraud-scorer"}, "conditions": conditions}]},
    }


def serving(
    answers: Callable[[httpx.Request], httpx.Response], public: bool = True
) -> tuple[KubernetesServing, FakeClock]:
    clock = FakeClock()
    cluster = ClusterApi(API, "fraud-scorer", None, transport=httpx.MockTransport(answers))
    gateway = httpx.MockTransport(lambda request: httpx.Response(200, json=dict(request.headers)))
    made = KubernetesServing(
        cluster, "fraud-scorer", public, lambda url: httpx.Client(base_url=url, transport=gateway),
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    return made, clock


def by_path(pages: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        page = pages.get(request.url.path)
        if page is None:
            return httpx.Response(404, json={"kind": "Status", "reason": "NotFound"})
        return httpx.Response(200, json=page() if callable(page) else page)

    return answer


def test_the_split_is_the_accepted_routes() -> None:
    live, _ = serving(by_path({ROUTE: route()}))
    assert live.split() == canary("v1", "v2", 10)


def test_a_generation_the_gateway_has_not_seen_is_waited_for() -> None:
    answers = iter(
        [route(generation=4, seen=3), route(generation=4, seen=3), route(generation=4, seen=4)]
    )
    live, clock = serving(by_path({ROUTE: lambda: next(answers)}))
    assert live.split() == canary("v1", "v2", 10)
    assert clock.now == 1_004.0, "polled every 2 s until the gateway caught up"


@pytest.mark.parametrize(
    ("page", "why"),
    [
        (route(generation=5, seen=4), "the gateway has not seen generation 5"),
        (route(status="False"), "Accepted is False: bad ref"),
        ({**route(), "status": {}}, "no gateway has reported"),
    ],
)
def test_a_route_never_accepted_is_an_error_after_the_timeout(
    page: dict[str, Any], why: str
) -> None:
    live, clock = serving(by_path({ROUTE: page}))
    with pytest.raises(
        DeployError,
        match=f"has not accepted the HTTPRoute fraud-scorer/fraud-scorer in 120 s: {why}",
    ):
        live.split()
    assert clock.now >= 1_120


def test_a_route_edited_by_hand_is_named_with_how_to_put_it_back() -> None:
    page = route()
    page["spec"]["rules"][-1]["backendRefs"][0]["weight"] = 50
    live, _ = serving(by_path({ROUTE: page}))
    with pytest.raises(
        DeployError, match=r"changed outside Pulumi \(.*sum to 60.*\); run `pulumi up`"
    ):
        live.split()


def test_an_api_error_is_named() -> None:
    live, _ = serving(lambda _: httpx.Response(403, json={"reason": "Forbidden"}))
    with pytest.raises(DeployError, match=f"answered 403 for {ROUTE}"):
        live.split()


@pytest.mark.parametrize(
    ("status", "ready"),
    [
        ({"observedGeneration": 2, "readyReplicas": 1}, True),
        ({"observedGeneration": 1, "readyReplicas": 1}, False),  # the old pods, not this spec's
        ({"observedGeneration": 2, "readyReplicas": 0}, False),
        ({"observedGeneration": 2}, False),
    ],
)
def test_a_revision_is_ready_when_a_pod_of_its_current_spec_passes_readiness(
    status: dict[str, Any], ready: bool
) -> None:
    page = {"metadata": {"generation": 2}, "status": status}
    live, _ = serving(by_path({f"{DEPLOYMENT}v2": page}))
    assert live.is_ready("v2") is ready
    assert live.is_ready("v9") is False, "a Deployment that does not exist is not ready"


def test_a_public_gateway_reaches_the_tagged_revision_by_its_header() -> None:
    gateway = {"status": {"addresses": [{"type": "IPAddress", "value": "34.120.0.1"}]}}
    live, _ = serving(by_path({ROUTE: route(), GATEWAY: gateway}))
    with live.tagged_client("candidate") as client:
        assert str(client.base_url) == "http://34.120.0.1"
        assert client.get("/readyz").json()["x-rollout-tag"] == "candidate"
    with pytest.raises(DeployError, match="no rule for the tag 'blue'"):
        live.tagged_client("blue")


def test_a_gateway_without_an_address_yet_is_explained() -> None:
    live, _ = serving(by_path({ROUTE: route(), GATEWAY: {"status": {}}}))
    with pytest.raises(DeployError, match="has no address yet"):
        live.tagged_client("candidate")


def test_behind_a_private_gateway_the_api_servers_proxy_reaches_the_revision() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == ROUTE:
            return httpx.Response(200, json=route())
        seen.append(str(request.url))
        return httpx.Response(200, json={"ready": True})

    live, _ = serving(answer, public=False)
    with live.tagged_client("candidate") as client:
        assert client.get("/readyz").status_code == 200
    assert seen == [f"{API}/api/v1/namespaces/fraud-scorer/services/v2:http/proxy/readyz"]


def test_stable_mirrors_to_the_candidates_service_inside_the_cluster() -> None:
    live, _ = serving(by_path({ROUTE: route()}))
    assert live.mirror_target() == ("http://v2.fraud-scorer.svc.cluster.local:80", None)
    alone, _ = serving(by_path({ROUTE: route(stable_only("v1"))}))
    with pytest.raises(DeployError, match="tags no 'candidate' revision"):
        alone.mirror_target()
