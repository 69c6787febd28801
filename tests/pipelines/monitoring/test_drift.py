"""The drift tests: quiet on unshifted traffic at the stated rate, loud on shifted traffic."""

import itertools

import numpy as np
import pytest

from environments.monitoring_policy import MonitoringPolicy
from pipelines.data import DataSpec
from pipelines.monitoring.drift import chi_square_p, feature_drift, holm, psi, score_drift
from tests.pipelines.monitoring.conftest import Monitored

RATE = 0.05


def test_holm_rejects_what_the_step_down_procedure_says() -> None:
    """Sorted p-values against alpha/m, alpha/(m-1), ...; the first one above stops it."""
    assert holm([0.001, 0.04, 0.012, 0.5], 0.05) == [True, False, True, False]
    assert holm([0.03, 0.04], 0.05) == [False, False], "0.03 > 0.05/2: nothing rejected"
    assert holm([0.02, 0.04], 0.05) == [True, True], "0.02 <= 0.05/2, then 0.04 <= 0.05/1"
    assert not holm([], 0.05)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    reference = np.array([100, 100, 100, 100])
    assert psi(reference, reference * 3) == pytest.approx(0.0, abs=1e-12)
    small, large = (
        psi(reference, np.array([90, 110, 100, 100])),
        psi(reference, np.array([10, 190, 100, 100])),
    )
    assert 0 < small < 0.02 < 0.5 < large


def test_the_chi_square_test_ignores_bins_neither_sample_uses() -> None:
    assert chi_square_p(np.array([50, 50, 0]), np.array([48, 52, 0])) > 0.5
    assert chi_square_p(np.array([50, 50, 0]), np.array([0, 0, 0])) == 1.0
    assert chi_square_p(np.array([500, 500]), np.array([300, 700])) < 1e-10


def test_unshifted_traffic_raises_drift_at_most_at_the_stated_rate(monitored: Monitored) -> None:
    """By simulation: 150 windows drawn like the training data. The effect-size floor is set
    to nothing, so the tests' own false-alarm rate is what is measured (features together,
    by Holm's correction; the score alone)."""
    policy = MonitoringPolicy(false_alarm_rate=RATE, min_psi=1e-9)
    reference = monitored.metadata.reference
    assert reference is not None
    features = scores = 0
    runs = 150
    for seed in range(1000, 1000 + runs):
        window = monitored.window(DataSpec(n_rows=1500, seed=seed), labelled=False)
        features += any(d.drifted for d in feature_drift(reference, window.columns, policy))
        scores += score_drift(reference, window.scores, policy).drifted
    # Binomial(150, 0.05): 95% of runs stay under 13 alarms; an uncorrected test over nine
    # features would raise about 30% of the time (45).
    assert features <= 14, f"{features} of {runs} unshifted windows raised feature drift"
    assert scores <= 14, f"{scores} of {runs} unshifted windows raised score drift"
    assert features + scores > 0, "a test that never fires at 5% is not measuring anything"


@pytest.mark.parametrize(
    ("spec", "drifted"),
    [
        (DataSpec(n_rows=1500, seed=5, amount_scale=1.8), {"amount"}),
        (DataSpec(n_rows=1500, seed=5, online_share=0.5), {"channel"}),
        (DataSpec(n_rows=1500, seed=5, night_share=0.3), {"hour"}),
    ],
)
def test_a_shifted_feature_is_named_and_the_others_are_not(
    monitored: Monitored, spec: DataSpec, drifted: set[str]
) -> None:
    reference = monitored.metadata.reference
    assert reference is not None
    window = monitored.window(spec, labelled=False)
    found = feature_drift(reference, window.columns, MonitoringPolicy())
    assert {d.name for d in found if d.drifted} == drifted
    assert all(sum(d.current) == pytest.approx(1) for d in found)


def test_concept_drift_leaves_inputs_and_scores_where_they_were(monitored: Monitored) -> None:
    """Only labels move: no input test can see it (the performance signal must)."""
    reference = monitored.metadata.reference
    assert reference is not None
    window = monitored.window(DataSpec(n_rows=3000, seed=5, concept_shift=1.0))
    policy = MonitoringPolicy()
    assert not any(d.drifted for d in feature_drift(reference, window.columns, policy))
    assert not score_drift(reference, window.scores, policy).drifted


def test_every_feature_and_the_score_have_bins_with_counts(monitored: Monitored) -> None:
    reference = monitored.metadata.reference
    assert reference is not None
    for bins in itertools.chain(reference.features, [reference.scores]):
        assert sum(bins.counts) > 0, bins.name
        assert len(bins.counts) >= 2, bins.name
