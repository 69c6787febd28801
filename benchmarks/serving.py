"""Serving benchmark (`make bench`): the service against its framework's ceiling, side by side.

Four servers live at once on 127.0.0.1, each pinned to one core, with wrk pinned to the other:
the service on its compiled model, the same service on the scikit-learn pipeline (the same artifact
without its compiled file), the naive app (how such a service is usually first written) and a
FastAPI hello endpoint on the service's own stack (the ceiling). Rounds interleave servers and
scenarios, in a rotated order, so machine noise hits all alike; the report gives medians and the
spread of each round's ratio, the server's CPU per request and the client's CPU share, then the
cold start, the memory after a soak, and each target met or not.
"""

import json
import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
from matplotlib.figure import Figure
from rich.console import Console
from rich.progress import Progress

from benchmarks.wrk import WrkResult, run_wrk, write_bodies
from pipelines.data import DataSpec, generate, records
from pipelines.model_registry import RegistryError, resolve
from pipelines.server_process import ServerProcess, free_port, service_process
from pipelines.train import TrainConfig, train_and_publish
from service.artifact import METADATA_FILE, read_metadata
from service.native import build as build_native

REGISTRY = Path("artifacts/bench/registry")
REPORT_DIR = Path("reports/bench")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
SOAK_SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "60"))
COLD_ROUNDS = 5
BATCH_ROWS = 100
SERVERS = ("compiled", "sklearn", "naive", "hello")
LABELS = {
    "compiled": "service, compiled model",
    "sklearn": "service, scikit-learn pipeline",
    "naive": "naive app",
    "hello": "FastAPI hello (ceiling)",
}


@dataclass(frozen=True)
class Scenario:
    """One load shape: a route, its bodies, how many connections, and rows per request."""

    name: str
    path: str
    connections: int
    bodies: Path
    rows: int = 1


@dataclass(frozen=True)
class Run:
    """One wrk run against one server, with that server's CPU time over the run."""

    load: WrkResult
    server_cpu_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s / max(self.load.requests, 1) * 1e6


@dataclass(frozen=True)
class Soak:
    """Resident memory of a fresh service at its first prediction, sampled under load, after."""

    start_mb: float
    end_mb: float
    samples: list[tuple[float, float]]
    load: WrkResult


@dataclass(frozen=True)
class Target:
    """One of the issue's goals, as this run measured it."""

    name: str
    goal: str
    measured: str
    met: bool


def trained_model() -> Path:
    try:
        return resolve(REGISTRY)
    except RegistryError:
        return train_and_publish(TrainConfig(), REGISTRY)


def cores() -> tuple[int | None, int | None]:
    """(server core, client core), or (None, None) where fewer than two cores are allowed."""
    allowed = sorted(os.sched_getaffinity(0))
    return (allowed[-1], allowed[0]) if len(allowed) >= 2 else (None, None)


def pipeline_only(model_dir: Path, destination: Path) -> Path:
    """The same artifact without its compiled file: the service then scores with the pipeline."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(model_dir, destination)
    metadata = read_metadata(destination)
    if metadata.compiled is not None:
        (destination / metadata.compiled.file).unlink()
    stripped = metadata.model_copy(update={"compiled": None})
    (destination / METADATA_FILE).write_text(stripped.model_dump_json(indent=2))
    return destination


def _pinned(server: ServerProcess, cpu: int | None) -> ServerProcess:
    if cpu is not None:
        server.argv = ["taskset", "-c", str(cpu), *server.argv]
    return server


def make_servers(model_dir: Path, cpu: int | None) -> dict[str, Callable[[], ServerProcess]]:
    """A factory per server, so cold starts and the soak get fresh processes."""
    env = {"OMP_NUM_THREADS": "1"}
    sklearn_dir = pipeline_only(model_dir, REPORT_DIR / "pipeline-only-model")
    # As the image does: the compiled model's trees built into a native library for this machine.
    native_dir = REPORT_DIR / "native"
    build_native(model_dir, native_dir)
    native_env = {**env, "NATIVE_MODEL_DIR": str(native_dir)}

    def service(artifact: Path, name: str) -> Callable[[], ServerProcess]:
        return lambda: _pinned(
            service_process(artifact, free_port(), REPORT_DIR / f"{name}.log", native_env), cpu
        )

    def naive() -> ServerProcess:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "benchmarks.naive_app:app",
                "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        naive_env = {**env, "MODEL_DIR": str(model_dir)}
        return _pinned(ServerProcess(argv, port, REPORT_DIR / "naive.log", naive_env), cpu)

    def hello() -> ServerProcess:
        port = free_port()
        argv = [sys.executable, "-m", "benchmarks.hello_app"]
        hello_env = {**env, "PORT": str(port)}
        return _pinned(ServerProcess(argv, port, REPORT_DIR / "hello.log", hello_env), cpu)

    return {
        "compiled": service(model_dir, "compiled"),
        "sklearn": service(sklearn_dir, "sklearn"),
        "naive": naive,
        "hello": hello,
    }


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure(server: ServerProcess, scenario: Scenario, client_cpu: int | None) -> Run:
    before = _cpu_seconds(server.pid)
    load = run_wrk(
        server.url, scenario.path, scenario.bodies, scenario.connections, SECONDS, client_cpu
    )
    return Run(load, _cpu_seconds(server.pid) - before)


def first_prediction(server: ServerProcess, body: bytes) -> tuple[float, float]:
    """Start `server`; seconds from spawn to its first 200 on /v1/predict, and its resident MB
    at that moment. The caller stops it."""
    started = time.monotonic()
    server.start()
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - started < 120:
            try:
                answer = client.post(
                    f"{server.url}/v1/predict",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                if answer.is_success:
                    elapsed = time.monotonic() - started
                    return elapsed, psutil.Process(server.pid).memory_info().rss / 1e6
            except httpx.TransportError:
                time.sleep(0.005)
    raise RuntimeError(f"{server.argv} gave no prediction in 120 s:\n{server.log_tail()}")


def soak(server: ServerProcess, scenario: Scenario, body: bytes, client_cpu: int | None) -> Soak:
    """Start `server`; its resident memory at the first prediction, during `SOAK_SECONDS` of
    load, and after."""
    _, start_mb = first_prediction(server, body)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    began = time.monotonic()

    def sample() -> None:
        while not stop.wait(1.0):
            rss = psutil.Process(server.pid).memory_info().rss / 1e6
            samples.append((time.monotonic() - began, rss))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    load = run_wrk(
        server.url, scenario.path, scenario.bodies, scenario.connections, SOAK_SECONDS, client_cpu
    )
    stop.set()
    sampler.join()
    end_mb = psutil.Process(server.pid).memory_info().rss / 1e6
    return Soak(start_mb, end_mb, samples, load)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _spread(values: list[float]) -> str:
    return f"{_median(values):.2f}x ({min(values):.2f} to {max(values):.2f})"


def _ratios(
    runs: dict[str, dict[str, list[Run]]],
    scenario: str,
    a: str,
    b: str,
    key: Callable[[Run], float],
) -> list[float]:
    """Per round: key(a) / key(b), from runs made in the same round."""
    return [key(x) / key(y) for x, y in zip(runs[a][scenario], runs[b][scenario], strict=True)]


def _per_second(run: Run) -> float:
    return run.load.per_second


def _cpu(run: Run) -> float:
    return run.cpu_us_per_request


def targets(
    runs: dict[str, dict[str, list[Run]]],
    scenarios: list[Scenario],
    cold: dict[str, list[tuple[float, float]]],
    soaked: Soak,
) -> list[Target]:
    """The issue's targets, each from this run's own measurements."""
    single_1, single_64, batch = (s.name for s in scenarios)
    cpu_ratio = _median(_ratios(runs, single_1, "sklearn", "compiled", _cpu))
    ceiling = _median(_ratios(runs, single_64, "compiled", "hello", _per_second))
    p99 = _median([r.load.p99_ms for r in runs["compiled"][single_64]])
    rows = _median(_ratios(runs, batch, "compiled", "sklearn", _per_second))
    cold_s = _median([seconds for seconds, _ in cold["compiled"]])
    start_mb, end_mb = soaked.start_mb, soaked.end_mb
    return [
        Target("single row, c=1: server CPU per request", "≤ 1/8 of the pipeline's",
               f"1/{cpu_ratio:.1f}", cpu_ratio >= 8),
        Target("single row, c=64: throughput", "≥ 40% of the hello ceiling",
               f"{ceiling:.2%}", ceiling >= 0.4),
        Target("single row, c=64: p99", "≤ 40 ms", f"{p99:.1f} ms", p99 <= 40),
        Target(f"batch of {BATCH_ROWS}: rows/s", "≥ 5x the pipeline's", f"{rows:.1f}x", rows >= 5),
        Target("cold start to first good prediction", "≤ 0.8 s", f"{cold_s:.2f} s", cold_s <= 0.8),
        Target(f"resident memory after {SOAK_SECONDS:.0f} s of load", "≤ 110% of at start",
               f"{end_mb / start_mb:.0%} ({start_mb:.0f} → {end_mb:.0f} MB)",
               end_mb <= 1.1 * start_mb),
    ]  # fmt: skip


def _scenario_table(runs: dict[str, dict[str, list[Run]]], scenario: Scenario) -> list[str]:
    lines = [
        f"### {scenario.name}",
        "",
        "| server | req/s | rows/s | p50 ms | p99 ms | server CPU µs/req | client CPU | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in SERVERS:
        done = runs[name][scenario.name]
        per_second = _median([r.load.per_second for r in done])
        lines.append(
            f"| {LABELS[name]} | {per_second:,.0f} | {per_second * scenario.rows:,.0f} | "
            f"{_median([r.load.p50_ms for r in done]):.1f} | "
            f"{_median([r.load.p99_ms for r in done]):.1f} | "
            f"{_median([r.cpu_us_per_request for r in done]):,.0f} | "
            f"{_median([r.load.client_cpu_share for r in done]):.0%} | "
            f"{sum(r.load.errors for r in done)} |"
        )
    throughput = " · ".join(
        f"against the {LABELS[other]} "
        + _spread(_ratios(runs, scenario.name, "compiled", other, _per_second))
        for other in ("sklearn", "naive", "hello")
    )
    return [
        *lines,
        "",
        f"The compiled service's throughput, median (range) of the {ROUNDS} rounds' ratios: "
        f"{throughput}.",
        "",
    ]


def report(
    runs: dict[str, dict[str, list[Run]]],
    scenarios: list[Scenario],
    cold: dict[str, list[tuple[float, float]]],
    soaked: Soak,
    pinning: str,
) -> str:
    met = targets(runs, scenarios, cold, soaked)
    lines = [
        "# Serving benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {pinning}; {ROUNDS} "
        f"interleaved rounds of {SECONDS:g} s per server and scenario, wrk with one thread; "
        "medians over rounds. Same model, same requests for every server.",
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
        *(f"| {t.name} | {t.goal} | {t.measured} | {'yes' if t.met else '**no**'} |" for t in met),
        "",
        "## Load",
        "",
    ]
    for scenario in scenarios:
        lines += _scenario_table(runs, scenario)
    lines += [
        "## Cold start",
        "",
        f"Process spawn to the first 200 on /v1/predict, {COLD_ROUNDS} interleaved rounds: median "
        "(range), and resident memory then.",
        "",
        "| server | seconds | resident MB |",
        "|---|---|---|",
    ]
    for name, samples in cold.items():
        seconds = [s for s, _ in samples]
        spread = f"{_median(seconds):.2f} ({min(seconds):.2f} to {max(seconds):.2f})"
        lines.append(f"| {LABELS[name]} | {spread} | {_median([mb for _, mb in samples]):.0f} |")
    lines += [
        "",
        f"Memory: the compiled service, fresh, then {SOAK_SECONDS:.0f} s at "
        f"{scenarios[1].connections} connections: {soaked.start_mb:.0f} MB at the first "
        f"prediction, {soaked.end_mb:.0f} MB after (`serving.png`).",
        "",
        "The naive app: sync handler in the threadpool, one predict_proba per request, default",
        "uvicorn with its access log. The service: async handlers, concurrent requests coalesced",
        "into one model call (`service/batcher.py`), the compiled model's trees in a native",
        "library (`service/compiled.py`, `service/native.py`), pure-ASGI middleware, uvloop +",
        "httptools, start-up objects frozen out of the collector's sight, request logs only for",
        "failures and slow requests.",
    ]
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, dict[str, list[Run]]], scenario: Scenario, soaked: Soak,
         path: Path) -> None:  # fmt: skip
    figure = Figure(figsize=(11, 4))
    left, right = figure.subplots(1, 2)
    for name in SERVERS:
        left.plot(range(1, ROUNDS + 1), [r.load.per_second for r in runs[name][scenario.name]],
                  marker="o", label=LABELS[name])  # fmt: skip
    left.set(title=f"{scenario.name}: requests/s per round", xlabel="round", ylabel="req/s",
             xticks=range(1, ROUNDS + 1))  # fmt: skip
    left.legend(fontsize=8)
    right.plot([t for t, _ in soaked.samples], [mb for _, mb in soaked.samples], marker=".")
    right.axhline(soaked.start_mb, linestyle="--", color="grey", label="at the first prediction")
    right.set(title="compiled service under load: resident memory", xlabel="seconds",
              ylabel="MB", ylim=(0, max(mb for _, mb in soaked.samples) * 1.2))  # fmt: skip
    right.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def _scenarios(bodies: list[bytes], batches: list[bytes]) -> list[Scenario]:
    single = write_bodies(REPORT_DIR / "single.bodies", bodies)
    batch = write_bodies(REPORT_DIR / "batch.bodies", batches)
    return [
        Scenario("single row, c=1", "/v1/predict", 1, single),
        Scenario("single row, c=64", "/v1/predict", 64, single),
        Scenario(f"batch of {BATCH_ROWS} rows, c=4", "/v1/predict/batch", 4, batch, BATCH_ROWS),
    ]


def main() -> None:
    console = Console()
    model_dir = trained_model()
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    server_cpu, client_cpu = cores()
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})  # polling and sampling stay off the server's core
        pinning = f"servers on core {server_cpu}, wrk and this script on core {client_cpu}"
    else:
        pinning = "NOT pinned (fewer than two cores allowed): server and client share the CPU"
    data = generate(DataSpec(n_rows=2_000, seed=123))
    bodies = [json.dumps(r).encode() for r in records(data, range(2_000))]
    batches = [
        json.dumps({"instances": records(data, range(i, i + BATCH_ROWS))}).encode()
        for i in range(0, 2_000, BATCH_ROWS)
    ]
    scenarios = _scenarios(bodies, batches)
    factories = make_servers(model_dir, server_cpu)
    cold: dict[str, list[tuple[float, float]]] = {"compiled": [], "sklearn": []}
    runs: dict[str, dict[str, list[Run]]] = {n: {s.name: [] for s in scenarios} for n in SERVERS}
    with Progress(console=console) as progress:
        task = progress.add_task("cold starts", total=COLD_ROUNDS * len(cold))
        for _ in range(COLD_ROUNDS):
            for name, samples in cold.items():
                server = factories[name]()
                try:
                    samples.append(first_prediction(server, bodies[0]))
                finally:
                    server.stop()
                progress.advance(task)
        servers = {name: factories[name]() for name in SERVERS}
        try:
            for server in servers.values():
                server.start().wait_ready()
                run_wrk(server.url, "/v1/predict", scenarios[0].bodies, 16, 1.0, client_cpu)
            task = progress.add_task("load", total=ROUNDS * len(scenarios) * len(SERVERS))
            for round_index in range(ROUNDS):
                order = (
                    SERVERS[round_index % len(SERVERS) :] + SERVERS[: round_index % len(SERVERS)]
                )
                for scenario in scenarios:
                    for name in order:
                        progress.update(task, description=f"round {round_index + 1}: {name}, "
                                        f"{scenario.name}")  # fmt: skip
                        runs[name][scenario.name].append(
                            measure(servers[name], scenario, client_cpu)
                        )
                        progress.advance(task)
        finally:
            for server in servers.values():
                server.stop()
        progress.add_task(f"soak, {SOAK_SECONDS:.0f} s", total=None)
        server = factories["compiled"]()
        try:
            soaked = soak(server, scenarios[1], bodies[0], client_cpu)
        finally:
            server.stop()
    text = report(runs, scenarios, cold, soaked, pinning)
    (REPORT_DIR / "serving.md").write_text(text)
    plot(runs, scenarios[1], soaked, REPORT_DIR / "serving.png")
    raw = {
        "runs": {n: {s: [asdict(r) for r in rs] for s, rs in by.items()} for n, by in runs.items()},
        "cold_start": cold,
        "soak": asdict(soaked),
    }
    (REPORT_DIR / "serving.json").write_text(json.dumps(raw, indent=2))
    console.print(text)
    console.print(f"report: {REPORT_DIR / 'serving.md'}, {REPORT_DIR / 'serving.png'}")


if __name__ == "__main__":
    main()
