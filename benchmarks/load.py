"""A closed-loop HTTP/1.1 load generator: N keep-alive connections, each sending back to back.

Hand-rolled on asyncio streams so the client spends as little CPU as possible: on a 2-core machine
the client shares the cores with the server, and both apps under test pay the same client cost.
"""

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import uvloop


@dataclass(frozen=True)
class LoadResult:
    """Throughput and latency of one run; `errors` counts non-200 answers and broken connections."""

    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def _request_bytes(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _connection(
    host: str, port: int, requests: list[bytes], stop_at: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    i = 0
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            if await _read_response(reader) != 200:
                errors += 1
            latencies.append(time.perf_counter() - started)
    except (OSError, asyncio.IncompleteReadError):
        errors += 1
    finally:
        writer.close()
    return errors


async def _run(
    host: str, port: int, path: str, bodies: list[bytes], concurrency: int, seconds: float
) -> LoadResult:
    requests = [_request_bytes(host, port, path, body) for body in bodies]
    latencies: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(
            _connection(
                host, port, requests[i::concurrency] or requests, started + seconds, latencies
            )
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000 if latencies else np.asarray([float("nan")])
    return LoadResult(
        concurrency, len(latencies), sum(errors), elapsed,
        float(np.percentile(ms, 50)), float(np.percentile(ms, 99)),
    )  # fmt: skip


def run_load(
    port: int, path: str, bodies: list[bytes], concurrency: int, seconds: float
) -> LoadResult:
    """Send `bodies` round-robin from `concurrency` connections to 127.0.0.1 for `seconds`."""
    return uvloop.run(_run("127.0.0.1", port, path, bodies, concurrency, seconds))
