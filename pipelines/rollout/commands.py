"""The rollout commands: the local platform's lifecycle, and canary, rollback and status on any
environment (local processes, or the cloud for dev, staging and prod: Cloud Run or Kubernetes,
as each environment file says)."""

from pathlib import Path
from typing import Annotated

import typer

from environments.declared import ContractError
from environments.rollout_policy import ENVIRONMENTS_DIR, PolicyError, load_policy
from environments.stack_settings import ENVIRONMENTS, load_file
from pipelines.rollout.controller import Controller
from pipelines.rollout.drill import DEFAULT_ERROR_RATE, drill_candidate, drill_verdict
from pipelines.rollout.plan import cloud_plan
from pipelines.rollout.platform import Candidate, DeployError
from pipelines.rollout.platforms.cloud.connect import connect
from pipelines.rollout.platforms.cloud.platform import CloudPlatform
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.rollout.platforms.local.traffic_generator import TrafficGenerator
from pipelines.rollout.run import STATE_FILE, execute
from pipelines.rollout.state import StateFile, StateStore
from pipelines.terminal import console, fail
from service.artifact import ArtifactError, read_metadata

WorkdirOption = Annotated[
    Path, typer.Option(help="The local platform's folder (process records, logs, rollout state).")
]
DEFAULT_WORKDIR = Path("runs/local")


def _revision(model: Path, name: str | None, faults: dict[str, str]) -> Candidate:
    metadata = read_metadata(model)
    return Candidate(name or f"fraud-scorer-{metadata.version}", model, faults)


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


def local_down_command(workdir: WorkdirOption = DEFAULT_WORKDIR) -> None:
    """Stop every process of the local platform, recorded or not, and say which."""
    stopped = LocalPlatform(workdir).shutdown()
    for name, pids in stopped.items():
        console.print(f"stopped {name} (pid {', '.join(map(str, pids))})")
    if not stopped:
        console.print(f"nothing of a local platform was running from {workdir}")


EnvironmentOption = Annotated[
    str,
    typer.Option(
        help="local (processes on this machine), or dev, staging or prod (Cloud Run or GKE)."
    ),
]


def _target(environment: str, workdir: Path) -> tuple[LocalPlatform | CloudPlatform, StateStore]:
    """The platform and the rollout record of an environment: the cloud for dev, staging and
    prod (its stack file names the project), processes in `workdir` for local."""
    if environment not in ENVIRONMENTS:
        return LocalPlatform(workdir), StateFile(workdir / STATE_FILE)
    try:
        return connect(environment)
    except (DeployError, ContractError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from error


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
    release_again: Annotated[
        bool, typer.Option(help="Cloud: release an image and commit that were rolled back.")
    ] = False,
) -> None:
    """Canary a candidate, locally or in the cloud; exit 0 if promoted, 1 if rolled back."""
    faults = {
        key: str(value)
        for key, value in (
            ("FAULT_ERROR_RATE", fault_error_rate),
            ("FAULT_LATENCY_MS", fault_latency_ms),
            ("FAULT_INVERT_SCORES", fault_invert_scores),
        )
        if value
    }
    cloud = environment in ENVIRONMENTS
    if cloud and (faults or traffic_rps or revision):
        fail(
            "--fault-*, --traffic-rps and --revision drive the local platform only; in the cloud "
            "real users are the traffic and the stack names the revision (a rollback drill on "
            "the cloud: `python -m pipelines drill`)"
        )
    if cloud and not (image and git_sha):
        fail(f"a rollout in {environment} needs --image (by digest) and --git-sha")
    try:
        policy = load_policy(environment, environments_dir)
        read_metadata(model)  # a candidate whose artifact is unreadable is refused here
    except (PolicyError, ArtifactError) as error:
        fail(str(error))
    platform, store = _target(environment, workdir)
    traffic = None
    try:
        if isinstance(platform, CloudPlatform):
            candidate = platform.candidate(str(image), str(git_sha), model, release_again)
        else:
            if not platform.running():
                fail(f"no local platform in {workdir}: start one with `local-up`")
            candidate = _revision(model, revision, faults)
            if traffic_rps:
                traffic = TrafficGenerator(platform.router_url, traffic_rps).start()
        state, summary = execute(
            platform, policy, candidate, store, reports, console, environment,
            outcomes=lambda: list(traffic.outcomes) if traffic else [],
        )  # fmt: skip
    except DeployError as error:
        fail(str(error))
    finally:
        if traffic is not None:
            traffic.stop()
    console.print(f"{state.phase.replace('_', ' ')}: {summary.reason}")
    console.print(f"report: {reports / state.candidate}.md")
    raise typer.Exit(0 if state.phase == "promoted" else 1)


def drill_command(
    environment: Annotated[str, typer.Option(help="An environment whose file sets allowDrills.")],
    model: Annotated[
        Path, typer.Option(help="The model the stable image serves (the golden checks' reference).")
    ] = Path("model"),
    error_rate: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Share of predictions the drill fails.")
    ] = DEFAULT_ERROR_RATE,
    reports: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/rollouts"),
) -> None:
    """Rollback drill: release the stable image with injected errors; exit 0 only if the
    controller rolls it back within the policy's worst case, 1 if not."""
    try:
        settings = load_file(environment)
        policy = load_policy(environment)
    except (ContractError, PolicyError) as error:
        fail(str(error))
    if not settings.allow_drills:
        fail(f"environments/Pulumi.{environment}.yaml does not allow drills (allowDrills: true)")
    platform, store = _target(environment, DEFAULT_WORKDIR)
    if not isinstance(platform, CloudPlatform):
        fail(f"{environment} is not a cloud environment: drills run on Cloud Run or GKE")
    try:
        candidate = drill_candidate(platform, model, error_rate)
        console.print(f"drill: {candidate.name} serves the stable image, failing {error_rate:.0%}")
        state, _ = execute(platform, policy, candidate, store, reports, console, environment)
    except DeployError as error:
        fail(str(error))
    passed, why = drill_verdict(state, cloud_plan(environment))
    console.print(
        f"[{'green' if passed else 'red'}]drill {'passed' if passed else 'FAILED'}:[/] {why}"
    )
    raise typer.Exit(0 if passed else 1)


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
        fail(str(error))
    if state is None:
        console.print("no rollout recorded: nothing to roll back")
    else:
        console.print(f"{state.candidate}: {state.phase.replace('_', ' ')} ({state.reason})")


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
        fail(str(error))
