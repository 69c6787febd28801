"""Serving benchmark (`make bench`): the service against the naive app, side by side in one run.

Both apps serve the same model file and answer the same JSON. They run at the same time on
127.0.0.1 and take turns per scenario, so machine noise hits both alike; the report gives ratios.
"""

import json
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

from benchmarks.load import LoadResult, run_load
from pipelines.data import DataSpec, generate, records
from pipelines.model_registry import RegistryError, resolve
from pipelines.server_process import ServerProcess, free_port, service_process
from pipelines.train import TrainConfig, train_and_publish

REGISTRY = Path("artifacts/bench/registry")
REPORT_DIR = Path("reports/bench")
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
CONCURRENCY = (1, 16, 64)
BATCH_ROWS = 100
BATCH_CONCURRENCY = 4


def trained_model() -> Path:
    try:
        return resolve(REGISTRY)
    except RegistryError:
        return train_and_publish(TrainConfig(), REGISTRY)


def _servers(model_dir: Path, logs: Path) -> dict[str, ServerProcess]:
    service_port, naive_port = free_port(), free_port()
    naive_argv = [
        sys.executable, "-m", "uvicorn", "benchmarks.naive_app:app",
        "--host", "127.0.0.1", "--port", str(naive_port),
    ]  # fmt: skip
    env = {"MODEL_DIR": str(model_dir), "OMP_NUM_THREADS": "1"}
    return {
        "service": service_process(model_dir, service_port, logs / "service.log", env),
        "naive": ServerProcess(naive_argv, naive_port, logs / "naive.log", env),
    }


def _cold_start(server: ServerProcess, body: bytes) -> float:
    """Seconds from spawning the process to its first 200 on /v1/predict."""
    started = time.monotonic()
    server.start()
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() - started < 120:
            try:
                if client.post(
                    f"{server.url}/v1/predict", content=body, headers=headers
                ).is_success:
                    return time.monotonic() - started
            except httpx.TransportError:
                time.sleep(0.02)
    raise RuntimeError(f"{server.argv} gave no prediction in 120 s:\n{server.log_tail()}")


def _scenarios(
    single: list[bytes], batches: list[bytes]
) -> list[tuple[str, str, list[bytes], int]]:
    rows = [(f"single c={c}", "/v1/predict", single, c) for c in CONCURRENCY]
    return [*rows, (f"batch {BATCH_ROWS} rows", "/v1/predict/batch", batches, BATCH_CONCURRENCY)]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _report(results: dict[str, dict[str, LoadResult]], cold: dict[str, float]) -> str:
    lines = [
        "# Serving benchmark",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {SECONDS:.0f} s per run,",
        "both apps alive at once on 127.0.0.1 and measured in turn; same model, same requests.",
        "",
        "| scenario | service req/s | naive req/s | throughput ratio | service p50 ms"
        " | naive p50 ms | service p99 ms | naive p99 ms | p99 ratio (naive/service)"
        " | errors (s/n) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in results["service"]:
        s, n = results["service"][name], results["naive"][name]
        lines.append(
            f"| {name} | {s.per_second:,.0f} | {n.per_second:,.0f} | "
            f"{_ratio(s.per_second, n.per_second)} | {s.p50_ms:.1f} | {n.p50_ms:.1f} | "
            f"{s.p99_ms:.1f} | {n.p99_ms:.1f} | {_ratio(n.p99_ms, s.p99_ms)} | "
            f"{s.errors}/{n.errors} |"
        )
    batch = f"batch {BATCH_ROWS} rows"
    rows_s = {app: results[app][batch].per_second * BATCH_ROWS for app in results}
    lines += [
        "",
        f"Batch rows/s: service {rows_s['service']:,.0f}, naive {rows_s['naive']:,.0f} "
        f"({_ratio(rows_s['service'], rows_s['naive'])}).",
        "",
        f"Cold start (process spawn to first 200 on /v1/predict): service {cold['service']:.2f} s, "
        f"naive {cold['naive']:.2f} s.",
        "",
        "The naive app: sync handler in the threadpool, one predict_proba per request, default",
        "uvicorn with its access log. The service: async handlers, concurrent requests coalesced",
        "into one model call on a dedicated thread (`service/batcher.py`), pure-ASGI middleware,",
        "uvloop + httptools, request logs only for failures and slow requests.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    console = Console()
    model_dir = trained_model()
    data = generate(DataSpec(n_rows=2_000, seed=123))
    bodies = [json.dumps(r).encode() for r in records(data, range(2_000))]
    batches = [
        json.dumps({"instances": records(data, range(i, i + BATCH_ROWS))}).encode()
        for i in range(0, 2_000, BATCH_ROWS)
    ]
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    servers = _servers(model_dir, REPORT_DIR)
    results: dict[str, dict[str, LoadResult]] = {name: {} for name in servers}
    try:
        cold = {name: _cold_start(server, bodies[0]) for name, server in servers.items()}
        for server in servers.values():
            run_load(server.port, "/v1/predict", bodies, 16, 2.0)  # warm-up
        scenarios = _scenarios(bodies, batches)
        with Progress(console=console) as progress:
            task = progress.add_task("measuring", total=len(scenarios) * len(servers))
            for name, path, payloads, concurrency in scenarios:
                for app, server in servers.items():
                    progress.update(task, description=f"{app}: {name}")
                    results[app][name] = run_load(server.port, path, payloads, concurrency, SECONDS)
                    progress.advance(task)
    finally:
        for server in servers.values():
            server.stop()
    report = _report(results, cold)
    (REPORT_DIR / "serving.md").write_text(report)
    raw = {app: {k: asdict(v) for k, v in runs.items()} for app, runs in results.items()}
    (REPORT_DIR / "serving.json").write_text(
        json.dumps({"results": raw, "cold_start_s": cold}, indent=2)
    )
    console.print(report)
    console.print(f"report: {REPORT_DIR / 'serving.md'}")


if __name__ == "__main__":
    main()
