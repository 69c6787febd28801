import numpy as np
import pytest
import skops.io

from pipelines.data import Dataset, DataSpec, generate
from pipelines.frame_schema import SchemaError
from pipelines.train import TrainConfig, TrainResult, best_f1_threshold, train
from service.artifact import TRUSTED_TYPES
from service.features import encode_columns
from tests.conftest import TINY


def test_training_is_deterministic(trained: TrainResult, tiny_data: Dataset) -> None:
    """The same config and data give byte-identical model files."""
    assert train(TINY, tiny_data).model_bytes == trained.model_bytes


def test_a_different_seed_gives_a_different_model(trained: TrainResult) -> None:
    other = TrainConfig(data=DataSpec(n_rows=3_000, seed=12), max_iter=40)
    assert train(other).model_bytes != trained.model_bytes


def test_model_has_real_signal(trained: TrainResult) -> None:
    """Held-out ranking is far better than chance and the threshold sits inside (0, 1)."""
    assert trained.metrics["roc_auc"] > 0.8
    assert trained.metrics["average_precision"] > 3 * trained.metrics["fraud_rate"]
    assert 0 < trained.threshold < 1


def test_serialized_model_predicts_like_the_fitted_one(
    trained: TrainResult, tiny_data: Dataset
) -> None:
    """The artifact round-trips through skops with only the trusted types."""
    loaded = skops.io.loads(trained.model_bytes, trusted=TRUSTED_TYPES)
    matrix = encode_columns(tiny_data.columns)
    np.testing.assert_array_equal(loaded.predict_proba(matrix), trained.model.predict_proba(matrix))


def test_best_f1_threshold_separates_perfect_scores() -> None:
    """With perfectly separated scores the chosen threshold splits the classes."""
    labels = np.array([False, False, True, True])
    threshold = best_f1_threshold(labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert 0.2 < threshold <= 0.8


def test_invalid_training_data_is_refused(tiny_data: Dataset) -> None:
    """Training stops with every schema violation listed."""
    columns = dict(tiny_data.columns)
    columns["hour"] = np.asarray(columns["hour"], dtype=np.int64) + 30
    bad = Dataset(columns, tiny_data.labels, tiny_data.groups, tiny_data.spec)
    with pytest.raises(SchemaError, match="hour: is above the maximum 23"):
        train(TINY, bad)


def test_generated_data_is_not_reused_across_specs() -> None:
    """Training draws data from its own spec when none is given."""
    config = TrainConfig(data=DataSpec(n_rows=1_000, seed=5), max_iter=5)
    assert train(config).data_fingerprint == generate(config.data).fingerprint()
