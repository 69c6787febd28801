"""Compile a fitted pipeline for serving (treelite), and keep the result only if it scores every
check row like the pipeline: within the smoke check's tolerance on the probability, and the same
decision at the threshold. Anything else is published without it and served by scikit-learn.

treelite, not ONNX: skl2onnx 1.20 could not convert this HistGradientBoostingClassifier under
scikit-learn 1.9, and ONNX's tree ensembles compare in single precision, which moves rows that
sit on a threshold; treelite reproduced the pipeline to 2e-15 on 20,000 rows.
"""

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import treelite
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from pipelines.rollout.smoke import TOLERANCE
from service.compiled import CompiledModel, TreeliteScorer
from service.features import CATEGORICAL_COLUMNS

Matrix = npt.NDArray[np.object_]


class NotCompiledWarning(UserWarning):
    """The model is served by scikit-learn: the reason is the message."""


@dataclass(frozen=True)
class Compiled:
    """The compiled file's bytes and what metadata records about it."""

    model_bytes: bytes
    spec: CompiledModel


def _passes_through(transformer: object) -> bool:
    """ "passthrough", which a fitted ColumnTransformer holds as an identity FunctionTransformer."""
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


class _NotCompilableError(ValueError):
    """Why this pipeline has no compiled path."""


def _parts(pipeline: object) -> tuple[OneHotEncoder, HistGradientBoostingClassifier]:
    """The encoder and the trees of the one shape this path compiles; _NotCompilableError else."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise _NotCompilableError("not a two-step scikit-learn Pipeline")
    preprocess, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
    classes = getattr(classifier, "classes_", ())
    if not isinstance(classifier, HistGradientBoostingClassifier) or len(classes) != 2:
        raise _NotCompilableError(
            f"the classifier is a {type(classifier).__name__}, not a binary HistGradientBoosting"
        )
    if not isinstance(preprocess, ColumnTransformer):
        raise _NotCompilableError("the first step is not a ColumnTransformer")
    transformers = [(n, t, c) for n, t, c in preprocess.transformers_ if t != "drop"]
    categorical = list(range(len(CATEGORICAL_COLUMNS)))
    if (
        len(transformers) != 2
        or not isinstance(transformers[0][1], OneHotEncoder)
        or list(transformers[0][2]) != categorical
        or not _passes_through(transformers[1][1])
        or transformers[0][1].drop_idx_ is not None
    ):
        raise _NotCompilableError(
            "the preprocessing is not one-hot categoricals followed by passed-through numerics"
        )
    return transformers[0][1], classifier


def compile_pipeline(
    pipeline: object, checks: Sequence[Matrix], threshold: float
) -> Compiled | None:
    """The compiled model, if it scores every row of `checks` like `pipeline`; else None, with
    a NotCompiledWarning that says why."""
    try:
        encoder, classifier = _parts(pipeline)
    except _NotCompilableError as why:
        warnings.warn(f"served by scikit-learn: {why}", NotCompiledWarning, stacklevel=2)
        return None
    model_bytes = bytes(treelite.sklearn.import_model(classifier).serialize_bytes())
    spec = CompiledModel(
        sha256=hashlib.sha256(model_bytes).hexdigest(),
        categories=[[str(c) for c in column] for column in encoder.categories_],
        max_difference=0.0,
    )
    scorer = TreeliteScorer(model_bytes, spec)
    worst, flips = 0.0, 0
    for matrix in checks:
        expected = np.asarray(pipeline.predict_proba(matrix)[:, 1], np.float64)  # type: ignore[attr-defined]
        got = scorer.predict_proba(matrix)[:, 1]
        worst = max(worst, float(np.max(np.abs(got - expected), initial=0.0)))
        flips += int(np.sum((got >= threshold) != (expected >= threshold)))
    if worst > TOLERANCE or flips:
        warnings.warn(
            f"served by scikit-learn: the compiled model differs by up to {worst:.3g} "
            f"(tolerance {TOLERANCE:g}) and flips {flips} decisions",
            NotCompiledWarning,
            stacklevel=2,
        )
        return None
    return Compiled(model_bytes, spec.model_copy(update={"max_difference": worst}))
