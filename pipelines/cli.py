"""Command line: `python -m pipelines COMMAND` (the Makefile targets call these)."""

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from environments.declared import ContractError
from environments.model_gates import GATES_FILE, GatesConfigError, load_gates
from environments.stack_file import ENVIRONMENTS_DIR
from environments.stack_settings import load_file
from pipelines.data import DataSpec
from pipelines.delivery import commands as delivery
from pipelines.demo import run_demo
from pipelines.evaluation.evaluate import evaluate_model
from pipelines.evaluation.model_card import CARD_FILE, write_reports
from pipelines.experiments import commands as experiments
from pipelines.frame_schema import SchemaError
from pipelines.model_location import local_model, publish_to
from pipelines.model_registry import DEFAULT_REGISTRY, RegistryError, resolve
from pipelines.monitoring import commands as monitoring
from pipelines.pinned_model import PIN_FILE, PinError, fetch, load_pin, pin
from pipelines.rollout import commands
from pipelines.terminal import console, fail
from pipelines.train import TrainConfig, compiled_bytes, metadata_for, train, train_and_publish
from service.artifact import METADATA_FILE, ArtifactError, read_metadata

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
# The dependency group of the scikit-learn serving path (pyproject.toml).
PIPELINE_SERVING = "pipeline-serving"

RegistryOption = Annotated[Path, typer.Option(help="Model registry folder.")]
PinFileOption = Annotated[Path, typer.Option(help="The production model's pin.")]


@app.command("train")
def train_command(
    registry: Annotated[
        str,
        typer.Option(
            envvar="MODEL_REGISTRY",
            help="Registry to publish to: a folder, or gs://<bucket>/<prefix> in the cloud.",
        ),
    ] = str(DEFAULT_REGISTRY),
    seed: Annotated[int, typer.Option(help="Seed for data and model.")] = 7,
    rows: Annotated[int, typer.Option(min=100, help="Synthetic transactions to draw.")] = 40_000,
    fraud_rate: Annotated[float, typer.Option(help="Target fraud rate (0-1).")] = 0.025,
    amount_scale: Annotated[float, typer.Option(help="Multiply amounts (drift knob).")] = 1.0,
) -> None:
    """Train on synthetic data and publish the model as the registry's next version."""
    try:
        spec = DataSpec(n_rows=rows, seed=seed, fraud_rate=fraud_rate, amount_scale=amount_scale)
        with console.status("training"):
            result = train(TrainConfig(data=spec))
        with console.status(f"publishing to {registry}"):
            location = publish_to(
                registry, result.model_bytes, metadata_for(result), compiled_bytes(result)
            )
    except (ValueError, SchemaError, RegistryError) as error:
        fail(str(error))
    table = Table(title=f"model → {location}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in result.metrics.items():
        table.add_row(name, f"{value:.4f}")
    table.add_row("threshold", f"{result.threshold:.4f}")
    console.print(table)
    print(location)


NO_CHAMPION = "none"


def _champion(choice: str | None) -> str | None:
    """The model to compare with: the one named, none for "none", else the pinned production
    model when there is a pin (what a candidate must not regress on)."""
    if choice == NO_CHAMPION:
        return None
    return choice or (load_pin(PIN_FILE).uri if PIN_FILE.is_file() else None)


@app.command("evaluate")
def evaluate_command(
    candidate: Annotated[
        str | None,
        typer.Option(
            help="Model to judge: a folder or gs://… [default: the local registry's latest]."
        ),
    ] = None,
    champion: Annotated[
        str | None,
        typer.Option(
            help="Model to compare with: a folder, gs://…, or none [default: the pinned "
            "production model, when models/production.json exists]."
        ),
    ] = None,
    reports: Annotated[Path, typer.Option(help="Where the verdict and card go.")] = Path(
        "reports/model"
    ),
    gates_file: Annotated[Path, typer.Option(help="Thresholds.")] = ENVIRONMENTS_DIR / GATES_FILE,
) -> None:
    """Judge a model on every offline gate; exit 0 passed, 1 a gate failed, 2 bad input."""
    try:
        gates = load_gates(gates_file)
        champion = _champion(champion)
        with ExitStack() as models, console.status("evaluating") as status:
            status.update("fetching the models")
            candidate_at = models.enter_context(
                local_model(candidate or str(resolve(DEFAULT_REGISTRY, "latest")))
            )
            champion_at = models.enter_context(local_model(champion)) if champion else None
            evaluation = evaluate_model(candidate_at, champion_at, gates, progress=status.update)
    except (GatesConfigError, RegistryError, ArtifactError, PinError) as error:
        fail(str(error))
    verdict_path = write_reports(evaluation, reports)
    table = Table(title=f"offline gates: {evaluation.candidate.version}")
    for column in ("gate", "verdict", "why"):
        table.add_column(column)
    for gate in evaluation.verdict["gates"]:
        mark = "[green]pass[/]" if gate["passed"] else "[red]FAIL[/]"
        table.add_row(gate["gate"], mark, gate["reason"])
    console.print(table)
    console.print(f"verdict: {verdict_path}; model card: {reports / CARD_FILE}")
    raise typer.Exit(0 if evaluation.verdict["passed"] else 1)


@app.command("pin")
def pin_command(
    model: Annotated[
        str,
        typer.Option(help="The verified model production should serve: a folder or gs://…/v<N>."),
    ],
    pin_file: PinFileOption = PIN_FILE,
) -> None:
    """Pin a model for production in models/production.json; commit it in a pull request."""
    try:
        pinned = pin(model, pin_file)
    except (ArtifactError, RegistryError) as error:
        fail(str(error))
    console.print(f"pinned {pinned.version} ({pinned.sha256[:12]}) from {pinned.uri} in {pin_file}")


@app.command("fetch-model")
def fetch_model_command(
    destination: Annotated[Path, typer.Option(help="Where the image build takes it from.")] = Path(
        "model"
    ),
    pin_file: PinFileOption = PIN_FILE,
) -> None:
    """Copy the pinned production model to ./model and verify it, for the image build."""
    try:
        folder = fetch(load_pin(pin_file), destination)
    except PinError as error:
        fail(str(error))
    print(folder)


@app.command("serve")
def serve_command(
    registry: RegistryOption = DEFAULT_REGISTRY,
    version: Annotated[str, typer.Option(help="Registry version, or latest.")] = "latest",
) -> None:
    """Serve a model on 127.0.0.1:$PORT (default 8000), training one first if none exists."""
    try:
        folder = resolve(registry, version)
    except RegistryError as error:
        if version != "latest":
            console.print(f"[red]error:[/] {error}")
            raise typer.Exit(2) from error
        console.print(f"no model in {registry} yet: training one first")
        folder = train_and_publish(TrainConfig(), registry)
    env = {**os.environ, "MODEL_DIR": str(folder), "HOST": "127.0.0.1"}
    env.setdefault("PORT", "8000")
    console.print(f"serving {folder} on http://127.0.0.1:{env['PORT']} (docs at /docs)")
    os.execve(sys.executable, [sys.executable, "-m", "service"], env)  # noqa: S606


@app.command("demo")
def demo_command(
    registry: RegistryOption = Path("artifacts/demo/registry"),
    reports: Annotated[Path, typer.Option(help="Where the demo writes its reports.")] = Path(
        "reports/demo"
    ),
) -> None:
    """Train four models; promote a healthy canary, roll back a faulty one, stop a worse one
    offline before any traffic. All on 127.0.0.1."""
    summary = run_demo(registry, reports, console)
    if (
        summary["promoted"] is None
        or summary["rolled_back"] is None
        or not summary["stopped_offline"]
    ):
        console.print("[red]the demo did not end as designed: see the reports above[/]")
        raise typer.Exit(1)


@app.command("scoring-group")
def scoring_group_command(
    models: Annotated[
        list[Path] | None,
        typer.Option("--model", help="A model folder the image bakes in (repeat for more)."),
    ] = None,
) -> None:
    """The dependency group the service image needs for these models, as a `group=` line (for
    $GITHUB_OUTPUT): empty when every one has a compiled file, else `pipeline-serving`
    (scikit-learn and skops). Default: ./model, and ./challenger when it holds a model."""
    folders = models or [
        p for p in (Path("model"), Path("challenger")) if (p / METADATA_FILE).is_file()
    ]
    try:
        needs = [read_metadata(folder).compiled is None for folder in folders]
    except ArtifactError as error:
        fail(str(error))
    print(f"group={PIPELINE_SERVING if any(needs) else ''}")


@app.command("image-repository")
def image_repository_command(
    environment: Annotated[str, typer.Option(help="dev, staging or prod.")] = "dev",
) -> None:
    """Where the service's image goes, as `host=` and `repository=` lines (for $GITHUB_OUTPUT):
    the environment file's registry and the service's name."""
    try:
        settings = load_file(environment)
    except ContractError as error:
        fail(str(error))
    print(f"host={settings.registry.split('/', 1)[0]}")
    print(f"repository={settings.registry}/{settings.service_name}")


for name, command in (
    ("local-up", commands.local_up_command),
    ("local-down", commands.local_down_command),
    ("rollout", commands.rollout_command),
    ("rollback", commands.rollback_command),
    ("status", commands.status_command),
    ("drill", commands.drill_command),
    ("pr-comment", delivery.pr_comment_command),
    ("drift-issue", delivery.drift_issue_command),
    ("experiment-demo", experiments.experiment_demo_command),
    ("monitor", monitoring.monitor_command),
    ("retrain", monitoring.retrain_command),
    ("drift-demo", monitoring.drift_demo_command),
):
    app.command(name)(command)
app.add_typer(experiments.app, name="experiment")


def main() -> None:
    app()
