"""What the served model saw and said in a window, read from the prediction and feedback events
with the one SQL the experiments use (DuckDB on local logs, BigQuery in the cloud)."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from pipelines.data import Dataset, DataSpec
from pipelines.experiments.events import FEEDBACK_FIELDS, WITH_FIRST_FEEDBACK, EventStore
from service.features import FEATURES

PREDICTION_FIELDS = ("request_id", "item", "model_version", "score", "decision", "inputs")
# The model version is the bound parameter ({experiment} is the stores' parameter slot); with
# an empty one, every version's predictions count. Times and limits are numbers this module
# formats, never user input. A batch's rows share a time: the request id and item break the tie,
# so a window (and a retrain's split of it) is the same on every read.
SERVED_SQL = """
WITH predictions AS ({predictions})
SELECT event_seconds, score, decision, inputs, CAST(NULL AS BOOLEAN) AS is_fraud
FROM predictions
WHERE inputs IS NOT NULL AND event_seconds >= {since}
  AND (model_version = {experiment} OR {experiment} = '')
ORDER BY event_seconds DESC, request_id DESC, item DESC
LIMIT {limit}
"""
LABELLED_SQL = (
    WITH_FIRST_FEEDBACK
    + """
SELECT p.event_seconds AS event_seconds, p.score AS score, p.decision AS decision,
  p.inputs AS inputs, f.is_fraud AS is_fraud
FROM predictions AS p
JOIN first_feedback AS f ON p.request_id = f.request_id AND p.item = f.item
WHERE p.inputs IS NOT NULL AND p.event_seconds >= {since}
  AND (p.model_version = {experiment} OR {experiment} = '')
ORDER BY p.event_seconds DESC, p.request_id DESC, p.item DESC
LIMIT {limit}
"""
)
# Groups are not model inputs, so events do not carry them: fairness is judged on the
# evaluation set (pipelines/evaluation/), never on these rows.
UNKNOWN_GROUP = "unknown"


@dataclass(frozen=True)
class Observed:
    """Predictions of a window, newest first: inputs by feature, score, decision, and the
    fraud label where feedback gave one."""

    columns: dict[str, npt.NDArray[np.generic]]
    scores: npt.NDArray[np.float64]
    decisions: npt.NDArray[np.bool_]
    labels: npt.NDArray[np.bool_] | None
    seconds: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.scores)

    def as_dataset(self) -> Dataset:
        """Labelled rows as training data (oldest first, as they happened)."""
        if self.labels is None:
            raise ValueError("only labelled predictions are training data")
        columns = {name: values[::-1] for name, values in self.columns.items()}
        labels = self.labels[::-1]
        # The spec records what the rows were (their count and fraud rate) in the model's
        # metadata; DataSpec's own bounds hold for any set a retrain accepts (100+ rows).
        rate = float(np.clip(labels.mean() if len(labels) else 0.5, 1e-3, 1 - 1e-3))
        spec = DataSpec(n_rows=max(len(labels), 100), seed=0, fraud_rate=rate)
        return Dataset(columns, labels, np.full(len(labels), UNKNOWN_GROUP), spec)

    def newest(self, count: int) -> "Observed":
        return self._take(slice(0, count))

    def older_than(self, count: int) -> "Observed":
        return self._take(slice(count, None))

    def _take(self, rows: slice) -> "Observed":
        return Observed(
            {name: values[rows] for name, values in self.columns.items()},
            self.scores[rows],
            self.decisions[rows],
            None if self.labels is None else self.labels[rows],
            self.seconds[rows],
        )


def _observed(rows: list[dict[str, Any]], labelled: bool) -> Observed:
    inputs = [orjson.loads(row["inputs"]) for row in rows]
    columns: dict[str, npt.NDArray[np.generic]] = {}
    for feature in FEATURES:
        values = [entry[feature.name] for entry in inputs]
        kind = {"categorical": np.str_, "integer": np.int64}.get(feature.kind, np.float64)
        columns[feature.name] = np.asarray(values, dtype=kind)
    return Observed(
        columns,
        np.array([row["score"] for row in rows], dtype=np.float64),
        np.array([row["decision"] for row in rows], dtype=np.bool_),
        np.array([row["is_fraud"] for row in rows], dtype=np.bool_) if labelled else None,
        np.array([row["event_seconds"] for row in rows], dtype=np.float64),
    )


def read_window(
    store: EventStore, since: float, limit: int, model_version: str = "", labelled: bool = False
) -> Observed:
    """The newest `limit` predictions since `since` (epoch seconds) that carry their inputs, of
    `model_version` (every version when empty); with `labelled`, only those with feedback."""
    sql = (LABELLED_SQL if labelled else SERVED_SQL).format(
        predictions=store.select("prediction", PREDICTION_FIELDS),
        feedback=store.select("feedback", FEEDBACK_FIELDS),
        since=float(since),
        limit=int(limit),
        experiment="{experiment}",
    )
    return _observed(store.rows(sql, model_version), labelled)


VERSIONS_SQL = """
WITH predictions AS ({predictions})
SELECT model_version, COUNT(*) AS predictions
FROM predictions
WHERE inputs IS NOT NULL AND event_seconds >= {since}
GROUP BY model_version
ORDER BY predictions DESC, model_version
"""


def most_served(store: EventStore, since: float) -> str | None:
    """The model version that answered most predictions since `since`: the one to monitor."""
    sql = VERSIONS_SQL.format(
        predictions=store.select("prediction", ("model_version", "inputs")), since=float(since)
    )
    rows = store.rows(sql, "")
    return str(rows[0]["model_version"]) if rows else None
