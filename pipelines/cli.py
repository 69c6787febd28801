"""Command line: `python -m pipelines COMMAND` (the Makefile targets call these)."""

import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from environments.declared import ContractError
from environments.model_gates import GATES_FILE, GatesConfigError, load_gates
from environments.rollout_policy import ENVIRONMENTS_DIR, PolicyError, load_policy
from pipelines.data import DataSpec
from pipelines.demo import run_demo
from pipelines.evaluation.evaluate import evaluate_model
from pipelines.evaluation.model_card import CARD_FILE, write_reports
from pipelines.frame_schema import SchemaError
from pipelines.model_registry import DEFAULT_REGISTRY, RegistryError, resolve
from pipelines.rollout.controller import Controller
from pipelines.rollout.platform import Candidate, DeployError
from pipelines.rollout.platforms.cloudrun.connect import connect
from pipelines.rollout.platforms.cloudrun.platform import CloudRunPlatform
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.rollout.platforms.local.traffic_generator import TrafficGenerator
from pipelines.rollout.run import STATE_FILE, execute
from pipelines.rollout.state import StateFile, StateStore
from pipelines.train import TrainConfig, train_and_publish
from service.artifact import ArtifactError, read_metadata

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


@app.command("evaluate")
def evaluate_command(
    candidate: Annotated[
        Path | None, typer.Option(help="Model folder to judge [default: the registry's latest].")
    ] = None,
    champion: Annotated[
        Path | None, typer.Option(help="The production model to compare with, if any.")
    ] = None,
    reports: Annotated[Path, typer.Option(help="Where the verdict and card go.")] = Path(
        "reports/model"
    ),
    gates_file: Annotated[Path, typer.Option(help="Thresholds.")] = ENVIRONMENTS_DIR / GATES_FILE,
) -> None:
    """Judge a model on every offline gate; exit 0 passed, 1 a gate failed, 2 bad input."""
    try:
        gates = load_gates(gates_file)
        folder = candidate or resolve(DEFAULT_REGISTRY, "latest")
        with console.status("evaluating") as status:
            evaluation = evaluate_model(folder, champion, gates, progress=status.update)
    except (GatesConfigError, RegistryError, ArtifactError) as error:
        _fail(str(error))
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
    """Train three models; promote a healthy canary, roll back a faulty one. All on 127.0.0.1."""
    summary = run_demo(registry, reports, console)
    if summary["promoted"] is None or summary["rolled_back"] is None:
        console.print("[red]the demo did not end as designed: see the reports above[/]")
        raise typer.Exit(1)


WorkdirOption = Annotated[
    Path, typer.Option(help="The local platform's folder (process records, logs, rollout state).")
]
DEFAULT_WORKDIR = Path("runs/local")


def _revision(model: Path, name: str | None, faults: dict[str, str]) -> Candidate:
    metadata = read_metadata(model)
    return Candidate(name or f"fraud-scorer-{metadata.version}", model, faults)


@app.command("local-up")
def local_up_command(
    model: Annotated[Path, typer.Option(help="Model artifact folder of the stable revision.")],
    revision: Annotated[str | None, typer.Option(help="Revision name.")] = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
) -> None:
    """Start the local platform: the stable revision at 100% behind the router."""
    platform = LocalPlatform(workdir)
    try:
        platform.start(_revision(model, revision, {}))
    except (DeployError, ArtifactError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from error
    # A new platform has no rollout yet: a record left by an earlier one names its revisions.
    (workdir / STATE_FILE).unlink(missing_ok=True)
    print(platform.router_url)


@app.command("local-down")
def local_down_command(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Stop every process of the local platform, recorded or not, and say which."""
    stopped = LocalPlatform(workdir).shutdown()
    for name, pids in stopped.items():
        console.print(f"stopped {name} (pid {', '.join(map(str, pids))})")
    if not stopped:
        console.print(f"nothing of a local platform was running from {workdir}")


CLOUD_ENVIRONMENTS = ("dev", "staging", "prod")
EnvironmentOption = Annotated[
    str,
    typer.Option(help="local (processes on this machine), or dev, staging or prod (Cloud Run)."),
]


def _target(environment: str, workdir: Path) -> tuple[LocalPlatform | CloudRunPlatform, StateStore]:
    """The platform and the rollout record of an environment: Cloud Run for dev, staging and
    prod (its stack file names the project), processes in `workdir` for local."""
    if environment not in CLOUD_ENVIRONMENTS:
        return LocalPlatform(workdir), StateFile(workdir / STATE_FILE)
    try:
        return connect(environment)
    except (DeployError, ContractError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from error


@app.command("rollout")
def rollout_command(  # pylint: disable=too-many-arguments,too-many-locals
    model: Annotated[Path, typer.Option(help="Model artifact folder of the candidate.")],
    revision: Annotated[str | None, typer.Option(help="Candidate revision name (local).")] = None,
    environment: EnvironmentOption = "local",
    image: Annotated[
        str | None, typer.Option(help="Cloud: the candidate's image, by digest.")
    ] = None,
    git_sha: Annotated[
        str | None, typer.Option(help="Cloud: the commit it was built from.")
    ] = None,
    environments_dir: Annotated[Path, typer.Option(help="Where policies live.")] = ENVIRONMENTS_DIR,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    reports: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/rollouts"),
    traffic_rps: Annotated[
        float, typer.Option(help="Local: users to simulate per second (0: none).")
    ] = 0.0,
    fault_error_rate: Annotated[
        float, typer.Option(help="Local drill: share of failing requests.")
    ] = 0.0,
    fault_latency_ms: Annotated[float, typer.Option(help="Local drill: added latency.")] = 0.0,
    fault_invert_scores: Annotated[
        bool, typer.Option(help="Local drill: a silently wrong model.")
    ] = False,
) -> None:
    """Canary a candidate, locally or on Cloud Run; exit 0 if promoted, 1 if rolled back."""
    faults = {
        key: str(value)
        for key, value in (
            ("FAULT_ERROR_RATE", fault_error_rate),
            ("FAULT_LATENCY_MS", fault_latency_ms),
            ("FAULT_INVERT_SCORES", fault_invert_scores),
        )
        if value
    }
    cloud = environment in CLOUD_ENVIRONMENTS
    if cloud and (faults or traffic_rps or revision):
        _fail(
            "--fault-*, --traffic-rps and --revision drive the local platform only; on Cloud Run "
            "real users are the traffic and the stack names the revision"
        )
    if cloud and not (image and git_sha):
        _fail(f"a rollout in {environment} needs --image (by digest) and --git-sha")
    try:
        policy = load_policy(environment, environments_dir)
        read_metadata(model)  # a candidate whose artifact is unreadable is refused here
    except (PolicyError, ArtifactError) as error:
        _fail(str(error))
    platform, store = _target(environment, workdir)
    traffic = None
    try:
        if isinstance(platform, CloudRunPlatform):
            candidate = platform.candidate(str(image), str(git_sha), model)
        else:
            if not platform.running():
                _fail(f"no local platform in {workdir}: start one with `local-up`")
            candidate = _revision(model, revision, faults)
            if traffic_rps:
                traffic = TrafficGenerator(platform.router_url, traffic_rps).start()
        state, summary = execute(
            platform, policy, candidate, store, reports, console, environment,
            outcomes=lambda: list(traffic.outcomes) if traffic else [],
        )  # fmt: skip
    except DeployError as error:
        _fail(str(error))
    finally:
        if traffic is not None:
            traffic.stop()
    console.print(f"{state.phase.replace('_', ' ')}: {summary.reason}")
    console.print(f"report: {reports / state.candidate}.md")
    raise typer.Exit(0 if state.phase == "promoted" else 1)


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(2)


@app.command("rollback")
def rollback_command(
    environment: EnvironmentOption = "local",
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    reason: Annotated[str, typer.Option(help="Recorded with the decision.")] = "manual rollback",
) -> None:
    """Roll back the unfinished rollout: stable 100%, the candidate kept at 0% with its tag."""
    platform, store = _target(environment, workdir)
    controller = Controller(platform, load_policy(environment), store, environment)
    try:
        state = controller.rollback(reason)
    except DeployError as error:
        _fail(str(error))
    if state is None:
        console.print("no rollout recorded: nothing to roll back")
    else:
        console.print(f"{state.candidate}: {state.phase.replace('_', ' ')} ({state.reason})")


@app.command("status")
def status_command(
    environment: EnvironmentOption = "local", workdir: WorkdirOption = DEFAULT_WORKDIR
) -> None:
    """The recorded rollout and the traffic split the platform reports now."""
    platform, store = _target(environment, workdir)
    try:
        state = store.load()
        if state is None:
            console.print("no rollout recorded")
        else:
            last = state.decisions[-1]
            console.print(
                f"rollout {state.rollout_id}: {state.candidate} over {state.stable}, phase "
                f"{state.phase}, last decision {last.action}: {last.reason}"
            )
        if isinstance(platform, LocalPlatform) and not platform.running():
            console.print(f"no local platform running in {workdir}")
            return
        for target in platform.read_traffic().targets:
            tag = f" (tag {target.tag})" if target.tag else ""
            print(f"{target.revision}: {target.percent}%{tag}")
    except DeployError as error:
        _fail(str(error))


def main() -> None:
    app()
