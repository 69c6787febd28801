"""A model trained once for the monitoring tests, and windows of traffic it scored."""

from dataclasses import dataclass

import numpy as np
import pytest

from pipelines.data import DataSpec, generate
from pipelines.monitoring.observed import Observed
from pipelines.train import TrainConfig, TrainResult, metadata_for, train
from service.artifact import ModelMetadata
from service.features import encode_columns

MONITORED = TrainConfig(data=DataSpec(n_rows=12_000, seed=7), max_iter=60)


@dataclass(frozen=True)
class Monitored:
    """The trained model and its metadata (with the training reference)."""

    result: TrainResult
    metadata: ModelMetadata

    def window(self, spec: DataSpec, labelled: bool = True) -> Observed:
        """`spec`'s rows as the model scored them, newest first, labels when `labelled`."""
        data = generate(spec)
        scores = self.result.model.predict_proba(encode_columns(data.columns))[:, 1]
        return Observed(
            data.columns, scores, scores >= self.result.threshold,
            data.labels if labelled else None, np.arange(len(data), 0, -1, dtype=np.float64),
        )  # fmt: skip


@pytest.fixture(scope="session")
def monitored() -> Monitored:
    result = train(MONITORED)
    return Monitored(result, metadata_for(result))
