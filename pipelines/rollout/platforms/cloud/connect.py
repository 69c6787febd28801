"""Everything a rollout in one cloud environment talks to, built from its stack file (and, on
Kubernetes, the stack's outputs that say where the cluster's API server is)."""

from collections.abc import Mapping
from typing import Any

import httpx
from google.auth import exceptions

from environments.stack_settings import StackSettings, load_file, state_bucket_name
from pipelines.experiments.events import BigQueryEvents
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud.google_auth import AccessToken, IdentityToken
from pipelines.rollout.platforms.cloud.platform import CloudPlatform, Serving
from pipelines.rollout.platforms.cloud.prometheus import CLOUD_MONITORING_API, PrometheusWindows
from pipelines.rollout.platforms.cloud.pulumi_stack import PulumiStack
from pipelines.rollout.platforms.cloud.state_object import StateObject, StorageObject
from pipelines.rollout.platforms.cloudrun.service_api import ServiceApi
from pipelines.rollout.platforms.cloudrun.serving import CloudRunServing
from pipelines.rollout.platforms.kubernetes.cluster_api import ClusterApi, ca_context
from pipelines.rollout.platforms.kubernetes.serving import KubernetesServing

TIMEOUT_S = 30.0


def state_object(settings: StackSettings, http: httpx.Client) -> StateObject:
    """The rollout record of this environment's service, in its state bucket."""
    bucket = state_bucket_name(settings.project, settings.environment)
    return StateObject(http, bucket, f"rollouts/{settings.service_name}/rollout-state.json")


def cloud_run_serving(settings: StackSettings, google: httpx.Client) -> CloudRunServing:
    identities: dict[str, IdentityToken] = {}

    def client_for(url: str, audience: str) -> httpx.Client:
        """A public service needs no token; a private one an ID token for its own URL."""
        if settings.public:
            return httpx.Client(base_url=url, timeout=TIMEOUT_S)
        auth = identities.setdefault(audience, IdentityToken(audience))
        return httpx.Client(base_url=url, auth=auth, timeout=TIMEOUT_S)

    service = ServiceApi(google, settings.project, settings.region, settings.service_name)
    return CloudRunServing(service, client_for, settings.public)


def kubernetes_serving(
    settings: StackSettings, outputs: Mapping[str, Any], token: AccessToken
) -> KubernetesServing:
    """The cluster's API server from the stack's outputs, with the deployer's own token."""
    endpoint, ca = outputs.get("cluster_endpoint"), outputs.get("cluster_ca_certificate")
    if not endpoint or not ca:
        raise DeployError(
            f"the {settings.environment} stack has no cluster_endpoint output: its first "
            "`pulumi up` on Kubernetes has not run yet (README: first deploy)"
        )
    cluster = ClusterApi(str(endpoint), settings.namespace, token, ca_context(str(ca)))
    return KubernetesServing(
        cluster,
        settings.service_name,
        settings.public,
        lambda url: httpx.Client(base_url=url, timeout=TIMEOUT_S),
    )


def connect(environment: str) -> tuple[CloudPlatform, StateObject]:
    """The platform and the record store of `environment` (dev, staging or prod), on whichever
    platform its stack file names."""
    settings = load_file(environment)
    try:
        token = AccessToken()
    except exceptions.GoogleAuthError as error:
        raise DeployError(
            f"no Google credentials ({error}): in GitHub Actions run the auth step first; "
            "locally, `gcloud auth application-default login`"
        ) from error
    google = httpx.Client(auth=token, timeout=TIMEOUT_S)
    stack = PulumiStack(environment)
    metrics_api = settings.kubernetes_prometheus_url or CLOUD_MONITORING_API.format(
        project=settings.project
    )
    # Any other Prometheus is the team's own: reached without Google's token.
    metrics = httpx.Client(
        base_url=metrics_api,
        auth=None if settings.kubernetes_prometheus_url else token,
        timeout=TIMEOUT_S,
    )
    serving: Serving = (
        cloud_run_serving(settings, google)
        if settings.platform == "cloudrun"
        else kubernetes_serving(settings, stack.outputs(), token)
    )
    platform = CloudPlatform(
        settings=settings,
        stack=stack,
        serving=serving,
        windows=PrometheusWindows(metrics, where=settings.cluster_matcher),
        switch=StorageObject(google, settings.model_bucket_name, settings.shadow_switch_name),
        event_store=BigQueryEvents(
            google, settings.project, settings.events_dataset, settings.region
        ),
    )
    return platform, state_object(settings, google)
