"""No regression against the champion: the candidate's AUC may not be significantly lower."""

import numpy as np
import numpy.typing as npt

from environments.model_gates import RegressionGate
from pipelines.evaluation.delong import compare_aucs
from pipelines.evaluation.verdict import GateResult


def regression_gate(
    labels: npt.NDArray[np.bool_],
    candidate: npt.NDArray[np.float64],
    champion: npt.NDArray[np.float64] | None,
    gate: RegressionGate,
) -> GateResult:
    thresholds = {"alpha": gate.alpha, "max_auc_drop": gate.max_auc_drop}
    if champion is None:
        return GateResult(
            "regression", True, "no champion yet: nothing to regress from", {}, thresholds
        )
    test = compare_aucs(labels, candidate, champion, gate.alpha)
    figures = {
        "candidate_auc": test.candidate_auc,
        "champion_auc": test.champion_auc,
        "auc_difference": test.difference,
        "standard_error": test.standard_error,
        "upper_bound": test.upper_bound,
        "p_value": test.p_value,
    }
    confidence = f"{1 - gate.alpha:.0%}"
    if test.upper_bound < -gate.max_auc_drop:
        reason = (
            f"ROC-AUC {test.candidate_auc:.4f} vs the champion's {test.champion_auc:.4f}: lower "
            f"by at least {-test.upper_bound:.4f} with {confidence} confidence "
            f"(DeLong, p={test.p_value:.3g})"
        )
        return GateResult("regression", False, reason, figures, thresholds)
    reason = (
        f"ROC-AUC {test.candidate_auc:.4f} vs {test.champion_auc:.4f}: no significant drop "
        f"(DeLong, {confidence} upper bound of the difference {test.upper_bound:+.4f})"
    )
    return GateResult("regression", True, reason, figures, thresholds)
