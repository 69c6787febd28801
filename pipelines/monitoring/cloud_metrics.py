"""A monitoring run's figures as Cloud Monitoring custom metrics, where the alert policies
(infra/monitoring.py) watch them beside the service's 5xx ratio and latency.
https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.timeSeries/create

Gauges on the `global` resource, labelled with the environment and the service; Cloud
Monitoring creates each metric's descriptor with its first point.
"""

from datetime import UTC, datetime
from typing import Any

import httpx

from environments.monitoring_policy import (
    FIGURE_METRIC,
    PREDICTIONS_METRIC,
    PSI_METRIC,
    SIGNAL_METRIC,
)
from environments.stack_settings import StackSettings
from pipelines.monitoring.monitor import Monitoring

MONITORING_API = "https://monitoring.googleapis.com/v3"
BATCH = 200  # time series per request, the API's limit


class MetricsError(RuntimeError):
    """Cloud Monitoring refused or did not answer; the message says which and why."""


def time_series(result: Monitoring, settings: StackSettings, at: datetime) -> list[dict[str, Any]]:
    """One point per signal, feature, figure and the window's size."""
    base = {"environment": settings.environment, "service": settings.service_name}
    points: list[tuple[str, dict[str, str], float]] = [
        (SIGNAL_METRIC, {"signal": f.signal}, float(f.raised)) for f in result.findings
    ]
    points.append((PREDICTIONS_METRIC, {}, float(result.predictions)))
    drifts = [*result.features, *([result.score] if result.score else [])]
    points += [(PSI_METRIC, {"feature": d.name}, d.psi) for d in drifts]
    figures = [result.low_confidence, *result.estimated, *result.measured]
    points += [
        (FIGURE_METRIC, {"figure": f.name.replace(" ", "_").replace("-", "_")}, f.value)
        for f in figures
        if f is not None
    ]
    end = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return [
        {
            "metric": {"type": metric, "labels": base | labels},
            "resource": {"type": "global", "labels": {"project_id": settings.project}},
            "metricKind": "GAUGE",
            "valueType": "DOUBLE",
            "points": [{"interval": {"endTime": end}, "value": {"doubleValue": value}}],
        }
        for metric, labels, value in points
    ]


def publish(http: httpx.Client, result: Monitoring, settings: StackSettings) -> int:
    """Write the run's time series; returns how many."""
    series = time_series(result, settings, datetime.now(UTC))
    url = f"{MONITORING_API}/projects/{settings.project}/timeSeries"
    for start in range(0, len(series), BATCH):
        try:
            response = http.post(url, json={"timeSeries": series[start : start + BATCH]})
        except httpx.HTTPError as error:
            raise MetricsError(f"Cloud Monitoring did not answer: {error!r}") from error
        if response.status_code != 200:
            hint = (
                " (the job's identity needs roles/monitoring.metricWriter)"
                if response.status_code == 403
                else ""
            )
            raise MetricsError(
                f"Cloud Monitoring answered {response.status_code}{hint}: {response.text[:300]}"
            )
    return len(series)
