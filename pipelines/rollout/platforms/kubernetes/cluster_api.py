"""What the cluster serves, read from its API server over REST: the HTTPRoute's split (the
rules infra/kubernetes/objects.py wrote, and whether the gateway accepted them), a revision's
readiness, the gateway's address. Read only: Pulumi is the only writer.

https://kubernetes.io/docs/reference/using-api/api-concepts/ and
https://gateway-api.sigs.k8s.io/reference/spec/#httproutestatus
"""

import base64
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from environments.http_route import RouteError, split_of
from environments.traffic import TrafficSplit
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud.rest import read_json

ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/{name}"
GATEWAYS = "/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/gateways/{name}"
DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
SERVICE_PROXY = "/api/v1/namespaces/{namespace}/services/{name}:http/proxy"
TIMEOUT_S = 30.0


def ca_context(ca_certificate: str) -> ssl.SSLContext:
    """Trust the cluster's own CA (base64 PEM, as kubeconfig and GKE carry it), and only it."""
    try:
        pem = base64.b64decode(ca_certificate, validate=True).decode("ascii")
        return ssl.create_default_context(cadata=pem)
    except (ValueError, ssl.SSLError) as error:
        raise DeployError(
            f"the stack's cluster_ca_certificate is not a base64 PEM certificate: {error}"
        ) from error


@dataclass(frozen=True)
class LiveRoute:
    """The route's split, and whether the gateway accepted the generation that declares it."""

    split: TrafficSplit
    accepted: bool
    why: str  # what the gateway says when it has not


def _accepted(route: dict[str, Any]) -> tuple[bool, str]:
    """Every parent gateway reports Accepted and ResolvedRefs for this very generation."""
    generation = (route.get("metadata") or {}).get("generation")
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return False, "no gateway has reported on the route yet"
    for parent in parents:
        for wanted in ("Accepted", "ResolvedRefs"):
            found = [c for c in parent.get("conditions") or [] if c.get("type") == wanted]
            if not found:
                return False, f"the gateway has not reported {wanted} yet"
            condition = found[0]
            if condition.get("observedGeneration") != generation:
                return False, f"the gateway has not seen generation {generation} of the route yet"
            if condition.get("status") != "True":
                return False, f"{wanted} is {condition.get('status')}: {condition.get('message')}"
    return True, ""


@dataclass(frozen=True)
class ClusterApi:
    """One namespace of the environment's cluster. `auth` and `verify` are the API server's
    (a Google access token, and its CA); `transport` is for tests."""

    endpoint: str
    namespace: str
    auth: httpx.Auth | None
    verify: ssl.SSLContext | bool = True
    transport: httpx.BaseTransport | None = None

    def client(self, path: str = "") -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.endpoint}{path}",
            auth=self.auth,
            verify=self.verify,
            transport=self.transport,
            timeout=TIMEOUT_S,
        )

    def _get(self, template: str, name: str) -> dict[str, Any]:
        with self.client() as http:
            return read_json(
                http,
                template.format(namespace=self.namespace, name=name),
                "the cluster's API server",
            )

    def route(self, name: str) -> LiveRoute:
        route = self._get(ROUTES, name)
        try:
            split = split_of((route.get("spec") or {}).get("rules") or [])
        except RouteError as error:
            raise DeployError(
                f"the HTTPRoute {self.namespace}/{name} was changed outside Pulumi ({error}); "
                "run `pulumi up` with no RELEASE_* inputs to put the recorded split back"
            ) from error
        accepted, why = _accepted(route)
        return LiveRoute(split, accepted, why)

    def deployment_ready(self, name: str) -> bool:
        """At least one pod of the Deployment's current generation passes its readiness probe."""
        try:
            deployment = self._get(DEPLOYMENTS, name)
        except DeployError:
            return False
        status = deployment.get("status") or {}
        current = status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)
        return current and int(status.get("readyReplicas") or 0) >= 1

    def gateway_address(self, name: str) -> str | None:
        addresses = (self._get(GATEWAYS, name).get("status") or {}).get("addresses") or []
        return str(addresses[0]["value"]) if addresses else None

    def service_proxy(self, service: str) -> httpx.Client:
        """A client that reaches one revision's Service through the API server's proxy: from
        outside the VPC, with the same credentials, whatever the gateway exposes."""
        return self.client(SERVICE_PROXY.format(namespace=self.namespace, name=service))
