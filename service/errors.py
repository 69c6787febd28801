"""Error responses that can always be encoded, whatever the client sent."""

import math
from typing import Any, cast

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError

_MAX_ECHO_CHARS = 200


def _json_safe(value: Any) -> Any:
    """Echoed input in a form any JSON encoder takes: huge ints, NaN and long text become text."""
    if isinstance(value, dict):
        mapping = cast(dict[object, object], value)
        return {str(k): _json_safe(v) for k, v in mapping.items()}
    if isinstance(value, list | tuple):
        items = cast(list[object] | tuple[object, ...], value)
        return [_json_safe(v) for v in items]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**63:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_ECHO_CHARS else text[:_MAX_ECHO_CHARS] + "…"


async def validation_error_response(_: Request, error: Exception) -> Response:
    """FastAPI's 422 body, made safe to encode: echoed inputs such as NaN, integers past 64 bits
    or exception objects in `ctx` must never turn a client's mistake into a 500."""
    errors = error.errors() if isinstance(error, RequestValidationError) else [{"msg": str(error)}]
    body = orjson.dumps({"detail": _json_safe(list(errors))})
    return Response(body, status_code=422, media_type="application/json")
