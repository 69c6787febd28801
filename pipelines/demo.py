"""The local demo: train three models, promote a healthy canary, roll back a faulty one.

Everything runs on 127.0.0.1: each revision is a real service process, a router splits traffic,
a traffic generator plays the users, and the rollout controller decides, stepping through the
same release state machine as the Pulumi program (environments/release.py).
"""

import json
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from environments.rollout_policy import load_policy
from pipelines.data import DataSpec
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
    for version, seed in (("v1", 7), ("v2", 8), ("v3", 9)):
        with console.status(f"training model {version}"):
            models[version] = train_and_publish(TrainConfig(data=DataSpec(seed=seed)), registry)
        console.print(f"trained {version}: {models[version]}")
    policy = load_policy("local")
    platform = LocalPlatform(reports / "platform")
    stable = Candidate(f"{SERVICE}-v1", models["v1"])
    healthy = Candidate(f"{SERVICE}-v2", models["v2"])
    faulty = Candidate(f"{SERVICE}-v3", models["v3"], env=dict(FAULT))
    traffic: TrafficGenerator | None = None
    try:
        with console.status("starting v1 and the router"):
            platform.start(stable)
        console.print(f"router on {platform.router_url}: {stable.name} serves 100%")
        traffic = TrafficGenerator(platform.router_url, USERS_PER_SECOND).start()
        results = []
        for candidate in (healthy, faulty):
            console.rule(f"canary {candidate.name}")
            _, summary = execute(
                platform, policy, candidate, StateFile(platform.workdir / STATE_FILE), reports,
                console, outcomes=lambda: list(traffic.outcomes) if traffic else [],
            )  # fmt: skip
            results.append((candidate.name, summary))
    finally:
        if traffic is not None:
            traffic.stop()
        platform.shutdown()

    console.print(_summary_table(results))
    good_name, good = results[0]
    bad_name, bad = results[1]
    summary = {
        "promoted": good_name if good.outcome == "promoted" else None,
        "rolled_back": bad_name if bad.outcome == "rolled_back" else None,
        "rollback_reason": bad.reason,
        "seconds_to_rollback": bad.seconds_to_rollback,
        "failed_request_ratio": bad.failed_request_ratio,
        "rollouts": {
            name: {**s.__dict__, "failed_request_ratio": s.failed_request_ratio}
            for name, s in results
        },
        "reports": {name: str(reports / f"{name}.md") for name, _ in results},
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"reports: {reports}/<revision>.md (+ .png timeline, .json); summary: "
                  f"{reports / 'summary.json'}; revision logs: {reports / 'platform'}")  # fmt: skip
    return summary
