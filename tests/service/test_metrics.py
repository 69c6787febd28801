"""The score histogram fed whole arrays exposes what prometheus_client's own would."""

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from service.metrics import ArrayHistogram

BUCKETS = (0.002, 0.01, 0.1, 0.5, 1.0)


def _exposition(registry: CollectorRegistry) -> list[str]:
    lines = generate_latest(registry).decode().splitlines()
    return [line for line in lines if "_created" not in line and "_sum" not in line]


def test_the_array_histogram_counts_as_prometheus_client_does() -> None:
    values = np.concatenate(
        [np.random.default_rng(3).random(500), np.asarray(BUCKETS), [0.0, 1.5]]
    )  # every bound itself (le is inclusive), zero, and one past the last bound
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    one_at_a_time = Histogram(
        "prediction_score", "Scores.", ["revision"], buckets=BUCKETS, registry=theirs
    ).labels("r1")
    for value in values.tolist():
        one_at_a_time.observe(value)
    batched = ArrayHistogram("prediction_score", "Scores.", BUCKETS, {"revision": "r1"}, ours)
    batched.observe(values[:100])
    batched.observe(values[100:])
    assert _exposition(ours) == _exposition(theirs)
    total = ours.get_sample_value("prediction_score_sum", {"revision": "r1"})
    assert total is not None
    assert abs(total - float(values.sum())) < 1e-9
