"""What each hostile request costs the service, next to a full good batch: `make bench-hostile`.

In one process, through the real app with production limits: CPU time and peak traced memory of
each request, rounds interleaved so machine noise hits every kind alike; the report gives the
median of each round's ratio to the good batch. The tests hold these ratios under 3x
(tests/service/test_body_limits.py); this writes the figures.
"""

import gc
import statistics
import time
import tracemalloc
from datetime import UTC, datetime

import orjson
from fastapi.testclient import TestClient

from benchmarks.hostile_bodies import HOSTILE
from benchmarks.serving import REPORT_DIR, trained_model
from service.app import create_app
from service.schemas import EXAMPLE_TRANSACTION
from service.settings import Settings

ROUNDS = 7
GOOD = "a full good batch (1,000 instances)"


def measure(client: TestClient, body: bytes) -> tuple[float, float, int]:
    """CPU seconds, peak traced megabytes and status of one request."""
    gc.collect()
    tracemalloc.start()
    started = time.process_time()
    response = client.post(
        "/v1/predict/batch", content=body, headers={"content-type": "application/json"}
    )
    spent = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return spent, peak, response.status_code


def main() -> None:
    bodies = {GOOD: orjson.dumps({"instances": [EXAMPLE_TRANSACTION] * 1_000})} | HOSTILE
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in bodies}
    with TestClient(create_app(Settings(MODEL_DIR=trained_model()))) as client:
        for body in bodies.values():  # warm every path once
            measure(client, body)
        for round_number in range(ROUNDS):
            print(f"round {round_number + 1}/{ROUNDS}", flush=True)
            for name, body in bodies.items():
                samples[name].append(measure(client, body))
    good = samples[GOOD]
    lines = [
        "# Hostile requests: cost next to a full good batch",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {ROUNDS} interleaved rounds, in one process "
        "(CPU time and tracemalloc peak; medians, and medians of per-round ratios).",
        "",
        "| request | size | answer | CPU ms | peak MB | CPU ratio | memory ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in samples.items():
        cpu = statistics.median(ms for ms, _, _ in runs) * 1000
        peak = statistics.median(mb for _, mb, _ in runs)
        cpu_ratio = statistics.median(r[0] / g[0] for r, g in zip(runs, good, strict=True))
        mem_ratio = statistics.median(r[1] / g[1] for r, g in zip(runs, good, strict=True))
        lines.append(
            f"| {name} | {len(bodies[name]):,} B | {runs[0][2]} | {cpu:.1f} | {peak:.1f} | "
            f"{cpu_ratio:.2f}x | {mem_ratio:.2f}x |"
        )
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    report = REPORT_DIR / "hostile.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"report: {report}")


if __name__ == "__main__":
    main()
