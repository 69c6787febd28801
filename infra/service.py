"""The Cloud Run v2 service: one template (the newest revision), traffic for every release state.

Revisions are named explicitly and never rebuilt: the template comes from the release state's
newest revision and the settings recorded with it, so a plain `pulumi up` reproduces it exactly.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2

from infra.config import INGRESS, StackSettings
from infra.release import ReleaseState, Revision
from pipelines.rollout.traffic import CANDIDATE_TAG
from service.settings import Settings

CONTAINER_PORT = 8080
READINESS_PATH = "/readyz"
LIVENESS_PATH = "/healthz"


@dataclass(frozen=True)
class CloudRunServiceArgs:
    """The environment, its release state (from the last run plus any request), its identity."""

    settings: StackSettings
    release: pulumi.Output[ReleaseState]
    service_account: pulumi.Input[str]


def container_env(settings: StackSettings, revision: Revision) -> dict[str, str]:
    """The service's environment, checked by the service's own Settings before anything deploys."""
    values = {
        "ENVIRONMENT": settings.environment,
        "SERVICE_NAME": settings.service_name,
        "GIT_SHA": revision.git_sha,
        "GOOGLE_CLOUD_PROJECT": settings.project,
        "LOG_LEVEL": str(revision.spec["log_level"]),
    }
    Settings.model_validate(values)  # raises what the container would refuse at start-up
    return values


def template(settings: StackSettings, revision: Revision, service_account: str) -> Any:
    """The revision template: image by digest, probes, sizing and env from `revision.spec`."""
    spec = revision.spec
    env = [
        cloudrunv2.ServiceTemplateContainerEnvArgs(name=name, value=value)
        for name, value in container_env(settings, revision).items()
    ] + [
        cloudrunv2.ServiceTemplateContainerEnvArgs(
            name=name,
            value_source=cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                secret_key_ref=cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                    secret=secret, version=version
                )
            ),
        )
        for name, (secret, version) in spec["secret_env"].items()
    ]
    return cloudrunv2.ServiceTemplateArgs(
        revision=revision.name,
        service_account=service_account,
        max_instance_request_concurrency=int(spec["concurrency"]),
        timeout=f"{int(spec['timeout_seconds'])}s",
        labels=settings.label_map | {"git-sha": revision.git_sha[:63]},
        containers=[
            cloudrunv2.ServiceTemplateContainerArgs(
                image=revision.image,
                ports=cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=CONTAINER_PORT),
                envs=env,
                resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(
                    limits={"cpu": str(spec["cpu"]), "memory": str(spec["memory"])},
                    cpu_idle=True,
                    startup_cpu_boost=True,
                ),
                # Readiness includes a self-test prediction: no traffic before the model answers.
                startup_probe=cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                    http_get=cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(
                        path=READINESS_PATH, port=CONTAINER_PORT
                    ),
                    period_seconds=2,
                    timeout_seconds=2,
                    failure_threshold=60,
                ),
                liveness_probe=cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                    http_get=cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(
                        path=LIVENESS_PATH, port=CONTAINER_PORT
                    ),
                    period_seconds=15,
                    timeout_seconds=3,
                    failure_threshold=3,
                ),
            )
        ],
    )


def traffic(state: ReleaseState) -> list[cloudrunv2.ServiceTrafficArgs]:
    """Every revision by name, never "latest": a new template alone moves no traffic."""
    return [
        cloudrunv2.ServiceTrafficArgs(
            type="TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION",
            revision=target.revision,
            percent=target.percent,
            tag=target.tag,
        )
        for target in state.split().targets
    ]


def _tagged_uri(statuses: Sequence[Any] | None, tag: str) -> str | None:
    for status in statuses or []:
        fields = status if isinstance(status, dict) else vars(status)
        if fields.get("tag") == tag:
            return fields.get("uri")
    return None


class CloudRunService(pulumi.ComponentResource):
    """The service, its invoker policy and the URLs the rollout controller talks to."""

    def __init__(
        self, name: str, args: CloudRunServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:CloudRunService", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.service = cloudrunv2.Service(
            f"{name}-service",
            name=settings.service_name,
            project=settings.project,
            location=settings.region,
            ingress=INGRESS[settings.ingress],
            labels=settings.label_map,
            deletion_protection=settings.deletion_protection,
            # Service-level scaling applies at once and is not part of a revision.
            scaling=cloudrunv2.ServiceScalingArgs(
                min_instance_count=settings.min_instances,
                max_instance_count=settings.max_instances,
            ),
            template=pulumi.Output.all(args.release, args.service_account).apply(
                lambda values: template(settings, values[0].latest, values[1])
            ),
            traffics=args.release.apply(traffic),
            opts=child,
        )
        if settings.public:
            cloudrunv2.ServiceIamMember(
                f"{name}-public-invoker",
                project=settings.project,
                location=settings.region,
                name=self.service.name,
                role="roles/run.invoker",
                member="allUsers",
                opts=child,
            )
        self.url = self.service.uri
        self.candidate_url = self.service.traffic_statuses.apply(
            lambda statuses: _tagged_uri(statuses, CANDIDATE_TAG)
        )
        self.register_outputs({"url": self.url, "candidate_url": self.candidate_url})
