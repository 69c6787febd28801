"""Coalesce concurrent prediction requests into one model call.

A model call on one row costs almost as much as on a hundred (input checks, encoding and numpy's
per-call overhead dominate), so under load the service queues requests while a call runs and
scores them together in the next one. When idle, a request is scored at once: no fixed wait is
added unless MICROBATCH_MAX_WAIT_MS asks for one. Each request hands in a list of rows and gets
back the rows of the call's result array that are its own.
"""

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

Row = TypeVar("Row")
Scores = npt.NDArray[np.float64]  # one row (or one value) per input row


class MicroBatcher(Generic[Row]):
    """Owns one worker task and one model thread; `score` is safe to call from many requests."""

    def __init__(
        self,
        score_rows: Callable[[list[Row]], Scores],
        max_rows: int,
        max_wait_s: float = 0.0,
        on_batch: Callable[[int], None] = lambda rows: None,
        inline_max_rows: int = 1,
    ) -> None:
        self._score_rows = score_rows
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._inline_max_rows = inline_max_rows
        self._queue: asyncio.Queue[tuple[list[Row], asyncio.Future[Scores]]] = asyncio.Queue()
        # One thread: model calls run off the event loop, which keeps parsing the next requests.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="microbatcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the service is shutting down"))
        self._executor.shutdown(wait=True)

    async def score(self, rows: list[Row]) -> Scores:
        """This request's rows of the result of whichever model call picks `rows` up."""
        future: asyncio.Future[Scores] = asyncio.get_running_loop().create_future()
        await self._queue.put((rows, future))
        return await future

    async def _collect(self) -> list[tuple[list[Row], asyncio.Future[Scores]]]:
        items = [await self._queue.get()]
        rows = len(items[0][0])
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while rows < self._max_rows:
            if self._queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            items.append(item)
            rows += len(item[0])
        return items

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            batch = items[0][0] if len(items) == 1 else [row for rows, _ in items for row in rows]
            self._on_batch(len(batch))
            try:
                if len(batch) <= self._inline_max_rows and self._queue.empty():
                    # Nothing else waiting: a thread hop would only add latency.
                    scores = self._score_rows(batch)
                else:
                    scores = await loop.run_in_executor(self._executor, self._score_rows, batch)
            # Any model failure goes to every waiting request, which then answers 500.
            except Exception as error:  # noqa: BLE001  # pylint: disable=broad-exception-caught
                for _, future in items:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for rows, future in items:
                if not future.done():
                    future.set_result(scores[start : start + len(rows)])
                start += len(rows)
