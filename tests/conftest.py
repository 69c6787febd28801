"""Shared fixtures: a tiny data set, one model trained per session, an app and a live server."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines.data import Dataset, DataSpec, generate
from pipelines.model_registry import publish
from pipelines.server_process import ServerProcess, free_port, service_process
from pipelines.train import TrainConfig, TrainResult, metadata_for, train
from service.app import create_app
from service.schemas import EXAMPLE_TRANSACTION
from service.settings import Settings

TINY = TrainConfig(data=DataSpec(n_rows=3_000, seed=11), max_iter=40)


@pytest.fixture(scope="session")
def tiny_data() -> Dataset:
    return generate(TINY.data)


@pytest.fixture(scope="session")
def trained(tiny_data: Dataset) -> TrainResult:
    return train(TINY, tiny_data)


@pytest.fixture(scope="session")
def model_dir(trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published artifact; tests that tamper with one copy it first."""
    return publish(trained.model_bytes, metadata_for(trained), tmp_path_factory.mktemp("registry"))


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


@pytest.fixture(scope="session")
def live_service(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The real service process on 127.0.0.1, shared by the HTTP-level tests."""
    log = tmp_path_factory.mktemp("logs") / "service.log"
    server = service_process(model_dir, free_port(), log, {"BATCH_MAX_INSTANCES": "50"})
    with server:
        server.wait_ready(timeout_s=90)
        yield server
