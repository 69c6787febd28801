"""An environment's settings: every key of its stack, typed and validated as one frozen object.

`parse` validates values however they were read: from pulumi.Config inside `pulumi up`
(infra/config.py), or from the stack file (`load_file`, for the policy pack, the bootstrap, the
controller and the tests), so every reader sees exactly what `pulumi up` sees.
"""

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from environments.declared import ContractError, declarations
from environments.experiment import ExperimentPlan
from environments.monitoring_policy import STACK_KEYS as MONITORING_KEYS
from environments.monitoring_policy import MonitoringPolicy
from environments.rollout_policy import STACK_KEYS, RolloutPolicy, nest_stack_keys
from environments.stack_file import ENVIRONMENTS_DIR, read_stack_file

Environment = Literal["dev", "staging", "prod"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)  # in the order a release takes
# Regions where Cloud Run services, jobs and Artifact Registry are all available.
REGIONS = frozenset(
    {
        "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2",
        "asia-northeast3", "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2",
        "australia-southeast1", "australia-southeast2", "europe-central2", "europe-north1",
        "europe-north2", "europe-southwest1", "europe-west1", "europe-west2", "europe-west3",
        "europe-west4", "europe-west6", "europe-west8", "europe-west9", "europe-west10",
        "europe-west12", "me-central1", "me-central2", "me-west1", "northamerica-northeast1",
        "northamerica-northeast2", "northamerica-south1", "southamerica-east1",
        "southamerica-west1", "us-central1", "us-east1", "us-east4", "us-east5", "us-south1",
        "us-west1", "us-west2", "us-west3", "us-west4",
    }
)  # fmt: skip
INGRESS = {
    "all": "INGRESS_TRAFFIC_ALL",
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
}
LABEL = re.compile(r"^[a-z][a-z0-9_-]{0,62}=[a-z0-9_-]{0,63}$")
SECRET_ENV = re.compile(
    r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<secret>[a-zA-Z0-9_-]+)(:(?P<version>\w+))?$"
)
# Google publishes the metrics collector by version tag (github.com/GoogleCloudPlatform/
# run-gmp-sidecar); Cloud Run pins the digest it resolves when it creates a revision.
COLLECTOR_RELEASES = re.compile(
    r"^us-docker\.pkg\.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/"
    r"cloud-run-gmp-sidecar(:[0-9]+\.[0-9]+\.[0-9]+|@sha256:[0-9a-f]{64})$"
)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Cloud Run runs only images it can pin: a tag is looked up once, a digest never changes.
IMAGE_BY_DIGEST = re.compile(
    r"^[a-z0-9-]+-docker\.pkg\.dev/[a-z][a-z0-9-]+/[^@\s]+@sha256:[0-9a-f]{64}$"
)
Platform = Literal["cloudrun", "kubernetes"]
# The context `gcloud container clusters get-credentials` writes: gke_<project>_<location>_<name>.
GKE_CONTEXT = re.compile(
    r"^gke_(?P<project>[a-z][a-z0-9-]+)_(?P<location>[a-z0-9-]+)_(?P<name>[a-z0-9-]+)$"
)
# Google's Gateway classes for GKE: an external managed load balancer for a public service, an
# internal regional one (reachable from the VPC only) otherwise.
PUBLIC_GATEWAY_CLASS = "gke-l7-global-external-managed"
INTERNAL_GATEWAY_CLASS = "gke-l7-rilb"


class ConfigError(ContractError):
    """The stack configuration is invalid; the message names each key and what to write instead."""


class StackSettings(BaseModel):
    """Everything that differs between dev, staging and prod, validated before any resource."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    environment: Environment
    platform: Platform
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    region: str
    service_name: Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$")]
    registry: Annotated[
        str, Field(pattern=r"^[a-z0-9-]+-docker\.pkg\.dev/[a-z][a-z0-9-]+/[a-z0-9-]+$")
    ]
    ingress: Literal["all", "internal", "internal-and-cloud-load-balancing"]
    public: bool
    cpu: Literal["1", "2", "4", "6", "8"]
    memory: Annotated[str, Field(pattern=r"^[1-9][0-9]*(Mi|Gi)$")]
    concurrency: Annotated[int, Field(ge=1, le=1000)]
    min_instances: Annotated[int, Field(ge=0, le=100)]
    max_instances: Annotated[int, Field(ge=1, le=1000)]
    request_timeout_seconds: Annotated[int, Field(ge=1, le=3600)]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    secret_env: tuple[str, ...]
    labels: tuple[str, ...]
    alert_emails: tuple[str, ...]
    deletion_protection: bool
    allow_drills: bool
    events_retention_days: Annotated[int, Field(ge=1, le=3650)]
    # Flat keys, as Pulumi's config types allow; `experiment` is them as one plan.
    experiment_name: Annotated[str, Field(pattern=r"^([a-z0-9][a-z0-9-]{0,62})?$")]
    experiment_kind: str
    experiment_salt: str
    experiment_allocation: float
    experiment_metric: str
    experiment_minimum_effect: float
    experiment_baseline: float
    experiment_alpha: float
    # A tag, not a digest: Google publishes the collector by version tag, and Cloud Run pins the
    # digest it resolves when a revision is created.
    metrics_collector_image: str
    job_image: str
    job_command: tuple[str, ...]
    job_schedule: Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]
    # Kubernetes only (platform: kubernetes); the defaults derive from the service's name.
    kubernetes_cluster: Literal["autopilot", "kubeconfig"]
    kubernetes_context: str
    kubernetes_namespace: Annotated[str, Field(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)?$")]
    kubernetes_gateway_class: Annotated[
        str, Field(pattern=r"^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)?$")
    ]
    kubernetes_prometheus_url: Annotated[str, Field(pattern=r"^(https?://[^\s?#]+[^\s?#/])?$")]
    rollout: RolloutPolicy
    monitoring: MonitoringPolicy

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in REGIONS:
            raise ValueError(
                f"{region!r} is not a Cloud Run region (e.g. europe-west1, us-central1)"
            )
        return region

    @field_validator("secret_env")
    @classmethod
    def _secret_refs(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        bad = [entry for entry in entries if not SECRET_ENV.match(entry)]
        if bad:
            raise ValueError(f"{bad} must look like ENV_NAME=secret-id or ENV_NAME=secret-id:3")
        return entries

    @field_validator("labels")
    @classmethod
    def _gcp_labels(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        bad = [entry for entry in entries if not LABEL.match(entry)]
        if bad:
            raise ValueError(f"{bad} must be key=value in lowercase letters, digits, _ and -")
        return entries

    @field_validator("alert_emails")
    @classmethod
    def _emails(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        bad = [entry for entry in entries if not EMAIL.match(entry)]
        if bad:
            raise ValueError(f"{bad} are not e-mail addresses")
        return entries

    @field_validator("job_image")
    @classmethod
    def _job_image_by_digest(cls, image: str) -> str:
        if image and not IMAGE_BY_DIGEST.match(image):
            raise ValueError(
                f"{image!r} must be empty (no retraining job) or an Artifact Registry image by "
                "digest: REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE@sha256:<64 hex>"
            )
        return image

    @model_validator(mode="after")
    def _coherent(self) -> "StackSettings":
        prefix = f"{self.service_name}-"
        foreign = [ref for ref, _ in self.secret_refs.values() if not ref.startswith(prefix)]
        if foreign:
            raise ValueError(
                f"secretEnv names secrets {sorted(foreign)}: the deployer may manage access only "
                f"to secrets whose id starts with {prefix!r} (infra/bootstrap/deployers.py); "
                "rename the secret"
            )
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"minInstances ({self.min_instances}) exceeds maxInstances ({self.max_instances})"
            )
        if not collector_image_allowed(self.metrics_collector_image, self.registry):
            raise ValueError(
                f"metricsCollectorImage {self.metrics_collector_image!r} must be a release of "
                "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/"
                "cloud-run-gmp-sidecar (a version tag such as :1.7.0, or a digest), or a copy in "
                f"{self.registry} by digest"
            )
        if self.allow_drills and self.environment == "prod":
            raise ValueError("allowDrills is true in prod: injected faults never reach prod users")
        if self.job_image and not self.job_command:
            raise ValueError("jobCommand is empty: say what the retraining job runs")
        if self.experiment_name:
            self._check_experiment()
        if self.kubernetes_cluster == "kubeconfig" and not GKE_CONTEXT.match(
            self.kubernetes_context
        ):
            raise ValueError(
                f"kubernetesContext {self.kubernetes_context!r} must name an existing GKE "
                "cluster's context as `gcloud container clusters get-credentials` writes it, "
                "gke_<project>_<location>_<cluster>: the workflows fetch that cluster's "
                "credentials by it (.github/actions/cluster-credentials)"
            )
        return self

    def _check_experiment(self) -> None:
        """A running experiment needs its plan to be valid, a salt, and the pseudonym key."""
        try:
            self.experiment  # noqa: B018  # validates the plan
        except ValidationError as error:
            problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in error.errors())
            raise ValueError(f"experiment {self.experiment_name}: {problems}") from None
        if len(self.experiment_salt) < 8:
            raise ValueError(
                f"experimentSalt must have at least 8 characters while {self.experiment_name} runs"
            )
        if "USER_HASH_KEY" not in self.secret_refs:
            raise ValueError(
                f"experiment {self.experiment_name} records users by a keyed hash: add "
                f"USER_HASH_KEY={self.service_name}-user-hash-key to secretEnv (a Secret Manager "
                "secret of 32 random bytes)"
            )

    @property
    def experiment(self) -> ExperimentPlan | None:
        """The running experiment's plan, or None."""
        if not self.experiment_name:
            return None
        return ExperimentPlan.model_validate({
            "name": self.experiment_name,
            "kind": self.experiment_kind,
            "metric": self.experiment_metric,
            "allocation": self.experiment_allocation,
            "alpha": self.experiment_alpha,
            "minimum_effect": self.experiment_minimum_effect,
            "baseline": self.experiment_baseline,
        })  # fmt: skip

    @property
    def namespace(self) -> str:
        """The Kubernetes namespace of the service's objects."""
        return self.kubernetes_namespace or self.service_name

    @property
    def gateway_class_name(self) -> str:
        """The Gateway API class: the setting, or the one `public` implies."""
        if self.kubernetes_gateway_class:
            return self.kubernetes_gateway_class
        return PUBLIC_GATEWAY_CLASS if self.public else INTERNAL_GATEWAY_CLASS

    @property
    def existing_cluster(self) -> dict[str, str] | None:
        """project, location and name of the existing GKE cluster (kubeconfig), else None."""
        match = GKE_CONTEXT.match(self.kubernetes_context)
        if self.kubernetes_cluster != "kubeconfig" or not match:
            return None
        return match.groupdict()

    @property
    def cluster_name(self) -> str:
        """The GKE Autopilot cluster the bootstrap creates (names have at most 40 characters)."""
        return f"{self.service_name[:31].rstrip('-')}-{self.environment}"

    @property
    def gke_cluster(self) -> str:
        """The name of the GKE cluster the service runs in, whichever made it."""
        existing = self.existing_cluster
        return existing["name"] if existing else self.cluster_name

    @property
    def cluster_matcher(self) -> str:
        """The PromQL label matcher of this environment's cluster in Managed Service for
        Prometheus, which labels every series with its cluster: environments that share a
        project may run revisions of the same name. Empty where there is no such label."""
        if self.platform != "kubernetes" or self.kubernetes_prometheus_url:
            return ""
        return f',cluster="{self.gke_cluster}"'

    @property
    def events_dataset(self) -> str:
        """The BigQuery dataset the log sink fills (infra/events.py); ids take no dashes."""
        return f"{self.service_name.replace('-', '_')}_events"

    @property
    def label_map(self) -> dict[str, str]:
        """The environment's labels plus the three every resource carries."""
        given = dict(entry.split("=", 1) for entry in self.labels)
        return given | {
            "environment": self.environment,
            "service": self.service_name,
            "managed-by": "pulumi",
        }

    @property
    def model_bucket_name(self) -> str:
        """The environment's model bucket (infra/storage.py creates it)."""
        return f"{self.project}-{self.environment}-models"

    @property
    def shadow_switch_name(self) -> str:
        """The object, in the model bucket, that turns shadow mirroring on (service/shadow.py)."""
        return f"shadow/{self.service_name}.json"

    @property
    def shadow_switch(self) -> str:
        return f"gs://{self.model_bucket_name}/{self.shadow_switch_name}"

    @property
    def model_registry(self) -> str:
        """The registry in that bucket, as `train --registry` and `pin --model` take it."""
        return f"gs://{self.model_bucket_name}/{MODEL_REGISTRY_PREFIX}"

    @property
    def secrets_provider(self) -> str:
        return secrets_provider(self.project, self.region, self.environment)

    @property
    def runtime_account_email(self) -> str:
        """The identity revisions run as; the bootstrap creates it (infra/bootstrap/runtime.py)."""
        return account_email(self.project, self.service_name, self.environment, "run")

    @property
    def job_account_email(self) -> str:
        """The identity the retraining job runs as; the bootstrap creates it too."""
        return account_email(self.project, self.service_name, self.environment, "job")

    @property
    def secret_refs(self) -> dict[str, tuple[str, str]]:
        """Environment variable name -> (Secret Manager secret id, version)."""
        refs: dict[str, tuple[str, str]] = {}
        for entry in self.secret_env:
            match = SECRET_ENV.match(entry)
            if match:
                refs[match["name"]] = (match["secret"], match["version"] or "latest")
        return refs


def collector_image_allowed(image: str, registry: str) -> bool:
    """Google's own release of the collector, or a copy in the environment's registry by digest."""
    return bool(
        COLLECTOR_RELEASES.match(image)
        or (IMAGE_BY_DIGEST.match(image) and image.startswith(f"{registry}/"))
    )


MODEL_REGISTRY_PREFIX = "models"
STATE_KEY = "state"


def state_key_ring_name(environment: str) -> str:
    """Per environment, so environments that share a project keep their keys apart."""
    return f"pulumi-{environment}"


def secrets_provider(project: str, region: str, environment: str) -> str:
    """The Cloud KMS key (the bootstrap creates it) that encrypts the secrets in the stack's
    state: keyless, unlike a passphrase, and readable only by this environment's GitHub jobs."""
    ring = state_key_ring_name(environment)
    return f"gcpkms://projects/{project}/locations/{region}/keyRings/{ring}/cryptoKeys/{STATE_KEY}"


def state_bucket_name(project: str, environment: str) -> str:
    """The environment's own bucket (the bootstrap creates it): Pulumi state and rollout records."""
    return f"{project}-{environment}-pulumi-state"


def account_id(service_name: str, environment: str, role: str) -> str:
    """Unique per environment even when environments share a project (6-30 characters)."""
    return f"{service_name[:17]}-{environment[:4]}-{role}"


def account_email(project: str, service_name: str, environment: str, role: str) -> str:
    return f"{account_id(service_name, environment, role)}@{project}.iam.gserviceaccount.com"


# Every project-namespace key the program reads; Pulumi.yaml declares exactly these (tested).
SETTINGS_KEYS = tuple(
    to_camel(name)
    for name in StackSettings.model_fields  # pylint: disable=not-an-iterable  # a dict at run time
    if name not in {"environment", "project", "region", "rollout", "monitoring"}
)
# Each nested section of the settings, and the flat stack keys that spell it.
SECTIONS = {"rollout": STACK_KEYS, "monitoring": MONITORING_KEYS}
ALL_KEYS = SETTINGS_KEYS + tuple(STACK_KEYS) + tuple(MONITORING_KEYS)


def _stack_key(location: tuple[int | str, ...]) -> str:
    """The key as written in the stack file, for a pydantic error location."""
    if location and location[0] in SECTIONS:
        flat = {path: key for key, path in SECTIONS[str(location[0])].items()}
        return flat.get(tuple(str(part) for part in location[1:]), ".".join(map(str, location)))
    if location[:1] in {("project",), ("region",)}:
        return f"gcp:{location[0]}"
    return ".".join(map(str, location)) or "(settings)"


def parse(environment: str, project: Any, region: Any, values: Mapping[str, Any]) -> StackSettings:
    """Validate one environment's values (project-namespace keys without their prefix)."""
    unknown = sorted(set(values) - set(ALL_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown keys {unknown} in environments/Pulumi.{environment}.yaml: "
            "Pulumi.yaml declares every key the program reads"
        )
    document = {key: values[key] for key in SETTINGS_KEYS if values.get(key) is not None}
    document |= {"environment": environment, "project": project, "region": region}
    for section, keys in SECTIONS.items():
        document[section] = nest_stack_keys(values, keys)
    try:
        return StackSettings.model_validate(document)
    except ValidationError as error:
        problems = [
            f"  {_stack_key(problem['loc'])}: {problem['msg']}" for problem in error.errors()
        ]
        raise ConfigError(
            f"invalid configuration for stack {environment!r} "
            f"(environments/Pulumi.{environment}.yaml):\n" + "\n".join(problems)
        ) from None


def load_file(environment: str, root: Path = ENVIRONMENTS_DIR) -> StackSettings:
    """An environment's settings straight from its stack file, as `pulumi up` would read them."""
    try:
        stack = read_stack_file(environment, root)
    except ContractError as error:
        raise ConfigError(str(error)) from None
    return parse(environment, stack.project, stack.region, stack.values)


def list_keys() -> frozenset[str]:
    """The keys Pulumi.yaml declares as arrays: pulumi.Config hands them over as JSON."""
    return declarations().list_keys
