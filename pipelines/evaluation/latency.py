"""The model call's latency in the serving path, for one row and for a batch of a hundred.

A gate, not a benchmark: the median of repeated calls on this machine, against a budget generous
enough for shared runners, catches a model that is ten times slower (deeper trees, a heavier
pipeline), not a few per cent.
"""

import statistics
import time

from environments.model_gates import LatencyGate
from pipelines.evaluation.behaviour import Row, Scorer
from pipelines.evaluation.verdict import GateResult
from service.features import encode_records

REPEATS = 30


def median_ms(scorer: Scorer, rows: list[Row]) -> float:
    matrix = encode_records(rows)
    scorer(matrix)  # the first call warms caches
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        scorer(matrix)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def latency_gate(scorer: Scorer, rows: list[Row], gate: LatencyGate) -> GateResult:
    one, hundred = median_ms(scorer, rows[:1]), median_ms(scorer, (rows * 100)[:100])
    figures = {"ms_one_row": one, "ms_hundred_rows": hundred}
    problems = []
    if one > gate.max_ms_one_row:
        problems.append(f"one row takes {one:.1f} ms > {gate.max_ms_one_row} ms")
    if hundred > gate.max_ms_hundred_rows:
        problems.append(f"a hundred rows take {hundred:.1f} ms > {gate.max_ms_hundred_rows} ms")
    reason = "; ".join(problems) or f"{one:.1f} ms for one row, {hundred:.1f} ms for a hundred"
    return GateResult("latency", not problems, reason, figures, gate.model_dump())
