"""The monitoring figures as Cloud Monitoring time series, and the alert policy's names for them."""

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from google.api_core.exceptions import PreconditionFailed

from environments.monitoring_policy import MonitoringPolicy, promql_name
from environments.stack_settings import load_file
from pipelines.bucket_registry import default_client
from pipelines.data import DataSpec
from pipelines.monitoring.archive import archive_report, report_prefix
from pipelines.monitoring.cloud_metrics import MetricsError, publish, time_series
from pipelines.monitoring.monitor import monitor
from tests.pipelines.fake_gcs import FakeStorage, storage_emulator
from tests.pipelines.monitoring.conftest import Monitored


def test_the_promql_name_follows_cloud_monitoring_s_mapping() -> None:
    assert promql_name("custom.googleapis.com/ml_monitoring/signal") == (
        "custom_googleapis_com:ml_monitoring_signal"
    )
    assert promql_name("custom.googleapis.com/opencensus/opencensus.io/http/server/count") == (
        "custom_googleapis_com:opencensus_opencensus_io_http_server_count"
    )


def test_each_signal_feature_and_figure_is_one_gauge_labelled_with_its_service(
    monitored: Monitored,
) -> None:
    window = monitored.window(DataSpec(n_rows=3000, seed=71, amount_scale=1.8))
    result = monitor(monitored.metadata, window, window, MonitoringPolicy())
    settings = load_file("prod")
    series = time_series(result, settings, datetime(2026, 12, 1, tzinfo=UTC))
    signals = {s["metric"]["labels"]["signal"]: s["points"][0]["value"]["doubleValue"]
               for s in series if s["metric"]["type"].endswith("/signal")}  # fmt: skip
    assert signals["feature_drift"] == 1.0
    assert signals["performance"] == 0.0
    assert len(signals) == 5
    for one in series:
        assert one["metric"]["labels"]["environment"] == "prod"
        assert one["metric"]["labels"]["service"] == settings.service_name
        assert one["resource"] == {"type": "global", "labels": {"project_id": settings.project}}
        assert one["points"][0]["interval"]["endTime"] == "2026-12-01T00:00:00Z"
    features = {
        s["metric"]["labels"]["feature"] for s in series if "feature" in s["metric"]["labels"]
    }
    assert {"amount", "channel", "score"} <= features


def test_publishing_sends_batches_and_explains_a_refusal(monitored: Monitored) -> None:
    window = monitored.window(DataSpec(n_rows=2000, seed=72))
    result = monitor(monitored.metadata, window, window, MonitoringPolicy())
    bodies: list[dict[str, object]] = []

    def accept(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v3/projects/my-ml-prod/timeSeries"
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    count = publish(httpx.Client(transport=httpx.MockTransport(accept)), result, load_file("prod"))
    assert count == sum(len(b["timeSeries"]) for b in bodies) > 10  # type: ignore[arg-type]
    denied = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(403, text="no")))
    with pytest.raises(MetricsError, match=r"roles/monitoring\.metricWriter"):
        publish(denied, result, load_file("prod"))


def test_a_cloud_run_s_report_is_kept_in_the_bucket_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Created with a precondition, never overwritten: what the job's identity may do."""
    (tmp_path / "monitoring.md").write_text("# Monitoring\n")
    (tmp_path / "monitoring.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a report file")
    storage = FakeStorage(buckets={"b"})
    with storage_emulator(storage) as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        prefix = report_prefix("fraud-scorer", datetime(2026, 12, 1, 5, tzinfo=UTC))
        kept = archive_report(default_client(), "b", prefix, tmp_path)
        assert kept == [
            "gs://b/monitoring/fraud-scorer/2026-12-01T050000Z/monitoring.json",
            "gs://b/monitoring/fraud-scorer/2026-12-01T050000Z/monitoring.md",
        ]
        assert storage.objects["b", f"{prefix}/monitoring.md"].data == b"# Monitoring\n"
        with pytest.raises(PreconditionFailed):
            archive_report(default_client(), "b", prefix, tmp_path)
