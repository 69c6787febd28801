"""Prediction and feedback events as two tables, and the queries the analysis runs on them.

Each store supplies only a SELECT that gives one kind of event one shape (`predictions`,
`feedback`); every analytical query is written once on that shape, in the SQL DuckDB and BigQuery
share.
Locally the table is the revisions' JSON log files (DuckDB reads them where they lie); in Google
Cloud it is the log sink's table in the environment's BigQuery dataset, queried over the REST API.
https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import httpx

BIGQUERY_API = "https://bigquery.googleapis.com/bigquery/v2"
# Cloud Run's stdout, as a Cloud Logging sink names its table in the dataset.
SINK_TABLE = "run_googleapis_com_stdout"
# The event fields the SQL reads, with their types: the contract with service/events.py.
EVENT_COLUMNS = {
    "time": "TIMESTAMPTZ",
    "event": "VARCHAR",
    "request_id": "VARCHAR",
    "item": "BIGINT",
    "revision": "VARCHAR",
    "model_version": "VARCHAR",
    "experiment": "VARCHAR",
    "variant": "VARCHAR",
    "user_hash": "VARCHAR",
    "score": "DOUBLE",
    "decision": "BOOLEAN",
    "team": "VARCHAR",
    "is_fraud": "BOOLEAN",
    "candidate": "VARCHAR",
    "candidate_score": "DOUBLE",
    "candidate_decision": "BOOLEAN",
    "logit_difference": "DOUBLE",
    "inputs": "VARCHAR",
}


class EventsError(RuntimeError):
    """The events could not be read; the message says where and why."""


class EventStore(Protocol):
    """Where events live: a SELECT of one kind of event, and a way to run a query on them."""

    def select(self, event: str, fields: Sequence[str]) -> str:
        """`event_seconds` and `fields` of every `event` ("prediction" or "feedback")."""
        ...

    def rows(self, sql: str, experiment: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Query:
    """SQL on the two tables, and the prediction fields it reads. A query selects no other:
    BigQuery's table has a field only once some event carried it (no `team` before the first
    interleaving experiment), and naming a missing field fails the whole query."""

    sql: str
    prediction_fields: tuple[str, ...]


# What each metric counts, among the predictions whose feedback its filter keeps.
METRICS = {
    # Of the confirmed frauds, the share the model flagged (recall: independent of how much
    # of the traffic is fraud, and what a fraud team is paid to raise).
    "fraud_caught": ("f.is_fraud", "p.decision"),
    # Of all labelled predictions, the share whose decision was right.
    "correct_decisions": ("TRUE", "p.decision = f.is_fraud"),
}

# The events as two tables, and each prediction's first feedback (a repeat is ignored).
WITH_FIRST_FEEDBACK = """
WITH predictions AS ({predictions}),
feedback AS ({feedback}),
first_feedback AS (
  SELECT request_id, item, is_fraud FROM feedback WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY request_id, item ORDER BY event_seconds) = 1
)
"""

# One row per user and look (a time bucket): the user's counted predictions and successes.
# The first feedback per request and item counts; a repeat is ignored.
OUTCOMES = Query(
    WITH_FIRST_FEEDBACK
    + """
SELECT p.user_hash AS user_hash, p.variant AS variant,
  CAST(FLOOR(p.event_seconds / {look_seconds}) AS INT64) AS look,
  COUNT(*) AS labelled,
  SUM(CASE WHEN {success} THEN 1 ELSE 0 END) AS successes
FROM predictions AS p
JOIN first_feedback AS f ON p.request_id = f.request_id AND p.item = f.item
WHERE p.experiment = {experiment} AND p.user_hash IS NOT NULL AND p.variant IS NOT NULL
  AND {counted}
GROUP BY user_hash, variant, look
""",
    ("request_id", "item", "experiment", "variant", "user_hash", "decision"),
)

# Users and predictions per variant, with or without feedback: what the sample-ratio check tests.
ASSIGNMENTS = Query(
    """
WITH predictions AS ({predictions})
SELECT variant, COUNT(DISTINCT user_hash) AS users, COUNT(*) AS predictions
FROM predictions
WHERE experiment = {experiment} AND user_hash IS NOT NULL AND variant IS NOT NULL
GROUP BY variant
""",
    ("experiment", "variant", "user_hash"),
)

# Per interleaved ranking with feedback: confirmed frauds each team placed (the credit).
CREDITS = Query(
    WITH_FIRST_FEEDBACK
    + """
SELECT p.request_id AS request_id,
  SUM(CASE WHEN p.team = 'champion' AND f.is_fraud THEN 1 ELSE 0 END) AS champion,
  SUM(CASE WHEN p.team = 'challenger' AND f.is_fraud THEN 1 ELSE 0 END) AS challenger
FROM predictions AS p
JOIN first_feedback AS f ON p.request_id = f.request_id AND p.item = f.item
WHERE p.experiment = {experiment} AND p.team IS NOT NULL
GROUP BY p.request_id
""",
    ("request_id", "item", "experiment", "team"),
)

# Feedback that names no prediction, and repeats: reported, never counted. Feedback names no
# experiment, so these figures cover all of it.
FEEDBACK_QUALITY = Query(
    """
WITH predictions AS ({predictions}),
feedback AS ({feedback})
SELECT COUNT(*) AS received,
  COUNT(*) - COUNT(DISTINCT CONCAT(f.request_id, ':', CAST(f.item AS STRING))) AS repeated,
  SUM(CASE WHEN p.request_id IS NULL THEN 1 ELSE 0 END) AS unmatched
FROM feedback AS f
LEFT JOIN (SELECT DISTINCT request_id, item FROM predictions) AS p
  ON p.request_id = f.request_id AND p.item = f.item
""",
    ("request_id", "item"),
)
FEEDBACK_FIELDS = ("request_id", "item", "is_fraud")


def select_sql(
    source: str, seconds: str, field: Callable[[str], str], event: str, fields: Sequence[str]
) -> str:
    """`seconds` (the event time in epoch seconds) and `field(name)` for each of `fields`, from
    the lines of `source` that are `event`s."""
    columns = ", ".join(f"{field(name)} AS {name}" for name in fields)
    # Composed from this module's constants alone; values are bound parameters.
    return (
        f"SELECT {seconds} AS event_seconds, {columns} "  # noqa: S608
        f"FROM {source} WHERE {field('event')} = '{event}'"
    )


def fetch(
    store: EventStore,
    query: Query,
    experiment: str,
    metric: str = "fraud_caught",
    look_seconds: int = 3600,
) -> list[dict[str, Any]]:
    """Run one of the queries above on `store` for `experiment` (a bound parameter)."""
    counted, success = METRICS[metric]
    sql = query.sql.format(
        predictions=store.select("prediction", query.prediction_fields),
        feedback=store.select("feedback", FEEDBACK_FIELDS),
        look_seconds=int(look_seconds),
        counted=counted,
        success=success,
        experiment="{experiment}",
    )
    return store.rows(sql, experiment)


@dataclass
class LogFiles:
    """The revisions' JSON log files on this machine, read in place by DuckDB."""

    paths: Sequence[Path]

    def __post_init__(self) -> None:
        missing = [str(p) for p in self.paths if not p.is_file()]
        if not self.paths or missing:
            raise EventsError(
                f"no event log at {', '.join(missing) or 'any path given'}: pass the revisions' "
                "log files (the local platform writes them under its workdir)"
            )
        columns = ", ".join(f"'{name}': '{kind}'" for name, kind in EVENT_COLUMNS.items())
        # Lines that are not JSON (a traceback, a start-up message) are skipped, not fatal.
        self.source = f"read_ndjson($paths, columns={{{columns}}}, ignore_errors=true)"

    def select(self, event: str, fields: Sequence[str]) -> str:
        return select_sql(self.source, "epoch(time)", lambda name: name, event, fields)

    def rows(self, sql: str, experiment: str) -> list[dict[str, Any]]:
        # DuckDB spells BigQuery's INT64 and STRING as BIGINT and VARCHAR, and knows both names.
        with duckdb.connect() as connection:
            try:
                parameters: dict[str, Any] = {"paths": [str(p) for p in self.paths]}
                if "{experiment}" in sql:  # DuckDB refuses a parameter the query does not use
                    parameters["experiment"] = experiment
                cursor = connection.execute(sql.replace("{experiment}", "$experiment"), parameters)
            except duckdb.Error as error:
                raise EventsError(f"reading {len(self.paths)} log files failed: {error}") from error
            names = [column[0] for column in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


_BIGQUERY_TYPES = {
    "INTEGER": int, "INT64": int, "FLOAT": float, "FLOAT64": float,
    "BOOLEAN": lambda v: v == "true", "BOOL": lambda v: v == "true",
    "TIMESTAMP": float, "STRING": str, "NUMERIC": float,
}  # fmt: skip


@dataclass
class BigQueryEvents:
    """The log sink's table in `<project>.<dataset>`, over the REST API with an access token.

    The sink lifts `time` into `timestamp` and nests the rest under `jsonPayload`, where numbers
    arrive as FLOAT64 (a log entry's JSON is a protobuf Struct): hence the casts.
    """

    http: httpx.Client
    project: str
    dataset: str
    location: str
    timeout_s: float = 300.0

    def select(self, event: str, fields: Sequence[str]) -> str:
        return select_sql(
            f"`{self.project}.{self.dataset}.{SINK_TABLE}`",
            "UNIX_MICROS(timestamp) / 1e6",
            lambda name: (
                f"CAST(jsonPayload.{name} AS INT64)" if name == "item" else f"jsonPayload.{name}"
            ),
            event,
            fields,
        )

    def rows(self, sql: str, experiment: str) -> list[dict[str, Any]]:
        body = {
            "query": sql.replace("{experiment}", "@experiment"),
            "useLegacySql": False,
            "parameterMode": "NAMED",
            "queryParameters": [{
                "name": "experiment",
                "parameterType": {"type": "STRING"},
                "parameterValue": {"value": experiment},
            }],
            "location": self.location,
            "timeoutMs": 60_000,
        }  # fmt: skip
        page = self._call("POST", f"/projects/{self.project}/queries", json=body)
        deadline = time.monotonic() + self.timeout_s
        rows: list[dict[str, Any]] = []
        while True:
            job = page.get("jobReference", {})
            if page.get("jobComplete"):
                rows.extend(_decode(page))
                if not page.get("pageToken"):
                    return rows
            elif time.monotonic() > deadline:
                raise EventsError(
                    f"BigQuery job {job.get('jobId')} ran past {self.timeout_s:.0f} s"
                )
            params = {"location": self.location, "timeoutMs": 60_000}
            if page.get("pageToken"):
                params["pageToken"] = page["pageToken"]
            page = self._call(
                "GET", f"/projects/{self.project}/queries/{job['jobId']}", params=params
            )

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, f"{BIGQUERY_API}{path}", **kwargs)
        except httpx.HTTPError as error:
            raise EventsError(f"BigQuery did not answer: {error!r}") from error
        if response.status_code != 200:
            raise EventsError(
                f"BigQuery answered {response.status_code} for {self.project}.{self.dataset}: "
                f"{response.text[:300]}{_hint(response.text)}"
            )
        answer: dict[str, Any] = response.json()
        if errors := answer.get("errors"):
            raise EventsError(f"BigQuery query failed: {errors[0].get('message', errors[0])}")
        return answer


def _hint(message: str) -> str:
    """What BigQuery's two usual refusals mean for an events table the sink creates lazily."""
    if "Not found: Table" in message:
        return (
            f" (no event has reached the dataset yet: the sink creates {SINK_TABLE} with the first)"
        )
    if "Unrecognized name" in message:
        return (" (the table gets a field only once an event carries it: has an experiment of "
                "this kind served requests in this environment?)")  # fmt: skip
    return ""


def _decode(page: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows arrive as strings in `f[].v`, typed by the schema."""
    fields = page.get("schema", {}).get("fields", [])
    convert = [(f["name"], _BIGQUERY_TYPES.get(f["type"], str)) for f in fields]
    return [
        {
            name: None if cell["v"] is None else kind(cell["v"])
            for (name, kind), cell in zip(convert, row["f"], strict=True)
        }
        for row in page.get("rows", [])
    ]
