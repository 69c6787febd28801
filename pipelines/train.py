"""Train the fraud model: a scikit-learn Pipeline, a held-out evaluation, a chosen threshold.

`train` is pure (data spec in, fitted model and metrics out); `train_and_publish` adds the
registry write. The same seed gives the same model bytes, so a re-run is verifiably a no-op.
"""

import hashlib
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from pipelines.compiled_export import Compiled, compile_pipeline
from pipelines.data import Dataset, DataSpec, generate
from pipelines.frame_schema import SchemaError, validate_columns
from pipelines.model_registry import DEFAULT_REGISTRY, deterministic_zip, publish
from pipelines.monitoring.profile import training_reference
from pipelines.rollout.smoke import golden_transactions
from service.artifact import ModelMetadata
from service.features import (
    CATEGORICAL_COLUMNS,
    FEATURES,
    encode_columns,
    encode_records,
    feature_schema,
)
from service.reference import TrainingReference


@dataclass(frozen=True)
class TrainConfig:
    """Data, split and model hyper-parameters: everything that decides the model's bytes."""

    data: DataSpec = field(default_factory=DataSpec)
    validation_share: float = 0.2
    test_share: float = 0.2
    max_iter: int = 150
    learning_rate: float = 0.08
    max_leaf_nodes: int = 31


@dataclass(frozen=True)
class TrainResult:
    """A fitted model, its serialized bytes, and how it did on data it never saw."""

    model: Pipeline
    model_bytes: bytes
    threshold: float
    metrics: dict[str, float]
    data_fingerprint: str
    config: TrainConfig
    reference: TrainingReference
    compiled: (
        Compiled | None
    )  # the serving path, when it scores like `model` (pipelines/compiled_export.py)


def build_pipeline(config: TrainConfig) -> Pipeline:
    """One-hot categoricals, pass numerics through, gradient-boosted trees on top."""
    categorical = list(range(len(CATEGORICAL_COLUMNS)))
    preprocess = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(
        max_iter=config.max_iter,
        learning_rate=config.learning_rate,
        max_leaf_nodes=config.max_leaf_nodes,
        early_stopping=False,  # pyright: ignore[reportArgumentType] - bool is valid; stub says str
        random_state=config.data.seed,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def _split(n: int, config: TrainConfig) -> tuple[npt.NDArray[np.intp], ...]:
    order = np.random.default_rng(config.data.seed + 1).permutation(n)
    n_test = int(n * config.test_share)
    n_validation = int(n * config.validation_share)
    return order[n_test + n_validation :], order[n_test : n_test + n_validation], order[:n_test]


def best_f1_threshold(labels: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64]) -> float:
    """The score threshold with the highest F1 on validation data (fraud is rare: not 0.5).

    It sits halfway between the lowest score it flags and the next score below, never on a
    score: a row exactly on the threshold would have its decision decided by rounding (the
    compiled model's last bit against scikit-learn's)."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1]))
    below = thresholds[best - 1] if best > 0 else 0.0
    return float(np.clip((thresholds[best] + below) / 2, 1e-6, 1 - 1e-6))


def evaluate(
    labels: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64], threshold: float
) -> dict[str, float]:
    """Ranking quality plus the precision/recall the service will actually deliver."""
    predicted = scores >= threshold
    true_positive = float(np.sum(predicted & labels))
    precision = true_positive / max(float(predicted.sum()), 1.0)
    recall = true_positive / max(float(labels.sum()), 1.0)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)),
        "average_precision": float(average_precision_score(labels, scores)),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "fraud_rate": float(labels.mean()),
        "n_test": float(len(labels)),
    }


def train(config: TrainConfig = TrainConfig(), dataset: Dataset | None = None) -> TrainResult:
    """Fit on the training split, pick the threshold on validation, report on test."""
    data = dataset if dataset is not None else generate(config.data)
    report = validate_columns(data.columns, FEATURES)
    if not report.ok:
        raise SchemaError(report)
    fit_rows, validation_rows, test_rows = _split(len(data), config)
    matrix = encode_columns(data.columns)
    model = build_pipeline(config)
    model.fit(matrix[fit_rows], data.labels[fit_rows])
    validation_scores = model.predict_proba(matrix[validation_rows])[:, 1]
    threshold = best_f1_threshold(data.labels[validation_rows], validation_scores)
    metrics = evaluate(
        data.labels[test_rows], model.predict_proba(matrix[test_rows])[:, 1], threshold
    )
    # Checked on every held-out row and on the rollout's golden rows.
    checks = [matrix[validation_rows], matrix[test_rows], encode_records(golden_transactions())]
    return TrainResult(
        model=model,
        model_bytes=deterministic_zip(skops.io.dumps(model)),
        threshold=threshold,
        metrics=metrics,
        data_fingerprint=data.fingerprint(),
        config=config,
        reference=training_reference(
            data.take(fit_rows).columns,
            data.labels[validation_rows],
            validation_scores,
            threshold,
        ),
        compiled=compile_pipeline(model, checks, threshold),
    )


def current_git_sha() -> str:
    """The commit the code was trained from, or "unknown" outside a git checkout."""
    try:
        git = shutil.which("git") or "git"
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def metadata_for(result: TrainResult) -> ModelMetadata:
    """Metadata for a result; the registry fills in the version when it publishes."""
    config = result.config
    return ModelMetadata(
        version="unpublished",
        sha256=hashlib.sha256(result.model_bytes).hexdigest(),
        created_at=datetime.now(UTC),
        git_sha=current_git_sha(),
        data_fingerprint=result.data_fingerprint,
        seed=config.data.seed,
        threshold=result.threshold,
        metrics=result.metrics,
        feature_schema=feature_schema(),
        training={
            "n_rows": config.data.n_rows,
            "fraud_rate": config.data.fraud_rate,
            "max_iter": config.max_iter,
            "learning_rate": config.learning_rate,
            "max_leaf_nodes": config.max_leaf_nodes,
        },
        reference=result.reference,
        compiled=result.compiled.spec if result.compiled else None,
    )


def train_and_publish(
    config: TrainConfig = TrainConfig(), registry: Path = DEFAULT_REGISTRY
) -> Path:
    """Train and store the model as the registry's next version; returns its folder."""
    result = train(config)
    return publish(result.model_bytes, metadata_for(result), registry, compiled_bytes(result))


def compiled_bytes(result: TrainResult) -> bytes | None:
    return result.compiled.model_bytes if result.compiled else None
