"""A model trained as `make train` trains it: the gates' thresholds are set for such a model."""

from pathlib import Path

import pytest

from pipelines.model_registry import publish
from pipelines.train import TrainConfig, compiled_bytes, metadata_for, train


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = train(TrainConfig())
    return publish(
        result.model_bytes,
        metadata_for(result),
        tmp_path_factory.mktemp("registry"),
        compiled_bytes(result),
    )
