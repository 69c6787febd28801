"""Command line: `python -m pipelines COMMAND` (the Makefile targets call these)."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.data import DataSpec
from pipelines.demo import run_demo
from pipelines.registry import DEFAULT_REGISTRY, RegistryError, resolve
from pipelines.schema import SchemaError
from pipelines.train import TrainConfig, train_and_publish
from service.artifact import read_metadata

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(stderr=True)

RegistryOption = Annotated[Path, typer.Option(help="Model registry folder.")]


@app.command("train")
def train_command(
    registry: RegistryOption = DEFAULT_REGISTRY,
    seed: Annotated[int, typer.Option(help="Seed for data and model.")] = 7,
    rows: Annotated[int, typer.Option(min=100, help="Synthetic transactions to draw.")] = 40_000,
    fraud_rate: Annotated[float, typer.Option(help="Target fraud rate (0-1).")] = 0.025,
    amount_scale: Annotated[float, typer.Option(help="Multiply amounts (drift knob).")] = 1.0,
) -> None:
    """Train on synthetic data and publish the model as the registry's next version."""
    try:
        spec = DataSpec(n_rows=rows, seed=seed, fraud_rate=fraud_rate, amount_scale=amount_scale)
        with console.status("training"):
            folder = train_and_publish(TrainConfig(data=spec), registry)
    except (ValueError, SchemaError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from error
    metadata = read_metadata(folder)
    table = Table(title=f"model {metadata.version} → {folder}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metadata.metrics.items():
        table.add_row(name, f"{value:.4f}")
    table.add_row("threshold", f"{metadata.threshold:.4f}")
    console.print(table)
    print(folder)


@app.command("serve")
def serve_command(
    registry: RegistryOption = DEFAULT_REGISTRY,
    version: Annotated[str, typer.Option(help="Registry version, or latest.")] = "latest",
) -> None:
    """Serve a model on 127.0.0.1:$PORT (default 8000), training one first if none exists."""
    try:
        folder = resolve(registry, version)
    except RegistryError:
        if version != "latest":
            raise
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
    """Train, serve and query the model on this machine: no cloud account needed."""
    run_demo(registry, reports, console)


def main() -> None:
    app()
