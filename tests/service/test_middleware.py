import logging
from typing import cast

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.runtime import Runtime


def test_an_unexpected_error_is_one_logged_counted_json_500(
    client: TestClient,
    transaction: dict[str, object],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug is never a bare 500: the client gets a request id, the log its stack trace."""
    runtime: Runtime = cast(FastAPI, client.app).state.runtime

    async def broken(_: object) -> object:
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(runtime.batcher, "score", broken)
    with caplog.at_level(logging.ERROR, logger="service.requests"):
        response = client.post("/v1/predict", json=transaction, headers={"X-Request-ID": "r-42"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; quote request id r-42 when reporting it"}
    (record,) = [r for r in caplog.records if r.name == "service.requests"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert "the model fell over" in str(record.exc_info[1])
    assert getattr(record, "request_id") == "r-42"  # noqa: B009  # set through `extra`
    metrics = client.get("/metrics").text
    assert (
        'http_requests_total{method="POST",revision="local",route="/v1/predict",status="500"} 1.0'
        in metrics
    )
