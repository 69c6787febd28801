"""A/B statistics against known answers and by simulation."""

import math

import numpy as np
import pytest

from pipelines.experiments.ab_test import (
    always_valid_p_values,
    arm_rate,
    compare,
    sample_ratio,
    users_needed,
)

ALPHA = 0.05


def one_each(outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return outcomes.astype(float), np.ones(len(outcomes))


def band(rate: float, trials: int) -> float:
    """Four standard errors of a simulated rejection rate."""
    return 4 * math.sqrt(rate * (1 - rate) / trials)


def test_with_one_prediction_per_user_it_is_the_two_proportion_test() -> None:
    a = arm_rate(*one_each(np.array([1] * 45 + [0] * 55)))
    b = arm_rate(*one_each(np.array([1] * 60 + [0] * 40)))
    assert (a.rate, b.rate) == (0.45, 0.60)
    # unpooled two-proportion z with the sample variance's n - 1
    se = math.sqrt(0.45 * 0.55 / 99 + 0.6 * 0.4 / 99)
    result = compare(a, b, ALPHA)
    assert result.z == pytest.approx(0.15 / se)
    assert result.p_value == pytest.approx(0.0330, abs=5e-4)
    assert result.interval[0] == pytest.approx(0.15 - 1.959964 * se)


def test_the_delta_method_variance_matches_a_bootstrap_over_users() -> None:
    """Users differ: some are always right, some often wrong; per-prediction variance would be
    too small, resampling whole users gives the truth."""
    rng = np.random.default_rng(3)
    labelled = rng.integers(1, 20, 400).astype(float)
    skill = rng.beta(4, 1, 400)
    correct = rng.binomial(labelled.astype(int), skill).astype(float)
    variance = arm_rate(correct, labelled).variance
    picks = rng.integers(0, 400, (4000, 400))
    boot = correct[picks].sum(axis=1) / labelled[picks].sum(axis=1)
    assert variance == pytest.approx(float(np.var(boot)), rel=0.12)
    naive = (correct.sum() / labelled.sum()) * (1 - correct.sum() / labelled.sum()) / labelled.sum()
    assert variance > 1.5 * naive, "clustering by user widens the interval"


def test_an_aa_test_rejects_at_the_stated_rate() -> None:
    rng = np.random.default_rng(5)
    trials = 3000
    rejected = sum(
        compare(
            arm_rate(*one_each(rng.random(800) < 0.9)),
            arm_rate(*one_each(rng.random(800) < 0.9)),
            ALPHA,
        ).p_value
        < ALPHA
        for _ in range(trials)
    )
    assert abs(rejected / trials - ALPHA) < band(ALPHA, trials)


def test_power_at_the_calculated_size_is_the_planned_power() -> None:
    n = users_needed(0.9, 0.03, ALPHA, 0.8, allocation=0.5)
    rng = np.random.default_rng(6)
    trials = 1500
    hits = sum(
        compare(
            arm_rate(*one_each(rng.random(n // 2) < 0.9)),
            arm_rate(*one_each(rng.random(n // 2) < 0.93)),
            ALPHA,
        ).p_value
        < ALPHA
        for _ in range(trials)
    )
    assert abs(hits / trials - 0.8) < band(0.8, trials)


def test_the_sample_size_of_a_textbook_case() -> None:
    """50% vs 60%, alpha 0.05, power 0.8: 385 per arm (unpooled), 770 in all."""
    assert users_needed(0.5, 0.1, 0.05, 0.8, 0.5) == 770
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\)"):
        users_needed(0.95, 0.1, 0.05, 0.8, 0.5)


def test_peeking_with_the_always_valid_test_keeps_the_false_positive_rate() -> None:
    """Twenty looks at an A/A test: stopping at the first fixed-horizon p < alpha fires far
    more often than alpha; the mixture SPRT's running p-value stays under it."""
    rng = np.random.default_rng(7)
    trials, looks, per_look = 400, 20, 100
    peeking = always_valid = 0
    for _ in range(trials):
        a = rng.random(looks * per_look) < 0.9
        b = rng.random(looks * per_look) < 0.9
        arms = [
            (arm_rate(*one_each(a[: k * per_look])), arm_rate(*one_each(b[: k * per_look])))
            for k in range(1, looks + 1)
        ]
        peeking += any(compare(x, y, ALPHA).p_value < ALPHA for x, y in arms)
        always_valid += always_valid_p_values(arms, tau=0.03)[-1] < ALPHA
    assert peeking / trials > 2 * ALPHA
    assert always_valid / trials <= ALPHA + band(ALPHA, trials)


def test_the_always_valid_test_finds_a_real_effect() -> None:
    rng = np.random.default_rng(8)
    a = rng.random(6000) < 0.9
    b = rng.random(6000) < 0.94
    arms = [(arm_rate(*one_each(a[:k])), arm_rate(*one_each(b[:k]))) for k in range(500, 6001, 500)]
    p = always_valid_p_values(arms, tau=0.03)
    assert p == sorted(p, reverse=True), "a running minimum"
    assert p[-1] < ALPHA


def test_a_skewed_split_is_a_sample_ratio_mismatch() -> None:
    assert sample_ratio(5300, 4700, 0.5).mismatch
    assert not sample_ratio(5030, 4970, 0.5).mismatch
    assert not sample_ratio(7000, 3000, 0.3).mismatch
    assert sample_ratio(7000, 3000, 0.5).observed_share == 0.3
