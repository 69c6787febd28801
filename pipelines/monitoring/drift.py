"""Has the traffic moved away from the training data? Per feature and for the score: a chi-square
test of the window's counts against the reference's in the same bins, the population stability
index of the two, and Holm's correction across the features.

Binned tests because the reference holds counts, not training rows (service/reference.py). A
bin test with the reference's own counts is a two-sample test, so its false-alarm rate holds
for any window size; the stability index then keeps a significant but negligible shift (which
any large window finds) from raising an alert.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2_contingency

from environments.monitoring_policy import MonitoringPolicy
from pipelines.monitoring.profile import count
from service.features import Column
from service.reference import BinnedCounts, TrainingReference

# Added to every bin's count before the stability index takes logarithms (an empty bin would
# make it infinite).
SMOOTHING = 0.5


@dataclass(frozen=True)
class Drift:
    """One feature's (or the score's) shares per bin in the reference and in the window."""

    name: str
    bins: list[str]
    reference: list[float]
    current: list[float]
    psi: float
    p_value: float
    drifted: bool


def psi(reference: npt.NDArray[np.int64], current: npt.NDArray[np.int64]) -> float:
    """Population stability index: sum over bins of (cur - ref) * ln(cur / ref), in shares."""
    ref = (reference + SMOOTHING) / (reference + SMOOTHING).sum()
    cur = (current + SMOOTHING) / (current + SMOOTHING).sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def chi_square_p(reference: npt.NDArray[np.int64], current: npt.NDArray[np.int64]) -> float:
    """p-value of "both samples come from one distribution over these bins"."""
    used = (reference + current) > 0
    if used.sum() < 2 or current.sum() == 0:
        return 1.0
    table = np.vstack([reference[used], current[used]])
    return float(chi2_contingency(table, correction=False).pvalue)  # pyright: ignore[reportAttributeAccessIssue]


def holm(p_values: list[float], alpha: float) -> list[bool]:
    """Which hypotheses Holm's step-down procedure rejects: the chance of any false rejection
    stays below `alpha` however the tests depend on each other."""
    rejected = [False] * len(p_values)
    for rank, index in enumerate(np.argsort(p_values)):
        if p_values[index] > alpha / (len(p_values) - rank):
            break
        rejected[index] = True
    return rejected


def _labels(bins: BinnedCounts) -> list[str]:
    if bins.categories:
        return list(bins.categories)
    edges = [f"{edge:.4g}" for edge in bins.edges]
    return [f"< {edges[0]}" if edges else "all"] + [f"≥ {low}" for low in edges]


def _compare(bins: BinnedCounts, values: Column) -> Drift:
    reference = np.asarray(bins.counts, dtype=np.int64)
    current = count(bins, values)
    shares = current / max(int(current.sum()), 1)
    return Drift(
        bins.name, _labels(bins), (reference / reference.sum()).tolist(), shares.tolist(),
        psi(reference, current), chi_square_p(reference, current), drifted=False,
    )  # fmt: skip


def feature_drift(
    reference: TrainingReference, columns: Mapping[str, Column], policy: MonitoringPolicy
) -> list[Drift]:
    """Each feature, drifted when Holm's correction keeps it at the false-alarm rate and its
    stability index reaches `min_psi`."""
    compared = [_compare(bins, columns[bins.name]) for bins in reference.features]
    significant = holm([d.p_value for d in compared], policy.false_alarm_rate)
    return [
        replace(d, drifted=s and d.psi >= policy.min_psi)
        for d, s in zip(compared, significant, strict=True)
    ]


def score_drift(
    reference: TrainingReference, scores: npt.NDArray[np.float64], policy: MonitoringPolicy
) -> Drift:
    """The model's scores against its scores on held-out training data."""
    drift = _compare(reference.scores, scores)
    return replace(
        drift, drifted=drift.p_value < policy.false_alarm_rate and drift.psi >= policy.min_psi
    )
