"""The shadow section of the rollout report, from a recorded phase and real event lines."""

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx

from pipelines.experiments.events import EVENT_COLUMNS, BigQueryEvents, LogFiles
from pipelines.rollout.report import write_report
from pipelines.rollout.shadow_report import SHADOW_FIELDS, findings
from pipelines.rollout.state import Check, Decision, RolloutState
from service.events import EventLog, ShadowRow

T0 = time.time() - 60  # the phase began a minute before the events below are written


def state() -> RolloutState:
    shadow_values = {
        "mirrored": 200.0, "failures": 1.0, "dropped": 3.0, "predictions": 199.0,
        "shifted": 4.0, "flips": 2.0, "logit_difference_le_0.5": 150.0,
        "logit_difference_le_2": 195.0, "logit_difference_le_inf": 199.0,
    }  # fmt: skip
    latency = {"candidate_p50_ms": 4.0, "candidate_p95_ms": 9.0, "candidate_p99_ms": 20.0,
               "stable_p50_ms": 3.5, "stable_p95_ms": 8.0, "stable_p99_ms": 18.0}  # fmt: skip
    check = Check(
        at=T0 + 5, step_percent=0, verdict="PASS",
        gates=[{"gate": "shadow", "verdict": "PASS", "reason": "ok", "values": shadow_values},
               {"gate": "latency", "verdict": "PASS", "reason": "ok", "values": latency}],
    )  # fmt: skip
    return RolloutState(
        rollout_id="r", environment="local", stable="v1", candidate="v2",
        candidate_model_dir="unused", started_at=T0, finished_at=T0 + 30, phase="promoted",
        decisions=[Decision(at=T0 + 1, action="shadow_start", reason="mirror")], checks=[check],
    )  # fmt: skip


def event_log(path: Path) -> LogFiles:
    lines: list[bytes] = []
    log = EventLog("v1", write=lines.append)
    rows = [
        ShadowRow(0, 0.01, False, 0.40, True, 4.2, '{"amount": 900.0}'),
        ShadowRow(1, 0.30, True, 0.02, False, 3.0, '{"amount": 12.0}'),
        ShadowRow(2, 0.05, True, 0.20, True, 1.6, '{"amount": 50.0}'),
    ]
    log.shadow("req-1", "v2", rows)
    log.shadow("req-old", "v1", rows[:1])  # another rollout's candidate: not this report's
    log.feedback("req-1", 0, is_fraud=False)  # the candidate's new flag was wrong: FP +1
    log.feedback("req-1", 1, is_fraud=True)  # it cleared a fraud stable caught: FN +1
    path.write_bytes(b"".join(lines))
    return LogFiles([path])


def test_the_report_lists_the_largest_disagreements_and_the_error_deltas(tmp_path: Path) -> None:
    found = findings(state(), event_log(tmp_path / "v1.log"))
    assert found is not None
    assert [d["logit_difference"] for d in found.disagreements] == [4.2, 3.0, 1.6]
    assert found.feedback == {"labelled": 2, "false_positives": 1, "false_negatives": 1}
    assert found.differences == {0.5: 150.0, 2.0: 195.0, math.inf: 199.0}
    write_report(state(), [], tmp_path / "reports", shadow=found)
    text = (tmp_path / "reports" / "v2.md").read_text()
    assert "decisions agree on 98.99% of 199 predictions" in text
    assert "false positives +1, false negatives +1" in text
    assert '`{"amount": 900.0}`' in text
    assert "| candidate | 4.0 | 9.0 | 20.0 |" in text
    assert (tmp_path / "reports" / "v2-shadow.png").stat().st_size > 10_000
    record = json.loads((tmp_path / "reports" / "v2.json").read_text())
    assert record["shadow"]["values"]["mirrored"] == 200.0


def test_without_readable_events_the_counts_are_still_reported(tmp_path: Path) -> None:
    missing = tmp_path / "v1.log"
    missing.write_text("not json\n")
    found = findings(state(), LogFiles([missing]))
    assert found is not None
    assert not found.disagreements
    write_report(state(), [], tmp_path / "reports", shadow=found)
    text = (tmp_path / "reports" / "v2.md").read_text()
    assert "mirrored requests: 200" in text
    assert "no feedback on the flipped predictions yet" in text


def test_in_the_cloud_the_same_queries_run_on_bigquery() -> None:
    """The report's two queries go to the events dataset with the candidate as the parameter."""
    schema = {"fields": [
        {"name": n, "type": t} for n, t in (
            ("request_id", "STRING"), ("item", "INTEGER"), ("score", "FLOAT"),
            ("candidate_score", "FLOAT"), ("decision", "BOOLEAN"),
            ("candidate_decision", "BOOLEAN"), ("logit_difference", "FLOAT"),
            ("inputs", "STRING"),
        )
    ]}  # fmt: skip
    row = ["req-9", "0", "0.01", "0.5", "false", "true", "4.6", '{"amount": 1.0}']
    labelled = {"fields": [{"name": "labelled", "type": "INTEGER"}]}
    answers = iter([
        {"jobComplete": True, "schema": schema, "rows": [{"f": [{"v": v} for v in row]}]},
        {"jobComplete": True, "schema": labelled, "rows": [{"f": [{"v": "0"}]}]},
    ])  # fmt: skip
    queries: list[dict[str, Any]] = []

    def bigquery_api(request: httpx.Request) -> httpx.Response:
        queries.append(json.loads(request.content))
        return httpx.Response(200, json=next(answers))

    http = httpx.Client(transport=httpx.MockTransport(bigquery_api))
    store = BigQueryEvents(http, "my-ml-prod", "fraud_scorer_events", "europe-west1")
    found = findings(state(), store)
    assert found is not None
    assert found.disagreements == [{
        "request_id": "req-9", "item": 0, "score": 0.01, "candidate_score": 0.5,
        "decision": False, "candidate_decision": True, "logit_difference": 4.6,
        "inputs": '{"amount": 1.0}',
    }]  # fmt: skip
    assert found.feedback is None, "no labelled flips yet"
    for query in queries:
        assert "jsonPayload.candidate_decision" in query["query"]
        assert "= 'shadow'" in query["query"]
        assert query["queryParameters"][0]["parameterValue"] == {"value": "v2"}


def test_every_field_the_shadow_queries_read_is_written_with_its_type() -> None:
    lines: list[bytes] = []
    EventLog("v1", write=lines.append).shadow(
        "req-1", "v2", [ShadowRow(0, 0.01, False, 0.40, True, 4.2, '{"amount": 900.0}')]
    )
    written = json.loads(lines[0])
    kinds = {"VARCHAR": str, "BIGINT": int, "DOUBLE": float, "BOOLEAN": bool}
    for name in ("time", "event", *SHADOW_FIELDS):
        assert name in written, f"{name} is read by the shadow SQL but not written"
        kind = EVENT_COLUMNS[name]
        if kind in kinds:
            assert isinstance(written[name], kinds[kind]), (name, written[name])
