"""The offline model gates' thresholds (environments/model_gates.yaml), typed and validated."""

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from environments.declared import ContractError
from environments.stack_file import ENVIRONMENTS_DIR

GATES_FILE = "model_gates.yaml"
Share = Annotated[float, Field(ge=0, le=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvaluationData(_Frozen):
    """The held-out rows every gate is measured on."""

    seed: int
    rows: Annotated[int, Field(ge=1_000)]


class QualityGate(_Frozen):
    """Floors at the decision threshold, and a ceiling on calibration error."""

    min_roc_auc: Share
    min_average_precision: Share
    min_recall_at_threshold: Share
    max_calibration_error: Share


class RegressionGate(_Frozen):
    """DeLong's one-sided test against the champion."""

    alpha: Annotated[float, Field(gt=0, lt=0.5)]
    max_auc_drop: Share


class FairnessGate(_Frozen):
    """Gaps between groups, and each group's own recall."""

    max_equalized_odds_difference: Share
    max_demographic_parity_difference: Share
    min_group_recall: Share


class BehaviourGate(_Frozen):
    """Directional, invariance and perturbation limits."""

    rows: Annotated[int, Field(ge=10)]
    min_directional_share: Share
    max_invariance_shift: Share
    max_perturbation_shift: Share


class LatencyGate(_Frozen):
    """Budgets for the model call, in milliseconds."""

    max_ms_one_row: Annotated[float, Field(gt=0)]
    max_ms_hundred_rows: Annotated[float, Field(gt=0)]


class ModelGates(_Frozen):
    """Every offline gate's thresholds, and the data they are measured on."""

    evaluation: EvaluationData
    quality: QualityGate
    regression: RegressionGate
    fairness: FairnessGate
    behaviour: BehaviourGate
    latency: LatencyGate


class GatesConfigError(ContractError):
    """The gates file is missing or invalid; the message names the file and each key."""


def load_gates(path: Path = ENVIRONMENTS_DIR / GATES_FILE) -> ModelGates:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise GatesConfigError(f"cannot read the model gates file {path}: {error}") from error
    except yaml.YAMLError as error:
        raise GatesConfigError(f"{path} is not valid YAML: {error}") from error
    try:
        return ModelGates.model_validate(document)
    except ValidationError as error:
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise GatesConfigError(f"invalid model gates in {path}:\n{problems}") from None
