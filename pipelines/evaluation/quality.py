"""Quality at the model's own decision threshold, and the honesty of its probabilities."""

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score

from environments.model_gates import QualityGate
from pipelines.evaluation.verdict import GateResult

Labels = npt.NDArray[np.bool_]
Scores = npt.NDArray[np.float64]


def calibration_error(labels: Labels, scores: Scores, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between the mean score and the fraud
    rate in each of `bins` equal-width score bins."""
    index = np.minimum((scores * bins).astype(int), bins - 1)
    error = 0.0
    for b in np.unique(index):
        inside = index == b
        error += inside.mean() * abs(float(scores[inside].mean()) - float(labels[inside].mean()))
    return float(error)


def quality_figures(labels: Labels, scores: Scores, threshold: float) -> dict[str, float]:
    flagged = scores >= threshold
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "recall_at_threshold": float((flagged & labels).sum() / max(labels.sum(), 1)),
        "precision_at_threshold": float((flagged & labels).sum() / max(flagged.sum(), 1)),
        "calibration_error": calibration_error(labels, scores),
    }


def quality_gate(labels: Labels, scores: Scores, threshold: float, gate: QualityGate) -> GateResult:
    figures = quality_figures(labels, scores, threshold)
    floors = {
        "roc_auc": gate.min_roc_auc,
        "average_precision": gate.min_average_precision,
        "recall_at_threshold": gate.min_recall_at_threshold,
    }
    problems = [
        f"{k} {figures[k]:.3f} < {floor}" for k, floor in floors.items() if figures[k] < floor
    ]
    if figures["calibration_error"] > gate.max_calibration_error:
        problems.append(
            f"calibration_error {figures['calibration_error']:.3f} > {gate.max_calibration_error}"
        )
    thresholds = {f"min_{k}": v for k, v in floors.items()} | {
        "max_calibration_error": gate.max_calibration_error
    }
    reason = "; ".join(problems) or "every floor met"
    return GateResult("quality", not problems, reason, figures, thresholds)
