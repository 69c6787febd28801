"""Rollout benchmark (`make bench-rollout`): how fast and how cleanly faults are rolled back.

On the local platform with simulated users: for each fault, with and without the shadow phase,
the time from the candidate's first request (mirrored or canary) to traffic back on stable and
the user requests that failed during the rollout; then many healthy A/A rollouts with a short
bake for the false-rollback rate, next to the simulated rates of the sequential gates.
"""

import json
import os
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from environments.rollout_policy import RolloutPolicy, ShadowPhase, load_policy
from pipelines.data import Dataset, DataSpec, generate
from pipelines.model_registry import publish
from pipelines.rollout.calibration import simulated_failure_rate, simulated_shadow_failure_rate
from pipelines.rollout.platform import Candidate
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.rollout.platforms.local.traffic_generator import TrafficGenerator
from pipelines.rollout.report import RolloutSummary
from pipelines.rollout.run import STATE_FILE, execute
from pipelines.rollout.state import StateFile
from pipelines.train import TrainConfig, compiled_bytes, metadata_for, train

REPORT_DIR = Path("reports/bench")
WORKDIR = Path("runs/bench-rollout")
USERS_PER_SECOND = float(os.environ.get("BENCH_USERS_PER_SECOND", "80"))
REPEATS = int(os.environ.get("BENCH_FAULT_REPEATS", "3"))
AA_RUNS = int(os.environ.get("BENCH_AA_RUNS", "20"))


@dataclass(frozen=True)
class Scenario:
    """A fault to drill: which model the candidate serves and which FAULT_ settings it gets."""

    name: str
    model: str
    env: dict[str, str]


def _models(registry: Path) -> dict[str, Path]:
    folders = {}
    for name, seed, shuffle in (("stable", 7, False), ("healthy", 8, False), ("wrong", 9, True)):
        config = TrainConfig(data=DataSpec(seed=seed))
        data = generate(config.data)
        if shuffle:  # learned nothing: up, fast, plausible scores, silently wrong
            labels = np.random.default_rng(seed).permutation(data.labels)
            data = Dataset(data.columns, labels, data.groups, data.spec)
        result = train(config, data)
        folders[name] = publish(
            result.model_bytes, metadata_for(result), registry / name, compiled_bytes(result)
        )
    return folders


def _run(
    platform: LocalPlatform, policy: RolloutPolicy, candidate: Candidate, users: TrafficGenerator
) -> RolloutSummary:
    _, summary = execute(
        platform, policy, candidate, StateFile(WORKDIR / STATE_FILE), REPORT_DIR / "rollouts",
        Console(quiet=True),
        outcomes=lambda: list(users.outcomes),
    )  # fmt: skip
    platform.stop_unused()
    return summary


def _fault_table(results: dict[tuple[str, str], list[RolloutSummary]]) -> list[str]:
    lines = [
        "| fault | phases | rolled back | seconds to rollback (median, max) | failed user "
        "requests (median, max) | share failed (median) | user requests the candidate answered "
        "(median) | reason (first run) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (name, mode), runs in results.items():
        seconds = [r.seconds_to_rollback for r in runs if r.seconds_to_rollback is not None]
        failed = [r.failed_requests for r in runs]
        timing = f"{statistics.median(seconds):.1f}, {max(seconds):.1f}" if seconds else "-"
        rolled = sum(r.outcome == "rolled_back" for r in runs)
        lines.append(
            f"| {name} | {mode} | {rolled}/{len(runs)} | {timing} | "
            f"{statistics.median(failed):.0f}, {max(failed)} | "
            f"{statistics.median(r.failed_request_ratio for r in runs):.2%} | "
            f"{statistics.median(r.candidate_requests for r in runs):.0f} | "
            f"{runs[0].reason[:120]} |"
        )
    return lines


def main() -> None:
    console = Console()
    policy = load_policy("local")
    modes = {
        "canary": policy.model_copy(update={"shadow": ShadowPhase()}),
        "shadow + canary": policy,
    }
    aa_policy = policy.model_copy(update={"bake_seconds": 3.0, "check_interval_seconds": 0.5})
    models = _models(Path("artifacts/bench/rollout-registry"))
    scenarios = [
        Scenario("errors (20% of requests fail)", "healthy", {"FAULT_ERROR_RATE": "0.2"}),
        Scenario("errors (5% of requests fail)", "healthy", {"FAULT_ERROR_RATE": "0.05"}),
        Scenario("latency (+400 ms)", "healthy", {"FAULT_LATENCY_MS": "400"}),
        Scenario("silently wrong model", "wrong", {}),
    ]
    platform = LocalPlatform(WORKDIR)
    platform.shutdown()
    faults: dict[tuple[str, str], list[RolloutSummary]] = {
        (s.name, mode): [] for s in scenarios for mode in modes
    }
    aa: list[RolloutSummary] = []
    users: TrafficGenerator | None = None
    try:
        platform.start(Candidate("stable-0", models["stable"]))
        users = TrafficGenerator(platform.router_url, USERS_PER_SECOND, max_seconds=3600).start()
        with Progress(console=console) as progress:
            total = len(faults) * REPEATS + AA_RUNS
            task = progress.add_task("faults", total=total)
            for i in range(REPEATS):  # rounds interleave faults and modes: drift hits all alike
                for number, scenario in enumerate(scenarios):
                    for m, (mode, mode_policy) in enumerate(modes.items()):
                        progress.update(task, description=f"{scenario.name}, {mode} #{i + 1}")
                        name = f"fault{number}-mode{m}-run{i}"
                        candidate = Candidate(name, models[scenario.model], scenario.env)
                        summary = _run(platform, mode_policy, candidate, users)
                        faults[scenario.name, mode].append(summary)
                        progress.advance(task)
            for i in range(AA_RUNS):
                progress.update(task, description=f"A/A canary #{i + 1}")
                candidate = Candidate(f"stable-{i + 1}", models["stable"])
                aa.append(_run(platform, aa_policy, candidate, users))
                progress.advance(task)
    finally:
        if users is not None:
            users.stop()
        platform.shutdown()

    false_rollbacks = [r for r in aa if r.outcome != "promoted"]
    simulated = simulated_failure_rate(policy, 0.01, 0.01, USERS_PER_SECOND, runs=3000)
    shadow = policy.shadow
    at_bounds = (shadow.max_failure_rate, shadow.max_shifted_rate, shadow.max_flip_rate)
    per_check = max(1, round(USERS_PER_SECOND * policy.check_interval_seconds))
    simulated_shadow = simulated_shadow_failure_rate(shadow, at_bounds, per_check, runs=3000)
    lines = [
        "# Rollout benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, local platform, {USERS_PER_SECOND:.0f} simulated "
        f"users/s, policy `environments/local.yaml` (steps {policy.steps}, checks every "
        f"{policy.check_interval_seconds:g} s). Seconds to rollback: the candidate's first "
        "request (mirrored or canary) to traffic back on stable. Failed user requests: failed / "
        "all user requests from the start "
        f"of the rollout (deploy included) to its end. {REPEATS} runs per fault and phases, "
        f"interleaved. Shadow phase: {shadow.requests} mirrored requests at "
        f"{shadow.sample_rate:.0%} sampling before the first canary step.",
        "",
        *_fault_table(faults),
        "",
        f"A/A canaries (same model as stable, bake {aa_policy.bake_seconds:g} s per step): "
        f"{len(false_rollbacks)} false rollbacks in {len(aa)}"
        + (f" ({'; '.join(r.reason for r in false_rollbacks)})" if false_rollbacks else "")
        + ".",
        "",
        f"Error-rate gate, simulated A/A rollouts at 1% errors on both sides under this policy: "
        f"{simulated:.2%} false rollbacks in 3,000 (stated bound "
        f"{policy.gates.error_rate.false_alarm_rate:.0%}).",
        "",
        f"Shadow gate, simulated phases of a candidate exactly at every bound (failures "
        f"{at_bounds[0]:.1%}, shifted {at_bounds[1]:.0%}, flips {at_bounds[2]:.0%}), checked every "
        f"{per_check} mirrored requests: {simulated_shadow:.2%} false rollbacks in 3,000 (stated "
        f"bound {shadow.false_alarm_rate:.0%}).",
    ]
    report = "\n".join(lines) + "\n"
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "rollouts.md").write_text(report)
    raw = {
        "faults": {f"{k[0]} | {k[1]}": [r.__dict__ | {"failed_request_ratio":
                                                      r.failed_request_ratio} for r in v]
                   for k, v in faults.items()},
        "aa": [r.__dict__ for r in aa],
        "simulated_false_alarm_rate": simulated,
        "simulated_shadow_false_alarm_rate": simulated_shadow,
    }  # fmt: skip
    (REPORT_DIR / "rollouts.json").write_text(json.dumps(raw, indent=2))
    console.print(report)


if __name__ == "__main__":
    main()
