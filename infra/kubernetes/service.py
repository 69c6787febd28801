"""The service on Kubernetes: the objects of infra/kubernetes/objects.py for the release state,
in the cluster of infra/kubernetes/cluster.py.

Each revision's objects are named after it, so a revision that leaves the release (the stable one
a promotion replaces, a rolled-back candidate the next deploy replaces) has its objects deleted by
Pulumi after the route stops naming it: deletes run at the end of an update.
"""

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from environments.stack_settings import StackSettings
from infra.kubernetes import objects
from infra.kubernetes.cluster import cluster_access
from infra.release import ReleaseState

TYPES = {
    "Namespace": k8s.core.v1.Namespace,
    "ServiceAccount": k8s.core.v1.ServiceAccount,
    "Deployment": k8s.apps.v1.Deployment,
    "Service": k8s.core.v1.Service,
    "PodDisruptionBudget": k8s.policy.v1.PodDisruptionBudget,
    "HorizontalPodAutoscaler": k8s.autoscaling.v2.HorizontalPodAutoscaler,
}


@dataclass(frozen=True)
class KubernetesServiceArgs:
    """The environment and its release state (from the last run plus any request)."""

    settings: StackSettings
    release: pulumi.Output[ReleaseState]


def declare(name: str, manifest: objects.Manifest, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """One manifest as a Pulumi resource: typed where the SDK has the kind, a custom resource
    (Gateway API, Managed Prometheus, GKE policies) otherwise."""
    kind = manifest["kind"]
    fields: dict[str, Any] = {k: v for k, v in manifest.items() if k not in {"apiVersion", "kind"}}
    if kind in TYPES:
        return TYPES[kind](name, opts=opts, **fields)
    return k8s.apiextensions.CustomResource(
        name, api_version=manifest["apiVersion"], kind=kind, opts=opts, **fields
    )


class KubernetesService(pulumi.ComponentResource):
    """Namespace, identity, gateway, route, and every serving revision's objects."""

    def __init__(
        self, name: str, args: KubernetesServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:KubernetesService", name, None, opts)
        settings = args.settings
        self.cluster = cluster_access(name, settings, self)
        placed = pulumi.ResourceOptions(parent=self, provider=self.cluster.provider)
        ns = declare(f"{name}-namespace", objects.namespace(settings), placed)
        inside = pulumi.ResourceOptions.merge(placed, pulumi.ResourceOptions(depends_on=[ns]))
        # It acts as the runtime service account: the bootstrap made the binding.
        declare(f"{name}-account", objects.service_account(settings), inside)
        gateway = declare(f"{name}-gateway", objects.gateway(settings), inside)
        self.route_urn = args.release.apply(
            lambda state: release_objects(name, settings, state, inside, gateway)
        )
        self.endpoint = self.cluster.endpoint
        self.ca_certificate = self.cluster.ca_certificate
        self.register_outputs({"endpoint": self.endpoint, "route": self.route_urn})


def release_objects(
    name: str,
    settings: StackSettings,
    state: ReleaseState,
    opts: pulumi.ResourceOptions,
    gateway: pulumi.Resource,
) -> pulumi.Output[str]:
    """Every serving revision's objects, then the route that names their Services (declared
    inside the release's `apply`: which revisions exist is part of the recorded state)."""
    made = [
        declare(f"{name}-{revision}-{manifest['kind'].lower()}", manifest, opts)
        for revision, manifests in objects.revision_objects(settings, state).items()
        for manifest in manifests
    ]
    route = declare(
        f"{name}-route",
        objects.http_route(settings, state),
        pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[gateway, *made])),
    )
    return route.urn
