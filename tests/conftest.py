"""Shared fixtures: a tiny data set, one model trained per session, an app and a live server."""

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.data import Dataset, DataSpec, generate
from pipelines.model_registry import publish
from pipelines.rollout.platforms.local.processes import marked, stop_group
from pipelines.server_process import ServerProcess, free_port, service_process
from pipelines.train import TrainConfig, TrainResult, compiled_bytes, metadata_for, train
from service.app import create_app
from service.schemas import EXAMPLE_TRANSACTION, Transaction
from service.settings import Settings

TINY = TrainConfig(data=DataSpec(n_rows=3_000, seed=11), max_iter=40)
SUITE_MARKER = "ROLLOUT_TEST_SUITE"


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_suite() -> Iterator[None]:
    """Every process the tests start inherits this marker; when the suite ends, none may live.

    Autouse and session-wide: set up before any other fixture and torn down after all of them.
    """
    token = uuid.uuid4().hex
    os.environ[SUITE_MARKER] = token
    yield
    left = [found for found in marked(token, SUITE_MARKER) if found.pid != os.getpid()]
    if left:
        listing = "\n".join(f"  pid {found.pid}: {found.command}" for found in left)
        for found in left:  # reported, then stopped, so the next run starts clean
            stop_group(found.pid)
        pytest.fail(f"processes started by the tests were still running:\n{listing}")


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    return generate(TINY.data)


@pytest.fixture(scope="session")
def trained(tiny_data: Dataset) -> TrainResult:
    return train(TINY, tiny_data)


@pytest.fixture(scope="session")
def model_dir(trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published artifact; tests that tamper with one copy it first."""
    return publish(
        trained.model_bytes,
        metadata_for(trained),
        tmp_path_factory.mktemp("registry"),
        compiled_bytes(trained),
    )


@pytest.fixture(scope="session")
def challenger_dir(model_dir: Path) -> Path:
    """A second model, published after the champion (v2 in its own registry: scores differ)."""
    config = replace(TINY, data=DataSpec(n_rows=3_000, seed=12), max_iter=20)
    result = train(config, generate(config.data))
    registry = model_dir.parent / "challenger-registry"
    publish(result.model_bytes, metadata_for(result), registry, compiled_bytes(result))
    return publish(result.model_bytes, metadata_for(result), registry, compiled_bytes(result))


@pytest.fixture
def settings(model_dir: Path) -> Settings:
    return Settings(MODEL_DIR=model_dir, BATCH_MAX_INSTANCES=50, MAX_BODY_BYTES=64 * 1024)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def transaction() -> dict[str, object]:
    return dict(EXAMPLE_TRANSACTION)


def sent(count: int) -> list[Transaction]:
    """`count` transactions as a request carries them, for writing prediction events."""
    return [Transaction.model_validate(EXAMPLE_TRANSACTION)] * count


@contextlib.contextmanager
def ready_service(model_dir: Path, log: Path, env: Mapping[str, str]) -> Iterator[ServerProcess]:
    """A real service process on a free port of 127.0.0.1, ready; stopped on the way out."""
    with service_process(model_dir, free_port(), log, env) as server:
        server.wait_ready(timeout_s=90)
        yield server


@pytest.fixture(scope="session")
def live_service(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The real service process on 127.0.0.1, shared by the HTTP-level tests."""
    log = tmp_path_factory.mktemp("logs") / "service.log"
    with ready_service(model_dir, log, {"BATCH_MAX_INSTANCES": "50"}) as server:
        yield server
