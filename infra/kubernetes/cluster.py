"""The cluster an environment's Kubernetes objects go to, and how the rollout controller reaches
its API server: the GKE Autopilot cluster the bootstrap creates for the environment, or an
existing GKE cluster from the deployer's kubeconfig.

The bootstrap, not the environment stack, creates the Autopilot cluster: the runtime account's
Workload Identity binding can only be made once the cluster's identity pool exists, and making it
takes `setIamPolicy` on that account, which no deployer holds (infra/bootstrap/deployers.py). A
cluster also lives as long as its environment, like the state bucket, not as long as a release.

Either way the controller gets the API server's address and CA certificate from the stack's
outputs and authenticates with the deployer's own Google access token, which GKE accepts: no
Kubernetes credential is stored anywhere.
"""

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_gcp import container, organizations

from environments.stack_settings import ConfigError, StackSettings


@dataclass(frozen=True)
class ClusterAccess:
    """Pulumi's provider for the cluster, and where the controller finds its API server."""

    provider: k8s.Provider
    endpoint: pulumi.Output[str]  # https://<address>
    ca_certificate: pulumi.Output[str]  # base64 PEM, as kubeconfig files and GKE carry it


def token_kubeconfig(endpoint: str, ca_certificate: str, token: str) -> str:
    """A kubeconfig for one run of the program: the deployer's access token, which outlives
    any `pulumi up` (an hour), so no exec plugin has to be installed where the program runs."""
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gke", "cluster": {
            "server": endpoint, "certificate-authority-data": ca_certificate}}],
        "users": [{"name": "deployer", "user": {"token": token}}],
        "contexts": [{"name": "gke", "context": {"cluster": "gke", "user": "deployer"}}],
        "current-context": "gke",
    })  # fmt: skip


def autopilot_cluster(
    name: str, settings: StackSettings, opts: pulumi.ResourceOptions
) -> container.Cluster:
    """A regional GKE Autopilot cluster: nodes, Workload Identity and Managed Service for
    Prometheus are Google's to run; the Gateway API's standard channel and the Secret Manager
    add-on are switched on."""
    return container.Cluster(
        name,
        name=settings.cluster_name,
        project=settings.project,
        location=settings.region,
        enable_autopilot=True,
        deletion_protection=settings.deletion_protection,
        resource_labels=settings.label_map,
        release_channel=container.ClusterReleaseChannelArgs(channel="REGULAR"),
        gateway_api_config=container.ClusterGatewayApiConfigArgs(channel="CHANNEL_STANDARD"),
        # Mounts the revisions' secretEnv from Secret Manager into their pods.
        secret_manager_config=container.ClusterSecretManagerConfigArgs(enabled=True),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True)),
    )


def autopilot(name: str, settings: StackSettings, parent: pulumi.Resource) -> ClusterAccess:
    """The bootstrap's Autopilot cluster of this environment, looked up by name."""
    cluster = container.get_cluster_output(
        name=settings.cluster_name, location=settings.region, project=settings.project
    )
    endpoint = cluster.endpoint.apply(lambda address: f"https://{address}")
    ca = cluster.master_auths.apply(lambda auths: auths[0].cluster_ca_certificate)
    token = organizations.get_client_config_output().access_token
    kubeconfig = pulumi.Output.secret(
        pulumi.Output.all(endpoint, ca, token).apply(lambda v: token_kubeconfig(*v))
    )
    provider = k8s.Provider(
        f"{name}-provider", kubeconfig=kubeconfig, opts=pulumi.ResourceOptions(parent=parent)
    )
    return ClusterAccess(provider, endpoint, ca)


def kubeconfig_path(environ: dict[str, str] | None = None) -> Path:
    """The file kubectl would read first: KUBECONFIG's first entry, or ~/.kube/config."""
    environ = dict(os.environ) if environ is None else environ
    first = (environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first or "~/.kube/config").expanduser()


def context_cluster(document: dict[str, Any], context: str) -> tuple[str, str]:
    """(server, base64 CA) of `context` (empty: the current context) in a kubeconfig."""
    wanted = context or document.get("current-context") or ""
    contexts = {c["name"]: c["context"] for c in document.get("contexts") or []}
    clusters = {c["name"]: c["cluster"] for c in document.get("clusters") or []}
    if wanted not in contexts:
        raise ConfigError(
            f"kubeconfig has no context {wanted!r} (it has {sorted(contexts)}): set "
            "kubernetesContext in the environment file, or fetch the cluster's credentials "
            "with `gcloud container clusters get-credentials`"
        )
    cluster = clusters.get(contexts[wanted].get("cluster"), {})
    ca = cluster.get("certificate-authority-data")
    if not ca and cluster.get("certificate-authority"):
        ca = base64.b64encode(Path(cluster["certificate-authority"]).read_bytes()).decode()
    if not cluster.get("server") or not ca:
        raise ConfigError(f"kubeconfig context {wanted!r} names no server and CA certificate")
    return str(cluster["server"]), str(ca)


def existing(name: str, settings: StackSettings, parent: pulumi.Resource) -> ClusterAccess:
    """An existing GKE cluster (Workload Identity and the Gateway API enabled), as the
    deployer's kubeconfig describes it."""
    path = kubeconfig_path()
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(
            f"kubernetesCluster is kubeconfig, but {path} cannot be read ({error}): run "
            "`gcloud container clusters get-credentials <cluster> --region <region>` first"
        ) from None
    server, ca = context_cluster(document, settings.kubernetes_context)
    provider = k8s.Provider(
        f"{name}-provider",
        kubeconfig=pulumi.Output.secret(text),
        context=settings.kubernetes_context or None,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return ClusterAccess(provider, pulumi.Output.from_input(server), pulumi.Output.from_input(ca))


def cluster_access(name: str, settings: StackSettings, parent: pulumi.Resource) -> ClusterAccess:
    if settings.kubernetes_cluster == "autopilot":
        return autopilot(name, settings, parent)
    return existing(name, settings, parent)
