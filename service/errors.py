"""Error responses that are small and always encodable, whatever the client sent.

A 422 names what was wrong without echoing the input back: nested values are summarised, text is
cut short, and lone surrogates, NaN and integers past 64 bits become plain text. At most
MAX_ERRORS_SHOWN errors are listed; `error_count` says how many there were.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

import orjson
from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError

MAX_ERRORS_SHOWN = 20
MAX_ECHO_CHARS = 200


class InvalidBodyError(HTTPException):
    """A 422 found before validation ran (service/body_limits.py), answered like any other.

    An HTTPException because FastAPI turns anything else raised while it reads a body into a
    bare 400.
    """

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(status.HTTP_422_UNPROCESSABLE_CONTENT)
        self._errors = errors

    def errors(self) -> list[dict[str, Any]]:
        return self._errors


def safe_text(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, with lone surrogates spelled out (UTF-8 refuses them)."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return cut.encode("utf-8", "backslashreplace").decode("utf-8")


def echo(value: object) -> object:
    """A bounded stand-in for a client's value: scalars as they are, containers by their size."""
    if isinstance(value, dict):
        return f"<object with {len(cast(dict[object, object], value))} keys>"
    if isinstance(value, list | tuple):
        return f"<array of {len(cast(list[object], value))} items>"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**63:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return safe_text(value if isinstance(value, str) else repr(value))


def _bounded(error: Mapping[str, Any]) -> dict[str, object]:
    bounded: dict[str, object] = {}
    for key, value in error.items():
        if key == "input" and error.get("type") == "json_invalid":
            continue  # FastAPI puts a placeholder there: the body never parsed
        if key == "loc":
            bounded[key] = [echo(part) for part in value]
        elif key == "ctx" and isinstance(value, dict):
            context = cast(dict[object, object], value)
            bounded[key] = {safe_text(str(name)): echo(item) for name, item in context.items()}
        elif isinstance(value, str) and key != "input":
            bounded[key] = safe_text(value, limit=1_000)  # pydantic's own words, kept whole
        else:
            bounded[key] = echo(value)
    return bounded


def validation_body(errors: Sequence[Mapping[str, Any]]) -> bytes:
    """The 422 body: the first MAX_ERRORS_SHOWN errors, bounded, and how many there were."""
    shown = [_bounded(error) for error in errors[:MAX_ERRORS_SHOWN]]
    return orjson.dumps({"detail": shown, "error_count": len(errors)})


async def validation_error_response(_: Request, error: Exception) -> Response:
    """Every 422, bounded: a client's mistake never costs a large answer or a 500."""
    if isinstance(error, RequestValidationError | InvalidBodyError):
        errors = list(error.errors())
    else:
        errors = [{"msg": str(error)}]
    return Response(validation_body(errors), status_code=422, media_type="application/json")
