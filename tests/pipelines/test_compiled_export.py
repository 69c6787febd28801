"""The compiled scoring path is exported only when it scores like the pipeline it came from."""

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier

from pipelines.compiled_export import NotCompiledWarning, compile_pipeline
from pipelines.data import DataSpec, generate
from pipelines.train import TrainResult
from service.compiled import TreeliteScorer
from service.features import CATEGORICAL_COLUMNS, FEATURES, encode_columns, encode_records

EDGES = {f.name: [f.minimum, f.maximum] for f in FEATURES if f.kind != "categorical"}


def transaction() -> st.SearchStrategy[dict[str, Any]]:
    """Any transaction the API accepts: every category (seen in training or not), numbers
    anywhere in their range, with the range's ends and whole numbers drawn often."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for feature in FEATURES:
        if feature.kind == "categorical":
            fields[feature.name] = st.sampled_from(feature.categories)
            continue
        low, high = feature.minimum or 0.0, feature.maximum or 1e6
        if feature.kind == "integer":
            fields[feature.name] = st.integers(int(low), int(high)) | st.sampled_from(
                [int(low), int(high)]
            )
        else:
            fields[feature.name] = st.floats(low, high, allow_nan=False) | st.sampled_from(
                [low, high]
            )
    return st.fixed_dictionaries(fields)


def scorer(trained: TrainResult) -> TreeliteScorer:
    assert trained.compiled is not None, "the default pipeline compiles"
    return TreeliteScorer(trained.compiled.model_bytes, trained.compiled.spec)


@settings(max_examples=60, deadline=None)
@given(st.lists(transaction(), min_size=1, max_size=40))
def test_the_compiled_model_scores_any_valid_transaction_like_the_pipeline(
    trained: TrainResult, rows: list[dict[str, Any]]
) -> None:
    matrix = encode_records(rows)
    expected = trained.model.predict_proba(matrix)[:, 1]
    got = scorer(trained).predict_proba(matrix)[:, 1]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert ((got >= trained.threshold) == (expected >= trained.threshold)).all()


def test_the_export_records_its_own_check(trained: TrainResult) -> None:
    assert trained.compiled is not None
    assert trained.compiled.spec.max_difference <= 1e-6
    assert len(trained.compiled.spec.categories) == len(CATEGORICAL_COLUMNS)


def test_a_model_of_another_shape_is_served_by_scikit_learn() -> None:
    data = generate(DataSpec(n_rows=500, seed=3))
    matrix = encode_columns(data.columns)
    width = len(CATEGORICAL_COLUMNS)
    tree = Pipeline([
        ("preprocess", ColumnTransformer(
            [("categorical", OneHotEncoder(handle_unknown="ignore"), list(range(width)))],
            remainder="passthrough",
        )),
        ("classifier", DecisionTreeClassifier(max_depth=3)),
    ]).fit(matrix, data.labels)  # fmt: skip
    with pytest.warns(NotCompiledWarning, match="DecisionTreeClassifier"):
        assert compile_pipeline(tree, [matrix], 0.5) is None


def test_a_compiled_model_that_scores_differently_is_not_exported(
    trained: TrainResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off by 1e-3 on every row: beyond the smoke check's tolerance, so no compiled file."""
    original = TreeliteScorer.predict_proba

    def off(self: TreeliteScorer, rows: Any) -> Any:
        probabilities = original(self, rows)
        return np.column_stack([probabilities[:, 0] - 1e-3, probabilities[:, 1] + 1e-3])

    monkeypatch.setattr(TreeliteScorer, "predict_proba", off)
    matrix = encode_columns(generate(DataSpec(n_rows=300, seed=4)).columns)
    with pytest.warns(NotCompiledWarning, match=r"differs by up to 0\.001"):
        assert compile_pipeline(trained.model, [matrix], trained.threshold) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monkeypatch.undo()
        assert compile_pipeline(trained.model, [matrix], trained.threshold) is not None
