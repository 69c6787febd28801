"""Hostile bodies: each family is a 4xx with a small answer, and none costs more than good ones."""

import gc
import json
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.hostile_bodies import HOSTILE, nested
from service.app import create_app
from service.body_limits import JsonLimits, check_shape, check_size
from service.schemas import EXAMPLE_TRANSACTION
from service.settings import Settings

MAX_ANSWER_BYTES = 8 * 1024
LIMITS = JsonLimits(max_depth=8, max_keys=64, max_items=1_000)
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def production(model_dir: Path) -> Iterator[TestClient]:
    """The production limits: 1 MB bodies, 1,000 instances."""
    with TestClient(create_app(Settings(MODEL_DIR=model_dir))) as test_client:
        yield test_client


def post(client: TestClient, raw: bytes, path: str = "/v1/predict") -> tuple[int, bytes]:
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    return response.status_code, response.content


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"0" + b"}" * depth


def assert_refused(status: int, answer: bytes) -> None:
    assert 400 <= status < 500, answer[:300]
    assert len(answer) <= MAX_ANSWER_BYTES, f"{len(answer)} bytes answered"
    orjson.loads(answer)  # always a well-formed JSON answer


@FAST
@given(
    depth=st.integers(min_value=1, max_value=100_000),
    where=st.sampled_from(["top", "instance", "field"]),
    kind=st.sampled_from(["array", "object"]),
)
def test_any_nesting_depth_is_a_4xx(
    production: TestClient, depth: int, where: str, kind: str
) -> None:
    """Arrays or objects nested 1 to 100,000 deep, anywhere in the body."""
    inner = nested(depth) if kind == "array" else deep_object(depth)
    if where == "top":
        status, answer = post(production, inner)
    elif where == "instance":
        status, answer = post(production, b'{"instances":[' + inner + b"]}", "/v1/predict/batch")
    else:
        fields = json.dumps({**EXAMPLE_TRANSACTION, "amount": None}).encode()
        status, answer = post(production, fields.replace(b"null", inner))
    assert_refused(status, answer)


def test_a_deep_body_names_the_depth_limit(production: TestClient) -> None:
    status, answer = post(production, nested(300))
    assert status == 422
    body = orjson.loads(answer)
    assert body["error_count"] == 1, "the same shape as every other 422"
    (error,) = body["detail"]
    assert error["type"] == "json_too_deep"
    assert "MAX_JSON_DEPTH" in error["msg"]


surrogates = st.sampled_from([b"\\ud800", b"\\udfff", b"\\ud83d", b"\\ud800\\ud800", b"\\udc00a"])


@FAST
@given(escape=surrogates, in_key=st.booleans(), batch=st.booleans())
def test_lone_surrogate_escapes_are_a_4xx(
    production: TestClient, escape: bytes, in_key: bool, batch: bool
) -> None:
    """A lone surrogate is not Unicode: refused as a key or a value, on both routes."""
    fields = json.dumps(EXAMPLE_TRANSACTION).encode()
    if in_key:
        instance = fields.replace(b'"hour"', b'"h' + escape + b'"')
    else:
        instance = fields.replace(b'"US"', b'"U' + escape + b'"', 1)
    if batch:
        status, answer = post(production, b'{"instances":[' + instance + b"]}", "/v1/predict/batch")
    else:
        status, answer = post(production, instance)
    assert_refused(status, answer)


@FAST
@given(keys=st.integers(min_value=0, max_value=100_000), batch=st.booleans())
def test_any_key_count_is_answered_in_bounds(
    production: TestClient, keys: int, batch: bool
) -> None:
    """0 to 100,000 keys: a 4xx naming the limit, a bounded 422, never a 5xx or a huge echo."""
    instance = orjson.dumps({f"key{i}": i for i in range(keys)})
    raw = b'{"instances":[' + instance + b"]}" if batch else instance
    status, answer = post(production, raw, "/v1/predict/batch" if batch else "/v1/predict")
    assert_refused(status, answer)
    if keys > LIMITS.max_keys and len(raw) <= 1024 * 1024:
        assert status == 413
        assert b"MAX_OBJECT_KEYS" in answer or b"values" in answer


@FAST
@given(raw=st.binary(max_size=2_000))
def test_arbitrary_bytes_are_a_4xx(production: TestClient, raw: bytes) -> None:
    assert_refused(*post(production, raw))


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"[" + b"{}," * 2_100 + b"{}]", b"objects and arrays"),
        (b'{"amount":[' + b"0," * 70_000 + b"0]}", b"values"),
        (orjson.dumps({"instances": [{}] * 1_001}), b"BATCH_MAX_INSTANCES"),
        (orjson.dumps({"amount": list(range(1_001))}), b"body.amount has 1001 items"),
    ],
)
def test_size_limits_answer_413_naming_the_limit(
    production: TestClient, raw: bytes, named: bytes
) -> None:
    status, answer = post(production, raw, "/v1/predict/batch")
    assert status == 413
    assert named in answer


def test_error_answers_are_capped_and_say_how_many_there_were(production: TestClient) -> None:
    """60 unknown keys + 9 missing fields = 69 errors; 20 are listed."""
    status, answer = post(production, orjson.dumps({f"key{i}": [1, 2] for i in range(60)}))
    body = orjson.loads(answer)
    assert status == 422
    assert len(body["detail"]) == 20
    assert body["error_count"] == 69
    assert {error["input"] for error in body["detail"] if error["type"] == "extra_forbidden"} == {
        "<array of 2 items>"
    }, "nested input is summarised, never echoed"


def test_a_batch_is_validated_up_to_its_first_invalid_instance(production: TestClient) -> None:
    bad = {**EXAMPLE_TRANSACTION, "hour": 99}
    raw = orjson.dumps({"instances": [EXAMPLE_TRANSACTION] * 10 + [bad] * 990})
    status, answer = post(production, raw, "/v1/predict/batch")
    assert status == 422
    (error,) = orjson.loads(answer)["detail"]
    assert error["loc"] == ["body", "instances", 10, "hour"]


def test_the_shape_check_is_iterative_and_names_where() -> None:
    with pytest.raises(Exception, match=r"body\.a\[1\] has 1001 items"):
        check_shape({"a": [0, list(range(1_001))]}, LIMITS)
    with pytest.raises(Exception, match=r"body\.k\\ud800 has 65 keys"):
        check_shape({"k\ud800": {str(i): i for i in range(65)}}, LIMITS)
    check_shape(orjson.loads(nested(8)), LIMITS)
    with pytest.raises(Exception, match="422"):
        check_shape(orjson.loads(nested(9)), LIMITS)
    check_size(orjson.dumps({"instances": [EXAMPLE_TRANSACTION] * 1_000}), LIMITS)


def cost(client: TestClient, path: str, raw: bytes) -> tuple[float, int, int]:
    """Least CPU seconds and peak traced bytes of three identical requests, in this process."""
    samples: list[tuple[float, int, int]] = []
    for _ in range(3):
        gc.collect()
        tracemalloc.start()
        started = time.process_time()
        status = client.post(path, content=raw, headers={"content-type": "application/json"})
        spent = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        samples.append((spent, peak, status.status_code))
    return min(s[0] for s in samples), min(s[1] for s in samples), samples[0][2]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_no_bad_request_costs_more_than_a_good_batch(production: TestClient, name: str) -> None:
    """Generous bound (not a latency test): CPU and memory within 3x a full good batch's."""
    good_cpu, good_peak, good_status = cost(
        production, "/v1/predict/batch", orjson.dumps({"instances": [EXAMPLE_TRANSACTION] * 1_000})
    )
    assert good_status == 200
    bad_cpu, bad_peak, bad_status = cost(production, "/v1/predict/batch", HOSTILE[name])
    assert 400 <= bad_status < 500
    assert bad_cpu <= 3 * good_cpu, f"{bad_cpu * 1000:.1f} ms vs {good_cpu * 1000:.1f} ms"
    assert bad_peak <= 3 * good_peak, f"{bad_peak / 1e6:.1f} MB vs {good_peak / 1e6:.1f} MB"
