"""The environment's stack: reads settings and the release state, builds every component, exports.

The release state comes from this stack's own last `release` output (a StackReference to itself),
so it survives between CI runs with nothing committed; RELEASE_* variables ask for one transition.
"""

import os
from collections.abc import Mapping
from typing import Any

import pulumi

from infra import config
from infra.identity import Identities, IdentityArgs
from infra.jobs import RetrainingJob, RetrainingJobArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.release import ReleaseError, ReleaseRequest, ReleaseState, next_state
from infra.service import CloudRunService, CloudRunServiceArgs
from infra.storage import ModelBucket, ModelBucketArgs

RELEASE_OUTPUT = "release"


def previous_release() -> pulumi.Output[Any]:
    """This stack's last exported release state (None before the first release)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    return pulumi.StackReference(f"{pulumi.get_stack()}-previous", stack_name=name).get_output(
        RELEASE_OUTPUT
    )


def resolve_release(
    previous: Mapping[str, Any] | None,
    request: ReleaseRequest | None,
    settings: config.StackSettings,
) -> ReleaseState:
    """Apply the request; warn when settings changed that only a new revision can carry."""
    if request and request.image and not request.image.startswith(f"{settings.registry}/"):
        raise ReleaseError(
            f"RELEASE_IMAGE {request.image} is not in {settings.registry}, the registry of "
            f"environments/Pulumi.{settings.environment}.yaml: promote the digest built in CI"
        )
    state = next_state(
        ReleaseState.from_output(previous) if previous else None,
        request,
        settings.service_name,
        settings.revision_spec(),
    )
    if request is None and dict(state.latest.spec) != settings.revision_spec():
        pulumi.log.warn(
            f"revision settings in environments/Pulumi.{settings.environment}.yaml differ from "
            f"those of {state.latest.name}; they take effect with the next release "
            "(a plain `pulumi up` never replaces a revision or moves traffic)"
        )
    return state


def deploy(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The whole environment; `environ` carries any RELEASE_* request. Returns the exports."""
    settings = config.load()
    request = ReleaseRequest.from_environ(environ)
    release = previous_release().apply(
        lambda previous: resolve_release(previous, request, settings)
    )

    models = ModelBucket("models", ModelBucketArgs(settings))
    identities = Identities("identity", IdentityArgs(settings, models.bucket.name))
    service = CloudRunService(
        "app",
        CloudRunServiceArgs(settings, release, identities.service_account.email),
        opts=pulumi.ResourceOptions(depends_on=[identities]),
    )
    Monitoring("monitoring", MonitoringArgs(settings, service.service.name, service.url))
    if settings.job_image:
        RetrainingJob(
            "retraining",
            RetrainingJobArgs(settings, identities.job_account.email, models.bucket.name),
            opts=pulumi.ResourceOptions(depends_on=[identities]),
        )

    outputs: dict[str, Any] = {
        RELEASE_OUTPUT: release.apply(lambda state: state.as_output()),
        "environment": settings.environment,
        "project": settings.project,
        "region": settings.region,
        "service_name": service.service.name,
        "service_url": service.url,
        "candidate_url": service.candidate_url,
        "stable_revision": release.apply(lambda state: state.stable.name),
        "candidate_revision": release.apply(
            lambda state: state.candidate.name if state.candidate else None
        ),
        "traffic": release.apply(lambda state: state.split().as_dict()),
        "registry": settings.registry,
        "model_bucket": models.bucket.name,
        "runtime_service_account": identities.service_account.email,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
