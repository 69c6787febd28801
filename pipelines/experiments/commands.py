"""`python -m pipelines experiment …` and `experiment-demo`: size, analyze and demonstrate."""

from pathlib import Path
from typing import Annotated

import httpx
import typer
from google.auth import exceptions
from pydantic import ValidationError

from environments.declared import ContractError
from environments.experiment import ExperimentPlan
from environments.stack_settings import load_file
from pipelines.experiments.ab_test import users_needed
from pipelines.experiments.analysis import analyze
from pipelines.experiments.demo import run_experiment_demo
from pipelines.experiments.events import BigQueryEvents, EventsError, EventStore, LogFiles
from pipelines.experiments.interleaved import analyze_interleaving, write_interleaving_report
from pipelines.experiments.report import write_report
from pipelines.rollout.platforms.cloud.google_auth import AccessToken
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


def events_store(environment: str | None, logs: list[Path]) -> EventStore:
    """The revisions' log files here, or the environment's BigQuery dataset."""
    if bool(environment) == bool(logs):
        raise EventsError("give either --log files (local) or --environment (BigQuery)")
    if logs:
        return LogFiles(logs)
    settings = load_file(str(environment))
    try:
        token = AccessToken()
    except exceptions.GoogleAuthError as error:
        raise EventsError(
            f"no Google credentials ({error}): `gcloud auth application-default login`"
        ) from error
    http = httpx.Client(auth=token, timeout=90)
    return BigQueryEvents(http, settings.project, settings.events_dataset, settings.region)


def experiment_plan(
    environment: str | None, name: str, overrides: dict[str, object]
) -> ExperimentPlan:
    """The environment file's plan when it names this experiment, else the defaults; options
    given on the command line win (to restate the plan of an experiment that has ended)."""
    running = load_file(environment).experiment if environment else None
    base = running if running and running.name == name else ExperimentPlan(name=name)
    given = {key: value for key, value in overrides.items() if value is not None}
    return ExperimentPlan.model_validate(base.model_dump() | given)


@app.command("analyze")
def analyze_command(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    name: Annotated[str, typer.Argument(help="The experiment (experimentName).")],
    logs: Annotated[
        list[Path] | None,
        typer.Option("--log", help="A revision's JSON log file (repeat for more)."),
    ] = None,
    environment: Annotated[
        str | None, typer.Option(help="dev, staging or prod: read its BigQuery events.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="ab or interleaving.")] = None,
    metric: Annotated[str | None, typer.Option(help="fraud_caught or correct_decisions.")] = None,
    allocation: Annotated[float | None, typer.Option(help="The challenger's share.")] = None,
    alpha: Annotated[float | None, typer.Option(help="False-positive rate.")] = None,
    minimum_effect: Annotated[float | None, typer.Option(help="Smallest change to find.")] = None,
    look_seconds: Annotated[int, typer.Option(min=1, help="Time between looks.")] = 3600,
    reports: Reports = Path("reports/experiments"),
) -> None:
    """Judge an experiment from its events: exit 0 win, 1 loss, 3 no decision, 2 bad input.

    The plan is the environment file's when it names NAME; options override it."""
    overrides = {"kind": kind, "metric": metric, "allocation": allocation, "alpha": alpha,
                 "minimum_effect": minimum_effect}  # fmt: skip
    try:
        plan = experiment_plan(environment, name, overrides)
        store = events_store(environment, logs or [])
        if plan.kind == "interleaving":
            result = analyze_interleaving(store, plan)
            path = write_interleaving_report(result, reports)
        else:
            result = analyze(store, plan, look_seconds)
            path = write_report(result, reports)
    except ValidationError as error:
        fail("; ".join(f"--{'-'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()))
    except (EventsError, ContractError) as error:
        fail(str(error))
    colour = {"win": "green", "loss": "red"}.get(result.decision, "yellow")
    console.print(f"[{colour}]{result.decision}[/]: {result.reason}\nreport: {path}")
    raise typer.Exit(result.exit_code)


def experiment_demo_command(
    workdir: Annotated[Path, typer.Option(help="Models and logs.")] = Path("runs/experiments"),
    reports: Reports = Path("reports/experiments"),
) -> None:
    """Simulated users against real models over HTTP: an A/B win, an A/A run with no decision,
    an interleaving win. Exit 0 only if the analysis gets all three right."""
    decisions = run_experiment_demo(workdir, reports, console)
    right = decisions == {"challenger-wins": "win", "a-a": "no decision", "ranking": "win"}
    console.print(
        f"[{'green' if right else 'red'}]{'all three decisions right' if right else decisions}"
    )
    raise typer.Exit(0 if right else 1)
