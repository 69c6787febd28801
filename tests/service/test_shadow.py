"""Shadow mirroring: off the hot path, bounded, and invisible in the live answers."""

import asyncio
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from pipelines.atomic_file import write_json_atomic
from pipelines.rollout.window import ShadowCounts, parse_metrics
from pipelines.server_process import ServerProcess
from service.app import create_app
from service.events import EventLog
from service.metrics import ShadowMetrics
from service.mirrored import Mirrored
from service.schemas import EXAMPLE_TRANSACTION, Transaction
from service.settings import Settings
from service.shadow import ShadowMirror, ShadowSwitch
from tests.conftest import ready_service


def switch(url: str, source: str = "stable", expires_in: float = 300.0) -> ShadowSwitch:
    return ShadowSwitch(
        source=source,
        candidate="candidate",
        url=url,
        sample_rate=1.0,
        expires_at=time.time() + expires_in,
        max_logit_difference=2.0,
    )


def mirrored(request_id: str = "r1") -> Mirrored:
    transaction = Transaction.model_validate(EXAMPLE_TRANSACTION)
    return Mirrored("predict", request_id, [transaction], [0.1], [True])


def mirror_of(location: Path, **settings: object) -> tuple[ShadowMirror, CollectorRegistry]:
    registry = CollectorRegistry()
    config = Settings.model_validate(
        {"K_REVISION": "stable", "SHADOW_CONTROL": str(location), **settings}
    )
    events = EventLog("stable", enabled=False)
    return ShadowMirror(config, ShadowMetrics(registry, "stable"), events), registry


def counts(registry: CollectorRegistry) -> ShadowCounts:
    shadow = parse_metrics(generate_latest(registry).decode()).shadow
    assert shadow is not None
    return shadow


class TestMirrorInProcess:
    def test_a_full_queue_drops_and_counts_and_never_blocks(self, tmp_path: Path) -> None:
        async def scenario() -> tuple[int, ShadowCounts]:
            mirror, registry = mirror_of(tmp_path / "switch.json", SHADOW_QUEUE_SIZE=3)
            mirror.switch = switch("http://127.0.0.1:9")
            for number in range(10):  # no worker runs: the queue only fills
                mirror.offer(mirrored(f"r{number}"))
            queued = mirror._queue.qsize()  # pylint: disable=protected-access
            await mirror.stop()
            return queued, counts(registry)

        queued, shadow = asyncio.run(scenario())
        assert queued == 3
        assert shadow.dropped == 7

    @pytest.mark.parametrize(
        "document",
        [
            switch("http://127.0.0.1:9", source="another-revision"),
            switch("http://127.0.0.1:9", expires_in=-1),
        ],
        ids=["another revision's switch", "an expired switch"],
    )
    def test_only_a_live_switch_naming_this_revision_mirrors(
        self, tmp_path: Path, document: ShadowSwitch
    ) -> None:
        location = tmp_path / "switch.json"
        write_json_atomic(location, document.model_dump(mode="json"))

        async def scenario() -> int:
            mirror, _ = mirror_of(location)
            await mirror.refresh()
            mirror.offer(mirrored())
            queued = mirror._queue.qsize()  # pylint: disable=protected-access
            await mirror.stop()
            return queued

        assert asyncio.run(scenario()) == 0

    def test_an_invalid_switch_turns_mirroring_off(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        location = tmp_path / "switch.json"
        location.write_text('{"source": "stable", "sample_rate": 7}')

        async def scenario() -> ShadowSwitch | None:
            mirror, _ = mirror_of(location)
            mirror.switch = switch("http://127.0.0.1:9")
            await mirror.refresh()
            await mirror.stop()
            return mirror.switch

        assert asyncio.run(scenario()) is None
        assert "unreadable, mirroring off" in caplog.text


class Hanging:
    """Accepts connections and never answers: a candidate that hangs."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


class Failing(BaseHTTPRequestHandler):
    """Answers every request with a 500: a candidate that errors."""

    def do_POST(self) -> None:  # pylint: disable=invalid-name  # the base class names it
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(500)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # pylint: disable=redefined-builtin
        del format, args


class TestTheShadowHeader:
    """Only the switch's token marks a request as a mirrored copy; anything else is live."""

    @pytest.mark.parametrize(("header", "recorded"), [(None, 1), ("forged-by-a-client", 1),
                                                       ("TOKEN", 0)])  # fmt: skip
    def test_only_the_token_keeps_a_request_out_of_the_events(
        self, model_dir: Path, tmp_path: Path, header: str | None, recorded: int
    ) -> None:
        location = tmp_path / "switch.json"
        current = switch("http://127.0.0.1:9", source="another-revision")
        write_json_atomic(location, current.model_dump(mode="json"))
        lines: list[bytes] = []
        settings = Settings(
            MODEL_DIR=model_dir, K_REVISION="candidate", SHADOW_CONTROL=str(location)
        )
        app = create_app(settings, events=EventLog("candidate", write=lines.append))
        headers = {} if header is None else {"x-shadow-of": header.replace("TOKEN", current.token)}
        with TestClient(app) as client:
            answer = client.post("/v1/predict", json=EXAMPLE_TRANSACTION, headers=headers)
        assert answer.status_code == 200
        assert len(lines) == recorded


@pytest.fixture(scope="module")
def switch_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shadow") / "switch.json"


@pytest.fixture(scope="module")
def candidate(
    model_dir: Path, switch_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The stable revision's model again, reading the same switch (it knows the token)."""
    env = {"K_REVISION": "candidate", "SHADOW_CONTROL": str(switch_file), "SHADOW_POLL_S": "0.1"}
    log = tmp_path_factory.mktemp("candidate") / "candidate.log"
    with ready_service(model_dir, log, env) as server:
        yield server


@pytest.fixture(scope="module")
def stable(
    model_dir: Path, switch_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A serving revision that polls its switch every 0.1 s, with a tight shadow budget."""
    folder = tmp_path_factory.mktemp("stable")
    env = {
        "K_REVISION": "stable",
        "SHADOW_CONTROL": str(switch_file),
        "SHADOW_POLL_S": "0.1",
        "SHADOW_TIMEOUT_MS": "200",
        "SHADOW_QUEUE_SIZE": "16",
        "SHADOW_WORKERS": "4",
    }
    with ready_service(model_dir, folder / "stable.log", env) as server:
        yield server


def turn_on(stable: ServerProcess, target: str | None) -> None:
    """Write (or remove) the switch, then wait two polls so the revision has read it."""
    location = Path(stable.env["SHADOW_CONTROL"])
    if target is None:
        location.unlink(missing_ok=True)
    else:
        write_json_atomic(location, switch(target).model_dump(mode="json"))
    time.sleep(0.3)


def shadow_of(stable: ServerProcess) -> ShadowCounts:
    shadow = parse_metrics(httpx.get(f"{stable.url}/metrics", timeout=10).text).shadow
    assert shadow is not None, "a revision with SHADOW_CONTROL exports its shadow counters"
    return shadow


@pytest.mark.integration
def test_live_answers_are_byte_identical_with_mirroring_on_and_off(
    stable: ServerProcess, candidate: ServerProcess
) -> None:
    """Same requests, same ids: the same bytes; the candidate (same model) agrees on every one
    and records no event for a mirrored request."""
    bodies = [dict(EXAMPLE_TRANSACTION, amount=10.0 * (i + 1)) for i in range(20)]

    def answers() -> list[bytes]:
        with httpx.Client(base_url=stable.url, timeout=10) as client:
            return [
                client.post("/v1/predict", json=body, headers={"x-request-id": f"same-{i}"}).content
                for i, body in enumerate(bodies)
            ]

    turn_on(stable, None)
    before, off = shadow_of(stable), answers()
    turn_on(stable, candidate.url)
    on = answers()
    deadline = time.monotonic() + 10
    while (after := shadow_of(stable).minus(before)).mirrored < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    turn_on(stable, None)
    assert on == off
    assert (after.mirrored, after.dropped) == (20, 0)
    # Compared answers agree (a busy machine may time one out at this revision's 200 ms budget).
    assert after.ok >= 15
    assert (after.predictions, after.shifted, after.flips) == (after.ok, 0, 0)
    events = [
        json.loads(line)
        for line in candidate.log_path.read_text().splitlines()
        if line.startswith("{") and '"event"' in line
    ]
    assert not [e for e in events if str(e.get("request_id", "")).startswith("same-")]


async def _load(url: str, requests: int, rate_per_s: float) -> tuple[list[float], int]:
    """Open-loop load at a fixed rate: latencies of the 200s, and how many were not 200."""
    latencies: list[float] = []
    failed = 0

    async def one(client: httpx.AsyncClient, amount: float) -> None:
        nonlocal failed
        started = time.perf_counter()
        body = dict(EXAMPLE_TRANSACTION, amount=amount)
        try:
            response = await client.post("/v1/predict", json=body)
        except httpx.HTTPError:
            failed += 1
            return
        if response.status_code != 200:
            failed += 1
            return
        latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        tasks = []
        for number in range(requests):
            tasks.append(asyncio.create_task(one(client, 1.0 + number)))
            await asyncio.sleep(1 / rate_per_s)
        await asyncio.gather(*tasks)
    return latencies, failed


@pytest.mark.integration
def test_a_hanging_or_failing_candidate_changes_nothing_for_users(stable: ServerProcess) -> None:
    """Interleaved rounds without a shadow, with a hanging one and with a failing one (100
    requests at 100/s each): no live request fails, and live latency stays where it was, while
    the mirror counts timeouts, failures and what its bounded queue dropped."""
    hanging = Hanging()
    failing = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    targets = {
        "off": None,
        "hanging": f"http://127.0.0.1:{hanging.port}",
        "failing": f"http://127.0.0.1:{failing.server_address[1]}",
    }
    medians: dict[str, list[float]] = {name: [] for name in targets}
    seen: dict[str, ShadowCounts] = {}
    try:
        for _round in range(2):
            for name, target in targets.items():
                turn_on(stable, target)
                before = shadow_of(stable)
                latencies, failed = asyncio.run(_load(stable.url, 100, 100.0))
                # The queue drains: 20 requests (16 queued, 4 in flight) at 200 ms per 4.
                time.sleep(1.2)
                seen[name] = shadow_of(stable).minus(before)
                assert failed == 0, f"{failed} live requests failed with the {name} shadow"
                medians[name].append(statistics.median(latencies))
    finally:
        turn_on(stable, None)
        hanging.close()
        failing.shutdown()
        failing.server_close()
    assert seen["off"].mirrored + seen["off"].dropped == 0
    assert seen["hanging"].timeout > 0
    assert seen["hanging"].dropped > 0, "4 workers x 200 ms cannot take 100 requests/s"
    assert seen["hanging"].mirrored + seen["hanging"].dropped == 100, "every request is counted"
    assert seen["failing"].failed == 100
    baseline = statistics.median(medians["off"])
    for name in ("hanging", "failing"):
        ratio = statistics.median(medians[name]) / baseline
        # A generous bound on a shared machine: a mirror on the hot path would cost 200 ms.
        assert ratio < 2.0, f"live median latency x{ratio:.2f} with a {name} shadow"
