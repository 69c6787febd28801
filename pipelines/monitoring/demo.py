"""The local drift demo: a real service process, its traffic moved through time with the sample
data's drift knobs, and the monitor and the retraining policy run on its own event log.

Each scenario serves the same champion (the default model, trained months ago), first on
labelled transactions like its training data (the history), then on the scenario's own window,
whose labels arrive later. The monitor runs on that window twice: before the labels (what drift
detection and the confidence-based estimate can see) and after. Then the retraining policy
decides, and a retrain is gated against the champion on the newest labelled rows: a pass becomes
a pull request's text and a branch, a failure a report. Everything is seeded, so a run repeats.
"""

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from environments.model_gates import ModelGates
from environments.monitoring_policy import MonitoringPolicy
from pipelines.data import Dataset, DataSpec, generate, records
from pipelines.experiments.events import LogFiles
from pipelines.monitoring.attempts import FolderAttempts
from pipelines.monitoring.run import Retraining, Watch, Watched, run_monitor, run_retrain
from pipelines.pinned_model import REPOSITORY_ROOT
from pipelines.server_process import free_port, service_process
from pipelines.train import TrainConfig, train_and_publish

CHAMPION = TrainConfig()  # the default model: 40,000 rows, seed 7


@dataclass(frozen=True)
class Volume:
    """Transactions of history before each scenario's window, and in the window. A retrained
    model needs as many labelled rows as the champion was trained on to pass the behavioural
    gates (measured: 28,000 rows pass, 24,000 do not), hence the history."""

    history: int = 36_000
    now: int = 14_000


BATCH = 100
SENDERS = 4  # concurrent feedback senders


@dataclass(frozen=True)
class Scenario:
    """The traffic of one scenario's window, and what the demo promises about it."""

    name: str
    now: DataSpec  # its n_rows is the Volume's
    alert_before_labels: str | None  # the signal raised before any label, if one must be
    alert_after_labels: str | None  # ... and once the labels are in
    retrains: bool


SCENARIOS = (
    Scenario("no-drift", DataSpec(seed=62), None, None, retrains=False),
    Scenario(
        "covariate-drift", DataSpec(seed=63, amount_scale=1.8, online_share=0.4),
        "feature_drift", "feature_drift", retrains=True,
    ),
    Scenario(
        "concept-drift", DataSpec(seed=64, concept_shift=1.0), None, "performance", retrains=True
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What one scenario's runs raised and what retraining made of it."""

    scenario: Scenario
    before: Watched
    after: Watched
    retraining: Retraining

    @property
    def as_designed(self) -> bool:
        wanted = self.scenario
        before, after = self.before.result.raised, self.after.result.raised
        return (
            (wanted.alert_before_labels in before if wanted.alert_before_labels else not before)
            and (wanted.alert_after_labels in after if wanted.alert_after_labels else not after)
            and (self.retraining.outcome != "skipped") == wanted.retrains
        )


def predict(client: httpx.Client, data: Dataset) -> list[tuple[str, int, bool]]:
    """Score every row in batches; returns (request id, item, true label) per row."""
    answered: list[tuple[str, int, bool]] = []
    for start in range(0, len(data), BATCH):
        rows = range(start, min(start + BATCH, len(data)))
        response = client.post("/v1/predict/batch", json={"instances": records(data, rows)})
        response.raise_for_status()
        request_id = response.json()["request_id"]
        answered += [(request_id, item, bool(data.labels[row])) for item, row in enumerate(rows)]
    return answered


def label(url: str, answered: list[tuple[str, int, bool]]) -> None:
    """The true outcome of each prediction, as a fraud team reports it later."""

    def send(part: list[tuple[str, int, bool]]) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            for request_id, item, is_fraud in part:
                body = {"request_id": request_id, "item": item, "is_fraud": is_fraud}
                client.post("/v1/feedback", json=body).raise_for_status()

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, [answered[n::SENDERS] for n in range(SENDERS)]))


@dataclass(frozen=True)
class Setting:
    """What every scenario shares: the champion, where things go, the policy and the gates."""

    champion: Path
    registry: Path
    workdir: Path
    reports: Path
    policy: MonitoringPolicy
    gates: ModelGates
    volume: Volume
    checkout: Path


def run_scenario(scenario: Scenario, setting: Setting, console: Console) -> Outcome:
    """History, then the scenario's window; monitor before and after its labels; retrain."""
    folder = setting.workdir / scenario.name
    volume = setting.volume
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = folder / "service.log"
    log.touch()  # the event store reads it from the start
    history = generate(DataSpec(n_rows=volume.history, seed=61))
    attempts = FolderAttempts(folder / "attempts")
    watch = Watch("local", LogFiles([log]), str(setting.registry), setting.policy,
                  setting.reports / scenario.name, attempts, setting.checkout)  # fmt: skip
    champion = setting.champion
    with service_process(champion, free_port(), log, {"K_REVISION": scenario.name}) as server:
        server.wait_ready(timeout_s=90)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            with console.status(f"{scenario.name}: {volume.history:,} transactions of history"):
                label(server.url, predict(client, history))
            window_start = time.time()
            with console.status(f"{scenario.name}: {volume.now:,} transactions now"):
                answered = predict(client, generate(replace(scenario.now, n_rows=volume.now)))
        before = run_monitor(
            replace(watch, reports=watch.reports / "before-labels"), window_start, str(champion)
        )
        with console.status(f"{scenario.name}: the labels arrive"):
            label(server.url, answered)
    after = run_monitor(watch, since=window_start, model=str(champion))
    with console.status(f"{scenario.name}: retraining policy"):
        retraining = run_retrain(watch, after, setting.gates, since=0.0)
    return Outcome(scenario, before, after, retraining)


def run_drift_demo(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    workdir: Path, reports: Path, policy: MonitoringPolicy, gates: ModelGates, console: Console,
    volume: Volume = Volume(), checkout: Path = REPOSITORY_ROOT,
) -> list[Outcome]:  # fmt: skip
    """Every scenario against one champion; prints and returns what each raised and made. A
    proposal's branch goes to `checkout` (no branch when it is not a git checkout)."""
    registry = workdir / "registry"
    shutil.rmtree(registry, ignore_errors=True)
    with console.status("training the champion"):
        champion = train_and_publish(CHAMPION, registry)
    setting = Setting(champion, registry, workdir, reports, policy, gates, volume, checkout)
    outcomes = []
    for scenario in SCENARIOS:
        console.rule(scenario.name)
        outcome = run_scenario(scenario, setting, console)
        table = Table(show_header=False)
        table.add_row("before labels", ", ".join(outcome.before.result.raised) or "nothing raised")
        table.add_row("after labels", ", ".join(outcome.after.result.raised) or "nothing raised")
        table.add_row("retraining", f"{outcome.retraining.outcome}: {outcome.retraining.detail}")
        table.add_row("report", str(outcome.after.report))
        console.print(table)
        colour = "green" if outcome.as_designed else "red"
        console.print(f"[{colour}]{'as designed' if outcome.as_designed else 'NOT as designed'}[/]")
        outcomes.append(outcome)
    return outcomes
