import asyncio
import threading

import numpy as np
import pytest

from service.batcher import MicroBatcher, Scores


class RecordingModel:
    """Scores a row as its first value, recording the size of every call; can be told to fail."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.delay_s = delay_s
        self.fail = fail
        self.release = threading.Event()

    def __call__(self, batch: list[float]) -> Scores:
        self.calls.append(len(batch))
        if self.delay_s:
            self.release.wait(self.delay_s)
        if self.fail:
            raise ValueError("model exploded")
        return np.asarray(batch, dtype=np.float64)


def rows(*values: float) -> list[float]:
    return list(values)


async def run_concurrently(batcher: MicroBatcher[float], count: int) -> list[Scores]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.score(rows(i)) for i in range(count)))
    finally:
        await batcher.stop()


def test_concurrent_requests_share_model_calls() -> None:
    """Requests that arrive while a call runs are coalesced, and each gets its own scores back."""
    model = RecordingModel(delay_s=0.05)
    results = asyncio.run(run_concurrently(MicroBatcher(model, max_rows=256), 40))
    assert [float(r[0]) for r in results] == list(range(40))
    assert sum(model.calls) == 40
    assert len(model.calls) < 40


def test_max_rows_bounds_each_call() -> None:
    model = RecordingModel(delay_s=0.02)
    asyncio.run(run_concurrently(MicroBatcher(model, max_rows=8), 50))
    assert max(model.calls) <= 8


def test_a_wait_budget_gathers_requests_that_arrive_spread_out() -> None:
    """With a wait budget, requests a few milliseconds apart still share a call."""
    model = RecordingModel()

    async def staggered() -> None:
        batcher = MicroBatcher(model, max_rows=100, max_wait_s=0.2)
        await batcher.start()

        async def later(i: int) -> Scores:
            await asyncio.sleep(i * 0.005)
            return await batcher.score(rows(i))

        await asyncio.gather(*(later(i) for i in range(5)))
        await batcher.stop()

    asyncio.run(staggered())
    assert model.calls == [5]


def test_a_model_failure_reaches_every_waiting_request() -> None:
    model = RecordingModel(fail=True)

    async def scenario() -> list[object]:
        batcher = MicroBatcher(model, max_rows=100)
        await batcher.start()
        outcome = await asyncio.gather(
            *(batcher.score(rows(i)) for i in range(3)), return_exceptions=True
        )
        await batcher.stop()
        return list(outcome)

    outcome = asyncio.run(scenario())
    assert all(isinstance(o, ValueError) for o in outcome)


def test_stop_fails_queued_requests_instead_of_hanging() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(RecordingModel(), max_rows=10)
        pending = asyncio.ensure_future(batcher.score(rows(1)))
        await asyncio.sleep(0)
        await batcher.stop()
        with pytest.raises(RuntimeError, match="shutting down"):
            await pending

    asyncio.run(scenario())
