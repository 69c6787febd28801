"""What the service on Kubernetes serves, and how to reach one of its revisions.

The split is the HTTPRoute's, once the gateway has accepted it. The candidate is reached through
the route's header match (`X-Rollout-Tag: candidate`) on the gateway's address when the gateway
is public; a private gateway is not reachable from a CI runner, so there the controller goes
through the API server's service proxy to the tagged revision's own Service. The stable
revision's pods mirror to the candidate's Service by its cluster DNS name, with no token.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from environments.http_route import SERVICE_PORT, TAG_HEADER
from environments.traffic import CANDIDATE_TAG, TrafficSplit
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.kubernetes.cluster_api import ClusterApi

# How long a new route generation may take to be accepted before the split counts as unknown.
ACCEPT_TIMEOUT_S = 120.0
POLL_S = 2.0


@dataclass
class KubernetesServing:  # pylint: disable=too-many-instance-attributes  # clock and sleep for tests
    """The service's route and gateway (both named after the service) in `cluster`'s namespace.
    `client_for(url)` gives a plain HTTP client for the gateway's address."""

    cluster: ClusterApi
    service_name: str
    public: bool
    client_for: Callable[[str], httpx.Client]
    where: str = "the cluster"
    accept_timeout_s: float = ACCEPT_TIMEOUT_S
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def split(self) -> TrafficSplit:
        """The route's split once the gateway accepted it: right after `pulumi up` the gateway
        may still be programming the previous generation."""
        deadline = self.clock() + self.accept_timeout_s
        while True:
            route = self.cluster.route(self.service_name)
            if route.accepted:
                return route.split
            if self.clock() >= deadline:
                raise DeployError(
                    f"the gateway has not accepted the HTTPRoute "
                    f"{self.cluster.namespace}/{self.service_name} in "
                    f"{self.accept_timeout_s:.0f} s: {route.why}"
                )
            self.sleep(POLL_S)

    def is_ready(self, revision: str) -> bool:
        return self.cluster.deployment_ready(revision)

    def tagged_client(self, tag: str) -> httpx.Client:
        revision = self.split().tagged(tag)
        if revision is None:
            raise DeployError(f"the HTTPRoute has no rule for the tag {tag!r}")
        if not self.public:
            return self.cluster.service_proxy(revision)
        address = self.cluster.gateway_address(self.service_name)
        if not address:
            raise DeployError(
                f"the gateway {self.cluster.namespace}/{self.service_name} has no address yet"
            )
        client = self.client_for(f"http://{address}")
        client.headers[TAG_HEADER] = tag
        return client

    def mirror_target(self) -> tuple[str, str | None]:
        candidate = self.split().tagged(CANDIDATE_TAG)
        if candidate is None:
            raise DeployError(f"the HTTPRoute tags no {CANDIDATE_TAG!r} revision: cannot mirror")
        namespace = self.cluster.namespace
        return f"http://{candidate}.{namespace}.svc.cluster.local:{SERVICE_PORT}", None
