"""The feature spec derived from `Transaction`, and the one encoding training and serving share.

Deriving the spec (names, kinds, ranges, categories) from the request model keeps the API contract,
the training-data schema and the model input in step: there is one place to add a feature.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args, get_origin

import annotated_types
import numpy as np
import numpy.typing as npt
from pydantic.fields import FieldInfo

from service.schemas import Transaction

FeatureKind = Literal["numeric", "integer", "categorical"]


@dataclass(frozen=True)
class Feature:
    """One input field of the model, as the API accepts it."""

    name: str
    kind: FeatureKind
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready form for artifact metadata."""
        return {
            "name": self.name,
            "kind": self.kind,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "categories": list(self.categories),
        }


# A plain dict: pylint cannot infer pydantic's class-level model_fields property.
_FIELDS: dict[str, FieldInfo] = dict(Transaction.model_fields.items())  # pylint: disable=no-member


def _feature_from_field(name: str) -> Feature:
    field = _FIELDS[name]
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return Feature(name, "categorical", categories=tuple(str(a) for a in get_args(annotation)))
    kind: FeatureKind = "integer" if annotation is int else "numeric"
    minimum = maximum = None
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            minimum = float(constraint.ge)  # pyright: ignore[reportArgumentType]
        elif isinstance(constraint, annotated_types.Le):
            maximum = float(constraint.le)  # pyright: ignore[reportArgumentType]
    return Feature(name, kind, minimum, maximum)


FEATURES: tuple[Feature, ...] = tuple(_feature_from_field(name) for name in _FIELDS)

# Derived inputs computed here, not inside the sklearn Pipeline, so the artifact holds only
# stock scikit-learn types that skops can load without trusting project code.
DERIVED_NUMERIC = ("is_cross_border",)
CATEGORICAL_COLUMNS = tuple(f.name for f in FEATURES if f.kind == "categorical")
NUMERIC_COLUMNS = tuple(f.name for f in FEATURES if f.kind != "categorical") + DERIVED_NUMERIC
MODEL_COLUMNS = CATEGORICAL_COLUMNS + NUMERIC_COLUMNS

Column = Sequence[object] | npt.NDArray[np.generic]


def encode_columns(columns: Mapping[str, Column]) -> npt.NDArray[np.object_]:
    """Build the model input matrix (categoricals first, then numerics) from named columns."""
    n_rows = len(columns[FEATURES[0].name])
    matrix = np.empty((n_rows, len(MODEL_COLUMNS)), dtype=object)
    for i, name in enumerate(CATEGORICAL_COLUMNS):
        matrix[:, i] = np.asarray(columns[name], dtype=object)
    offset = len(CATEGORICAL_COLUMNS)
    for i, name in enumerate(NUMERIC_COLUMNS[: -len(DERIVED_NUMERIC)]):
        matrix[:, offset + i] = np.asarray(columns[name], dtype=np.float64)
    cross_border = np.asarray(columns["country"], dtype=object) != np.asarray(
        columns["card_country"], dtype=object
    )
    matrix[:, -1] = cross_border.astype(np.float64)
    return matrix


def encode_transactions(transactions: Sequence[Transaction]) -> npt.NDArray[np.object_]:
    """Encode API requests with the same function training used on its columns."""
    columns = {f.name: [getattr(t, f.name) for t in transactions] for f in FEATURES}
    return encode_columns(columns)


def encode_records(records: Sequence[Mapping[str, object]]) -> npt.NDArray[np.object_]:
    """Request bodies, validated by the API's own schema, as the model's input: how offline
    checks send rows through exactly what a request goes through."""
    return encode_transactions([Transaction.model_validate(r) for r in records])


def feature_schema() -> list[dict[str, object]]:
    """The spec as stored in artifact metadata; a model trained on another spec is refused."""
    return [f.as_dict() for f in FEATURES]
