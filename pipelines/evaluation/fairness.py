"""Fairness across the data's group attribute, at the decision threshold (fairlearn)."""

from typing import Any

import numpy as np
import numpy.typing as npt
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    true_positive_rate,
)

from environments.model_gates import FairnessGate
from pipelines.evaluation.verdict import GateResult


def by_group(
    labels: npt.NDArray[np.bool_], flagged: npt.NDArray[np.bool_], groups: npt.NDArray[np.str_]
) -> dict[str, dict[str, float]]:
    """Recall, false-positive rate and flagged share of each group."""
    frame = MetricFrame(
        metrics={"recall": true_positive_rate, "false_positive_rate": false_positive_rate},
        y_true=labels,
        y_pred=flagged,
        sensitive_features=groups,
    )
    table: Any = frame.by_group  # a DataFrame: one row per group, one column per metric
    return {
        str(group): {
            "recall": float(table.loc[group, "recall"]),
            "false_positive_rate": float(table.loc[group, "false_positive_rate"]),
            "flagged_share": float(flagged[groups == group].mean()),
        }
        for group in table.index
    }


def fairness_gate(
    labels: npt.NDArray[np.bool_],
    scores: npt.NDArray[np.float64],
    threshold: float,
    groups: npt.NDArray[np.str_],
    gate: FairnessGate,
) -> GateResult:
    flagged = scores >= threshold
    groups_table = by_group(labels, flagged, groups)
    figures = (
        {
            "equalized_odds_difference": float(
                equalized_odds_difference(labels, flagged, sensitive_features=groups)
            ),
            "demographic_parity_difference": float(
                demographic_parity_difference(labels, flagged, sensitive_features=groups)
            ),
        }
        | {f"recall[{g}]": m["recall"] for g, m in groups_table.items()}
        | {f"false_positive_rate[{g}]": m["false_positive_rate"] for g, m in groups_table.items()}
    )
    problems = []
    if figures["equalized_odds_difference"] > gate.max_equalized_odds_difference:
        problems.append(
            f"equalized odds difference {figures['equalized_odds_difference']:.3f} > "
            f"{gate.max_equalized_odds_difference}"
        )
    if figures["demographic_parity_difference"] > gate.max_demographic_parity_difference:
        problems.append(
            f"demographic parity difference {figures['demographic_parity_difference']:.3f} > "
            f"{gate.max_demographic_parity_difference}"
        )
    low = {g: m["recall"] for g, m in groups_table.items() if m["recall"] < gate.min_group_recall}
    problems += [f"recall of group {g} {r:.3f} < {gate.min_group_recall}" for g, r in low.items()]
    thresholds = gate.model_dump()
    reason = "; ".join(problems) or f"within limits across {len(groups_table)} groups"
    return GateResult("fairness", not problems, reason, figures, thresholds)
