"""What monitoring watches in an environment, when it raises an alert, and when a retrain may
follow: one schema, read from local.yaml (`monitoring:`) or the stack file's `monitor*` and
`retrain*` keys, whose defaults Pulumi.yaml declares (tested), as for the rollout policy.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from environments.rollout_policy import PolicyError, read_section
from environments.stack_file import ENVIRONMENTS_DIR

# What a monitoring run can find; the retraining policy names which of them start a retrain.
Signal = Literal[
    "feature_drift", "score_drift", "low_confidence", "estimated_performance", "performance"
]
SIGNALS: tuple[Signal, ...] = (
    "feature_drift", "score_drift", "low_confidence", "estimated_performance", "performance"
)  # fmt: skip


# The metrics the monitoring job writes (pipelines/monitoring/cloud_metrics.py) and the alert
# policies read (infra/monitoring.py).
METRIC_PREFIX = "custom.googleapis.com/ml_monitoring/"
# 1 when a signal is raised, 0 when not: what the alert policy fires on.
SIGNAL_METRIC = METRIC_PREFIX + "signal"
# Predictions in the window: the alert policy also fires when the job stops reporting.
PREDICTIONS_METRIC = METRIC_PREFIX + "predictions"
PSI_METRIC = METRIC_PREFIX + "feature_psi"
FIGURE_METRIC = METRIC_PREFIX + "figure"


def promql_name(metric_type: str) -> str:
    """The metric's PromQL name: the first `/` becomes `:`, every other `.` and `/` an `_`.
    https://cloud.google.com/monitoring/promql/promql-mapping"""
    domain, path = metric_type.split("/", 1)
    return f"{domain.replace('.', '_')}:{path.replace('/', '_').replace('.', '_')}"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrainingPolicy(_Frozen):
    """Which signals start a retrain, how much new labelled data it needs, and how often."""

    triggers: list[Signal] = ["feature_drift", "estimated_performance", "performance"]
    # Hours of labelled predictions a retrain learns from (longer than the monitoring window:
    # labels arrive late, and a model needs more rows than a drift test).
    window_hours: Annotated[float, Field(gt=0)] = 720
    min_labelled_rows: Annotated[int, Field(ge=100)] = 5000
    min_labelled_frauds: Annotated[int, Field(ge=10)] = 100
    cooldown_hours: Annotated[float, Field(ge=0)] = 72
    max_per_week: Annotated[int, Field(ge=1)] = 2
    # The newest labelled rows, kept from training for the gates against the champion.
    evaluation_share: Annotated[float, Field(gt=0, lt=1)] = 0.3


class MonitoringPolicy(_Frozen):
    """The window a run reads, and the thresholds of each signal."""

    window_hours: Annotated[float, Field(gt=0)] = 24
    min_predictions: Annotated[int, Field(ge=100)] = 1000
    # Probability that a run on undrifted traffic reports feature drift (all features together,
    # Holm's correction) or score drift.
    false_alarm_rate: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    # ... and drift counts only when it is also this large (population stability index).
    min_psi: Annotated[float, Field(gt=0)] = 0.1
    # Low-confidence predictions: alert when surely more than this many times the reference rate.
    max_low_confidence_ratio: Annotated[float, Field(gt=1)] = 2.0
    # Recall and precision (estimated before labels, measured after): alert when surely lower
    # than the model card's figure by more than this.
    max_recall_drop: Annotated[float, Field(gt=0, lt=1)] = 0.1
    max_precision_drop: Annotated[float, Field(gt=0, lt=1)] = 0.1
    # Calibration: alert when observed frauds / expected frauds is surely outside [1/r, r].
    max_calibration_ratio: Annotated[float, Field(gt=1)] = 1.5
    # Labelled predictions needed before measured performance is judged.
    min_labelled: Annotated[int, Field(ge=10)] = 500
    retraining: RetrainingPolicy = RetrainingPolicy()


STACK_KEYS: dict[str, tuple[str, ...]] = {
    "monitorWindowHours": ("window_hours",),
    "monitorMinPredictions": ("min_predictions",),
    "monitorFalseAlarmRate": ("false_alarm_rate",),
    "monitorMinPsi": ("min_psi",),
    "monitorMaxLowConfidenceRatio": ("max_low_confidence_ratio",),
    "monitorMaxRecallDrop": ("max_recall_drop",),
    "monitorMaxPrecisionDrop": ("max_precision_drop",),
    "monitorMaxCalibrationRatio": ("max_calibration_ratio",),
    "monitorMinLabelled": ("min_labelled",),
    "retrainTriggers": ("retraining", "triggers"),
    "retrainWindowHours": ("retraining", "window_hours"),
    "retrainMinLabelledRows": ("retraining", "min_labelled_rows"),
    "retrainMinLabelledFrauds": ("retraining", "min_labelled_frauds"),
    "retrainCooldownHours": ("retraining", "cooldown_hours"),
    "retrainMaxPerWeek": ("retraining", "max_per_week"),
    "retrainEvaluationShare": ("retraining", "evaluation_share"),
}


def load_monitoring(environment: str, root: Path = ENVIRONMENTS_DIR) -> MonitoringPolicy:
    """The monitoring policy of `environment` ("local", "dev", "staging", "prod")."""
    path, section = read_section(environment, "monitoring", STACK_KEYS, root)
    try:
        return MonitoringPolicy.model_validate(section)
    except ValidationError as error:
        raise PolicyError(f"invalid monitoring policy in {path}:\n{error}") from error
