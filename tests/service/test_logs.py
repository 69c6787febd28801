import json
import logging

from service.logs import CloudLoggingFormatter, trace_field


def format_record(**extra: object) -> dict[str, object]:
    record = logging.makeLogRecord(
        {"name": "service", "levelname": "WARNING", "msg": "slow %s", "args": ("call",), **extra}
    )
    return json.loads(CloudLoggingFormatter().format(record))


def test_lines_use_cloud_logging_fields() -> None:
    entry = format_record(httpRequest={"status": 503}, request_id="r1")
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "slow call"
    assert entry["httpRequest"] == {"status": 503}
    assert entry["request_id"] == "r1"
    assert "color_message" not in format_record(color_message="\x1b[36m")


def test_exceptions_carry_their_stack_trace() -> None:
    entry = format_record(exc_info=(ValueError, ValueError("boom"), None))
    assert "ValueError: boom" in str(entry["stack_trace"])


def test_trace_field_links_to_the_request_trace() -> None:
    field = trace_field("105445aa7843bc8bf206b12000100000/1;o=1", "my-project")
    trace = "projects/my-project/traces/105445aa7843bc8bf206b12000100000"
    assert field == {"logging.googleapis.com/trace": trace}
    assert not trace_field(None, "my-project")
    assert not trace_field("abc/1", None)
