"""A monitoring run and the retrain it may start, end to end: the `monitor` and `retrain`
commands and the drift demo all go through these two functions."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from environments.model_gates import ModelGates
from environments.monitoring_policy import MonitoringPolicy
from pipelines.atomic_file import write_text_atomic
from pipelines.delivery.github_api import Repository
from pipelines.evaluation.model_card import CARD_FILE, write_reports
from pipelines.experiments.events import EventStore
from pipelines.model_location import BUCKET_SCHEME, local_model, publish_to
from pipelines.monitoring.attempts import Attempt, AttemptLog
from pipelines.monitoring.monitor import MonitorError, Monitoring, monitor
from pipelines.monitoring.observed import most_served, read_window
from pipelines.monitoring.proposal import FAILED_FILE, Proposal, failure_report, write_local
from pipelines.monitoring.report import write_report
from pipelines.monitoring.retrain import Decision, decide, retrain
from pipelines.pinned_model import REPOSITORY_ROOT, pin
from pipelines.train import compiled_bytes
from service.artifact import read_metadata

HOUR = 3600.0
# The most predictions one run reads: enough for every test, bounded in memory and query cost.
MAX_ROWS = 200_000
RETRAIN_LABEL = "retraining"


@dataclass(frozen=True)
class Watch:
    """One environment's monitoring: its events, its registry, its policy, where reports and
    attempt records go."""

    environment: str
    store: EventStore
    registry: str  # a folder, or gs://<bucket>/<prefix>
    policy: MonitoringPolicy
    reports: Path
    attempts: AttemptLog
    # Where a local proposal's branch is made (a folder that is not a git checkout: none).
    checkout: Path = REPOSITORY_ROOT

    def model_location(self, version: str) -> str:
        if self.registry.startswith(BUCKET_SCHEME):
            return f"{self.registry.rstrip('/')}/{version}"
        return str(Path(self.registry) / version)


@dataclass(frozen=True)
class Watched:
    """A monitoring run's result, the model it judged, and its report."""

    result: Monitoring
    model: str
    report: Path


def run_monitor(watch: Watch, since: float | None = None, model: str | None = None) -> Watched:
    """Monitor the model that served most of the window (or `model`) since `since` (default:
    the policy's window back from now); writes the report."""
    since = time.time() - watch.policy.window_hours * HOUR if since is None else since
    if model is None:
        version = most_served(watch.store, since)
        if version is None:
            raise MonitorError(
                f"no prediction with its inputs in the window of {watch.environment} since "
                f"{datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M} UTC: nothing to monitor"
            )
        model = watch.model_location(version)
    with local_model(model) as found:
        metadata = read_metadata(found.folder)
    served = read_window(watch.store, since, MAX_ROWS, metadata.version)
    labelled = read_window(watch.store, since, MAX_ROWS, metadata.version, labelled=True)
    result = monitor(metadata, served, labelled, watch.policy)
    window = (
        f"{watch.environment}, since {datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    return Watched(result, model, write_report(result, watch.reports, window))


@dataclass(frozen=True)
class Retraining:
    """What the retraining policy decided and what came of it."""

    decision: Decision
    outcome: Literal["skipped", "proposed", "failed_gates"]
    detail: str


def run_retrain(
    watch: Watch,
    watched: Watched,
    gates: ModelGates,
    github: tuple[Repository, str] | None = None,
    since: float | None = None,
    seed: int = 101,
) -> Retraining:
    """Apply the retraining policy to a monitoring run; retrain, gate, publish and propose when
    it says so. `github`: the repository and base branch to open the pull request (or the
    issue) in; without it the proposal is written locally."""
    retraining = watch.policy.retraining
    since = time.time() - retraining.window_hours * HOUR if since is None else since
    labelled = read_window(watch.store, since, MAX_ROWS, labelled=True)
    now = datetime.now(UTC)
    decision = decide(watched.result, labelled, retraining, watch.attempts.attempts(), now)
    if not decision.retrain:
        return Retraining(decision, "skipped", decision.reason)
    folder = watch.reports / "retrain"
    with local_model(watched.model) as champion:
        retrained = retrain(labelled, champion, gates, retraining, seed)
    write_reports(retrained.evaluation, folder)
    card = (folder / CARD_FILE).read_text(encoding="utf-8")
    monitoring = watched.report.read_text(encoding="utf-8")
    if not retrained.evaluation.verdict["passed"]:
        text = failure_report(watch.environment, decision, card, monitoring)
        write_text_atomic(folder / FAILED_FILE, text)
        where = str(folder / FAILED_FILE)
        if github:
            title = f"Retrained model failed its gates in {watch.environment}"
            where = github[0].upsert_issue(title, RETRAIN_LABEL, text)
        failed = ", ".join(retrained.evaluation.verdict["failed_gates"])
        watch.attempts.record(Attempt(at=now, triggers=decision.triggers,
                                      outcome="failed_gates", detail=failed))  # fmt: skip
        return Retraining(decision, "failed_gates", f"failed {failed}; report: {where}")
    location = publish_to(watch.registry, retrained.result.model_bytes, retrained.metadata,
                          compiled_bytes(retrained.result))  # fmt: skip
    pinned = pin(location, folder / "pin.json")
    proposal = Proposal(watch.environment, pinned, decision, card, monitoring)
    if github:
        where = github[0].propose_file(proposal.change(base=github[1]))
    else:
        where = write_local(proposal, folder, watch.checkout)
    watch.attempts.record(Attempt(at=now, triggers=decision.triggers, outcome="proposed",
                                  candidate=location, detail=where))  # fmt: skip
    return Retraining(decision, "proposed", f"{location} proposed: {where}")
