"""The local platform's router: splits requests by weight and routes tags, like Cloud Run.

Runs as its own process (`python -m pipelines.rollout.platforms.local.router CONFIG PORT`).
Requests with the header `X-Revision-Tag: candidate`, or a Host starting with `candidate---`, go
to the tagged revision; the rest are split at random by percent. `PUT /_router/traffic` changes
the split and persists it atomically, so a restarted router keeps the split it had.
"""

import asyncio
import contextlib
import json
import random
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from environments.traffic import TrafficError, TrafficSplit
from pipelines.atomic_file import write_json_atomic
from service.server import serve
from service.settings import Settings

TAG_HEADER = "x-revision-tag"
HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


class RouterState:
    """Backends by revision and the split; loaded from and saved to the config file."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        config = json.loads(config_path.read_text())
        self.backends: dict[str, str] = config["backends"]
        self.split = TrafficSplit.from_dict(config["traffic"])

    def save(self) -> None:
        write_json_atomic(
            self.config_path, {"backends": self.backends, "traffic": self.split.as_dict()}
        )

    def choose(self, request: Request) -> str | None:
        tag = request.headers.get(TAG_HEADER) or _host_tag(request.headers.get("host", ""))
        if tag:
            return self.split.tagged(tag)
        weights = [t.percent for t in self.split.targets]
        return random.choices([t.revision for t in self.split.targets], weights)[0]  # noqa: S311


def _host_tag(host: str) -> str | None:
    return host.split("---", 1)[0] if "---" in host else None


def create_router(config_path: Path, body_timeout_s: float) -> Starlette:
    state = RouterState(config_path)
    # Pooled connections expire well before the revisions' keep-alive (75 s) closes them.
    limits = httpx.Limits(max_keepalive_connections=64, keepalive_expiry=30.0)
    client = httpx.AsyncClient(timeout=30.0, limits=limits)

    async def traffic(request: Request) -> Response:
        if request.method == "PUT":
            body = await request.json()
            try:
                split = TrafficSplit.from_dict(body["traffic"])
            except (TrafficError, KeyError, TypeError, ValueError) as error:
                return JSONResponse({"detail": str(error)}, status_code=400)
            state.backends.update(body.get("backends", {}))
            unknown = [t.revision for t in split.targets if t.revision not in state.backends]
            if unknown:
                return JSONResponse({"detail": f"unknown revisions {unknown}"}, status_code=400)
            state.split = split
            state.save()
        return JSONResponse({"backends": state.backends, "traffic": state.split.as_dict()})

    async def proxy(request: Request) -> Response:
        revision = state.choose(request)
        if revision is None:
            return JSONResponse({"detail": "no revision carries that tag"}, status_code=404)
        url = state.backends[revision] + request.url.path
        headers = {k: v for k, v in request.headers.items() if k not in HOP_HEADERS}
        try:
            async with asyncio.timeout(body_timeout_s):
                body = await request.body()
        except TimeoutError:
            detail = f"request body not received within {body_timeout_s:g} s: send it at once"
            return JSONResponse(
                {"detail": detail}, status_code=408, headers={"connection": "close"}
            )
        try:
            upstream = await client.request(request.method, url, content=body, headers=headers)
        except httpx.TransportError as error:
            return JSONResponse(
                {"detail": f"revision {revision} unreachable: {error!r}"},
                status_code=502,
                headers={"x-revision": revision},
            )
        response_headers = {
            k: v for k, v in upstream.headers.items() if k not in HOP_HEADERS | {"content-encoding"}
        }
        response_headers["x-revision"] = revision
        return Response(upstream.content, upstream.status_code, response_headers)

    routes = [
        Route("/_router/traffic", traffic, methods=["GET", "PUT"]),
        Route("/{path:path}", proxy, methods=["GET", "POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncGenerator[None]:
        yield
        await client.aclose()

    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    config_path, port = Path(sys.argv[1]), int(sys.argv[2])
    # The router stands in for Cloud Run's front end: it bounds slow clients with the same
    # HEADER_READ_TIMEOUT_S and BODY_READ_TIMEOUT_S settings as the revisions behind it.
    settings = Settings()
    serve(
        create_router(config_path, settings.BODY_READ_TIMEOUT_S), "127.0.0.1", port,
        settings.HEADER_READ_TIMEOUT_S, log_level="warning",
    )  # fmt: skip


if __name__ == "__main__":
    main()
