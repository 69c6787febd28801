"""The retraining policy: what starts a retrain, the data it needs, how often it may run; and
a candidate that fails its gates is never published or proposed."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from environments.model_gates import load_gates
from environments.monitoring_policy import MonitoringPolicy, RetrainingPolicy
from environments.stack_file import ENVIRONMENTS_DIR
from pipelines.bucket_registry import default_client
from pipelines.data import DataSpec
from pipelines.experiments.events import LogFiles
from pipelines.model_registry import publish, versions
from pipelines.monitoring.attempts import Attempt, BucketAttempts, FolderAttempts
from pipelines.monitoring.monitor import Finding, Monitoring
from pipelines.monitoring.retrain import decide
from pipelines.monitoring.run import Watch, Watched, run_retrain
from pipelines.train import compiled_bytes
from service.events import EventLog, Served
from service.schemas import Transaction
from tests.pipelines.fake_gcs import FakeStorage, storage_emulator
from tests.pipelines.monitoring.conftest import Monitored

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
POLICY = RetrainingPolicy(min_labelled_rows=1000, min_labelled_frauds=20, cooldown_hours=24,
                          max_per_week=2)  # fmt: skip


def raised(*signals: str) -> Monitoring:
    return Monitoring("v1", 5000, 3000, [Finding(s, True, "test") for s in signals])  # type: ignore[arg-type]


def attempt(hours_ago: float) -> Attempt:
    return Attempt(at=NOW - timedelta(hours=hours_ago), triggers=["performance"],
                   outcome="failed_gates")  # fmt: skip


@pytest.fixture(scope="module")
def labelled(monitored: Monitored):
    return monitored.window(DataSpec(n_rows=3000, seed=51))


def test_only_the_policy_s_triggers_start_a_retrain(labelled) -> None:
    assert not decide(raised(), labelled, POLICY, [], NOW).retrain
    quiet = decide(raised("score_drift"), labelled, POLICY, [], NOW)
    assert not quiet.retrain
    assert "raised: score_drift" in quiet.reason
    go = decide(raised("score_drift", "performance"), labelled, POLICY, [], NOW)
    assert go.retrain
    assert go.triggers == ["performance"]


def test_too_little_labelled_data_waits_for_feedback(labelled) -> None:
    strict = POLICY.model_copy(update={"min_labelled_rows": 5000})
    decision = decide(raised("performance"), labelled, strict, [], NOW)
    assert not decision.retrain
    assert "3000 labelled predictions" in decision.reason
    assert "needs 5000 labelled predictions" in decision.reason
    frauds = POLICY.model_copy(update={"min_labelled_frauds": 10_000})
    assert not decide(raised("performance"), labelled, frauds, [], NOW).retrain


def test_the_cool_down_and_the_weekly_limit_are_honoured(labelled) -> None:
    cooling = decide(raised("performance"), labelled, POLICY, [attempt(23)], NOW)
    assert not cooling.retrain
    assert "cooling down" in cooling.reason
    assert decide(raised("performance"), labelled, POLICY, [attempt(25)], NOW).retrain
    week = [attempt(24 * 6), attempt(30)]
    limited = decide(raised("performance"), labelled, POLICY, week, NOW)
    assert not limited.retrain
    assert "2 attempts in the last 7 days" in limited.reason
    older = [attempt(24 * 8), attempt(30)]
    assert decide(raised("performance"), labelled, POLICY, older, NOW).retrain


def test_attempts_are_kept_one_file_each_in_a_folder(tmp_path: Path) -> None:
    log = FolderAttempts(tmp_path / "attempts")
    assert log.attempts() == []
    log.record(attempt(30))
    log.record(attempt(2))
    assert [a.at for a in log.attempts()] == [attempt(30).at, attempt(2).at]


def test_attempts_are_kept_one_object_each_in_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Created, never overwritten: what the job's identity is allowed."""
    storage = FakeStorage(buckets={"b"})
    with storage_emulator(storage) as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        log = BucketAttempts(default_client(), "b", "retraining/fraud-scorer")
        where = log.record(attempt(2))
        log.record(attempt(1))
        assert where.startswith("gs://b/retraining/fraud-scorer/attempt-")
        assert [a.at for a in log.attempts()] == [attempt(2).at, attempt(1).at]
        assert len(storage.objects) == 2


def write_events(path: Path, monitored: Monitored, spec: DataSpec, version: str = "v1") -> None:
    """The service's own event lines for `spec`'s rows served by `version`, each with its
    feedback."""
    window = monitored.window(spec)
    assert window.labels is not None
    names = list(window.columns)
    columns = zip(*(window.columns[name].tolist() for name in names), strict=True)
    rows = [dict(zip(names, values, strict=True)) for values in columns]
    with path.open("ab") as handle:
        events = EventLog("rev", write=handle.write)
        for n, row in enumerate(rows):
            served = Served(f"r{spec.seed}-{n}", "predict", version, 0.5)
            events.predictions(served, [Transaction.model_validate(row)],
                               [float(window.scores[n])], [bool(window.decisions[n])])  # fmt: skip
            events.feedback(served.request_id, 0, bool(window.labels[n]))


def test_a_candidate_that_fails_its_gates_is_never_published_or_proposed(
    monitored: Monitored, tmp_path: Path
) -> None:
    """Concept drift with too few new labels: the retrain fails the gates, the registry keeps
    only the champion, no pull request text is written, the attempt is recorded."""
    registry = tmp_path / "registry"
    champion = publish(
        monitored.result.model_bytes, monitored.metadata, registry, compiled_bytes(monitored.result)
    )
    log = tmp_path / "service.log"
    write_events(log, monitored, DataSpec(n_rows=2500, seed=52, concept_shift=1.0))
    policy = MonitoringPolicy(retraining=POLICY)
    attempts = FolderAttempts(tmp_path / "attempts")
    watch = Watch("local", LogFiles([log]), str(registry), policy, tmp_path / "reports", attempts)
    (tmp_path / "reports").mkdir()
    report = tmp_path / "reports" / "monitoring.md"
    report.write_text("# Monitoring\n")
    watched = Watched(raised("performance"), str(champion), report)
    outcome = run_retrain(watch, watched, load_gates(ENVIRONMENTS_DIR / "model_gates.yaml"),
                          since=0.0)  # fmt: skip
    assert outcome.outcome == "failed_gates", outcome.detail
    assert versions(registry) == ["v1"], "nothing published"
    assert not list(tmp_path.rglob("pull-request.md")), "nothing proposed"
    failed = (tmp_path / "reports" / "retrain" / "failed-gates.md").read_text()
    assert "nothing ships" in failed
    assert "| quality | FAIL |" in failed
    (recorded,) = attempts.attempts()
    assert recorded.outcome == "failed_gates"
    assert recorded.candidate is None
