"""A window of traffic read back from the service's own event lines (DuckDB), and the same
queries against BigQuery's REST answers."""

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pipelines.data import DataSpec
from pipelines.experiments.events import BigQueryEvents, LogFiles
from pipelines.monitoring.observed import most_served, read_window
from tests.pipelines.monitoring.conftest import Monitored
from tests.pipelines.monitoring.test_retrain import write_events


def test_inputs_scores_and_labels_come_back_as_they_were_served(
    monitored: Monitored, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    write_events(log, monitored, DataSpec(n_rows=300, seed=61))
    sent = monitored.window(DataSpec(n_rows=300, seed=61))
    store = LogFiles([log])
    version = "v1"
    served = read_window(store, 0.0, 1000, version)
    labelled = read_window(store, 0.0, 1000, version, labelled=True)
    assert len(served) == len(labelled) == 300
    assert served.labels is None
    assert labelled.labels is not None
    # Newest first; the events were written in row order.
    order = np.argsort(served.seconds, kind="stable")
    assert np.allclose(served.scores[order], sent.scores)
    for name, values in sent.columns.items():
        assert (served.columns[name][order] == values).all(), name
    assert labelled.labels.sum() == sent.labels.sum()  # type: ignore[union-attr]
    assert len(read_window(store, 0.0, 50, version)) == 50, "the limit holds"
    assert len(read_window(store, 0.0, 1000, "another-version")) == 0
    assert most_served(store, 0.0) == version
    dataset = labelled.as_dataset()
    assert (dataset.labels == labelled.labels[::-1]).all()  # type: ignore[index]
    assert (np.diff(labelled.seconds) <= 0).all(), "newest first, so the dataset is oldest first"
    assert set(dataset.groups) == {"unknown"}


def test_bigquery_gets_the_version_as_a_bound_parameter_and_decodes_the_rows() -> None:
    sent: list[dict[str, Any]] = []
    inputs = json.dumps({"amount": 12.5, "merchant_category": "grocery", "country": "US",
                         "card_country": "US", "hour": 9, "account_age_days": 400,
                         "channel": "chip", "transactions_last_24h": 1,
                         "distance_from_home_km": 3.0})  # fmt: skip
    schema = {"fields": [{"name": "event_seconds", "type": "FLOAT"},
                         {"name": "score", "type": "FLOAT"},
                         {"name": "decision", "type": "BOOLEAN"},
                         {"name": "inputs", "type": "STRING"},
                         {"name": "is_fraud", "type": "BOOLEAN"}]}  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        row = {"f": [{"v": "1.7e9"}, {"v": "0.25"}, {"v": "false"}, {"v": inputs},
                     {"v": "true"}]}  # fmt: skip
        return httpx.Response(200, json={"jobComplete": True, "schema": schema, "rows": [row],
                                         "jobReference": {"jobId": "j"}})  # fmt: skip

    store = BigQueryEvents(httpx.Client(transport=httpx.MockTransport(answer)), "p", "d", "eu")
    window = read_window(store, 1.6e9, 10, "v3", labelled=True)
    assert window.labels is not None
    assert window.labels.tolist() == [True]
    assert window.columns["merchant_category"].tolist() == ["grocery"]
    assert len(sent) == 1
    body = sent[0]
    assert body["queryParameters"][0]["parameterValue"] == {"value": "v3"}
    assert "@experiment" in body["query"]
    assert "v3" not in body["query"]
    assert "jsonPayload.inputs" in body["query"]
    assert ">= 1600000000.0" in body["query"]
