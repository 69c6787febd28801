"""Validate a frame of named columns against the feature spec, reporting every violation at once."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.features import FEATURES, Feature


@dataclass(frozen=True)
class Violation:
    """One broken rule: which column, what is wrong, how many rows, a few offending values."""

    column: str
    problem: str
    rows: int = 0
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" in {self.rows} row(s), e.g. {', '.join(self.examples)}" if self.rows else ""
        return f"{self.column}: {self.problem}{where}"


@dataclass(frozen=True)
class SchemaReport:
    """All violations found; an empty list means the frame fits the spec."""

    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        if self.ok:
            return "the frame matches the feature schema"
        lines = [f"{len(self.violations)} schema violation(s):"]
        lines += [f"  - {v}" for v in self.violations]
        return "\n".join(lines)


class SchemaError(ValueError):
    """Raised by callers that cannot go on with an invalid frame; carries the full report."""

    def __init__(self, report: SchemaReport) -> None:
        super().__init__(report.summary())
        self.report = report


def _examples(values: npt.NDArray[np.generic], mask: npt.NDArray[np.bool_]) -> tuple[str, ...]:
    return tuple(repr(v.item() if hasattr(v, "item") else v) for v in values[mask][:3])


def _check_numeric(feature: Feature, raw: npt.NDArray[np.generic]) -> list[Violation]:
    try:
        values = raw.astype(np.float64)
    except (TypeError, ValueError):
        return [Violation(feature.name, f"expected numbers, got dtype {raw.dtype}")]
    found: list[Violation] = []
    rules: list[tuple[str, npt.NDArray[np.bool_]]] = [("is NaN or infinite", ~np.isfinite(values))]
    finite = np.where(np.isfinite(values), values, 0.0)
    if feature.kind == "integer":
        rules.append(("is not a whole number", np.isfinite(values) & (finite != np.round(finite))))
    if feature.minimum is not None:
        rules.append((f"is below the minimum {feature.minimum:g}", finite < feature.minimum))
    if feature.maximum is not None:
        rules.append((f"is above the maximum {feature.maximum:g}", finite > feature.maximum))
    for problem, mask in rules:
        if mask.any():
            found.append(Violation(feature.name, problem, int(mask.sum()), _examples(raw, mask)))
    return found


def _check_categorical(feature: Feature, raw: npt.NDArray[np.generic]) -> list[Violation]:
    unknown = ~np.isin(raw.astype(str), np.asarray(feature.categories))
    if not unknown.any():
        return []
    allowed = ", ".join(feature.categories)
    problem = f"has values outside the allowed categories ({allowed})"
    return [Violation(feature.name, problem, int(unknown.sum()), _examples(raw, unknown))]


def validate_columns(
    columns: Mapping[str, Sequence[object] | npt.NDArray[np.generic]],
    features: Sequence[Feature] = FEATURES,
) -> SchemaReport:
    """Check presence, length, type, finiteness, ranges and categories of every column."""
    violations: list[Violation] = []
    expected = {f.name for f in features}
    for name in sorted(set(columns) - expected):
        violations.append(Violation(name, "is not a feature of the schema (remove or rename it)"))
    lengths = {name: len(values) for name, values in columns.items() if name in expected}
    if len(set(lengths.values())) > 1:
        violations.append(Violation("*", f"columns differ in length: {lengths}"))
    for feature in features:
        if feature.name not in columns:
            violations.append(Violation(feature.name, "is missing"))
            continue
        raw = np.asarray(columns[feature.name], dtype=object)
        if feature.kind == "categorical":
            violations += _check_categorical(feature, raw)
        else:
            violations += _check_numeric(feature, raw)
    return SchemaReport(tuple(violations))
