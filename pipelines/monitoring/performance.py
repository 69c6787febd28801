"""Is the model still as good as its model card says? Measured from feedback labels once they
arrive, estimated from the model's own calibrated confidence before they do.

The estimate is confidence-based performance estimation (CBPE, as NannyML calls it): the
reference calibration says how likely each scored transaction is to be fraud, so the expected
confusion matrix, hence recall and precision, follow without a label. It sees covariate shift
(the mix of transactions moves to where the model is less sure or less right) weeks before the
labels; it cannot see concept drift (the same inputs now mean something else), which only labels
reveal. Every figure carries an interval, and an alert needs the interval, not the point, to be
past the bound: at the stated false-alarm rate, split over the figures.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import chi2, norm

from environments.monitoring_policy import MonitoringPolicy
from pipelines.monitoring.profile import LOW_CONFIDENCE_MARGIN, expected_fraud
from service.metrics import low_confidence
from service.reference import TrainingReference

# Label draws behind an estimate's interval.
SIMULATIONS = 400


@dataclass(frozen=True)
class Figure:
    """A figure with its interval, the reference it is judged against, and the verdict."""

    name: str
    value: float
    low: float
    high: float
    reference: float
    degraded: bool
    why: str


def wilson(successes: float, trials: float, alpha: float) -> tuple[float, float]:
    """Two-sided (1 - 2 * alpha) Wilson score interval of a proportion."""
    if trials <= 0:
        return 0.0, 1.0
    z = float(norm.ppf(1 - alpha))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(max(centre - half, 0.0)), float(min(centre + half, 1.0))


def _below(
    name: str, value: float, interval: tuple[float, float], card: float, drop: float
) -> Figure:
    bound = card - drop
    degraded = interval[1] < bound
    why = (
        f"{name} {value:.3f} (upper bound {interval[1]:.3f}) is below the model card's "
        f"{card:.3f} by more than {drop}"
        if degraded
        else f"{name} {value:.3f} [{interval[0]:.3f}, {interval[1]:.3f}], model card {card:.3f}"
    )
    return Figure(name, value, interval[0], interval[1], card, degraded, why)


def measured(
    labels: npt.NDArray[np.bool_],
    decisions: npt.NDArray[np.bool_],
    expected: npt.NDArray[np.float64],
    card: dict[str, float],
    policy: MonitoringPolicy,
) -> list[Figure]:
    """Recall and precision at the served decisions, and calibration (observed frauds over the
    frauds the reference calibration expects), from labelled predictions."""
    alpha = policy.false_alarm_rate / 3
    caught, frauds, flagged = (
        float(np.sum(labels & decisions)), float(labels.sum()), float(decisions.sum())
    )  # fmt: skip
    figures = [
        _below("recall", caught / max(frauds, 1), wilson(caught, frauds, alpha),
               card["recall"], policy.max_recall_drop),
        _below("precision", caught / max(flagged, 1), wilson(caught, flagged, alpha),
               card["precision"], policy.max_precision_drop),
    ]  # fmt: skip
    # Observed frauds against the count the calibration expects: Garwood's exact Poisson
    # interval of the observed count, as a ratio.
    wanted, bound = max(float(expected.sum()), 1e-9), policy.max_calibration_ratio
    low = float(chi2.ppf(alpha, 2 * frauds) / 2) if frauds else 0.0
    high = float(chi2.ppf(1 - alpha, 2 * (frauds + 1)) / 2)
    ratio, interval = frauds / wanted, (low / wanted, high / wanted)
    off = interval[1] < 1 / bound or interval[0] > bound
    why = (
        f"observed/expected frauds {ratio:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]"
        + (f" is outside [1/{bound:g}, {bound:g}]: the scores no longer mean what they did" if off
           else "")
    )  # fmt: skip
    return [*figures, Figure("calibration", ratio, *interval, 1.0, off, why)]


def estimated(
    scores: npt.NDArray[np.float64],
    decisions: npt.NDArray[np.bool_],
    reference: TrainingReference,
    card: dict[str, float],
    policy: MonitoringPolicy,
    seed: int = 0,
) -> list[Figure]:
    """Recall and precision expected from the scores alone, with the spread of label draws
    the calibration allows (the interval the labels would fall in if it still holds)."""
    alpha = policy.false_alarm_rate / 2
    fraud = expected_fraud(reference.calibration, scores)
    draws = np.random.default_rng(seed).random((SIMULATIONS, len(scores))) < fraud
    caught = (draws & decisions).sum(axis=1)
    recalls = caught / np.maximum(draws.sum(axis=1), 1)
    precisions = caught / max(int(decisions.sum()), 1)
    expected_recall = float(fraud[decisions].sum() / max(float(fraud.sum()), 1e-9))
    expected_precision = float(fraud[decisions].sum() / max(int(decisions.sum()), 1))
    return [
        _below("estimated recall", expected_recall,
               _quantiles(recalls, alpha), card["recall"], policy.max_recall_drop),
        _below("estimated precision", expected_precision,
               _quantiles(precisions, alpha), card["precision"], policy.max_precision_drop),
    ]  # fmt: skip


def _quantiles(values: npt.NDArray[np.float64], alpha: float) -> tuple[float, float]:
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def low_confidence_rate(
    scores: npt.NDArray[np.float64],
    threshold: float,
    reference: TrainingReference,
    policy: MonitoringPolicy,
) -> Figure:
    """Scores near the threshold, as the service's counter counts them, against the reference's
    rate: more of them means traffic the model was not trained to separate."""
    unsure = float(np.sum(low_confidence(scores, threshold, LOW_CONFIDENCE_MARGIN)))
    rate, interval = (
        unsure / max(len(scores), 1),
        wilson(unsure, len(scores), policy.false_alarm_rate),
    )
    limit = reference.low_confidence_rate * policy.max_low_confidence_ratio
    high = interval[0] > limit
    why = f"low-confidence rate {rate:.4f} [{interval[0]:.4f}, {interval[1]:.4f}] vs the " + (
        f"reference's {reference.low_confidence_rate:.4f}"
        + (f": surely above {policy.max_low_confidence_ratio:g} times it" if high else "")
    )
    return Figure("low-confidence rate", rate, *interval, reference.low_confidence_rate, high, why)
