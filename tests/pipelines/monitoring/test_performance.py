"""Measured and estimated performance: intervals that cover, alarms only past the bound."""

import numpy as np
import pytest

from environments.monitoring_policy import MonitoringPolicy
from pipelines.data import DataSpec
from pipelines.monitoring.monitor import MonitorError, monitor
from pipelines.monitoring.performance import estimated, wilson
from tests.pipelines.monitoring.conftest import Monitored


def test_the_wilson_interval_covers_the_true_rate_as_often_as_it_says() -> None:
    """95% two-sided (alpha 0.025 per side) over 2,000 binomial draws of a rare rate."""
    rng = np.random.default_rng(3)
    true, trials = 0.03, 400
    covered = 0
    for successes in rng.binomial(trials, true, size=2000):
        low, high = wilson(float(successes), trials, 0.025)
        covered += low <= true <= high
    assert 0.93 <= covered / 2000 <= 0.975
    assert wilson(0, 0, 0.05) == (0.0, 1.0)


def test_the_estimate_before_labels_agrees_with_the_labels_on_unshifted_traffic(
    monitored: Monitored,
) -> None:
    """Confidence-based estimation: the measured recall and precision fall in the estimate's
    interval when the calibration still holds."""
    reference = monitored.metadata.reference
    assert reference is not None
    window = monitored.window(DataSpec(n_rows=6000, seed=41))
    assert window.labels is not None
    recall, precision = estimated(window.scores, window.decisions, reference,
                                  monitored.metadata.metrics, MonitoringPolicy())  # fmt: skip
    caught = float(np.sum(window.labels & window.decisions))
    assert recall.low <= caught / window.labels.sum() <= recall.high
    assert precision.low <= caught / window.decisions.sum() <= precision.high
    assert not recall.degraded
    assert not precision.degraded


def test_unshifted_traffic_raises_no_signal_at_the_stated_rate(monitored: Monitored) -> None:
    """By simulation, every signal at once: 60 windows like the training data, labelled."""
    policy = MonitoringPolicy(min_predictions=100, min_labelled=100)
    raised = []
    for seed in range(2000, 2060):
        window = monitored.window(DataSpec(n_rows=2000, seed=seed))
        raised += monitor(monitored.metadata, window, window, policy).raised
    assert len(raised) <= 3, raised  # stated: at most 1% per signal family per run


def test_concept_drift_is_caught_by_the_labels_and_not_before(monitored: Monitored) -> None:
    policy = MonitoringPolicy()
    window = monitored.window(DataSpec(n_rows=4000, seed=43, concept_shift=1.0))
    unlabelled = monitored.window(DataSpec(n_rows=4000, seed=43, concept_shift=1.0), False)
    before = monitor(monitored.metadata, unlabelled, unlabelled.newest(0), policy)
    assert before.raised == []
    performance = next(f for f in before.findings if f.signal == "performance")
    assert "0 labelled predictions so far (need 500)" in performance.reason
    after = monitor(monitored.metadata, window, window, policy)
    assert after.raised == ["performance"]
    recall = next(f for f in after.measured if f.name == "recall")
    assert recall.degraded
    assert recall.high < monitored.metadata.metrics["recall"] - 0.1


def test_covariate_drift_is_seen_before_any_label(monitored: Monitored) -> None:
    policy = MonitoringPolicy()
    unlabelled = monitored.window(DataSpec(n_rows=4000, seed=44, amount_scale=1.8), False)
    result = monitor(monitored.metadata, unlabelled, unlabelled.newest(0), policy)
    assert "feature_drift" in result.raised
    assert "amount" in next(f.reason for f in result.findings if f.signal == "feature_drift")


def test_too_little_traffic_is_said_not_judged(monitored: Monitored) -> None:
    window = monitored.window(DataSpec(n_rows=200, seed=45))
    result = monitor(monitored.metadata, window, window, MonitoringPolicy(min_predictions=1000))
    assert result.raised == []
    assert all(
        "only 200 predictions in the window (need 1000)" in f.reason for f in result.findings
    )


def test_a_model_without_a_training_reference_is_refused_with_the_fix(
    monitored: Monitored,
) -> None:
    old = monitored.metadata.model_copy(update={"reference": None})
    window = monitored.window(DataSpec(n_rows=200, seed=45))
    with pytest.raises(MonitorError, match=r"no training reference.*retrain it"):
        monitor(old, window, window, MonitoringPolicy())
