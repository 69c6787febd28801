"""Everything a rollout in one cloud environment talks to, built from its stack file alone."""

import httpx
from google.auth import exceptions

from environments.stack_settings import StackSettings, load_file, state_bucket_name
from pipelines.experiments.events import BigQueryEvents
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloudrun.google_auth import AccessToken, IdentityToken
from pipelines.rollout.platforms.cloudrun.metrics import CLOUD_MONITORING_API, PrometheusWindows
from pipelines.rollout.platforms.cloudrun.platform import CloudRunPlatform
from pipelines.rollout.platforms.cloudrun.pulumi_stack import PulumiStack
from pipelines.rollout.platforms.cloudrun.service_api import ServiceApi
from pipelines.rollout.platforms.cloudrun.state_object import StateObject, StorageObject

TIMEOUT_S = 30.0


def state_object(settings: StackSettings, http: httpx.Client) -> StateObject:
    """The rollout record of this environment's service, in its state bucket."""
    bucket = state_bucket_name(settings.project, settings.environment)
    return StateObject(http, bucket, f"rollouts/{settings.service_name}/rollout-state.json")


def connect(environment: str) -> tuple[CloudRunPlatform, StateObject]:
    """The platform and the record store of `environment` (dev, staging or prod)."""
    settings = load_file(environment)
    try:
        token = AccessToken()
    except exceptions.GoogleAuthError as error:
        raise DeployError(
            f"no Google credentials ({error}): in GitHub Actions run the auth step first; "
            "locally, `gcloud auth application-default login`"
        ) from error
    google = httpx.Client(auth=token, timeout=TIMEOUT_S)
    monitoring = httpx.Client(
        base_url=CLOUD_MONITORING_API.format(project=settings.project),
        auth=token,
        timeout=TIMEOUT_S,
    )
    identities: dict[str, IdentityToken] = {}

    def client_for(url: str, audience: str) -> httpx.Client:
        """A public service needs no token; a private one an ID token for its own URL."""
        if settings.public:
            return httpx.Client(base_url=url, timeout=TIMEOUT_S)
        auth = identities.setdefault(audience, IdentityToken(audience))
        return httpx.Client(base_url=url, auth=auth, timeout=TIMEOUT_S)

    platform = CloudRunPlatform(
        settings=settings,
        stack=PulumiStack(environment),
        service=ServiceApi(google, settings.project, settings.region, settings.service_name),
        windows=PrometheusWindows(monitoring),
        client_for=client_for,
        switch=StorageObject(google, settings.model_bucket_name, settings.shadow_switch_name),
        event_store=BigQueryEvents(
            google, settings.project, settings.events_dataset, settings.region
        ),
    )
    return platform, state_object(settings, google)
