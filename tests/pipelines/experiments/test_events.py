"""The events' one SQL, on the service's own log lines (DuckDB) and on BigQuery's REST answers."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.experiments.events import (
    ASSIGNMENTS,
    CREDITS,
    EVENT_COLUMNS,
    FEEDBACK_FIELDS,
    FEEDBACK_QUALITY,
    OUTCOMES,
    BigQueryEvents,
    EventsError,
    LogFiles,
    fetch,
)
from service.events import EventLog, RankedEntry, Served
from tests.conftest import sent


def served(request_id: str, user: str | None, variant: str | None) -> Served:
    return Served(request_id, "predict", "v1", 0.3, "exp", variant, user)  # type: ignore[arg-type]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """Lines as the service writes them, between log lines that are not events."""
    path = tmp_path / "revision.log"
    with path.open("wb") as handle:
        events = EventLog("rev-1", write=handle.write)
        handle.write(b"INFO: started server process\n")  # not JSON: skipped
        handle.write(b'{"severity": "INFO", "message": "serving model v1"}\n')
        events.predictions(served("r1", "u1", "champion"), sent(2), [0.9, 0.1], [True, False])
        events.predictions(served("r2", "u2", "challenger"), sent(1), [0.8], [True])
        events.predictions(served("r3", None, None), sent(1), [0.7], [True])  # no user: unassigned
        events.feedback("r1", 0, is_fraud=True)
        events.feedback("r1", 0, is_fraud=False)  # a repeat: the first outcome counts
        events.feedback("r1", 1, is_fraud=True)
        events.feedback("r2", 0, is_fraud=True)
        events.feedback("r3", 0, is_fraud=True)
        events.feedback("never-answered", 0, is_fraud=False)
    return path


def test_the_service_lines_are_the_tables_the_sql_reads(log: Path) -> None:
    store = LogFiles([log])
    fields = OUTCOMES.prediction_fields
    rows = sorted(
        store.rows(store.select("prediction", fields), "exp"),
        key=lambda r: (r["request_id"], r["item"]),
    )
    assert [(r["request_id"], r["item"], r["variant"], r["user_hash"], r["decision"])
            for r in rows] == [
        ("r1", 0, "champion", "u1", True), ("r1", 1, "champion", "u1", False),
        ("r2", 0, "challenger", "u2", True), ("r3", 0, None, None, True),
    ]  # fmt: skip
    assert all(isinstance(r["event_seconds"], float) for r in rows)


def test_outcomes_count_the_first_feedback_of_assigned_users(log: Path) -> None:
    rows = fetch(LogFiles([log]), OUTCOMES, "exp", "correct_decisions")
    got = {(r["user_hash"], r["variant"]): (r["labelled"], r["successes"]) for r in rows}
    # r1 item 0 flagged and fraud (first outcome): right; item 1 passed but fraud: wrong
    assert got == {("u1", "champion"): (2, 1), ("u2", "challenger"): (1, 1)}
    caught = fetch(LogFiles([log]), OUTCOMES, "exp", "fraud_caught")
    assert {(r["user_hash"], r["labelled"], r["successes"]) for r in caught} == {
        ("u1", 2, 1), ("u2", 1, 1),
    }  # fmt: skip
    assert fetch(LogFiles([log]), OUTCOMES, "another") == []


def test_assignments_and_feedback_quality(log: Path) -> None:
    store = LogFiles([log])
    assigned = {
        r["variant"]: (r["users"], r["predictions"]) for r in fetch(store, ASSIGNMENTS, "exp")
    }
    assert assigned == {"champion": (1, 2), "challenger": (1, 1)}
    (quality,) = fetch(store, FEEDBACK_QUALITY, "exp")
    assert (quality["received"], quality["repeated"], quality["unmatched"]) == (6, 1, 1)


def test_a_missing_log_is_named() -> None:
    with pytest.raises(EventsError, match=r"no event log at /nowhere\.log"):
        LogFiles([Path("/nowhere.log")])


def bigquery(handler: Any) -> BigQueryEvents:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return BigQueryEvents(http, "my-ml-prod", "fraud_scorer_events", "europe-west1")


def test_bigquery_waits_for_the_job_and_reads_every_page() -> None:
    schema = {"fields": [{"name": "variant", "type": "STRING"},
                         {"name": "users", "type": "INTEGER"},
                         {"name": "share", "type": "FLOAT"},
                         {"name": "flag", "type": "BOOLEAN"}]}  # fmt: skip
    job = {"projectId": "my-ml-prod", "jobId": "job_1", "location": "europe-west1"}
    answers = iter([
        {"jobComplete": False, "jobReference": job},
        {"jobComplete": True, "jobReference": job, "schema": schema, "pageToken": "p2",
         "rows": [{"f": [{"v": "champion"}, {"v": "10"}, {"v": "0.5"}, {"v": "true"}]}]},
        {"jobComplete": True, "jobReference": job, "schema": schema,
         "rows": [{"f": [{"v": "challenger"}, {"v": "9"}, {"v": None}, {"v": "false"}]}]},
    ])  # fmt: skip
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=next(answers))

    rows = fetch(bigquery(handler), ASSIGNMENTS, "threshold-test")
    assert rows == [
        {"variant": "champion", "users": 10, "share": 0.5, "flag": True},
        {"variant": "challenger", "users": 9, "share": None, "flag": False},
    ]
    first = json.loads(seen[0].content)
    assert seen[0].url.path == "/bigquery/v2/projects/my-ml-prod/queries"
    assert "@experiment" in first["query"]
    assert "`my-ml-prod.fraud_scorer_events.run_googleapis_com_stdout`" in first["query"]
    assert first["queryParameters"][0]["parameterValue"] == {"value": "threshold-test"}
    assert first["useLegacySql"] is False
    assert seen[1].url.path.endswith("/queries/job_1")
    assert seen[2].url.params["pageToken"] == "p2"
    assert seen[2].url.params["location"] == "europe-west1"


def test_bigquery_refusals_say_what_was_refused() -> None:
    denied = bigquery(lambda _: httpx.Response(403, text="Access Denied: bigquery.jobs.create"))
    with pytest.raises(EventsError, match=r"403 for my-ml-prod.fraud_scorer_events: Access Denied"):
        fetch(denied, ASSIGNMENTS, "x")
    missing = bigquery(lambda _: httpx.Response(404, text="Not found: Table my-ml-prod:x.y"))
    with pytest.raises(EventsError, match="no event has reached the dataset yet"):
        fetch(missing, ASSIGNMENTS, "x")
    broken = bigquery(
        lambda _: httpx.Response(200, json={"errors": [{"message": "Unrecognized name: x"}]})
    )
    with pytest.raises(EventsError, match="query failed: Unrecognized name"):
        fetch(broken, ASSIGNMENTS, "x")


JSON_TYPES = {"VARCHAR": str, "BIGINT": int, "DOUBLE": float, "BOOLEAN": bool}


def test_every_field_a_query_reads_is_written_with_its_type() -> None:
    """The contract between service/events.py and the SQL: names and JSON types, per query and
    the events it reads (a ranking's `team` only on ranking events)."""
    lines: list[bytes] = []
    events = EventLog("rev-1", write=lines.append)
    events.predictions(served("r1", "u1", "champion"), sent(1), [0.25], [False])
    events.ranking(served("r2", None, None), [RankedEntry(0, 1, "challenger", 0.5, True)])
    events.feedback("r1", 0, is_fraud=True)
    prediction, ranking, feedback = (
        json.loads(line) for chunk in lines for line in chunk.splitlines()
    )
    for written, fields in (
        (prediction, OUTCOMES.prediction_fields),
        (prediction, ASSIGNMENTS.prediction_fields),
        (prediction, FEEDBACK_QUALITY.prediction_fields),
        (ranking, CREDITS.prediction_fields),
        (feedback, FEEDBACK_FIELDS),
    ):
        for name in ("time", "event", *fields):
            assert name in written, f"{name} is read by the SQL but not written"
            kind = EVENT_COLUMNS[name]
            if written[name] is not None and kind in JSON_TYPES:
                assert isinstance(written[name], JSON_TYPES[kind]), (name, written[name])
    assert "team" not in prediction, "so no A/B query may read it"
