"""The rollout policy of an environment, read from environments/ (one schema for every platform).

Local runs read `environments/local.yaml`; cloud environments read the rollout keys of the Pulumi
stack file `environments/Pulumi.<env>.yaml`, so the controller and the stack share one source.
The models' defaults are Pulumi.yaml's declared ones (tested), so a key left out means the same
thing to every reader.
"""

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from environments.declared import ContractError
from environments.stack_file import ENVIRONMENTS_DIR, read_stack_file


class PolicyError(ValueError):
    """The policy file is missing or invalid; the message names the file and the field."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorRateGate(_Frozen):
    """Sequential candidate-vs-stable error test and an absolute error-rate SLO."""

    false_alarm_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    max_error_rate: Annotated[float, Field(gt=0, le=1)] = 0.01


class LatencyGate(_Frozen):
    """p99 SLO and the largest slowdown tolerated against the stable revision."""

    max_p99_ms: Annotated[float, Field(gt=0)] = 500
    max_ratio: Annotated[float, Field(ge=1)] = 1.5
    min_difference_ms: Annotated[float, Field(ge=0)] = 25


class ScoreGate(_Frozen):
    """How far the candidate's score distribution may drift from stable's on the same traffic."""

    max_ks_distance: Annotated[float, Field(gt=0, lt=1)] = 0.1
    false_alarm_rate_per_check: Annotated[float, Field(gt=0, lt=0.5)] = 1e-4
    min_predictions: Annotated[int, Field(ge=1)] = 100


class ShadowPhase(_Frozen):
    """Mirrored traffic before any user meets the candidate: how much, and the paired gate.

    Each mirrored prediction pairs the candidate's answer with stable's to the same request, so
    the gate asks per request "did it fail, did its log-odds move more than max_logit_difference,
    did its decision flip" and tests each rate sequentially against its bound. Log-odds, because
    fraud scores crowd near zero: 0.001 against 0.03 is a different model, 0.30 against 0.33
    is not. (Measured on the default model: two honest retrains differ by more than 2 on 11% of
    predictions and flip 2% of decisions; a model trained on shuffled labels, on 78% and 97%.)
    """

    requests: Annotated[int, Field(ge=0)] = 0  # 0: no shadow phase
    sample_rate: Annotated[float, Field(gt=0, le=1)] = 1.0
    max_seconds: Annotated[float, Field(gt=0)] = 300
    # The stable revision answered every mirrored request, so a healthy candidate fails almost
    # none: a bound well below the SLO catches a 5% error rate in ~400 requests (simulated: 99%).
    max_failure_rate: Annotated[float, Field(gt=0, lt=1)] = 0.005
    max_logit_difference: Annotated[float, Field(gt=0, le=20)] = 2.0
    max_shifted_rate: Annotated[float, Field(gt=0, lt=1)] = 0.25
    max_flip_rate: Annotated[float, Field(gt=0, lt=1)] = 0.1
    false_alarm_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.01


class Gates(_Frozen):
    """Thresholds of every gate."""

    error_rate: ErrorRateGate = ErrorRateGate()
    latency: LatencyGate = LatencyGate()
    scores: ScoreGate = ScoreGate()


class RolloutPolicy(_Frozen):
    """Steps, timing and gate thresholds of one environment's canary rollouts."""

    steps: Annotated[list[int], Field(min_length=1)]
    bake_seconds: Annotated[float, Field(gt=0)]
    check_interval_seconds: Annotated[float, Field(gt=0)]
    min_requests: Annotated[int, Field(ge=1)]
    max_extension_seconds: Annotated[float, Field(ge=0)] = 900
    on_insufficient_data: Literal["fail", "pass"] = "fail"
    gates: Gates = Gates()
    shadow: ShadowPhase = ShadowPhase()

    @field_validator("steps")
    @classmethod
    def _ascending_percentages(cls, steps: list[int]) -> list[int]:
        if any(not 0 < step < 100 for step in steps):
            raise ValueError(f"every step must be a percentage between 1 and 99, got {steps}")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError(f"steps must be strictly ascending, got {steps}")
        return steps


def policy_file(environment: str, root: Path = ENVIRONMENTS_DIR) -> Path:
    return root / ("local.yaml" if environment == "local" else f"Pulumi.{environment}.yaml")


# The flat keys of the rollout policy in environments/Pulumi.<env>.yaml, and where each sits in the
# policy: Pulumi's project config declares only strings, integers, booleans and arrays, not objects.
STACK_KEYS: dict[str, tuple[str, ...]] = {
    "rolloutSteps": ("steps",),
    "rolloutBakeSeconds": ("bake_seconds",),
    "rolloutCheckIntervalSeconds": ("check_interval_seconds",),
    "rolloutMinRequests": ("min_requests",),
    "rolloutMaxExtensionSeconds": ("max_extension_seconds",),
    "rolloutOnInsufficientData": ("on_insufficient_data",),
    "gateErrorFalseAlarmRate": ("gates", "error_rate", "false_alarm_rate"),
    "sloMaxErrorRate": ("gates", "error_rate", "max_error_rate"),
    "sloMaxP99Ms": ("gates", "latency", "max_p99_ms"),
    "gateLatencyMaxRatio": ("gates", "latency", "max_ratio"),
    "gateLatencyMinDifferenceMs": ("gates", "latency", "min_difference_ms"),
    "gateScoresFalseAlarmRatePerCheck": ("gates", "scores", "false_alarm_rate_per_check"),
    "gateScoresMaxKsDistance": ("gates", "scores", "max_ks_distance"),
    "gateScoresMinPredictions": ("gates", "scores", "min_predictions"),
    "rolloutShadowRequests": ("shadow", "requests"),
    "rolloutShadowSampleRate": ("shadow", "sample_rate"),
    "rolloutShadowMaxSeconds": ("shadow", "max_seconds"),
    "gateShadowMaxFailureRate": ("shadow", "max_failure_rate"),
    "gateShadowMaxLogitDifference": ("shadow", "max_logit_difference"),
    "gateShadowMaxShiftedRate": ("shadow", "max_shifted_rate"),
    "gateShadowMaxFlipRate": ("shadow", "max_flip_rate"),
    "gateShadowFalseAlarmRate": ("shadow", "false_alarm_rate"),
}


def nest_stack_keys(
    values: Mapping[str, Any], keys: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """The nested policy document that the flat stack keys present in `values` describe."""
    nested: dict[str, Any] = {}
    for key, path in (STACK_KEYS if keys is None else keys).items():
        if values.get(key) is None:
            continue
        section = nested
        for part in path[:-1]:
            section = section.setdefault(part, {})
        section[path[-1]] = values[key]
    return nested


def read_section(
    environment: str, name: str, keys: Mapping[str, tuple[str, ...]], root: Path
) -> tuple[Path, dict[str, Any]]:
    """The `name` section of local.yaml, or the stack file's flat `keys` nested as one: where
    it was read, and the document to validate."""
    if environment != "local":
        try:
            stack = read_stack_file(environment, root)
        except ContractError as error:
            raise PolicyError(str(error)) from error
        return stack.path, nest_stack_keys(stack.values, keys)
    path = policy_file(environment, root)
    if not path.is_file():
        raise PolicyError(f"no policy file {path} for environment {environment!r}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise PolicyError(f"{path} is not valid YAML: {error}") from error
    section = document.get(name) if isinstance(document, dict) else None
    if section is None:
        raise PolicyError(f"{path} has no `{name}` section")
    return path, section


def load_policy(environment: str, root: Path = ENVIRONMENTS_DIR) -> RolloutPolicy:
    """The policy of `environment` ("local", "dev", "staging", "prod")."""
    path, section = read_section(environment, "rollout", STACK_KEYS, root)
    try:
        return RolloutPolicy.model_validate(section)
    except ValidationError as error:
        raise PolicyError(f"invalid rollout policy in {path}:\n{error}") from error
