"""`python -m pipelines experiment …` and `experiment-demo`: size, analyze and demonstrate."""

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from environments.experiment import ExperimentPlan
from pipelines.experiments.ab_test import users_needed
from pipelines.experiments.analysis import analyze
from pipelines.experiments.demo import run_experiment_demo
from pipelines.experiments.events import EventsError, LogFiles
from pipelines.experiments.report import write_report
from pipelines.terminal import console, fail

app = typer.Typer(no_args_is_help=True, help="A/B experiments: size one, analyze one.")
Reports = Annotated[Path, typer.Option(help="Report folder.")]


@app.command("size")
def size_command(
    baseline: Annotated[float, typer.Option(help="The champion's rate on the metric (0-1).")],
    effect: Annotated[float, typer.Option(help="The absolute change worth detecting.")],
    alpha: Annotated[float, typer.Option(min=0.001, max=0.5)] = 0.05,
    power: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.8,
    allocation: Annotated[float, typer.Option(min=0.01, max=0.99, help="Challenger share.")] = 0.5,
) -> None:
    """Counted predictions (users, with one each) a fixed-horizon test needs."""
    try:
        needed = users_needed(baseline, effect, alpha, power, allocation)
    except ValueError as error:
        fail(str(error))
    print(needed)


@app.command("analyze")
def analyze_command(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    name: Annotated[str, typer.Argument(help="The experiment (EXPERIMENT_NAME).")],
    logs: Annotated[
        list[Path], typer.Option("--log", help="A revision's JSON log file (repeat for more).")
    ],
    metric: Annotated[
        str, typer.Option(help="fraud_caught or correct_decisions.")
    ] = "fraud_caught",
    allocation: Annotated[float, typer.Option(help="The challenger's planned share.")] = 0.5,
    alpha: Annotated[float, typer.Option(help="False-positive rate of the decision.")] = 0.05,
    minimum_effect: Annotated[float, typer.Option(help="Smallest change worth finding.")] = 0.05,
    look_seconds: Annotated[int, typer.Option(min=1, help="Time between looks.")] = 3600,
    reports: Reports = Path("reports/experiments"),
) -> None:
    """Judge an experiment from its events: exit 0 win, 1 loss, 3 no decision, 2 bad input."""
    try:
        plan = ExperimentPlan(
            name=name, metric=metric,  # pyright: ignore[reportArgumentType]  # validated here
            allocation=allocation, alpha=alpha, minimum_effect=minimum_effect,
        )  # fmt: skip
        analysis = analyze(LogFiles(logs), plan, look_seconds)
    except ValidationError as error:
        fail("; ".join(f"--{'-'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()))
    except EventsError as error:
        fail(str(error))
    path = write_report(analysis, reports)
    colour = {"win": "green", "loss": "red"}.get(analysis.decision, "yellow")
    console.print(f"[{colour}]{analysis.decision}[/]: {analysis.reason}\nreport: {path}")
    raise typer.Exit(analysis.exit_code)


def experiment_demo_command(
    workdir: Annotated[Path, typer.Option(help="Models and logs.")] = Path("runs/experiments"),
    reports: Reports = Path("reports/experiments"),
) -> None:
    """Simulated users against real models over HTTP: a win, then an A/A run with no decision.
    Exit 0 only if the analysis gets both right."""
    decisions = run_experiment_demo(workdir, reports, console)
    right = decisions == {"challenger-wins": "win", "a-a": "no decision"}
    console.print(
        f"[{'green' if right else 'red'}]{'both decisions right' if right else decisions}"
    )
    raise typer.Exit(0 if right else 1)
