"""The local demo: train four models, promote a healthy canary, roll back a faulty one, and stop
a worse model before it gets any traffic.

Every candidate first goes through the offline gates against the model serving now (the
champion). Then everything runs on 127.0.0.1: each revision is a real service process, a router
splits traffic, a traffic generator plays the users, and the rollout controller decides, stepping
through the same release state machine as the Pulumi program (environments/release.py).
"""

import json
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from environments.model_gates import load_gates
from environments.rollout_policy import load_policy
from pipelines.data import DataSpec
from pipelines.evaluation.evaluate import evaluate_model
from pipelines.evaluation.model_card import write_reports
from pipelines.model_location import LocalModel
from pipelines.rollout.platform import Candidate
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.rollout.platforms.local.traffic_generator import TrafficGenerator
from pipelines.rollout.report import RolloutSummary
from pipelines.rollout.run import STATE_FILE, execute
from pipelines.rollout.state import StateFile
from pipelines.train import TrainConfig, train_and_publish

SERVICE = "fraud-scorer"
USERS_PER_SECOND = 80.0
# v3's defect: one prediction in five fails, as a crashing code path would.
FAULT = {"FAULT_ERROR_RATE": "0.2"}
# v4: a tenth of the data and a few boosting rounds: it serves fine, and ranks fraud worse.
MODELS = {
    "v1": TrainConfig(data=DataSpec(seed=7)),
    "v2": TrainConfig(data=DataSpec(seed=8)),
    "v3": TrainConfig(data=DataSpec(seed=9)),
    "v4": TrainConfig(data=DataSpec(n_rows=4_000, seed=10), max_iter=5),
}


def passes_offline_gates(
    candidate: Candidate, champion: Candidate, reports: Path, console: Console
) -> bool:
    """The candidate's verdict against the model serving now; its model card in `reports`."""
    with console.status(f"offline gates: {candidate.name}") as status:
        evaluation = evaluate_model(
            LocalModel.of(candidate.model_dir),
            LocalModel.of(champion.model_dir),
            load_gates(),
            progress=status.update,
        )
    write_reports(evaluation, reports / "model" / candidate.name)
    for gate in evaluation.verdict["gates"]:
        mark = "[green]pass[/]" if gate["passed"] else "[red]FAIL[/]"
        console.print(f"  {mark} {gate['gate']:<10} {gate['reason']}")
    return bool(evaluation.verdict["passed"])


def _summary_table(rows: list[tuple[str, RolloutSummary]]) -> Table:
    table = Table(title="rollouts")
    for column in ("revision", "outcome", "time to rollback", "failed user requests", "reason"):
        table.add_column(column)
    for name, s in rows:
        seconds = f"{s.seconds_to_rollback:.1f} s" if s.seconds_to_rollback is not None else "-"
        failed = f"{s.failed_requests}/{s.user_requests} ({s.failed_request_ratio:.2%})"
        table.add_row(name, s.outcome.replace("_", " "), seconds, failed, s.reason)
    return table


def run_demo(registry: Path, reports: Path, console: Console) -> dict[str, Any]:
    """Run the demo end to end; returns (and writes) `reports/summary.json`."""
    shutil.rmtree(registry, ignore_errors=True)
    shutil.rmtree(reports, ignore_errors=True)
    models = {}
    for version, config in MODELS.items():
        with console.status(f"training model {version}"):
            models[version] = train_and_publish(config, registry)
        console.print(f"trained {version}: {models[version]}")
    policy = load_policy("local")
    platform = LocalPlatform(reports / "platform")
    stable = Candidate(f"{SERVICE}-v1", models["v1"])
    healthy = Candidate(f"{SERVICE}-v2", models["v2"])
    faulty = Candidate(f"{SERVICE}-v3", models["v3"], env=dict(FAULT))
    worse = Candidate(f"{SERVICE}-v4", models["v4"])
    champion = stable
    stopped: list[str] = []
    traffic: TrafficGenerator | None = None
    try:
        with console.status("starting v1 and the router"):
            platform.start(stable)
        console.print(f"router on {platform.router_url}: {stable.name} serves 100%")
        traffic = TrafficGenerator(platform.router_url, USERS_PER_SECOND).start()
        results = []
        for candidate in (healthy, faulty, worse):
            console.rule(f"{candidate.name}: offline gates against {champion.name}")
            if not passes_offline_gates(candidate, champion, reports, console):
                console.print(f"[red]{candidate.name} is stopped before any traffic[/]")
                stopped.append(candidate.name)
                continue
            console.rule(f"canary {candidate.name}")
            state, summary = execute(
                platform, policy, candidate, StateFile(platform.workdir / STATE_FILE), reports,
                console, outcomes=lambda: list(traffic.outcomes) if traffic else [],
            )  # fmt: skip
            results.append((candidate.name, summary))
            champion = candidate if state.phase == "promoted" else champion
    finally:
        if traffic is not None:
            traffic.stop()
        platform.shutdown()

    console.print(_summary_table(results))
    promoted = next((name for name, s in results if s.outcome == "promoted"), None)
    rolled_back = next(((name, s) for name, s in results if s.outcome == "rolled_back"), None)
    summary = {
        "promoted": promoted,
        "rolled_back": rolled_back[0] if rolled_back else None,
        "stopped_offline": stopped,
        "rollback_reason": rolled_back[1].reason if rolled_back else None,
        "seconds_to_rollback": rolled_back[1].seconds_to_rollback if rolled_back else None,
        "failed_request_ratio": rolled_back[1].failed_request_ratio if rolled_back else None,
        "rollouts": {
            name: {**s.__dict__, "failed_request_ratio": s.failed_request_ratio}
            for name, s in results
        },
        "reports": {name: str(reports / f"{name}.md") for name, _ in results},
        "model_cards": {
            c.name: str(reports / "model" / c.name / "model_card.md")
            for c in (healthy, faulty, worse)
        },
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"reports: {reports}/<revision>.md (+ .png timeline, .json); summary: "
                  f"{reports / 'summary.json'}; revision logs: {reports / 'platform'}")  # fmt: skip
    return summary
