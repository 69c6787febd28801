"""Counting rows into a model's reference bins: once at training time (the reference), and again
for each window of live traffic, so both sides of every comparison use the same bins."""

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression

from service.features import FEATURES, Column
from service.metrics import low_confidence
from service.reference import BinnedCounts, Calibration, TrainingReference
from service.settings import Settings

# Deciles: ten bins of equal reference mass, the usual choice for the population stability index.
NUMERIC_BINS = 10
# The service's margin, so the reference rate means what its low_confidence counter counts.
LOW_CONFIDENCE_MARGIN = Settings.model_construct().LOW_CONFIDENCE_LOGIT_MARGIN


def _edges(values: npt.NDArray[np.float64]) -> list[float]:
    """Inner decile edges, each once: a feature with few distinct values gets fewer bins."""
    quantiles = np.quantile(values, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])
    return sorted({float(q) for q in quantiles if q > values.min()})


def count(bins: BinnedCounts, values: Column) -> npt.NDArray[np.int64]:
    """How many of `values` fall in each of `bins`' bins."""
    if bins.categories:
        found = np.asarray(values, dtype=object)
        return np.array([int(np.sum(found == c)) for c in bins.categories], dtype=np.int64)
    index = np.searchsorted(np.asarray(bins.edges), np.asarray(values, np.float64), side="right")
    return np.bincount(index, minlength=len(bins.edges) + 1).astype(np.int64)


def binned(name: str, values: Column, categories: tuple[str, ...] = ()) -> BinnedCounts:
    """Reference bins for `values`: the categories given, or deciles of the values."""
    if categories:
        shell = BinnedCounts(name=name, categories=list(categories), counts=[0] * len(categories))
    else:
        edges = _edges(np.asarray(values, dtype=np.float64))
        shell = BinnedCounts(name=name, edges=edges, counts=[0] * (len(edges) + 1))
    return shell.model_copy(update={"counts": count(shell, values).tolist()})


def calibration(labels: npt.NDArray[np.bool_], scores: npt.NDArray[np.float64]) -> Calibration:
    """Isotonic regression of labels on scores, kept as its steps."""
    fitted = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, labels)
    return Calibration(
        scores=[float(x) for x in fitted.X_thresholds_],
        fraud_rates=[float(y) for y in fitted.y_thresholds_],
    )


def expected_fraud(
    calibrated: Calibration, scores: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Each score's fraud probability by the reference calibration."""
    return np.interp(scores, calibrated.scores, calibrated.fraud_rates)


def training_reference(
    columns: Mapping[str, Column],
    held_out_labels: npt.NDArray[np.bool_],
    held_out_scores: npt.NDArray[np.float64],
    threshold: float,
) -> TrainingReference:
    """The training rows' inputs, and held-out rows' scores and labels, as bins."""
    return TrainingReference(
        rows=len(columns[FEATURES[0].name]),
        features=[binned(f.name, columns[f.name], f.categories) for f in FEATURES],
        scores=binned("score", held_out_scores),
        calibration=calibration(held_out_labels, held_out_scores),
        low_confidence_rate=float(
            np.mean(low_confidence(held_out_scores, threshold, LOW_CONFIDENCE_MARGIN))
        ),
    )
