"""The Cloud Run v2 service: one template (the newest revision), traffic for every release state.

Revisions are named explicitly and never rebuilt: the template comes from the release state's
newest revision and the spec recorded with it (infra/revision.py), so every run reproduces it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import pulumi
from pulumi_gcp import cloudrunv2

from environments.stack_settings import INGRESS, StackSettings
from environments.traffic import CANDIDATE_TAG
from infra.release import ReleaseState, Revision
from infra.revision import APP_CONTAINER, COLLECTOR_CONTAINER, Collector, Probe

COLLECTOR_HEALTH_PORT = 13133


@dataclass(frozen=True)
class CloudRunServiceArgs:
    """The environment and its release state (from the last run plus any request)."""

    settings: StackSettings
    release: pulumi.Output[ReleaseState]


class _Timing(TypedDict):
    period_seconds: int
    timeout_seconds: int
    failure_threshold: int


def _timing(probe: Probe) -> _Timing:
    """The fields startup and liveness probes share (their Args types differ only by name)."""
    return _Timing(
        period_seconds=probe.period_seconds,
        timeout_seconds=probe.timeout_seconds,
        failure_threshold=probe.failure_threshold,
    )


def collector(spec: Collector) -> cloudrunv2.ServiceTemplateContainerArgs:
    """The Managed Service for Prometheus sidecar with its default RunMonitoring config: scrape
    the app's port 8080 at /metrics every 30 s, started after the app, probed on its own health
    port. Source: github.com/GoogleCloudPlatform/run-gmp-sidecar (confgenerator/config.go,
    DefaultRunMonitoringConfig; run-service-simple.yaml)."""
    return cloudrunv2.ServiceTemplateContainerArgs(
        name=COLLECTOR_CONTAINER,
        image=spec.image,
        depends_ons=[APP_CONTAINER],
        resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(
            limits={"cpu": spec.cpu, "memory": spec.memory}
        ),
        liveness_probe=cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
            http_get=cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(
                path="/liveness", port=COLLECTOR_HEALTH_PORT
            ),
            period_seconds=30,
            timeout_seconds=30,
        ),
    )


def template(revision: Revision) -> cloudrunv2.ServiceTemplateArgs:
    """The revision's template, from its recorded spec alone: re-sent byte for byte on every run."""
    spec = revision.spec
    env = [
        cloudrunv2.ServiceTemplateContainerEnvArgs(name=name, value=value)
        for name, value in sorted(spec.env.items())  # the engine's round trip sorts keys
    ] + [
        cloudrunv2.ServiceTemplateContainerEnvArgs(
            name=name,
            value_source=cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                secret_key_ref=cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                    secret=secret, version=version
                )
            ),
        )
        for name, (secret, version) in sorted(spec.secret_env.items())
    ]
    sidecars = [collector(spec.collector)] if spec.collector else []
    return cloudrunv2.ServiceTemplateArgs(
        revision=revision.name,
        service_account=spec.service_account,
        max_instance_request_concurrency=spec.concurrency,
        timeout=f"{spec.timeout_seconds}s",
        labels=spec.labels,
        containers=[
            cloudrunv2.ServiceTemplateContainerArgs(
                # Named only beside a sidecar (which names what it waits for): a revision
                # recorded without one keeps the template it was created with.
                name=APP_CONTAINER if sidecars else None,
                image=revision.image,
                ports=cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=spec.port),
                envs=env,
                resources=cloudrunv2.ServiceTemplateContainerResourcesArgs(
                    limits={"cpu": spec.cpu, "memory": spec.memory},
                    cpu_idle=spec.cpu_idle,
                    startup_cpu_boost=spec.startup_cpu_boost,
                ),
                startup_probe=cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
                    http_get=cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(
                        path=spec.startup_probe.path, port=spec.port
                    ),
                    **_timing(spec.startup_probe),
                ),
                liveness_probe=cloudrunv2.ServiceTemplateContainerLivenessProbeArgs(
                    http_get=cloudrunv2.ServiceTemplateContainerLivenessProbeHttpGetArgs(
                        path=spec.liveness_probe.path, port=spec.port
                    ),
                    **_timing(spec.liveness_probe),
                ),
            ),
            *sidecars,
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
            template=args.release.apply(lambda state: template(state.latest)),
            traffics=args.release.apply(traffic),
            opts=child,
        )
        # A public service admits everyone; a private one admits its own runtime identity,
        # which mirrors shadow traffic from the stable revision to the candidate's tagged URL.
        cloudrunv2.ServiceIamMember(
            f"{name}-public-invoker" if settings.public else f"{name}-runtime-invoker",
            project=settings.project,
            location=settings.region,
            name=self.service.name,
            role="roles/run.invoker",
            member="allUsers"
            if settings.public
            else f"serviceAccount:{settings.runtime_account_email}",
            opts=child,
        )
        self.url = self.service.uri
        self.candidate_url = self.service.traffic_statuses.apply(
            lambda statuses: _tagged_uri(statuses, CANDIDATE_TAG)
        )
        self.register_outputs({"url": self.url, "candidate_url": self.candidate_url})
