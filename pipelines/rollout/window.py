"""Per-revision metrics over a window: Prometheus counters read twice and subtracted.

Counters are cumulative, so the controller snapshots each revision at the start of a step and at
every check; the difference is what happened in between, for candidate and stable alike.
"""

import math
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

PREDICTION_ROUTES = frozenset({"/v1/predict", "/v1/predict/batch"})
Buckets = dict[float, float]  # upper bound -> cumulative count, as Prometheus histograms


@dataclass(frozen=True)
class ShadowCounts:
    """What a mirroring revision counted of its candidate's answers (service/shadow.py)."""

    ok: float = 0.0
    failed: float = 0.0
    timeout: float = 0.0
    dropped: float = 0.0
    differences: Buckets = field(default_factory=dict)  # |candidate - stable| per prediction
    shifted: float = 0.0
    flips: float = 0.0

    @property
    def mirrored(self) -> float:
        """Requests sent to the candidate and settled (dropped ones never left)."""
        return self.ok + self.failed + self.timeout

    @property
    def failures(self) -> float:
        return self.failed + self.timeout

    @property
    def predictions(self) -> float:
        return max(self.differences.values(), default=0.0)

    def minus(self, earlier: "ShadowCounts") -> "ShadowCounts":
        return ShadowCounts(
            self.ok - earlier.ok,
            self.failed - earlier.failed,
            self.timeout - earlier.timeout,
            self.dropped - earlier.dropped,
            _subtract(self.differences, earlier.differences),
            self.shifted - earlier.shifted,
            self.flips - earlier.flips,
        )


@dataclass(frozen=True)
class Snapshot:
    """What one revision had counted at one moment (predictions only: probes excluded).

    `shadow` is None when the revision cannot mirror (its /metrics has no shadow series).
    """

    requests: float = 0.0
    errors: float = 0.0
    latency: Buckets = field(default_factory=dict)
    scores: Buckets = field(default_factory=dict)
    shadow: ShadowCounts | None = None

    def minus(self, earlier: "Snapshot") -> "Snapshot":
        """The window between two snapshots; a restarted process (counters reset) counts from 0."""
        if self.requests < earlier.requests:
            earlier = Snapshot(shadow=ShadowCounts() if self.shadow else None)
        shadow = self.shadow
        if shadow is not None and earlier.shadow is not None:
            shadow = shadow.minus(earlier.shadow)
        return Snapshot(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            _subtract(self.latency, earlier.latency),
            _subtract(self.scores, earlier.scores),
            shadow,
        )

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def predictions(self) -> float:
        return max(self.scores.values(), default=0.0)


def _subtract(later: Buckets, earlier: Buckets) -> Buckets:
    return {bound: count - earlier.get(bound, 0.0) for bound, count in later.items()}


def parse_metrics(text: str) -> Snapshot:
    """Read the service's /metrics exposition into a snapshot."""
    requests = errors = 0.0
    latency: Buckets = {}
    scores: Buckets = {}
    shadow: dict[str, float] = {}
    differences: Buckets = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "shadow_requests_total":
                shadow[labels["outcome"]] = sample.value
            elif sample.name in ("shadow_shifted_predictions_total", "shadow_decision_flips_total"):
                shadow[sample.name] = sample.value
            elif sample.name == "shadow_logit_difference_bucket":
                differences[float(labels["le"])] = sample.value
            elif sample.name == "http_requests_total" and labels.get("route") in PREDICTION_ROUTES:
                requests += sample.value
                if labels.get("status", "").startswith("5"):
                    errors += sample.value
            elif (
                sample.name == "http_request_duration_seconds_bucket"
                and labels.get("route") in PREDICTION_ROUTES
            ):
                bound = float(labels["le"])
                latency[bound] = latency.get(bound, 0.0) + sample.value
            elif sample.name == "prediction_score_bucket":
                scores[float(labels["le"])] = sample.value
    return Snapshot(requests, errors, latency, scores, shadow_counts(shadow, differences))


def shadow_counts(values: dict[str, float], differences: Buckets) -> ShadowCounts | None:
    """Counts by outcome and by counter name, as any backend reads them; None if there are none."""
    if not values:
        return None
    return ShadowCounts(
        ok=values.get("ok", 0.0),
        failed=values.get("failed", 0.0),
        timeout=values.get("timeout", 0.0),
        dropped=values.get("dropped", 0.0),
        differences=differences,
        shifted=values.get("shadow_shifted_predictions_total", 0.0),
        flips=values.get("shadow_decision_flips_total", 0.0),
    )


def quantile(buckets: Buckets, q: float) -> float:
    """The q-quantile, interpolated inside its bucket as Prometheus' histogram_quantile does."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1]


def ks_distance(candidate: Buckets, stable: Buckets) -> float:
    """Largest gap between the two cumulative score distributions (KS statistic on buckets)."""
    bounds = sorted(set(candidate) | set(stable))
    n_c, n_s = candidate.get(bounds[-1], 0.0), stable.get(bounds[-1], 0.0)
    if not bounds or n_c <= 0 or n_s <= 0:
        return 0.0
    return max(abs(candidate.get(b, 0.0) / n_c - stable.get(b, 0.0) / n_s) for b in bounds)


def ks_critical_distance(n: float, m: float, alpha: float) -> float:
    """The two-sample KS distance exceeded with probability alpha when both come from one
    distribution (asymptotic; conservative for bucketed data)."""
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


def psi(candidate: Buckets, stable: Buckets, pseudo_count: float = 0.5) -> float:
    """Population stability index between two score histograms with the same buckets.

    A half count per bucket keeps empty buckets finite without letting them dominate.
    """
    bounds = sorted(set(candidate) | set(stable))

    def shares(buckets: Buckets) -> list[float]:
        cumulative = [buckets.get(b, 0.0) for b in bounds]
        counts = [c - p for c, p in zip(cumulative, [0.0, *cumulative[:-1]], strict=True)]
        total = sum(counts) + pseudo_count * len(counts)
        return [(c + pseudo_count) / total for c in counts]

    return sum(
        (c - s) * math.log(c / s) for c, s in zip(shares(candidate), shares(stable), strict=True)
    )
