"""DeLong's test for two correlated ROC-AUCs, the field's standard for "is the new model worse".

Both models score the same rows, so their AUCs are correlated; DeLong, DeLong & Clarke-Pearson
(1988) estimate the covariance from each row's structural components. The components come from
midranks (Sun & Xu, 2014), O(n log n) instead of comparing every positive with every negative.
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm, rankdata

Scores = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AucComparison:
    """Candidate minus champion AUC, its standard error, and a one-sided confidence bound."""

    candidate_auc: float
    champion_auc: float
    difference: float
    standard_error: float
    upper_bound: float  # the difference is below this with probability 1 - alpha
    p_value: float  # one-sided, of "the candidate ranks no worse than the champion"


def structural_components(
    labels: npt.NDArray[np.bool_], scores: Scores
) -> tuple[float, Scores, Scores]:
    """AUC and DeLong's V10 (one per positive) and V01 (one per negative) components.

    V10[i] is the share of negatives that positive i outscores (ties count half); V01[j] the
    share of positives that outscore negative j. Their means are both the AUC.
    """
    positives, negatives = scores[labels], scores[~labels]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        raise ValueError("an AUC needs at least one positive and one negative row")
    all_ranks = rankdata(np.concatenate([positives, negatives]))
    v10 = (all_ranks[:m] - rankdata(positives)) / n
    v01 = 1.0 - (all_ranks[m:] - rankdata(negatives)) / m
    return float(v10.mean()), v10, v01


def compare_aucs(
    labels: npt.NDArray[np.bool_], candidate: Scores, champion: Scores, alpha: float
) -> AucComparison:
    """Is the candidate's AUC lower than the champion's, on the same rows?"""
    auc_a, v10_a, v01_a = structural_components(labels, candidate)
    auc_b, v10_b, v01_b = structural_components(labels, champion)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    m, n = len(v10_a), len(v01_a)
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n
    se = math.sqrt(max(float(variance), 0.0))
    difference = auc_a - auc_b
    # With no variance (identical scores) the difference is exact: no drop, or a certain one.
    p_value = float(norm.cdf(difference / se)) if se else float(difference >= 0)
    return AucComparison(
        candidate_auc=auc_a,
        champion_auc=auc_b,
        difference=difference,
        standard_error=se,
        upper_bound=difference + float(norm.ppf(1 - alpha)) * se,
        p_value=p_value,
    )
