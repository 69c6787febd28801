"""Simulated rollouts that measure the error-rate gate's false-alarm rate and power.

The sequential test's guarantee (at most `false_alarm_rate` false rollbacks, however often it is
checked) is a theorem; this checks that the implementation keeps it under the policy's step
schedule, and how quickly it catches a real regression.
"""

import numpy as np

from environments.rollout_policy import RolloutPolicy
from pipelines.rollout.gates import Verdict, error_log_likelihood_ratio, error_rate_gate
from pipelines.rollout.window import Snapshot


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
