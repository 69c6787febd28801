"""What one Cloud Run revision is made of: everything its template holds, fixed when it is deployed.

Cloud Run refuses to re-send a revision name with a different template (409, "revision named ...
with different configuration already exists"), and a revision name is pinned from the recorded
release. So nothing in a template may come from today's settings or code: labels, probes, port,
CPU flags, identity, environment and secrets are all recorded with the revision, and a plain
`pulumi up`, a canary step, a promotion or a rollback re-sends exactly what was deployed.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from environments.stack_settings import StackSettings

CONTAINER_PORT = 8080
APP_CONTAINER = "app"
COLLECTOR_CONTAINER = "collector"
READINESS_PATH = "/readyz"
LIVENESS_PATH = "/healthz"
METRICS_PATH = "/metrics"


class Probe(BaseModel):
    """An HTTP probe on the container's port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    period_seconds: Annotated[int, Field(ge=1)]
    timeout_seconds: Annotated[int, Field(ge=1)]
    failure_threshold: Annotated[int, Field(ge=1)]


class Collector(BaseModel):
    """The metrics collector sidecar: Managed Service for Prometheus for Cloud Run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str
    # Sized explicitly (the policy pack asks every container to be): one target scraped every
    # 30 s needs little; a quarter-gigabyte leaves the app its own memory limit.
    cpu: str = "1"
    memory: str = "256Mi"


class RevisionSpec(BaseModel):
    """A revision's template, as recorded in the stack's `release` output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpu: str
    memory: str
    concurrency: Annotated[int, Field(ge=1)]
    timeout_seconds: Annotated[int, Field(ge=1)]
    service_account: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.iam\.gserviceaccount\.com$")]
    labels: dict[str, str]
    env: dict[str, str]
    secret_env: dict[str, tuple[str, str]]  # ENV_NAME -> (secret id, version)
    port: int = CONTAINER_PORT
    # The metrics collector beside the service; None in revisions recorded before it existed.
    collector: Collector | None = None
    cpu_idle: bool = True
    startup_cpu_boost: bool = True
    # Readiness includes a self-test prediction: no traffic before the model answers.
    startup_probe: Probe = Probe(
        path=READINESS_PATH, period_seconds=2, timeout_seconds=2, failure_threshold=60
    )
    liveness_probe: Probe = Probe(
        path=LIVENESS_PATH, period_seconds=15, timeout_seconds=3, failure_threshold=3
    )

    @property
    def secret_ids(self) -> frozenset[str]:
        """The Secret Manager secrets this revision reads at start-up."""
        return frozenset(secret for secret, _version in self.secret_env.values())

    def differences(self, other: "RevisionSpec") -> list[str]:
        """Names of the fields that differ, for a warning a person can act on."""
        mine, theirs = self.model_dump(), other.model_dump()
        return sorted(name for name in mine if mine[name] != theirs[name])


# Where the image holds the pinned challenger (service/Dockerfile), beside the champion.
CHALLENGER_DIR = "/app/challenger"


def container_env(settings: StackSettings, git_sha: str) -> dict[str, str]:
    """The service's environment (tests check it against the service's own Settings, so the
    program stays free of the service's code)."""
    env = {
        "ENVIRONMENT": settings.environment,
        "SERVICE_NAME": settings.service_name,
        "GIT_SHA": git_sha,
        "GOOGLE_CLOUD_PROJECT": settings.project,
        "LOG_LEVEL": settings.log_level,
        # Every revision polls the shadow switch; the controller turns mirroring on for one.
        "SHADOW_CONTROL": settings.shadow_switch,
    }
    if plan := settings.experiment:
        env |= {
            "EXPERIMENT_NAME": plan.name,
            "EXPERIMENT_KIND": plan.kind,
            "EXPERIMENT_SALT": settings.experiment_salt,
            "EXPERIMENT_ALLOCATION": str(plan.allocation),
            "EXPERIMENT_CHALLENGER_DIR": CHALLENGER_DIR,
        }
    return env


def build_spec(settings: StackSettings, git_sha: str) -> RevisionSpec:
    """What a revision deployed now, from commit `git_sha`, is made of."""
    return RevisionSpec(
        cpu=settings.cpu,
        memory=settings.memory,
        concurrency=settings.concurrency,
        timeout_seconds=settings.request_timeout_seconds,
        service_account=settings.runtime_account_email,
        labels=settings.label_map | {"git-sha": git_sha[:63]},
        env=container_env(settings, git_sha),
        secret_env=dict(sorted(settings.secret_refs.items())),
        # On Kubernetes, Managed Service for Prometheus scrapes the pods (a PodMonitoring).
        collector=Collector(image=settings.metrics_collector_image)
        if settings.platform == "cloudrun"
        else None,
        # The collector scrapes between requests too: with CPU only during requests its scrapes
        # fail and the rollout gates starve (instance-based billing, as its documentation advises).
        cpu_idle=False,
    )
