"""Run one rollout with live progress and write its report: shared by the CLI and the demo."""

from collections.abc import Callable
from pathlib import Path

import httpx
from rich.console import Console

from environments.rollout_policy import RolloutPolicy
from pipelines.rollout.controller import Controller
from pipelines.rollout.gates import Verdict
from pipelines.rollout.platform import Candidate, DeployError, Platform
from pipelines.rollout.report import Outcome, RolloutSummary, write_report
from pipelines.rollout.shadow_report import findings
from pipelines.rollout.state import RolloutState, StateStore

STATE_FILE = "rollout-state.json"  # the local platform's, in its workdir
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


def execute(  # pylint: disable=too-many-arguments
    platform: Platform,
    policy: RolloutPolicy,
    candidate: Candidate,
    store: StateStore,
    reports: Path,
    console: Console,
    environment: str = "local",
    outcomes: Callable[[], list[Outcome]] = list,
) -> tuple[RolloutState, RolloutSummary]:
    """Roll `candidate` out (or resume), then write `reports/<candidate>.{json,md,png}`.

    The report is written even when the controller stops on an error (after its rollback
    attempt): the record in `store` says how far it got and why it stopped.
    """
    controller = Controller(
        platform, policy, store, environment, listeners=[progress_printer(console)]
    )
    try:
        state = controller.rollout(candidate)
    except Exception:
        if (record := store.load()) is not None and record.candidate == candidate.name:
            write_report(
                record, outcomes(), reports, _links(platform), findings(record, platform.events())
            )
            console.print(f"report of the stopped rollout: {reports / record.candidate}.md")
        raise
    summary = write_report(
        state, outcomes(), reports, _links(platform), findings(state, platform.events())
    )
    return state, summary


def _links(platform: Platform) -> dict[str, str]:
    """Links are a courtesy: a report is never lost because one could not be read."""
    try:
        return platform.links()
    except (DeployError, httpx.HTTPError, OSError):
        return {}
