"""`monitor`, `retrain` and `drift-demo`: the monitoring job's command, the retrain workflow's,
and the local end-to-end run. Locally they read the revisions' log files; with `--environment`
the environment's BigQuery events, registry bucket and Cloud Monitoring."""

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from google.api_core.exceptions import GoogleAPIError
from google.auth import exceptions
from rich.table import Table

from environments.declared import ContractError
from environments.model_gates import GATES_FILE, GatesConfigError, load_gates
from environments.monitoring_policy import load_monitoring
from environments.rollout_policy import PolicyError
from environments.stack_file import ENVIRONMENTS_DIR
from environments.stack_settings import load_file
from pipelines.delivery.commands import workflow_repository
from pipelines.delivery.github_api import GitHubError
from pipelines.experiments.commands import events_store
from pipelines.experiments.events import EventsError
from pipelines.model_registry import DEFAULT_REGISTRY, RegistryError
from pipelines.monitoring.archive import archive_report, report_prefix
from pipelines.monitoring.attempts import AttemptLog, BucketAttempts, FolderAttempts
from pipelines.monitoring.cloud_metrics import MetricsError, publish
from pipelines.monitoring.demo import run_drift_demo
from pipelines.monitoring.monitor import MonitorError
from pipelines.monitoring.run import Watch, Watched, run_monitor, run_retrain
from pipelines.rollout.platforms.cloud.google_auth import AccessToken
from pipelines.terminal import console, fail
from service.artifact import ArtifactError

Logs = Annotated[
    list[Path] | None, typer.Option("--log", help="A revision's JSON log file (repeat for more).")
]
Environment = Annotated[
    str | None,
    typer.Option(envvar="MONITOR_ENVIRONMENT",
                 help="dev, staging or prod: its BigQuery events, registry and metrics."),
]  # fmt: skip
Model = Annotated[
    str | None,
    typer.Option(help="The model to judge [default: the version that served most predictions]."),
]
Reports = Annotated[Path, typer.Option(help="Report folder.")]
ERRORS = (MonitorError, EventsError, ContractError, PolicyError, RegistryError, ArtifactError)


def _attempts(environment: str | None, folder: Path) -> AttemptLog:
    """The attempt record: a folder here, a prefix of the model bucket in the cloud."""
    if environment is None:
        return FolderAttempts(folder)
    from pipelines.bucket_registry import default_client  # pylint: disable=import-outside-toplevel

    settings = load_file(environment)
    return BucketAttempts(default_client(), settings.model_bucket_name,
                          f"retraining/{settings.service_name}")  # fmt: skip


def _watch(environment: str | None, logs: list[Path], registry: Path, reports: Path) -> Watch:
    store = events_store(environment, logs)
    where = load_file(environment).model_registry if environment else str(registry)
    policy = load_monitoring(environment or "local")
    attempts = _attempts(environment, Path("runs/retraining"))
    return Watch(environment or "local", store, where, policy, reports, attempts)


def _show(watched: Watched) -> None:
    table = Table(title=f"monitoring {watched.result.model_version}")
    for column in ("signal", "raised", "why"):
        table.add_column(column)
    for finding in watched.result.findings:
        table.add_row(finding.signal, "[red]yes[/]" if finding.raised else "no", finding.reason)
    console.print(table)
    console.print(f"report: {watched.report}")


def monitor_command(
    environment: Environment = None,
    logs: Logs = None,
    model: Model = None,
    registry: Annotated[Path, typer.Option(help="Local model registry.")] = DEFAULT_REGISTRY,
    reports: Reports = Path("reports/monitoring"),
    publish_results: Annotated[
        bool,
        typer.Option("--publish",
                     help="Write the figures to Cloud Monitoring and keep the report in the "
                     "model bucket (needs --environment)."),
    ] = False,
) -> None:  # fmt: skip
    """Drift, confidence and performance of the served model over the policy's window.
    Exit 0 when the run judged the model (raised signals go to the report and the metrics),
    2 when it could not."""
    if publish_results and environment is None:
        fail("--publish writes to an environment's project: give --environment")
    try:
        watch = _watch(environment, logs or [], registry, reports)
        watched = run_monitor(watch, model=model)
        _show(watched)
        if publish_results and environment is not None:
            settings = load_file(environment)
            http = httpx.Client(auth=AccessToken(), timeout=30)
            count = publish(http, watched.result, settings)
            console.print(f"{count} time series written to Cloud Monitoring")
            from pipelines.bucket_registry import (  # pylint: disable=import-outside-toplevel
                default_client,
            )

            prefix = report_prefix(settings.service_name, datetime.now(UTC))
            kept = archive_report(default_client(), settings.model_bucket_name, prefix, reports)
            console.print(f"report kept at gs://{settings.model_bucket_name}/{prefix}/ "
                          f"({len(kept)} files)")  # fmt: skip
    except (*ERRORS, MetricsError, exceptions.GoogleAuthError, GoogleAPIError) as error:
        fail(str(error))


def retrain_command(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    environment: Environment = None,
    logs: Logs = None,
    model: Model = None,
    registry: Annotated[Path, typer.Option(help="Local model registry.")] = DEFAULT_REGISTRY,
    reports: Reports = Path("reports/retraining"),
    gates_file: Annotated[Path, typer.Option(help="Thresholds.")] = ENVIRONMENTS_DIR / GATES_FILE,
    post: Annotated[
        bool, typer.Option(help="Open the pull request (or the issue) on GitHub (GITHUB_TOKEN).")
    ] = False,
    base: Annotated[str, typer.Option(help="The branch the pull request targets.")] = "main",
) -> None:
    """Monitor, and when the retraining policy says so, retrain, gate against the champion,
    publish and propose the model as a pull request. Exit 0 nothing to do or proposed, 1 the
    candidate failed its gates (nothing ships; a report says why), 2 bad input."""
    try:
        watch = _watch(environment, logs or [], registry, reports)
        watched = run_monitor(watch, model=model)
        _show(watched)
        github = (workflow_repository(), base) if post else None
        retraining = run_retrain(watch, watched, load_gates(gates_file), github)
    except (*ERRORS, GatesConfigError, GitHubError, exceptions.GoogleAuthError) as error:
        fail(str(error))
    colour = {"proposed": "green", "failed_gates": "red"}.get(retraining.outcome, "yellow")
    console.print(f"[{colour}]{retraining.outcome}[/]: {retraining.detail}")
    raise typer.Exit(1 if retraining.outcome == "failed_gates" else 0)


def drift_demo_command(
    workdir: Annotated[Path, typer.Option(help="Models and logs.")] = Path("runs/drift-demo"),
    reports: Reports = Path("reports/drift-demo"),
) -> None:
    """No drift, covariate drift and concept drift through a real service: what the monitor
    raises before and after the labels, and what the retraining policy makes of it. Exit 0 only
    if all three behave as designed."""
    try:
        policy = load_monitoring("local")
        gates = load_gates(ENVIRONMENTS_DIR / GATES_FILE)
    except (PolicyError, GatesConfigError) as error:
        fail(str(error))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    outcomes = run_drift_demo(workdir, reports, policy, gates, console)
    raise typer.Exit(0 if all(o.as_designed for o in outcomes) else 1)
