"""Realistic user traffic at a set rate, recording what every request got back.

Open loop: requests are sent on schedule whatever the latency, as users would, with a bound on
requests in flight. Every outcome (time, status, revision, latency) is kept for the report and for
the failed-request ratio.
"""

import asyncio
import json
import threading
import time

import httpx

from pipelines.data import DataSpec, generate, records
from pipelines.rollout.report import Outcome

MAX_IN_FLIGHT = 64


class TrafficGenerator:
    """Sends transactions to `url` at `rate_per_s` in a background thread until stopped.

    Stops by itself after `max_seconds` so a crashed caller never leaves load running.
    """

    def __init__(
        self, url: str, rate_per_s: float, max_seconds: float = 900.0, seed: int = 5
    ) -> None:
        self.url = url
        self.rate_per_s = rate_per_s
        self.max_seconds = max_seconds
        data = generate(DataSpec(n_rows=5_000, seed=seed))
        self._bodies = [json.dumps(r).encode() for r in records(data, range(5_000))]
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> "TrafficGenerator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [o for o in list(self.outcomes) if start <= o.at <= end]

    def _run(self) -> None:
        asyncio.run(self._send_all())

    async def _send_all(self) -> None:
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT)
        headers = {"content-type": "application/json"}
        async with httpx.AsyncClient(base_url=self.url, timeout=10, limits=limits) as client:
            in_flight: set[asyncio.Task[None]] = set()
            started = time.time()
            sent = 0
            while not self._stop.is_set() and time.time() - started < self.max_seconds:
                due = started + sent / self.rate_per_s
                await asyncio.sleep(max(0.0, due - time.time()))
                if len(in_flight) < MAX_IN_FLIGHT:
                    body = self._bodies[sent % len(self._bodies)]
                    task = asyncio.create_task(self._send(client, body, headers))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                sent += 1
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _send(self, client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> None:
        at = time.time()
        try:
            response = await client.post("/v1/predict", content=body, headers=headers)
            status, revision = response.status_code, response.headers.get("x-revision", "")
        except httpx.HTTPError:
            status, revision = 0, ""
        self.outcomes.append(Outcome(at, status, revision, time.time() - at))
