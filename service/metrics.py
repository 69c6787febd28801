"""Prometheus metrics of one service instance, in a registry of its own (one per app object)."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString  # pyright: ignore[reportUnknownVariableType]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Fraud scores crowd near zero: fine buckets there let the rollout gates compare distributions.
_SCORE_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
                  0.6, 0.7, 0.8, 0.9, 1.0)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# |log-odds of candidate - of stable| on the same request (2: the odds differ by a factor of 7.4).
_DIFFERENCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SHADOW_OUTCOMES = ("ok", "failed", "timeout", "dropped")


def log_odds(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Log-odds, clipped so that a score of exactly 0 or 1 stays finite (|log-odds| <= 27.6)."""
    clipped = np.clip(scores, 1e-12, 1 - 1e-12)
    return np.log(clipped / (1 - clipped))


def low_confidence(
    scores: npt.NDArray[np.float64], threshold: float, logit_margin: float
) -> npt.NDArray[np.bool_]:
    """Scores whose log-odds are within `logit_margin` of the threshold's: the model is unsure."""
    return np.abs(log_odds(scores) - np.log(threshold / (1 - threshold))) < logit_margin


class ArrayHistogram(Collector):
    """A histogram fed a whole array per call, exposed like prometheus_client's own.

    prometheus_client's `Histogram.observe` takes one value under a lock and walks the buckets in
    Python, once per row of every batch; here a call is one searchsorted and one bincount.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        buckets: tuple[float, ...],
        labels: dict[str, str],
        registry: CollectorRegistry,
    ) -> None:
        self._name, self._documentation, self._labels = name, documentation, labels
        self._bounds = np.asarray([*buckets, np.inf])
        self._counts = np.zeros(len(self._bounds), dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, values: npt.NDArray[np.float64]) -> None:
        # `le` is inclusive: a value equal to a bound belongs to that bound's bucket.
        counts = np.bincount(
            np.searchsorted(self._bounds, values, side="left"), minlength=len(self._bounds)
        )
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative, total = np.cumsum(self._counts).tolist(), self._sum
        family = HistogramMetricFamily(self._name, self._documentation, labels=list(self._labels))
        buckets = [(floatToGoString(b), c) for b, c in zip(self._bounds, cumulative, strict=True)]
        family.add_metric(list(self._labels.values()), buckets=buckets, sum_value=total)
        yield family


@dataclass
class ServiceMetrics:  # pylint: disable=too-many-instance-attributes  # one per metric family
    """Request counts and latency by route, and what the model is saying (scores, low confidence).

    Score histograms are what the rollout gates compare between revisions to catch a model that is
    up and fast but silently wrong. The gates' three metrics carry the revision's name, so a
    metrics backend can be asked for one revision whatever labels its collector adds.
    """

    revision: str = "local"
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self._requests = Counter(
            "http_requests", "HTTP requests by route, method and status.",
            ["route", "method", "status", "revision"], registry=r,
        )  # fmt: skip
        self._latency = Histogram(
            "http_request_duration_seconds", "Request latency by route.",
            ["route", "revision"], buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self._by_request: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.scores = ArrayHistogram(
            "prediction_score", "Fraud probability of each scored transaction.",
            _SCORE_BUCKETS, {"revision": self.revision}, r,
        )  # fmt: skip
        self.predictions = Counter(
            "predictions", "Scored transactions by predicted label.", ["label"], registry=r
        )
        self.low_confidence = Counter(
            "low_confidence_predictions", "Scores within the margin of the threshold.", registry=r
        )
        self.batch_rows = Histogram(
            "model_batch_rows", "Rows per model call after micro-batching.",
            buckets=_BATCH_BUCKETS, registry=r,
        )  # fmt: skip
        self._variants = Counter(
            "experiment_predictions", "Scored transactions by experiment and assigned variant.",
            ["experiment", "variant"], registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "model_info", "The model this instance serves (value is always 1).",
            ["model_version", "model_sha256", "git_sha", "revision"], registry=r,
        )  # fmt: skip

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # `labels()` takes a lock and builds a key per call: the children are looked up once per
        # (route, method, status), a set bounded by the routes and the methods httptools parses.
        key = (route, method, status)
        children = self._by_request.get(key)
        if children is None:
            children = self._by_request[key] = (
                self._requests.labels(route, method, str(status), self.revision),
                self._latency.labels(route, self.revision),
            )
        children[0].inc()
        children[1].observe(seconds)

    def observe_variant(self, experiment: str, variant: str | None, rows: int) -> None:
        self._variants.labels(experiment, variant or "unassigned").inc(rows)

    def observe_scores(
        self,
        scores: npt.NDArray[np.float64],
        decisions: npt.NDArray[np.bool_],
        unsure: npt.NDArray[np.bool_],
    ) -> None:
        """Record a batch of scores at once (one lock per metric, not per row)."""
        fraud = int(np.count_nonzero(decisions))
        self.predictions.labels("fraud").inc(fraud)
        self.predictions.labels("legit").inc(len(scores) - fraud)
        self.low_confidence.inc(int(np.count_nonzero(unsure)))
        self.scores.observe(scores)


@dataclass
class ShadowMetrics:
    """What a mirroring revision learns of its candidate (service/shadow.py), in the instance's
    registry, labelled like the gate metrics. Every series exists from the start at zero: a
    revision whose /metrics has them can mirror, which the rollout controller checks."""

    registry: CollectorRegistry
    revision: str

    def __post_init__(self) -> None:
        r = self.registry
        self._requests = Counter(
            "shadow_requests", "Mirrored requests by outcome (dropped: never sent).",
            ["outcome", "revision"], registry=r,
        )  # fmt: skip
        for outcome in SHADOW_OUTCOMES:
            self._requests.labels(outcome, self.revision)
        self._differences = Histogram(
            "shadow_logit_difference", "|candidate - stable| log-odds of each mirrored prediction.",
            ["revision"], buckets=_DIFFERENCE_BUCKETS, registry=r,
        ).labels(self.revision)  # fmt: skip
        self._shifted = Counter(
            "shadow_shifted_predictions",
            "Mirrored predictions whose log-odds moved more than the switch allows.",
            ["revision"], registry=r,
        ).labels(self.revision)  # fmt: skip
        self._flips = Counter(
            "shadow_decision_flips", "Mirrored predictions whose decision differs from stable's.",
            ["revision"], registry=r,
        ).labels(self.revision)  # fmt: skip

    def request(self, outcome: str) -> None:
        self._requests.labels(outcome, self.revision).inc()

    def pairs(self, differences: list[float], flips: int, max_difference: float) -> None:
        """One mirrored answer's rows: how far each moved, and how many decisions flipped."""
        for difference in differences:
            self._differences.observe(difference)
        self._shifted.inc(sum(d > max_difference for d in differences))
        self._flips.inc(flips)
