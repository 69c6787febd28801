"""The training reference stored with a model: what its inputs and scores looked like when it was
trained, and how its scores map to observed fraud rates, as counts in bins.

Monitoring compares live traffic with it (pipelines/monitoring/). It lives in `metadata.json`, so it
is verified with the artifact, and it holds counts, never training rows: the image that carries the
model carries no one's transactions.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BinnedCounts(_Frozen):
    """Training rows per bin of one feature (or of the score).

    Numeric bins are split at `edges` (a value equal to an edge falls in the bin above it), so
    there are len(edges) + 1 bins; categorical bins are `categories` in order.
    """

    name: str
    edges: list[float] = []  # pydantic copies a default per instance
    categories: list[str] = []
    counts: list[int]

    @model_validator(mode="after")
    def _one_count_per_bin(self) -> "BinnedCounts":
        expected = len(self.categories) if self.categories else len(self.edges) + 1
        if len(self.counts) != expected:
            raise ValueError(f"{self.name}: {len(self.counts)} counts for {expected} bins")
        return self


class Calibration(_Frozen):
    """Observed fraud rate as a non-decreasing step function of the score (isotonic regression on
    held-out rows): the map confidence-based performance estimation reads expected labels from."""

    scores: list[float]
    fraud_rates: list[float]


class TrainingReference(_Frozen):
    """Inputs of the training rows, scores and labels of held-out rows, per bin."""

    rows: Annotated[int, Field(ge=1)]
    features: list[BinnedCounts]
    scores: BinnedCounts
    calibration: Calibration
    low_confidence_rate: Annotated[float, Field(ge=0, le=1)]
