"""Health gates: pure functions of candidate and stable metric windows.

Each returns PASS, FAIL with a reason, or INSUFFICIENT_DATA (the controller then bakes longer, up
to the policy's cap). Thresholds come from the environment's rollout policy.
"""

import math
from dataclasses import dataclass, field
from enum import StrEnum

from scipy.special import betaln

from environments.rollout_policy import (
    ErrorRateGate,
    LatencyGate,
    RolloutPolicy,
    ScoreGate,
    ShadowPhase,
)
from pipelines.rollout.window import (
    ShadowCounts,
    Snapshot,
    ks_critical_distance,
    ks_distance,
    psi,
    quantile,
)

P99_MIN_REQUESTS = 200
# The shadow gate's values carry the |log-odds difference| histogram under these keys, by bound.
DIFFERENCE_PREFIX = "logit_difference_le_"


class Verdict(StrEnum):
    """A gate's answer on one window."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with the numbers behind it, for the log and the report."""

    gate: str
    verdict: Verdict
    reason: str
    values: dict[str, float] = field(default_factory=dict)


def mixture_log_likelihood_ratio(
    hits: float, misses: float, p0: float, prior_mean: float = 0.5
) -> float:
    """Log of the Bernoulli mixture likelihood ratio against "the hit probability is p0".

    With any prior on the alternative fixed in advance (here Beta(1, b) with mean `prior_mean`;
    0.5 is the uniform one), the ratio is a nonnegative martingale under p0, so by Ville's
    inequality it ever exceeds 1/alpha with probability at most alpha, however often it is
    checked: the basis of the error-rate tests below and of the shadow gate. A prior mean near
    the rates worth catching makes the test quicker to catch them.
    """
    p0 = min(max(p0, 1e-9), 1 - 1e-9)
    b = 1 / prior_mean - 1
    return float(
        betaln(1 + hits, b + misses) - betaln(1, b) - hits * math.log(p0)
        - misses * math.log(1 - p0)
    )  # fmt: skip


def error_log_likelihood_ratio(candidate: Snapshot, stable: Snapshot) -> float:
    """Log evidence that errors fall on the candidate more than its share of traffic.

    Under "both revisions fail equally often", each error comes from the candidate with
    probability p0 = its share of requests.
    """
    total = candidate.requests + stable.requests
    if candidate.errors + stable.errors == 0 or total == 0:
        return 0.0
    return mixture_log_likelihood_ratio(candidate.errors, stable.errors, candidate.requests / total)


def error_rate_gate(
    candidate: Snapshot,
    stable: Snapshot,
    gate: ErrorRateGate,
    min_requests: int,
    evidence_before: float = 0.0,
    steps: int = 1,
) -> GateResult:
    """Sequential candidate-vs-stable test plus a sequential test against the SLO.

    `evidence_before` is the comparison's log ratio carried from earlier steps: the product of each
    step's martingale is again one, so its false-alarm rate holds for the whole rollout. The SLO
    test runs per step at false_alarm_rate / steps, so it too holds for the whole rollout.
    """
    step_evidence = error_log_likelihood_ratio(candidate, stable)
    evidence = evidence_before + step_evidence
    threshold = math.log(1 / gate.false_alarm_rate)
    total = candidate.requests + stable.requests
    share_of_errors = candidate.errors / max(candidate.errors + stable.errors, 1)
    share_of_traffic = candidate.requests / total if total else 0.0
    slo_evidence = mixture_log_likelihood_ratio(
        candidate.errors, candidate.requests - candidate.errors, gate.max_error_rate
    )
    slo_threshold = math.log(steps / gate.false_alarm_rate)
    values = {
        "candidate_error_rate": candidate.error_rate,
        "stable_error_rate": stable.error_rate,
        "candidate_errors": candidate.errors,
        "stable_errors": stable.errors,
        "log_evidence": evidence,
        "step_log_evidence": step_evidence,
        "threshold": threshold,
        "slo_log_evidence": slo_evidence,
        "slo_threshold": slo_threshold,
    }
    if evidence >= threshold and share_of_errors > share_of_traffic:
        return GateResult(
            "error_rate",
            Verdict.FAIL,
            f"candidate error rate {candidate.error_rate:.2%} vs stable {stable.error_rate:.2%}: "
            f"sequential test rejected equality (false-alarm rate {gate.false_alarm_rate:g})",
            values,
        )
    if slo_evidence >= slo_threshold and candidate.error_rate > gate.max_error_rate:
        return GateResult(
            "error_rate",
            Verdict.FAIL,
            f"candidate error rate {candidate.error_rate:.2%} is above the SLO "
            f"{gate.max_error_rate:.2%} (sequential test, "
            f"false-alarm rate {gate.false_alarm_rate:g})",
            values,
        )
    if candidate.requests < min_requests:
        return GateResult(
            "error_rate",
            Verdict.INSUFFICIENT_DATA,
            f"{candidate.requests:.0f} of {min_requests} candidate requests",
            values,
        )
    return GateResult("error_rate", Verdict.PASS, "no evidence of more errors", values)


def latency_gate(
    candidate: Snapshot, stable: Snapshot, gate: LatencyGate, min_requests: int
) -> GateResult:
    """p99 under the SLO, and p50/p99 within a factor of stable unless the gap is negligible.

    Quantiles are reported only for a revision that answered something (no NaN in the record).
    """
    ms = {
        f"{who}_{name}": quantile(snap.latency, q) * 1000
        for who, snap in (("candidate", candidate), ("stable", stable))
        if snap.requests > 0
        for name, q in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99))
    }
    if candidate.requests < min_requests or stable.requests < min_requests:
        return GateResult(
            "latency",
            Verdict.INSUFFICIENT_DATA,
            f"{candidate.requests:.0f} candidate / {stable.requests:.0f} stable requests "
            f"(need {min_requests} each)",
            ms,
        )
    if ms["candidate_p99_ms"] > gate.max_p99_ms:
        p99, slo = ms["candidate_p99_ms"], gate.max_p99_ms
        reason = f"candidate p99 {p99:.0f} ms is above the SLO {slo:.0f} ms"
        return GateResult("latency", Verdict.FAIL, reason, ms)
    # A p99 from fewer than ~200 requests is little more than the slowest one: compare it only then.
    compared = ("p50_ms", "p99_ms") if candidate.requests >= P99_MIN_REQUESTS else ("p50_ms",)
    for name in compared:
        c, s = ms[f"candidate_{name}"], ms[f"stable_{name}"]
        if c > gate.max_ratio * s and c - s > gate.min_difference_ms:
            label = name.removesuffix("_ms")
            reason = f"candidate {label} {c:.0f} ms vs stable {s:.0f} ms (over {gate.max_ratio:g}x)"
            return GateResult("latency", Verdict.FAIL, reason, ms)
    return GateResult("latency", Verdict.PASS, "latency within bounds", ms)


def score_gate(candidate: Snapshot, stable: Snapshot, gate: ScoreGate) -> GateResult:
    """Prediction scores, candidate vs stable on the same traffic: catches a silently wrong model.

    A two-sample KS test: the distance must be both significant for the sample sizes and larger
    than `max_ks_distance`. (PSI, reported alongside, is biased upward on the small windows a 5%
    canary gives: its 99th percentile between identical models is 0.57 at 50 predictions.)
    """
    values: dict[str, float] = {}
    distance = limit = 0.0
    if min(candidate.predictions, stable.predictions) > 0:
        distance = ks_distance(candidate.scores, stable.scores)
        critical = ks_critical_distance(
            candidate.predictions, stable.predictions, gate.false_alarm_rate_per_check
        )
        limit = max(critical, gate.max_ks_distance)
        values = {
            "ks_distance": distance,
            "ks_limit": limit,
            "psi": psi(candidate.scores, stable.scores),
        }
    if min(candidate.predictions, stable.predictions) < gate.min_predictions:
        return GateResult(
            "scores",
            Verdict.INSUFFICIENT_DATA,
            f"{candidate.predictions:.0f} candidate / {stable.predictions:.0f} stable predictions "
            f"(need {gate.min_predictions} each)",
            values,
        )
    if distance > limit:
        reason = f"prediction scores shifted: KS distance {distance:.2f} > {limit:.2f}"
        return GateResult("scores", Verdict.FAIL, reason, values)
    return GateResult("scores", Verdict.PASS, f"KS distance {distance:.3f} <= {limit:.2f}", values)


def paired_rates(shadow: ShadowCounts, phase: ShadowPhase) -> dict[str, tuple[float, float, float]]:
    """Each paired rate the shadow gate tests: (hits, trials, bound)."""
    return {
        "failed": (shadow.failures, shadow.mirrored, phase.max_failure_rate),
        "shifted": (shadow.shifted, shadow.predictions, phase.max_shifted_rate),
        "flipped": (shadow.flips, shadow.predictions, phase.max_flip_rate),
    }


def shadow_gate(stable: Snapshot, phase: ShadowPhase) -> GateResult:
    """Stable's answers against the candidate's to the same mirrored requests.

    A paired comparison: per request, did the candidate fail (an error or a timeout where stable
    answered), did its score move by more than `max_logit_difference`, did its decision flip?
    Each rate gets the same always-valid mixture test as the error-rate gate, against its bound,
    at a third of the false-alarm rate, so checking as often as we like keeps the whole gate's
    false rollbacks under `false_alarm_rate`. Its prior is centred on ten times the bound (at
    most 0.5, the uniform prior): a 0.5% failure bound is there to catch a few percent, and a
    uniform prior would spend most of its mass on rates no candidate has. Where a two-sample
    test must see two distributions drift apart, one inverted score per request is evidence here.
    """
    shadow = stable.shadow
    if shadow is None:
        reason = "the stable revision cannot mirror (no shadow metrics)"
        return GateResult("shadow", Verdict.INSUFFICIENT_DATA, reason, {"capable": 0.0})
    threshold = math.log(3 / phase.false_alarm_rate)
    values: dict[str, float] = {
        "mirrored": shadow.mirrored,
        "failures": shadow.failures,
        "dropped": shadow.dropped,
        "predictions": shadow.predictions,
        "shifted": shadow.shifted,
        "flips": shadow.flips,
        "threshold": threshold,
    } | {f"{DIFFERENCE_PREFIX}{bound:g}": count for bound, count in shadow.differences.items()}
    failing: list[str] = []
    for name, (hits, trials, bound) in paired_rates(shadow, phase).items():
        prior_mean = min(0.5, 10 * bound)
        evidence = (
            mixture_log_likelihood_ratio(hits, trials - hits, bound, prior_mean) if trials else 0.0
        )
        values[f"{name}_log_evidence"] = evidence
        if evidence >= threshold and hits > bound * trials:
            failing.append(f"{hits:.0f} of {trials:.0f} {name} (bound {bound:.1%})")
    if failing:
        reason = "candidate differs from stable on mirrored requests: " + "; ".join(failing)
        return GateResult("shadow", Verdict.FAIL, reason, values)
    if shadow.mirrored < phase.requests:
        reason = f"{shadow.mirrored:.0f} of {phase.requests} mirrored requests"
        return GateResult("shadow", Verdict.INSUFFICIENT_DATA, reason, values)
    agreement = 1 - shadow.flips / shadow.predictions if shadow.predictions else 1.0
    reason = f"{shadow.mirrored:.0f} mirrored requests, decisions agree on {agreement:.1%}"
    return GateResult("shadow", Verdict.PASS, reason, values)


def cannot_mirror(results: list[GateResult]) -> bool:
    """Whether the shadow gate found a stable revision without shadow metrics."""
    return any(r.gate == "shadow" and r.values.get("capable") == 0 for r in results)


def readiness_gate(ready: bool) -> GateResult:
    if ready:
        return GateResult("readiness", Verdict.PASS, "candidate ready")
    return GateResult("readiness", Verdict.FAIL, "candidate stopped answering /readyz with 200")


def evaluate(
    candidate: Snapshot,
    stable: Snapshot,
    candidate_ready: bool,
    policy: RolloutPolicy,
    evidence_before: float = 0.0,
) -> list[GateResult]:
    """Every gate of the policy on one window."""
    gates = policy.gates
    return [
        readiness_gate(candidate_ready),
        error_rate_gate(
            candidate,
            stable,
            gates.error_rate,
            policy.min_requests,
            evidence_before,
            len(policy.steps),
        ),
        latency_gate(candidate, stable, gates.latency, policy.min_requests),
        score_gate(candidate, stable, gates.scores),
    ]


def evaluate_shadow(
    candidate: Snapshot, stable: Snapshot, candidate_ready: bool, policy: RolloutPolicy
) -> list[GateResult]:
    """The shadow phase's gates: readiness, the candidate's own latency against stable's, and
    the paired comparison (which covers errors, timeouts included, and scores)."""
    return [
        readiness_gate(candidate_ready),
        latency_gate(candidate, stable, policy.gates.latency, policy.min_requests),
        shadow_gate(stable, policy.shadow),
    ]


def combined(results: list[GateResult]) -> Verdict:
    """FAIL if any gate fails, else INSUFFICIENT_DATA if any lacks data, else PASS."""
    verdicts = {r.verdict for r in results}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if Verdict.INSUFFICIENT_DATA in verdicts:
        return Verdict.INSUFFICIENT_DATA
    return Verdict.PASS
