"""The local experiment run: simulated users with a known true effect, over real HTTP.

Two real models, one real service process per run with the experiment on, users who send
transactions with X-User-Id and report the true outcome later, and the analysis on the
process's own log file. The true effect is measured offline first, on 100,000 held-out rows:
the weak model trained on a tenth of the data catches far less fraud than the default one. The
first run pits them against each other and must find a win; the second is an A/A run (the same
model on both arms) and must find no difference; the third interleaves their rankings of review
queues and must prefer the strong one. Everything is seeded, so the outcome repeats.
"""

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.progress import Progress

from environments.experiment import ExperimentPlan
from pipelines.data import Dataset, DataSpec, generate, records
from pipelines.experiments.analysis import Analysis, analyze
from pipelines.experiments.events import LogFiles
from pipelines.experiments.interleaved import (
    InterleavingResult,
    analyze_interleaving,
    write_interleaving_report,
)
from pipelines.experiments.report import write_report
from pipelines.server_process import free_port, service_process
from pipelines.train import TrainConfig, train_and_publish
from service.features import encode_columns
from service.model import ScoringModel

WEAK = TrainConfig(data=DataSpec(n_rows=4_000, seed=10), max_iter=5)
STRONG = TrainConfig(data=DataSpec(seed=7))
USERS = 500
USERS_PER_SECOND = 120.0
FRAUD_SHARE = 0.5  # the simulation sends more fraud than life does; recall does not depend on it
REPEATED_FEEDBACK = 0.03  # a client that retries: ignored by the analysis
UNMATCHED_FEEDBACK = 0.01  # feedback for a request id never answered: counted, never used
QUEUES = 300  # interleaving: review queues ranked by both models at once
QUEUE_LENGTH = 8
QUEUE_FRAUD_SHARE = 0.25
REVIEWED = 3  # positions a reviewer checks per queue


@dataclass(frozen=True)
class Run:
    """One experiment of the demo: which model serves each arm, and the users' seed."""

    name: str
    champion: Path
    challenger: Path
    seed: int


def fraud_caught(model_dir: Path, data: Dataset) -> float:
    """Recall at the model's own threshold: the metric the experiment measures online."""
    model = ScoringModel.load(model_dir)
    flagged = model.score_rows(encode_columns(data.columns)) >= model.threshold
    return float(flagged[data.labels].mean())


def simulate_users(url: str, data: Dataset, users: int, seed: int, progress: Progress) -> None:
    """Each user sends one to three transactions, then reports what each truly was."""
    rng = random.Random(seed)  # noqa: S311  # a reproducible simulation, not a secret
    frauds = np.flatnonzero(data.labels).tolist()
    legit = np.flatnonzero(~data.labels).tolist()
    task = progress.add_task("simulated users", total=users)
    started = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(users):
            time.sleep(max(0.0, started + n / USERS_PER_SECOND - time.monotonic()))
            user = f"user-{seed}-{n}"
            for _ in range(rng.randint(1, 3)):
                row = rng.choice(frauds if rng.random() < FRAUD_SHARE else legit)
                answer = client.post(
                    "/v1/predict", json=records(data, [row])[0], headers={"X-User-Id": user}
                )
                answer.raise_for_status()
                outcome = {"request_id": answer.json()["request_id"],
                           "is_fraud": bool(data.labels[row])}  # fmt: skip
                for _ in range(2 if rng.random() < REPEATED_FEEDBACK else 1):
                    client.post("/v1/feedback", json=outcome).raise_for_status()
            if rng.random() < UNMATCHED_FEEDBACK:
                stray = {"request_id": f"never-answered-{n}", "is_fraud": False}
                client.post("/v1/feedback", json=stray).raise_for_status()
            progress.advance(task)
    progress.remove_task(task)


def simulate_reviewers(url: str, data: Dataset, queues: int, seed: int, progress: Progress) -> None:
    """Each review queue of QUEUE_LENGTH transactions is ranked; a reviewer checks the top
    REVIEWED and reports which were fraud."""
    rng = random.Random(seed)  # noqa: S311  # a reproducible simulation, not a secret
    frauds = np.flatnonzero(data.labels).tolist()
    legit = np.flatnonzero(~data.labels).tolist()
    task = progress.add_task("review queues", total=queues)
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(queues):
            rows = [rng.choice(frauds if rng.random() < QUEUE_FRAUD_SHARE else legit)
                    for _ in range(QUEUE_LENGTH)]  # fmt: skip
            # The team draft is seeded by the request id: a fixed one makes the draft repeat too.
            answer = client.post(
                "/v1/rank",
                json={"transactions": records(data, rows)},
                headers={"x-request-id": f"queue-{seed}-{n}"},
            )
            answer.raise_for_status()
            ranking = answer.json()
            for placed in ranking["ranked"][:REVIEWED]:
                outcome = {"request_id": ranking["request_id"], "item": placed["item"],
                           "is_fraud": bool(data.labels[rows[placed["item"]]])}  # fmt: skip
                client.post("/v1/feedback", json=outcome).raise_for_status()
            progress.advance(task)
    progress.remove_task(task)


def run_experiment(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    run: Run, plan: ExperimentPlan, workdir: Path, console: Console, users: int, queues: int
) -> Analysis | InterleavingResult:
    """One service process with the experiment on, simulated users, then the analysis."""
    log = workdir / f"{run.name}.log"
    log.unlink(missing_ok=True)
    settings = {
        "EXPERIMENT_NAME": plan.name,
        "EXPERIMENT_SALT": f"{plan.name}-salt",
        "EXPERIMENT_ALLOCATION": str(plan.allocation),
        "EXPERIMENT_KIND": plan.kind,
        "EXPERIMENT_CHALLENGER_DIR": str(run.challenger),
        "K_REVISION": f"experiment-{run.name}",
    }
    traffic = generate(DataSpec(n_rows=20_000, seed=2041))
    with service_process(run.champion, free_port(), log, settings) as server:
        server.wait_ready(timeout_s=90)
        with Progress(console=console, transient=True) as progress:
            if plan.kind == "interleaving":
                simulate_reviewers(server.url, traffic, queues, run.seed, progress)
            else:
                simulate_users(server.url, traffic, users, run.seed, progress)
    if plan.kind == "interleaving":
        return analyze_interleaving(LogFiles([log]), plan)
    return analyze(LogFiles([log]), plan, look_seconds=1)


def run_experiment_demo(
    workdir: Path, reports: Path, console: Console, users: int = USERS, queues: int = QUEUES
) -> dict[str, str]:
    """The three runs from fresh models, with `users` per A/B run and `queues` rankings in the
    interleaving run; returns each run's decision."""
    shutil.rmtree(workdir / "registry", ignore_errors=True)
    with console.status("training a weak and a strong model"):
        weak = train_and_publish(WEAK, workdir / "registry")
        strong = train_and_publish(STRONG, workdir / "registry")
    held_out = generate(DataSpec(n_rows=100_000, seed=2031))
    effect = fraud_caught(strong, held_out) - fraud_caught(weak, held_out)
    console.print(f"true effect, measured offline on 100,000 rows: fraud caught {effect:+.1%}")
    runs = (
        (Run("challenger-wins", weak, strong, seed=1), ExperimentPlan(name="challenger-wins")),
        (Run("a-a", strong, strong, seed=2), ExperimentPlan(name="a-a")),
        (Run("ranking", weak, strong, seed=3),
         ExperimentPlan(name="ranking", kind="interleaving")),
    )  # fmt: skip
    decisions = {}
    for run, plan in runs:
        console.rule(f"{run.name}: {run.champion.name} vs {run.challenger.name}")
        analysis = run_experiment(run, plan, workdir, console, users, queues)
        path = (
            write_interleaving_report(analysis, reports)
            if isinstance(analysis, InterleavingResult)
            else write_report(analysis, reports)
        )
        colour = "green" if analysis.decision == "win" else "yellow"
        console.print(f"[{colour}]{analysis.decision}[/]: {analysis.reason}\nreport: {path}")
        decisions[run.name] = analysis.decision
    return decisions
