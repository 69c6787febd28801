"""The loaded model as the service uses it: verified at load, self-tested before readiness."""

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.artifact import (
    ModelMetadata,
    ProbabilityModel,
    load_scorer,
    load_verified,
    read_metadata,
)
from service.compiled import TreeliteScorer
from service.features import encode_transactions
from service.native import find_library
from service.schemas import EXAMPLE_TRANSACTION, Transaction

logger = logging.getLogger("service")


class SelfTestError(RuntimeError):
    """The model loaded but does not produce a valid probability for a known-good input."""


@dataclass(frozen=True)
class ScoringModel:
    """A verified model and its metadata; `score_rows` is the only call on the hot path."""

    metadata: ModelMetadata
    estimator: ProbabilityModel

    @classmethod
    def load(cls, artifact_dir: Path, native_dir: Path | None = None) -> "ScoringModel":
        """The artifact's model; with `native_dir`, a compiled model's trees run in the library
        built there for it, when there is one (service/native.py)."""
        library = None
        spec = read_metadata(artifact_dir).compiled
        if native_dir is not None and spec is not None:
            library, why = find_library(native_dir, spec)
            (logger.info if library else logger.warning)("model trees: %s", why)
        return cls(*load_scorer(artifact_dir, library))

    @classmethod
    def pipeline(cls, artifact_dir: Path) -> "ScoringModel":
        """The scikit-learn pipeline even when a compiled file exists: the artifact's own
        reference, which the rollout's golden check compares the served scores with, so a
        conversion bug cannot reach users."""
        return cls(*load_verified(artifact_dir))

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def compiled(self) -> bool:
        """Scored by the compiled model (service/compiled.py), not the scikit-learn pipeline."""
        return isinstance(self.estimator, TreeliteScorer)

    @property
    def runtime(self) -> str:
        """What runs the trees: "tl2cgen" (a native library), "treelite" or "scikit-learn"."""
        scorer = self.estimator
        return scorer.runtime if isinstance(scorer, TreeliteScorer) else "scikit-learn"

    @property
    def threshold(self) -> float:
        return self.metadata.threshold

    def score_rows(self, matrix: npt.NDArray[np.object_]) -> npt.NDArray[np.float64]:
        """Fraud probability per row. Inputs were range-checked by the API, so sklearn's finiteness
        scan is skipped (a measurable share of a small call)."""
        if self.compiled:
            return np.asarray(self.estimator.predict_proba(matrix)[:, 1], dtype=np.float64)
        import sklearn  # pylint: disable=import-outside-toplevel  # pyright: ignore[reportMissingTypeStubs]

        with sklearn.config_context(assume_finite=True):  # pyright: ignore[reportUnknownMemberType]
            return np.asarray(self.estimator.predict_proba(matrix)[:, 1], dtype=np.float64)

    def self_test(self) -> float:
        """Score the documented example; readiness waits for this to return."""
        score = float(
            self.score_rows(encode_transactions([Transaction.model_validate(EXAMPLE_TRANSACTION)]))[
                0
            ]
        )
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise SelfTestError(
                f"model {self.version} returned {score} for the example transaction"
            )
        return score
