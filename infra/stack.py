"""The environment's stack: reads settings and the release state, builds every component, exports.

The release state comes from this stack's own last `release` output (a StackReference to itself),
so it survives between CI runs with nothing committed; RELEASE_* variables ask for one transition.
"""

import os
from collections.abc import Mapping
from typing import Any

import pulumi

from environments.stack_settings import IMAGE_BY_DIGEST, StackSettings
from infra import config
from infra.cloud_run import CloudRunService, CloudRunServiceArgs
from infra.events import Events, EventsArgs
from infra.identity import Identities, IdentityArgs
from infra.jobs import RetrainingJob, RetrainingJobArgs
from infra.kubernetes.service import KubernetesService, KubernetesServiceArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.release import ReleaseError, ReleaseRequest, ReleaseState, next_state
from infra.revision import build_spec
from infra.storage import ModelBucket, ModelBucketArgs

RELEASE_OUTPUT = "release"


def previous_release() -> pulumi.Output[Any]:
    """This stack's last exported release state (None before the first release)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    return pulumi.StackReference(f"{pulumi.get_stack()}-previous", stack_name=name).get_output(
        RELEASE_OUTPUT
    )


def _check_registry(image: str, settings: StackSettings, source: str) -> None:
    """An image must come from this environment's registry, by digest, wherever it was read."""
    if not (image.startswith(f"{settings.registry}/") and IMAGE_BY_DIGEST.match(image)):
        raise ReleaseError(
            f"{source} {image} is not an image by digest in {settings.registry}, the registry of "
            f"environments/Pulumi.{settings.environment}.yaml: promote the digest built in CI"
        )


def resolve_release(
    previous: Mapping[str, Any] | None,
    request: ReleaseRequest | None,
    settings: StackSettings,
) -> ReleaseState:
    """Apply the request; warn when settings changed that only a new revision can carry.

    The recorded release is checked like a request: state written by anyone who could reach the
    state bucket must not be able to name the image the next `up` or rollback deploys.
    """
    if request and request.image:
        _check_registry(request.image, settings, "RELEASE_IMAGE")
    if request and request.faults and not settings.allow_drills:
        raise ReleaseError(
            f"RELEASE_DRILL_FAULTS in {settings.environment}: injected faults are released only "
            "where the environment file sets allowDrills: true (dev)"
        )
    recorded = ReleaseState.from_output(previous) if previous else None
    for revision in recorded.serving if recorded else ():
        _check_registry(revision.image, settings, f"the recorded image of {revision.name},")
    state = next_state(
        recorded,
        request,
        settings.service_name,
        lambda sha: build_spec(settings, sha),
        settings.rollout.steps,
    )
    latest = state.latest
    changed = build_spec(settings, latest.git_sha).differences(latest.spec)
    if request is None and changed:
        pulumi.log.warn(
            f"{', '.join(changed)} in environments/Pulumi.{settings.environment}.yaml (or the "
            f"program) differ from what {latest.name} was deployed with; they take effect with "
            "the next release (a plain `pulumi up` never changes a revision or moves traffic)"
        )
    return state


def cloud_run(
    settings: StackSettings, release: pulumi.Output[ReleaseState], opts: pulumi.ResourceOptions
) -> dict[str, Any]:
    """The Cloud Run service and its alerts and dashboard; the outputs that say where it is."""
    service = CloudRunService("app", CloudRunServiceArgs(settings, release), opts=opts)
    watch = Monitoring("monitoring", MonitoringArgs(settings, service.service.name, service.url))
    return {
        "service_name": service.service.name,
        "service_url": service.url,
        "candidate_url": service.candidate_url,
        "dashboard_url": watch.dashboard_url,
    }


def kubernetes(
    settings: StackSettings, release: pulumi.Output[ReleaseState], opts: pulumi.ResourceOptions
) -> dict[str, Any]:
    """The service on GKE; the outputs the rollout controller reaches the cluster with."""
    service = KubernetesService("app", KubernetesServiceArgs(settings, release), opts=opts)
    watch = Monitoring("monitoring", MonitoringArgs(settings, settings.service_name))
    return {
        "service_name": settings.service_name,
        "namespace": settings.namespace,
        "cluster_endpoint": service.endpoint,
        "cluster_ca_certificate": service.ca_certificate,
        "route": service.route_urn.apply(lambda _: settings.service_name),
        "dashboard_url": watch.dashboard_url,
    }


def deploy(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The whole environment; `environ` carries any RELEASE_* request. Returns the exports."""
    settings = config.load()
    request = ReleaseRequest.from_environ(environ)
    release = previous_release().apply(
        lambda previous: resolve_release(previous, request, settings)
    )

    models = ModelBucket("models", ModelBucketArgs(settings))
    identities = Identities("identity", IdentityArgs(settings, models.bucket.name, release))
    after_identities = pulumi.ResourceOptions(depends_on=[identities])
    served = (
        cloud_run(settings, release, after_identities)
        if settings.platform == "cloudrun"
        else kubernetes(settings, release, after_identities)
    )
    events = Events("events", EventsArgs(settings, identities.job_account))
    if settings.job_image:
        RetrainingJob(
            "retraining", RetrainingJobArgs(settings, identities.job_account), opts=after_identities
        )

    outputs: dict[str, Any] = {
        RELEASE_OUTPUT: release.apply(lambda state: state.as_output()),
        "environment": settings.environment,
        "platform": settings.platform,
        "project": settings.project,
        "region": settings.region,
        **served,
        "stable_revision": release.apply(lambda state: state.stable.name),
        "candidate_revision": release.apply(
            lambda state: state.candidate.name if state.candidate else None
        ),
        "traffic": release.apply(lambda state: state.split().as_dict()),
        "registry": settings.registry,
        "model_bucket": models.bucket.name,
        "events_dataset": events.dataset.dataset_id,
        "runtime_service_account": identities.service_account,
        "secrets_in_use": identities.secrets,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
