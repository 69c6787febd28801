"""JSON log lines in Cloud Logging's structured format, so severity, trace and request fields index.

See https://cloud.google.com/logging/docs/structured-logging for the special fields.
"""

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

_SEVERITY = {"WARNING": "WARNING", "CRITICAL": "CRITICAL", "ERROR": "ERROR", "DEBUG": "DEBUG"}
# Record attributes that are not payload; uvicorn's color_message repeats message with ANSI codes.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line; extra fields passed to the logger become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "INFO"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES:
                entry[key] = value
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str) -> None:
    """Route the app's and uvicorn's loggers to stdout as JSON (Cloud Run collects stdout)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def trace_field(header: str | None, project: str | None) -> dict[str, str]:
    """Cloud Logging's trace key from Cloud Run's X-Cloud-Trace-Context header, when both exist."""
    if not header or not project:
        return {}
    trace_id = header.split("/", 1)[0]
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}"}
