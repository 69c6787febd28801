"""The service's settings, read once from the environment (Cloud Run sets some, Pulumi the rest)."""

import os
from importlib import metadata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

Environment = Literal["development", "dev", "staging", "prod"]


def _package_version() -> str:
    try:
        return metadata.version("cloudrun-ml-rollouts")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class Settings(BaseSettings):
    """Every knob of the service; unknown variables are ignored, invalid ones stop the start-up."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    @classmethod
    def settings_customise_sources(  # pylint: disable=too-many-arguments,too-many-positional-arguments
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secrets may also come as files named after the setting in SECRETS_DIR: on GKE the
        Secret Manager add-on mounts them there (infra/kubernetes/objects.py), where Cloud Run
        hands them over as environment variables. The environment wins where both say."""
        directory = os.environ.get("SECRETS_DIR")
        files = (
            SecretsSettingsSource(settings_cls, secrets_dir=directory)
            if directory
            else file_secret_settings
        )
        return init_settings, env_settings, dotenv_settings, files

    ENVIRONMENT: Environment = "development"
    SERVICE_NAME: str = "fraud-scorer"
    SERVICE_VERSION: str = Field(default_factory=_package_version)
    GIT_SHA: str = "unknown"
    # Cloud Run sets K_REVISION; the local platform sets it to the revision it starts.
    K_REVISION: str = "local"
    GOOGLE_CLOUD_PROJECT: str | None = None

    MODEL_DIR: Path = Path("model")
    # Native libraries of compiled models, built where they run (`python -m service.native`; the
    # image builds them). Without one, a compiled model scores with treelite's predictor.
    NATIVE_MODEL_DIR: Path | None = None
    HOST: str = "127.0.0.1"
    PORT: Annotated[int, Field(ge=1, le=65_535)] = 8000

    # Hostile-input limits, checked before validation builds anything (service/body_limits.py).
    # BATCH_MAX_INSTANCES bounds every JSON array in a body, not only a batch's instances.
    BATCH_MAX_INSTANCES: Annotated[int, Field(ge=1, le=10_000)] = 1_000
    MAX_BODY_BYTES: Annotated[int, Field(ge=1_024, le=32 * 1024 * 1024)] = 1024 * 1024
    MAX_JSON_DEPTH: Annotated[int, Field(ge=3, le=64)] = 8
    MAX_OBJECT_KEYS: Annotated[int, Field(ge=16, le=10_000)] = 64
    # Slow clients: a request's head must arrive within HEADER_READ_TIMEOUT_S of its first byte
    # (or of the connection opening), its body within BODY_READ_TIMEOUT_S of the head; else 408.
    HEADER_READ_TIMEOUT_S: Annotated[float, Field(gt=0, le=300)] = 10.0
    BODY_READ_TIMEOUT_S: Annotated[float, Field(gt=0, le=300)] = 10.0
    # Scores whose log-odds lie within this distance of the threshold's are flagged low-confidence
    # (0.5 = odds within a factor of 1.65); log-odds keep the band sensible for a threshold of 0.04.
    LOW_CONFIDENCE_LOGIT_MARGIN: Annotated[float, Field(ge=0, le=5)] = 0.5
    # Concurrent requests are coalesced into one model call of at most this many rows; a wait of 0
    # batches only what queued up while the previous call ran, adding no latency when idle.
    MICROBATCH_MAX_ROWS: Annotated[int, Field(ge=1, le=10_000)] = 256
    MICROBATCH_MAX_WAIT_MS: Annotated[float, Field(ge=0, le=50)] = 0.0

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Cloud Run already writes a request log line per request; the app logs only failures and slow
    # requests by default, which also keeps ~0.1 ms of logging off every request.
    LOG_ALL_REQUESTS: bool = False
    SLOW_REQUEST_MS: Annotated[float, Field(gt=0)] = 500.0

    # Fault injection for rollback drills (service/faults.py); refused outside development, except
    # in a drill's revision (DRILL=true, which infra sets only where allowDrills is true) and never
    # in prod. FAULT_ERROR_RATE fails that share of single predictions with a 500.
    DRILL: bool = False
    FAULT_ERROR_RATE: Annotated[float, Field(ge=0, le=1)] = 0.0
    FAULT_LATENCY_MS: Annotated[float, Field(ge=0, le=60_000)] = 0.0
    FAULT_INVERT_SCORES: bool = False

    # Events (service/events.py): one JSON line per prediction and per feedback on stdout, which
    # Cloud Logging routes to BigQuery and the local analysis reads with DuckDB.
    EVENTS: bool = True
    # The key of the users' pseudonyms in events (X-User-Id is never recorded as sent). Outside
    # development it comes from Secret Manager (secretEnv) and an experiment needs it.
    USER_HASH_KEY: SecretStr | None = None
    # A/B experiment (service/experiments.py): this revision holds the champion (MODEL_DIR) and
    # the challenger, and serves each user one of them by a salted hash of X-User-Id.
    EXPERIMENT_NAME: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] | None = None
    EXPERIMENT_SALT: str = ""
    EXPERIMENT_ALLOCATION: Annotated[float, Field(gt=0, lt=1)] = 0.5
    EXPERIMENT_KIND: Literal["ab", "interleaving"] = "ab"
    EXPERIMENT_CHALLENGER_DIR: Path | None = None

    # Shadow traffic (service/shadow.py): where the switch lives that turns mirroring to a
    # candidate on, a file path or gs://bucket/object; unset, this revision never mirrors.
    SHADOW_CONTROL: str | None = None
    SHADOW_POLL_S: Annotated[float, Field(gt=0, le=300)] = 5.0
    # At most this many mirrored requests wait, and this many are in flight, each for at most
    # SHADOW_TIMEOUT_MS: what a hanging candidate can cost the serving revision, and no more.
    SHADOW_QUEUE_SIZE: Annotated[int, Field(ge=1, le=10_000)] = 256
    SHADOW_WORKERS: Annotated[int, Field(ge=1, le=256)] = 8
    SHADOW_TIMEOUT_MS: Annotated[float, Field(gt=0, le=60_000)] = 2_000.0

    @property
    def user_hash_key(self) -> bytes | None:
        """The pseudonym key; a fixed one in development, so local runs need no secret."""
        if self.USER_HASH_KEY is not None:
            return self.USER_HASH_KEY.get_secret_value().encode()
        return b"development" if self.ENVIRONMENT == "development" else None

    @model_validator(mode="after")
    def _complete_experiment(self) -> "Settings":
        """Half an experiment would serve one model while the events claim a test is running."""
        if self.EXPERIMENT_NAME is None:
            return self
        needs = {
            "EXPERIMENT_SALT (at least 8 characters)": len(self.EXPERIMENT_SALT) >= 8,
            "EXPERIMENT_CHALLENGER_DIR (the challenger's model folder)": (
                self.EXPERIMENT_CHALLENGER_DIR is not None
            ),
            "USER_HASH_KEY (from Secret Manager outside development)": (
                self.user_hash_key is not None
            ),
        }
        missing = [need for need, met in needs.items() if not met]
        if missing:
            raise ValueError(
                f"experiment {self.EXPERIMENT_NAME} needs {', '.join(missing)}; "
                "or unset EXPERIMENT_NAME"
            )
        return self

    @model_validator(mode="after")
    def _no_faults_outside_development(self) -> "Settings":
        """An injected fault must never reach a real environment, whatever a deploy sets."""
        faults = self.FAULT_ERROR_RATE or self.FAULT_LATENCY_MS or self.FAULT_INVERT_SCORES
        drill = self.DRILL and self.ENVIRONMENT != "prod"
        if faults and self.ENVIRONMENT != "development" and not drill:
            raise ValueError(
                f"fault injection (FAULT_*) is only allowed when ENVIRONMENT=development, or in a "
                f"drill outside prod, not {self.ENVIRONMENT}: unset the FAULT_ variables"
            )
        return self

    @model_validator(mode="after")
    def _traceable_outside_development(self) -> "Settings":
        """A deployed revision must name its commit, or no one can tell what is serving traffic."""
        if self.ENVIRONMENT != "development" and self.GIT_SHA == "unknown":
            raise ValueError(
                f"GIT_SHA must be set when ENVIRONMENT={self.ENVIRONMENT}: build the image with "
                "--build-arg GIT_SHA=$(git rev-parse HEAD)"
            )
        return self
