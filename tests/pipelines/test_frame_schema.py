import numpy as np

from pipelines.data import Dataset
from pipelines.frame_schema import validate_columns


def test_generated_data_matches_the_schema(tiny_data: Dataset) -> None:
    """The generator and the API contract agree."""
    report = validate_columns(tiny_data.columns)
    assert report.ok, report.summary()


def test_every_violation_is_reported_at_once(tiny_data: Dataset) -> None:
    """Missing, unknown, non-finite, fractional, out-of-range and unknown-category all show up."""
    columns = {name: values.copy() for name, values in tiny_data.columns.items()}
    del columns["amount"]
    columns["surprise"] = np.zeros(len(tiny_data))
    hours = columns["hour"].astype(float)
    hours[:4] = [np.nan, 3.5, -1, 24]
    columns["hour"] = hours
    channels = columns["channel"].astype(object)
    channels[0] = "telepathy"
    columns["channel"] = channels

    report = validate_columns(columns)

    problems = {(v.column, v.problem.split(" (")[0]) for v in report.violations}
    assert problems == {
        ("surprise", "is not a feature of the schema"),
        ("amount", "is missing"),
        ("hour", "is NaN or infinite"),
        ("hour", "is not a whole number"),
        ("hour", "is below the minimum 0"),
        ("hour", "is above the maximum 23"),
        ("channel", "has values outside the allowed categories"),
    }
    assert "'telepathy'" in report.summary()


def test_text_in_a_numeric_column_is_a_type_violation(tiny_data: Dataset) -> None:
    """A numeric column holding text is named with its dtype, not a crash."""
    columns = dict(tiny_data.columns)
    columns["amount"] = np.array(["a lot"] * len(tiny_data), dtype=object)
    (violation,) = validate_columns(columns).violations
    assert violation.column == "amount"
    assert "expected numbers" in violation.problem


def test_columns_of_different_lengths_are_reported(tiny_data: Dataset) -> None:
    """Ragged columns are one violation, not an index error."""
    columns = dict(tiny_data.columns)
    columns["hour"] = columns["hour"][:-1]
    assert any("differ in length" in v.problem for v in validate_columns(columns).violations)
