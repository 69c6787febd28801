"""Simulated rollouts that measure the sequential gates' false-alarm rate and power.

The sequential tests' guarantee (at most `false_alarm_rate` false rollbacks, however often they
are checked) is a theorem; this checks that the implementation keeps it under the policy's step
schedule (and the shadow phase's checks), and how quickly it catches a real regression.
"""

import math

import numpy as np

from environments.rollout_policy import RolloutPolicy, ShadowPhase
from pipelines.rollout.gates import (
    Verdict,
    error_log_likelihood_ratio,
    error_rate_gate,
    shadow_gate,
)
from pipelines.rollout.window import ShadowCounts, Snapshot


def simulated_failure_rate(
    policy: RolloutPolicy,
    candidate_error_rate: float,
    stable_error_rate: float,
    requests_per_second: float,
    runs: int,
    seed: int = 0,
) -> float:
    """Share of simulated rollouts whose error-rate gate fails at any check of any step."""
    rng = np.random.default_rng(seed)
    gate = policy.gates.error_rate
    looks = max(1, round(policy.bake_seconds / policy.check_interval_seconds))
    per_look = requests_per_second * policy.check_interval_seconds
    failures = 0
    for _ in range(runs):
        evidence = 0.0
        for percent in policy.steps:
            share = percent / 100
            n_c = n_s = e_c = e_s = 0.0
            failed = False
            for _look in range(looks):
                new_c, new_s = rng.poisson(per_look * share), rng.poisson(per_look * (1 - share))
                n_c, n_s = n_c + new_c, n_s + new_s
                e_c += rng.binomial(new_c, candidate_error_rate)
                e_s += rng.binomial(new_s, stable_error_rate)
                candidate, stable = Snapshot(n_c, e_c), Snapshot(n_s, e_s)
                result = error_rate_gate(
                    candidate, stable, gate, policy.min_requests, evidence, len(policy.steps)
                )
                if result.verdict is Verdict.FAIL:
                    failed = True
                    break
            if failed:
                failures += 1
                break
            evidence += error_log_likelihood_ratio(Snapshot(n_c, e_c), Snapshot(n_s, e_s))
    return failures / runs


def simulated_shadow_failure_rate(
    phase: ShadowPhase,
    rates: tuple[float, float, float],
    mirrored_per_check: int,
    runs: int,
    seed: int = 0,
) -> float:
    """Share of simulated shadow phases whose paired gate fails at any check, when each mirrored
    request fails, shifts and flips with the probabilities `rates` (independently)."""
    rng = np.random.default_rng(seed)
    checks = math.ceil(phase.requests / mirrored_per_check)
    fail_rate, shift_rate, flip_rate = rates
    failures = 0
    for _ in range(runs):
        counts = np.cumsum(
            rng.binomial(mirrored_per_check, [fail_rate, shift_rate, flip_rate], (checks, 3)),
            axis=0,
        )
        for look, (failed, shifted, flips) in enumerate(counts.tolist(), start=1):
            mirrored = look * mirrored_per_check
            ok = mirrored - failed
            shadow = ShadowCounts(
                ok=ok, failed=failed, differences={math.inf: ok}, shifted=shifted, flips=flips
            )
            result = shadow_gate(Snapshot(shadow=shadow), phase)
            if result.verdict is Verdict.FAIL:
                failures += 1
                break
    return failures / runs
