"""Run one rollout with live progress and write its report: shared by the CLI and the demo."""

from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from environments.rollout_policy import RolloutPolicy
from pipelines.rollout.controller import Controller
from pipelines.rollout.gates import Verdict
from pipelines.rollout.platform import Candidate, Platform
from pipelines.rollout.report import Outcome, RolloutSummary, write_report
from pipelines.rollout.state import RolloutState, StateStore

STATE_FILE = "rollout-state.json"
_COLOURS = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.INSUFFICIENT_DATA: "yellow"}


def progress_printer(console: Console) -> Callable[[str, RolloutState], None]:
    """One line per decision and per gate check, as they happen."""

    def show(kind: str, state: RolloutState) -> None:
        if kind == "decision":
            decision = state.decisions[-1]
            t = decision.at - state.started_at
            colour = {"roll_back": "red", "promote": "green"}.get(decision.action, "cyan")
            console.print(f"[{colour}]{t:6.1f}s {decision.action:<12}[/] {decision.reason}")
        elif kind == "check":
            check = state.checks[-1]
            t = check.at - state.started_at
            verdicts = "  ".join(
                f"[{_COLOURS[Verdict(g['verdict'])]}]{g['gate']}[/]" for g in check.gates
            )
            console.print(f"[dim]{t:6.1f}s check @{check.step_percent}%[/]  {verdicts}")

    return show


def execute(
    platform: Platform,
    policy: RolloutPolicy,
    candidate: Candidate,
    workdir: Path,
    reports: Path,
    console: Console,
    environment: str = "local",
    outcomes: Callable[[], list[Outcome]] = list,
) -> tuple[RolloutState, RolloutSummary]:
    """Roll `candidate` out (or resume), then write `reports/<candidate>.{json,md,png}`."""
    controller = Controller(
        platform, policy, StateStore(workdir / STATE_FILE), environment,
        listeners=[progress_printer(console)],
    )  # fmt: skip
    state = controller.rollout(candidate)
    summary = write_report(state, outcomes(), reports)
    return state, summary
