import math

import pytest
from fastapi.testclient import TestClient

from pipelines.rollout.window import Snapshot, ks_distance, parse_metrics, quantile


def test_parses_the_services_own_metrics(
    client: TestClient, transaction: dict[str, object]
) -> None:
    """Predictions are counted, probes are not, errors are 5xx only."""
    for _ in range(4):
        client.post("/v1/predict", json=transaction)
    client.post("/v1/predict", json={})
    client.get("/healthz")
    snapshot = parse_metrics(client.get("/metrics").text)
    assert snapshot.requests == 5
    assert snapshot.errors == 0
    assert snapshot.predictions == 4
    assert snapshot.latency[math.inf] == 5


def test_window_subtracts_and_survives_a_restart() -> None:
    early = Snapshot(10, 1, {0.1: 8, math.inf: 10}, {1.0: 9, math.inf: 9})
    late = Snapshot(30, 2, {0.1: 25, math.inf: 30}, {1.0: 28, math.inf: 28})
    assert late.minus(early) == Snapshot(20, 1, {0.1: 17, math.inf: 20}, {1.0: 19, math.inf: 19})
    restarted = Snapshot(3, 0, {0.1: 3, math.inf: 3}, {})
    assert restarted.minus(early).requests == 3


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.2: 100.0, math.inf: 100.0}
    assert quantile(buckets, 0.5) == pytest.approx(0.1)
    assert quantile(buckets, 0.75) == pytest.approx(0.15)
    assert math.isnan(quantile({math.inf: 0.0}, 0.5))
    assert quantile({0.1: 0.0, math.inf: 10.0}, 0.99) == pytest.approx(0.1)


def test_ks_distance_of_cumulative_histograms() -> None:
    same = {0.5: 50.0, 1.0: 100.0}
    assert ks_distance(same, same) == 0
    assert ks_distance({0.5: 100.0, 1.0: 100.0}, {0.5: 0.0, 1.0: 100.0}) == 1
