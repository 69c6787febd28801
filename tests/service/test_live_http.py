"""The real service process over real HTTP: fuzzed inputs and the OpenAPI contract."""

import json
import re
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from pipelines.server_process import ServerProcess
from service.schemas import EXAMPLE_TRANSACTION

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_overrides = st.dictionaries(
    st.sampled_from(sorted(EXAMPLE_TRANSACTION)), json_values, min_size=1
)


@pytest.fixture(scope="module")
def http(live_service: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_service.url, timeout=10) as client:
        yield client


def post_json(http: httpx.Client, body: object) -> httpx.Response:
    """Send Python's JSON, which includes NaN and Infinity as many clients send them."""
    payload = json.dumps(body).encode()
    return http.post("/v1/predict", content=payload, headers={"content-type": "application/json"})


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=json_values)
def test_no_json_value_causes_a_server_error(http: httpx.Client, body: object) -> None:
    """Whatever JSON arrives, the answer is 200 or a 4xx, never a 5xx."""
    response = post_json(http, body)
    assert response.status_code in (200, 422), response.text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(overrides=field_overrides)
def test_corrupted_fields_are_rejected_precisely(
    http: httpx.Client, overrides: dict[str, object]
) -> None:
    """A transaction with wrong values is valid (200), a 422 naming only changed fields, or,
    when Python wrote NaN or Infinity (not JSON), a 422 saying the body is not JSON."""
    body = {**EXAMPLE_TRANSACTION, **overrides}
    response = post_json(http, body)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        errors = response.json()["detail"]
        if errors[0]["type"] == "json_invalid":
            assert re.search(r"\bNaN\b|\bInfinity\b", json.dumps(body)), errors
        else:
            assert {error["loc"][1] for error in errors} <= set(overrides)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_are_a_client_error(http: httpx.Client, raw: bytes) -> None:
    response = http.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500


def test_openapi_contract_holds(live_service: ServerProcess) -> None:
    """schemathesis: generated requests to every operation get no 5xx and schema-valid answers.

    (Its pytest plugin does not run on this pytest version, so the operations are walked here.)
    """
    schema = schemathesis.openapi.from_url(f"{live_service.url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI schema is invalid: {result}"
        operation = result.ok()

        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        try:
            # hypothesis supplies `case`
            check()  # pylint: disable=no-value-for-parameter
        except AssertionError as failure:  # schemathesis failures are AssertionErrors
            failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)
