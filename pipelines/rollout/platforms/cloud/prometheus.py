"""Per-revision metrics windows from a Prometheus-compatible HTTP API: Cloud Monitoring's
(Managed Service for Prometheus, fed by the Cloud Run sidecar or a GKE PodMonitoring), or any
Prometheus (kubernetesPrometheusUrl).

A window is how much each counter grew between the start of a canary step and now, summed over
the revision's instances. PromQL's `increase()` follows instances that restart or scale out,
which subtracting two readings cannot. Samples reach the backend a scrape interval and an
ingestion delay late: a window whose newest sample is older than `max_lag_s` reads as None,
which the gates take as INSUFFICIENT_DATA, never as a pass.

The service labels its gate metrics with its own revision name (service/metrics.py), so the
queries select `revision="..."` whatever labels the collector adds. Its default config adds
`revision_name`, `service_name`, `configuration_name` and `instanceId`, and protects only
project_id, location, cluster, namespace, job and instance from relabelling, so `revision`
passes through (GoogleCloudPlatform/run-gmp-sidecar, confgenerator/config.go). On GKE the same
label comes from K_REVISION, which the Deployment sets (infra/kubernetes/objects.py).
API: https://cloud.google.com/stackdriver/docs/managed-prometheus/query-api-ui
"""

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipelines.rollout.platform import Mark, MetricsError
from pipelines.rollout.window import (
    PREDICTION_ROUTES,
    Buckets,
    ShadowCounts,
    Snapshot,
    shadow_counts,
)

CLOUD_MONITORING_API = (
    "https://monitoring.googleapis.com/v1/projects/{project}/location/global/prometheus"
)
REVISION_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _error(response: httpx.Response) -> str:
    """The API's own words: Prometheus's {"error": "..."} or Google's {"error": {"message"}}."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))  # pyright: ignore[reportUnknownMemberType]
    return str(error or body)[:300]


@dataclass
class PrometheusWindows:
    """`mark` and `window` of the platform interface, over one Prometheus query API."""

    http: httpx.Client  # base_url: the API root (CLOUD_MONITORING_API); authenticated by the caller
    # More label matchers every series must carry: on GKE the cluster, since environments that
    # share a project may run revisions of the same name in clusters of their own.
    where: str = ""
    max_lag_s: float = 90.0
    clock: Callable[[], float] = field(default=time.time)

    def mark(self, revision: str) -> Mark:
        del revision  # a window of any revision starts at the same moment
        return self.clock()

    def window(self, revision: str, since: Mark) -> Snapshot | None:
        if not REVISION_NAME.match(revision):
            raise ValueError(f"{revision!r} is not a revision name (<service>-<sha7>-<sequence>)")
        if not isinstance(since, float | int):
            raise TypeError(f"a Prometheus window starts at a time, not {since!r}")
        end = self.clock()
        seconds = max(1, math.ceil(end - since))
        mine = f'revision="{revision}"{self.where}'
        selector = f'{mine},route=~"{"|".join(sorted(PREDICTION_ROUTES))}"'
        newest = self._vector(f"max(timestamp(http_requests_total{{{selector}}}))", end)
        if not newest or newest[0][1] < end - self.max_lag_s:
            return None  # the backend has nothing this recent for the revision yet
        requests = f"http_requests_total{{{selector}}}"
        errors = f'http_requests_total{{{selector},status=~"5.."}}'
        latency = f"http_request_duration_seconds_bucket{{{selector}}}"
        scores = f"prediction_score_bucket{{{mine}}}"
        return Snapshot(
            requests=self._total(f"sum(increase({requests}[{seconds}s]))", end),
            errors=self._total(f"sum(increase({errors}[{seconds}s]))", end),
            latency=self._buckets(f"sum by (le) (increase({latency}[{seconds}s]))", end),
            scores=self._buckets(f"sum by (le) (increase({scores}[{seconds}s]))", end),
            shadow=self._shadow(mine, seconds, end),
        )

    def _shadow(self, matchers: str, seconds: int, end: float) -> ShadowCounts | None:
        """The mirroring counters of the revision `matchers` select; None when it has none (it
        cannot mirror)."""
        mine = f"{{{matchers}}}[{seconds}s]"
        outcomes = self._vector(f"sum by (outcome) (increase(shadow_requests_total{mine}))", end)
        if not outcomes:
            return None
        values = {labels["outcome"]: value for labels, value in outcomes}
        for counter in ("shadow_shifted_predictions_total", "shadow_decision_flips_total"):
            values[counter] = self._total(f"sum(increase({counter}{mine}))", end)
        differences = self._buckets(
            f"sum by (le) (increase(shadow_logit_difference_bucket{mine}))", end
        )
        return shadow_counts(values, differences)

    def _vector(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        try:
            response = self.http.get("/api/v1/query", params={"query": query, "time": f"{at:.3f}"})
        except httpx.HTTPError as error:
            raise MetricsError(f"the metrics API did not answer: {error!r}") from error
        if response.status_code != 200:
            raise MetricsError(
                f"the metrics API answered {response.status_code}: {_error(response)}"
            )
        body: dict[str, Any] = response.json()
        data = body.get("data") or {}
        if body.get("status") != "success" or data.get("resultType") != "vector":
            raise MetricsError(f"unexpected answer to {query!r}: {str(body)[:300]}")
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def _total(self, query: str, at: float) -> float:
        return sum(value for _, value in self._vector(query, at))

    def _buckets(self, query: str, at: float) -> Buckets:
        return {
            math.inf if labels["le"] == "+Inf" else float(labels["le"]): value
            for labels, value in self._vector(query, at)
        }
