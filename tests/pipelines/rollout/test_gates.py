import math

import numpy as np
import pytest

from environments.rollout_policy import (
    ErrorRateGate,
    Gates,
    LatencyGate,
    RolloutPolicy,
    ScoreGate,
    ShadowPhase,
)
from pipelines.rollout.calibration import simulated_failure_rate, simulated_shadow_failure_rate
from pipelines.rollout.gates import (
    Verdict,
    combined,
    error_rate_gate,
    evaluate,
    latency_gate,
    score_gate,
    shadow_gate,
)
from pipelines.rollout.window import ShadowCounts, Snapshot

GATE = ErrorRateGate(false_alarm_rate=0.01, max_error_rate=0.05)
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf]
SCORE_BOUNDS = [0.01, 0.05, 0.1, 0.3, 0.5, 1.0, math.inf]


def latency(values_ms: list[float]) -> dict[float, float]:
    seconds = np.asarray(values_ms) / 1000
    return {b: float(np.sum(seconds <= b)) for b in BOUNDS}


def scores(values: np.ndarray) -> dict[float, float]:
    return {b: float(np.sum(values <= b)) for b in SCORE_BOUNDS}


def window(
    requests: float, errors: float = 0, ms: float = 5.0, score_values: np.ndarray | None = None
) -> Snapshot:
    score_values = np.full(int(requests), 0.02) if score_values is None else score_values
    return Snapshot(requests, errors, latency([ms] * int(requests)), scores(score_values))


class TestErrorRate:
    def test_no_errors_is_a_pass_with_enough_requests(self) -> None:
        assert error_rate_gate(window(100), window(900), GATE, 30).verdict is Verdict.PASS

    def test_too_few_requests_is_insufficient(self) -> None:
        assert (
            error_rate_gate(window(10), window(90), GATE, 30).verdict is Verdict.INSUFFICIENT_DATA
        )

    def test_errors_concentrated_on_the_candidate_fail(self) -> None:
        """Three errors, all on a 5% canary, are overwhelming evidence."""
        result = error_rate_gate(window(20, 3), window(380, 0), GATE, 30)
        assert result.verdict is Verdict.FAIL
        assert "sequential test" in result.reason

    def test_errors_in_proportion_to_traffic_pass(self) -> None:
        result = error_rate_gate(window(100, 1), window(900, 9), GATE, 30)
        assert result.verdict is Verdict.PASS

    def test_a_better_candidate_never_fails_the_comparison(self) -> None:
        result = error_rate_gate(window(500, 0), window(500, 40), GATE, 30)
        assert result.verdict is Verdict.PASS

    def test_the_absolute_slo_fails_even_when_stable_is_as_bad(self) -> None:
        result = error_rate_gate(window(500, 60), window(500, 60), GATE, 30)
        assert result.verdict is Verdict.FAIL
        assert "above the SLO" in result.reason

    def test_evidence_carries_across_steps(self) -> None:
        """Evidence from an earlier step counts: a marginal step fails after a suspicious one."""
        step = error_rate_gate(window(50, 1), window(950, 0), GATE, 30)
        assert step.verdict is Verdict.PASS
        carried = step.values["log_evidence"]  # ln 10
        alone = error_rate_gate(window(40, 1), window(960, 0), GATE, 30)  # ln 12.5
        assert alone.verdict is Verdict.PASS
        after = error_rate_gate(window(40, 1), window(960, 0), GATE, 30, carried)
        assert after.verdict is Verdict.FAIL


# The shipped local schedule (5/25/50%, 15 looks a step) with a 5% SLO that 1% errors never reach.
SCHEDULE = RolloutPolicy(
    steps=[5, 25, 50], bake_seconds=15, check_interval_seconds=1, min_requests=30,
    gates=Gates(error_rate=GATE),
)  # fmt: skip


def test_false_alarm_rate_is_below_the_stated_rate() -> None:
    """A/A rollouts with a realistic 1% error rate on both sides, checked 45 times each."""
    rate = simulated_failure_rate(SCHEDULE, 0.01, 0.01, 80, runs=600)
    # The stated rate is 1%; with 600 runs a true 1% would exceed 2.5% with probability < 0.1%.
    assert rate <= 0.025, rate


def test_a_five_fold_error_regression_is_caught() -> None:
    assert simulated_failure_rate(SCHEDULE, 0.05, 0.01, 80, runs=100, seed=1) >= 0.95


class TestLatency:
    def test_similar_latency_passes(self) -> None:
        gate = LatencyGate(max_p99_ms=500, max_ratio=2, min_difference_ms=25)
        assert latency_gate(window(100, ms=6), window(900, ms=5), gate, 30).verdict is Verdict.PASS

    def test_a_slower_candidate_fails_on_the_ratio(self) -> None:
        gate = LatencyGate(max_p99_ms=500, max_ratio=2, min_difference_ms=25)
        result = latency_gate(window(100, ms=200), window(900, ms=5), gate, 30)
        assert result.verdict is Verdict.FAIL
        assert "vs stable" in result.reason

    def test_the_slo_bounds_p99_whatever_stable_does(self) -> None:
        gate = LatencyGate(max_p99_ms=100, max_ratio=10, min_difference_ms=1000)
        result = latency_gate(window(100, ms=300), window(900, ms=300), gate, 30)
        assert result.verdict is Verdict.FAIL
        assert "above the SLO" in result.reason

    def test_small_absolute_differences_are_tolerated(self) -> None:
        """Doubling 2 ms to 4 ms is noise at this scale, not a regression."""
        gate = LatencyGate(max_p99_ms=500, max_ratio=1.5, min_difference_ms=25)
        assert latency_gate(window(100, ms=4), window(900, ms=2), gate, 30).verdict is Verdict.PASS

    def test_insufficient_requests(self) -> None:
        result = latency_gate(window(5), window(900), LatencyGate(), 30)
        assert result.verdict is Verdict.INSUFFICIENT_DATA
        assert result.values["candidate_p99_ms"] > 0  # numbers are reported even without a verdict


class TestScores:
    gate = ScoreGate(max_ks_distance=0.1, false_alarm_rate_per_check=1e-4, min_predictions=30)

    def test_the_same_model_passes(self) -> None:
        rng = np.random.default_rng(0)
        values = rng.beta(0.5, 12, size=1000)
        result = score_gate(
            window(100, score_values=values[:100]),
            window(900, score_values=values[100:]),
            self.gate,
        )
        assert result.verdict is Verdict.PASS

    def test_inverted_scores_fail(self) -> None:
        rng = np.random.default_rng(0)
        values = rng.beta(0.5, 12, size=1000)
        result = score_gate(
            window(100, score_values=1 - values[:100]),
            window(900, score_values=values[100:]),
            self.gate,
        )
        assert result.verdict is Verdict.FAIL
        assert "KS distance" in result.reason

    def test_few_predictions_are_insufficient(self) -> None:
        result = score_gate(window(10), window(900), self.gate)
        assert result.verdict is Verdict.INSUFFICIENT_DATA

    @pytest.mark.parametrize("n", [30, 100, 1000])
    def test_identical_distributions_rarely_fail(self, n: int) -> None:
        """The significance limit keeps small samples from failing on noise."""
        rng = np.random.default_rng(n)
        fails = 0
        for _ in range(200):
            a, b = rng.beta(0.5, 12, size=n), rng.beta(0.5, 12, size=n * 9)
            fails += (
                score_gate(
                    window(n, score_values=a), window(n * 9, score_values=b), self.gate
                ).verdict
                is Verdict.FAIL
            )
        assert fails <= 2


def test_combined_verdict_order() -> None:
    policy = RolloutPolicy(steps=[10], bake_seconds=1, check_interval_seconds=1, min_requests=30)
    healthy = evaluate(window(100), window(900), True, policy)
    assert combined(healthy) is Verdict.PASS
    assert combined(evaluate(window(100), window(900), False, policy)) is Verdict.FAIL
    assert combined(evaluate(window(5), window(900), True, policy)) is Verdict.INSUFFICIENT_DATA


PHASE = ShadowPhase(requests=300, max_failure_rate=0.01, max_shifted_rate=0.05, max_flip_rate=0.02)


def mirrored(ok: float, failed: float = 0, shifted: float = 0, flips: float = 0) -> Snapshot:
    shadow = ShadowCounts(
        ok=ok, failed=failed, differences={0.01: ok, math.inf: ok}, shifted=shifted, flips=flips
    )
    return Snapshot(shadow=shadow)


class TestShadow:
    def test_it_waits_for_the_phase_s_requests_then_passes(self) -> None:
        assert shadow_gate(mirrored(299), PHASE).verdict is Verdict.INSUFFICIENT_DATA
        passed = shadow_gate(mirrored(300, shifted=3, flips=1), PHASE)
        assert passed.verdict is Verdict.PASS
        assert "agree on 99.7%" in passed.reason

    def test_a_silently_wrong_candidate_fails_within_a_handful_of_requests(self) -> None:
        result = shadow_gate(mirrored(6, shifted=6, flips=3), PHASE)
        assert result.verdict is Verdict.FAIL
        assert "6 of 6 shifted" in result.reason

    def test_failures_on_mirrored_requests_include_timeouts(self) -> None:
        shadow = ShadowCounts(ok=40, timeout=10, differences={math.inf: 40})
        result = shadow_gate(Snapshot(shadow=shadow), PHASE)
        assert result.verdict is Verdict.FAIL
        assert "10 of 50 failed" in result.reason

    def test_a_stable_revision_without_shadow_counters_cannot_mirror(self) -> None:
        result = shadow_gate(Snapshot(), PHASE)
        assert result.verdict is Verdict.INSUFFICIENT_DATA
        assert result.values == {"capable": 0.0}


def test_shadow_false_alarm_rate_is_below_the_stated_rate() -> None:
    """Candidates exactly at every bound, checked every 10 mirrored requests (30 looks)."""
    at_bounds = (0.01, PHASE.max_shifted_rate, PHASE.max_flip_rate)
    rate = simulated_shadow_failure_rate(PHASE, at_bounds, 10, runs=600)
    # Stated 1%; with 600 runs a true 1% would exceed 2.5% with probability < 0.1%.
    assert rate <= 0.025, rate


def test_shadow_catches_a_candidate_three_times_over_a_bound() -> None:
    rates = (0.0, 3 * PHASE.max_shifted_rate, 0.0)
    assert simulated_shadow_failure_rate(PHASE, rates, 10, runs=100, seed=1) >= 0.9
