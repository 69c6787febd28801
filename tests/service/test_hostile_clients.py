"""The real service and router over raw sockets: slow clients are cut off, floods leave no trace."""

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from benchmarks.hostile_bodies import HOSTILE
from environments.traffic import stable_only
from pipelines.rollout.platforms.local.platform import ROUTER_MODULE
from pipelines.server_process import ServerProcess, free_port
from service.schemas import EXAMPLE_TRANSACTION
from tests.conftest import ready_service

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0
TIMEOUTS = {"HEADER_READ_TIMEOUT_S": str(TIMEOUT_S), "BODY_READ_TIMEOUT_S": str(TIMEOUT_S)}
# Production settings: limits and error answers as a deployed revision has them.
PRODUCTION = {"ENVIRONMENT": "staging", "GIT_SHA": "0123abc", **TIMEOUTS}


@pytest.fixture(scope="module")
def service(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("hostile") / "service.log"
    with ready_service(model_dir, log, PRODUCTION) as server:
        yield server


@pytest.fixture(scope="module")
def router(
    service: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("router")
    config = folder / "router.json"
    traffic = {"backends": {"stable": service.url}, "traffic": stable_only("stable").as_dict()}
    config.write_bytes(orjson.dumps(traffic))
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        ROUTER_MODULE,
        str(config),
        str(port),
    ]
    with ServerProcess(argv, port, folder / "router.log", TIMEOUTS) as server:
        server.wait_ready(timeout_s=60)
        yield server


def exchange(
    port: int, first: bytes, then: bytes = b"", pause_s: float = 0.0
) -> tuple[bytes, float]:
    """Send `first`, wait, send `then`, and read until the server closes; (answer, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(first)
        if pause_s:
            time.sleep(pause_s)
        if then:
            connection.sendall(then)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


HEAD = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"


@pytest.mark.parametrize("server", ["service", "router"])
@pytest.mark.parametrize(
    "first", [b"", b"POST /v1/pre", HEAD], ids=["silent", "half a request line", "half a head"]
)
def test_a_head_that_never_completes_gets_408_and_a_closed_connection(
    request: pytest.FixtureRequest, server: str, first: bytes
) -> None:
    port = request.getfixturevalue(server).port
    answer, seconds = exchange(port, first)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"HEADER_READ_TIMEOUT_S" in answer
    assert TIMEOUT_S * 0.9 <= seconds < TIMEOUT_S + 5


@pytest.mark.parametrize("server", ["service", "router"])
def test_a_body_that_never_completes_gets_408(request: pytest.FixtureRequest, server: str) -> None:
    port = request.getfixturevalue(server).port
    answer, seconds = exchange(port, HEAD + b"content-length: 300\r\n\r\n" + b'{"amount": ')
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"request body not received within 1 s" in answer
    assert TIMEOUT_S * 0.9 <= seconds < TIMEOUT_S + 5


@pytest.mark.parametrize("server", ["service", "router"])
def test_an_idle_keep_alive_connection_is_not_cut_by_the_head_deadline(
    request: pytest.FixtureRequest, server: str
) -> None:
    """The deadline starts at a request's first byte, not while the connection waits between."""
    url = request.getfixturevalue(server).url
    with httpx.Client(base_url=url, timeout=5) as client:
        assert client.post("/v1/predict", json=EXAMPLE_TRANSACTION).status_code == 200
        time.sleep(TIMEOUT_S * 1.5)
        assert client.post("/v1/predict", json=EXAMPLE_TRANSACTION).status_code == 200


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_flood_of_bad_requests_leaves_probes_answering_and_memory_where_it_was(
    service: ServerProcess,
) -> None:
    """Two clients send every hostile family (bounded: 25 rounds) while /healthz is probed."""
    bodies = list(HOSTILE.values())
    with httpx.Client(base_url=service.url, timeout=10) as client:
        for raw in bodies:  # the first of each warms allocator pools and caches
            client.post(
                "/v1/predict/batch", content=raw, headers={"content-type": "application/json"}
            )
    before = resident_mb(service.pid)
    statuses: list[int] = []

    def flood() -> None:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            for _ in range(25):
                for raw in bodies:
                    response = client.post(
                        "/v1/predict/batch",
                        content=raw,
                        headers={"content-type": "application/json"},
                    )
                    statuses.append(response.status_code)

    floods = [threading.Thread(target=flood) for _ in range(2)]
    for thread in floods:
        thread.start()
    probes: list[tuple[int, float]] = []
    with httpx.Client(base_url=service.url, timeout=3) as prober:
        while any(thread.is_alive() for thread in floods):
            started = time.monotonic()
            probes.append((prober.get("/healthz").status_code, time.monotonic() - started))
            time.sleep(0.05)
    for thread in floods:
        thread.join()
    after = resident_mb(service.pid)
    assert len(statuses) == 2 * 25 * len(bodies)
    assert all(400 <= status < 500 for status in statuses), sorted(set(statuses))
    assert len(probes) >= 10
    assert all(status == 200 for status, _ in probes)
    assert max(seconds for _, seconds in probes) < 1.0, "a probe waited behind the flood"
    assert after <= before * 1.10, f"resident memory {before:.0f} MB -> {after:.0f} MB"
