"""One pure-ASGI middleware for what every request needs: id, body limits, errors, metrics, log.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task or stream copy per request, which matters
at the request rates micro-batching makes possible.
"""

import asyncio
import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import trace_field
from service.metrics import ServiceMetrics
from service.schemas import REQUEST_ID_PATTERN
from service.settings import Settings

logger = logging.getLogger("service.requests")
_VALID_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class _Exchange:
    """One request's side of the middleware: the request id on every answer, the body's size and
    arrival time bounded, and what was answered, for the metrics and the log."""

    def __init__(self, receive: Receive, send: Send, request_id: str, settings: Settings) -> None:
        self._receive, self._send = receive, send
        self.request_id = request_id
        self.settings = settings
        self.status = 500
        self.responded = False
        self.rejected = False
        self._received = 0
        self._body_complete = False
        self._deadline = asyncio.get_running_loop().time() + settings.BODY_READ_TIMEOUT_S

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.responded = message["status"], True
            extra = [(b"x-request-id", self.request_id.encode())]
            message["headers"] = [*message.get("headers", []), *extra]
        await self._send(message)

    async def app_send(self, message: Message) -> None:
        if not self.rejected:  # after a 413 or 408 the app's own answer is dropped
            await self.send(message)

    async def reject(self, code: int, detail: str) -> None:
        """Answer now; the connection closes, since the rest of the body is never read."""
        if not self.rejected:
            self.rejected = True
            await _send_json(self.send, code, {"detail": detail}, close=True)

    async def reject_too_large(self) -> None:
        limit = self.settings.MAX_BODY_BYTES
        await self.reject(
            413, f"request body exceeds {limit} bytes: send fewer instances per request"
        )

    async def app_receive(self) -> Message:
        if self._body_complete:
            return await self._receive()  # after the body: only a disconnect can arrive
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            await self.reject(
                408,
                f"request body not received within {self.settings.BODY_READ_TIMEOUT_S:g} s "
                "(BODY_READ_TIMEOUT_S): send the whole body at once",
            )
            return {"type": "http.disconnect"}  # tells the app the client is gone
        self._body_complete = not message.get("more_body", False)
        self._received += len(message.get("body", b""))
        if self._received > self.settings.MAX_BODY_BYTES:
            await self.reject_too_large()
            return {"type": "http.disconnect"}
        return message


class RequestMiddleware:
    """Assigns X-Request-ID, bounds the body's size (413) and arrival time (408), turns any
    unexpected exception into a logged, counted JSON 500, records metrics and logs what matters."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: ServiceMetrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _headers(scope)
        given = headers.get("x-request-id", "")
        request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        exchange = _Exchange(receive, send, request_id, self.settings)
        failure: Exception | None = None
        try:
            if int(headers.get("content-length") or 0) > self.settings.MAX_BODY_BYTES:
                await exchange.reject_too_large()
            else:
                await self.app(scope, exchange.app_receive, exchange.app_send)
        # The outermost handler: an unexpected error becomes one logged, counted 500, never a
        # bare one; after a 413 or 408 the app failing on the cut-off body is expected.
        except Exception as error:  # noqa: BLE001  # pylint: disable=broad-exception-caught
            if not exchange.rejected:
                failure, exchange.status = error, 500
                if not exchange.responded:
                    detail = f"internal error; quote request id {request_id} when reporting it"
                    await _send_json(exchange.send, 500, {"detail": detail})
        finally:
            seconds = time.perf_counter() - started
            self._record(scope, headers, request_id, exchange.status, seconds, failure)

    def _record(  # pylint: disable=too-many-arguments,too-many-positional-arguments
        self,
        scope: Scope,
        headers: dict[str, str],
        request_id: str,
        status: int,
        seconds: float,
        failure: Exception | None,
    ) -> None:
        route = scope.get("route")
        route_path = getattr(route, "path", "unmatched")
        self.metrics.observe_request(route_path, scope["method"], status, seconds)
        slow = seconds * 1000 >= self.settings.SLOW_REQUEST_MS
        if status < 400 and not slow and not self.settings.LOG_ALL_REQUESTS:
            return
        level = (
            logging.ERROR
            if status >= 500
            else logging.WARNING
            if status >= 400 or slow
            else logging.INFO
        )
        client = scope.get("client") or ("", 0)
        extra: dict[str, Any] = {
            "httpRequest": {
                "requestMethod": scope["method"],
                "requestUrl": scope["path"],
                "status": status,
                "latency": f"{seconds:.6f}s",
                "userAgent": headers.get("user-agent", ""),
                "remoteIp": client[0],
            },
            "request_id": request_id,
            **trace_field(headers.get("x-cloud-trace-context"), self.settings.GOOGLE_CLOUD_PROJECT),
        }
        logger.log(
            level, "%s %s %d", scope["method"], scope["path"], status, extra=extra, exc_info=failure
        )


async def _send_json(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
