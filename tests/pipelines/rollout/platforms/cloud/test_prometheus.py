"""The PromQL window reader against a Prometheus query API answering like Cloud Monitoring's."""

import math
from dataclasses import dataclass, field

import httpx
import pytest

from environments.rollout_policy import load_policy
from pipelines.rollout.gates import Verdict, combined, evaluate
from pipelines.rollout.platform import MetricsError
from pipelines.rollout.platforms.cloud.prometheus import PrometheusWindows

NOW = 1_800_000_000.0
LATENCY = {"0.01": 900.0, "0.05": 990.0, "+Inf": 1000.0}
SCORES = {"0.05": 950.0, "0.5": 995.0, "1.0": 1000.0, "+Inf": 1000.0}


@dataclass
class FakePrometheusApi:
    """Answers instant queries the way the API does (vectors of [time, "value"])."""

    newest_sample: float | None = NOW - 20
    status: int = 200
    mirrors: bool = True  # the revision exports shadow counters
    queries: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/projects/p/location/global/prometheus/api/v1/query"
        query = request.url.params["query"]
        self.queries.append(query)
        if self.status != 200:
            error = {"code": self.status, "message": "Permission monitoring.timeSeries.list denied"}
            return httpx.Response(self.status, json={"error": error})
        at = float(request.url.params["time"])
        if "shadow_" in query:
            rows = self._shadow(query) if self.mirrors else []
        elif query.startswith("max(timestamp("):
            rows = [] if self.newest_sample is None else [({}, self.newest_sample)]
        elif "_bucket" in query:
            buckets = LATENCY if "duration" in query else SCORES
            rows = [({"le": le}, count) for le, count in buckets.items()]
        elif 'status=~"5.."' in query:
            rows = [({}, 10.0)]
        else:
            rows = [({}, 1000.0)]
        result = [{"metric": labels, "value": [at, str(value)]} for labels, value in rows]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    @staticmethod
    def _shadow(query: str) -> list[tuple[dict[str, str], float]]:
        if "shadow_requests_total" in query:
            return [({"outcome": "ok"}, 180.0), ({"outcome": "timeout"}, 2.0),
                    ({"outcome": "dropped"}, 5.0)]  # fmt: skip
        if "_bucket" in query:
            return [({"le": "0.01"}, 170.0), ({"le": "0.1"}, 178.0), ({"le": "+Inf"}, 180.0)]
        return [({}, 2.0 if "shifted" in query else 1.0)]


def windows(api: FakePrometheusApi, where: str = "") -> PrometheusWindows:
    base = "https://monitoring.example/v1/projects/p/location/global/prometheus"
    client = httpx.Client(base_url=base, transport=httpx.MockTransport(api))
    return PrometheusWindows(client, where=where, max_lag_s=90, clock=lambda: NOW)


def test_every_series_is_also_selected_by_the_environments_cluster_on_gke() -> None:
    """Environments sharing a project may run revisions of the same name in their own clusters."""
    api = FakePrometheusApi()
    window = windows(api, ',cluster="fraud-scorer-dev"').window(
        "fraud-scorer-abc1234-002", NOW - 60
    )
    assert window is not None
    assert window.shadow is not None
    assert len(api.queries) == 9
    mine = 'revision="fraud-scorer-abc1234-002",cluster="fraud-scorer-dev"'
    assert all(mine in query for query in api.queries), api.queries


def test_a_window_is_the_increase_since_the_mark_for_one_revision() -> None:
    api = FakePrometheusApi()
    window = windows(api).window("fraud-scorer-abc1234-002", NOW - 120.4)
    assert window is not None
    assert (window.requests, window.errors) == (1000.0, 10.0)
    assert window.latency[math.inf] == 1000.0
    assert window.scores[0.05] == 950.0
    assert window.predictions == 1000.0
    increases = [q for q in api.queries if "increase(" in q and "shadow_" not in q]
    assert len(increases) == 4
    assert all("[121s]" in q and 'revision="fraud-scorer-abc1234-002"' in q for q in increases)
    assert all('route=~"/v1/predict|/v1/predict/batch"' in q for q in increases[:3])


def test_the_shadow_counters_of_a_mirroring_revision_are_read_alike() -> None:
    window = windows(FakePrometheusApi()).window("fraud-scorer-abc1234-002", NOW - 60)
    assert window is not None
    assert window.shadow is not None
    assert (window.shadow.mirrored, window.shadow.failures, window.shadow.dropped) == (182, 2, 5)
    assert (window.shadow.predictions, window.shadow.shifted, window.shadow.flips) == (180, 2, 1)
    assert window.shadow.differences[0.01] == 170.0


def test_a_revision_without_shadow_counters_cannot_mirror() -> None:
    window = windows(FakePrometheusApi(mirrors=False)).window("fraud-scorer-abc1234-002", NOW - 60)
    assert window is not None
    assert window.shadow is None


@pytest.mark.parametrize(
    "newest", [NOW - 91, None], ids=["backend lagging", "no sample for the revision"]
)
def test_a_window_the_backend_has_not_caught_up_with_reads_as_none(newest: float | None) -> None:
    api = FakePrometheusApi(newest_sample=newest)
    assert windows(api).window("fraud-scorer-abc1234-002", NOW - 60) is None
    assert not [q for q in api.queries if "increase(" in q], "no window is computed from stale data"


def test_an_api_refusal_is_a_metrics_error_naming_the_reason() -> None:
    with pytest.raises(MetricsError, match=r"403: Permission monitoring\.timeSeries\.list denied"):
        windows(FakePrometheusApi(status=403)).window("fraud-scorer-abc1234-002", NOW - 60)


def test_only_revision_names_reach_a_query() -> None:
    with pytest.raises(ValueError, match="is not a revision name"):
        windows(FakePrometheusApi()).window('x"}) or vector(1', NOW - 60)


def test_the_gates_read_these_windows_as_they_read_local_ones() -> None:
    """One shape of data: identical candidate and stable windows pass every gate."""
    reader = windows(FakePrometheusApi())
    candidate = reader.window("fraud-scorer-abc1234-002", NOW - 120)
    stable = reader.window("fraud-scorer-abc1234-001", NOW - 120)
    assert candidate is not None
    assert stable is not None
    results = evaluate(candidate, stable, True, load_policy("staging"), 0.0)
    assert combined(results) is Verdict.PASS, results
