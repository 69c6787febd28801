"""JSON bodies parsed within limits, before validation builds anything from them.

Validation costs grow with what a body contains, not with its size in bytes: 300 KB of empty
objects is 100,000 items to validate, 30,000 unknown keys are 30,000 errors. So the body is parsed
by orjson (which refuses invalid UTF-8, lone surrogates, NaN and nesting past 1,024 levels) and its
shape is checked first: objects and arrays in all (before parsing), nesting depth, keys per
object, items per array. A body past a limit is answered at once, with the limit's name and value.
"""

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, cast

import orjson
from fastapi import HTTPException, Request, Response, status
from fastapi.routing import APIRoute

from service.errors import InvalidBodyError, safe_text
from service.settings import Settings

_CONTAINERS = (dict, list)
_CONTAINER_TYPES = frozenset(_CONTAINERS)


@dataclass(frozen=True)
class JsonLimits:
    """How deep, how wide and how long a request body's JSON may be."""

    max_depth: int
    max_keys: int
    max_items: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "JsonLimits":
        return cls(settings.MAX_JSON_DEPTH, settings.MAX_OBJECT_KEYS, settings.BATCH_MAX_INSTANCES)

    @property
    def max_containers(self) -> int:
        """Objects and arrays in a whole body: two per instance, plus the nesting around them."""
        return 2 * self.max_items + self.max_depth

    @property
    def max_values(self) -> int:
        """Keys and array items in a whole body: a full batch of the widest objects allowed."""
        return self.max_items * self.max_keys


def _safe(path: tuple[str | int, ...]) -> list[str | int]:
    """A client's keys, cut short and encodable: safe to put in a response."""
    return [part if isinstance(part, int) else safe_text(part, limit=40) for part in path]


def _where(path: tuple[str | int, ...]) -> str:
    """`body.instances[3]`: where a limit was crossed."""
    return "body" + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in _safe(path)
    )


def _too_large(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail)


def check_size(raw: bytes, limits: JsonLimits) -> None:
    """Refuse, before parsing, a body that holds more containers or values than it may.

    Brackets bound the containers from above, and brackets plus commas the values (brackets
    and commas inside strings count too; this API's strings are codes, never free text). The
    counts cost a fraction of a millisecond a megabyte, where parsing a megabyte of empty
    objects costs hundreds of milliseconds and tens of megabytes.
    """
    brackets = raw.count(b"{") + raw.count(b"[")
    if brackets > limits.max_containers:
        raise _too_large(
            f"body holds up to {brackets} objects and arrays; at most {limits.max_containers} "
            "are allowed (two per instance, BATCH_MAX_INSTANCES): split the batch"
        )
    values = brackets + raw.count(b",")
    if values > limits.max_values:
        raise _too_large(
            f"body holds up to {values} values; at most {limits.max_values} are allowed "
            "(BATCH_MAX_INSTANCES x MAX_OBJECT_KEYS): send only the fields the schema names"
        )


def check_shape(value: object, limits: JsonLimits) -> None:
    """Raise a 413 or 422 for the first container past a limit; visits containers only.

    Iterative, so no input can exhaust the interpreter's stack.
    """
    pending: list[tuple[object, tuple[str | int, ...]]] = (
        [(value, ())] if isinstance(value, _CONTAINERS) else []
    )
    while pending:
        node, path = pending.pop()
        if len(path) >= limits.max_depth:
            raise InvalidBodyError(
                [
                    {
                        "type": "json_too_deep",
                        "loc": ["body", *_safe(path)],
                        "msg": f"JSON nested deeper than {limits.max_depth} levels "
                        "(MAX_JSON_DEPTH); no field of this API needs that",
                    }
                ]
            )
        children: Iterable[tuple[str | int, object]]
        if isinstance(node, dict):
            mapping = cast(dict[str, object], node)
            if len(mapping) > limits.max_keys:
                raise _too_large(
                    f"{_where(path)} has {len(mapping)} keys; at most {limits.max_keys} are "
                    "allowed (MAX_OBJECT_KEYS): send only the fields the schema names"
                )
            children = mapping.items()
        else:
            items = cast(list[object], node)
            if len(items) > limits.max_items:
                raise _too_large(
                    f"{_where(path)} has {len(items)} items; at most {limits.max_items} are "
                    "allowed (BATCH_MAX_INSTANCES): split the batch"
                )
            children = enumerate(items)
        # orjson makes exactly dict and list: an exact type test skips the scalars, most of a
        # body, cheaper than isinstance (a 100-row batch: 2,278 -> 2,184 µs CPU in process).
        pending += [
            (child, (*path, key)) for key, child in children if type(child) in _CONTAINER_TYPES
        ]


class LimitedJsonRequest(Request):
    """A request whose `json()` is orjson plus `check_shape`, with the running app's limits."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            raw = await self.body()
            limits = JsonLimits.from_settings(self.app.state.runtime.settings)
            check_size(raw, limits)
            # orjson.JSONDecodeError is a json.JSONDecodeError: FastAPI answers it with a 422.
            value = orjson.loads(raw)
            check_shape(value, limits)
            # Starlette's own cache attribute for the parsed body.
            self._json = value  # pylint: disable=attribute-defined-outside-init
        return self._json


class LimitedJsonRoute(APIRoute):
    """A route that reads its JSON body through `LimitedJsonRequest`.

    FastAPI's documented way to change how a route reads its body:
    https://fastapi.tiangolo.com/how-to/custom-request-and-route/
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            return await handler(LimitedJsonRequest(request.scope, request.receive))

        return limited
