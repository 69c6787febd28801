"""One pure-ASGI middleware for what every request needs: id, body limit, metrics, request log.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task or stream copy per request, which matters
at the request rates micro-batching makes possible.
"""

import logging
import re
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import trace_field
from service.metrics import ServiceMetrics
from service.settings import Settings

logger = logging.getLogger("service.requests")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


class RequestMiddleware:
    """Assigns X-Request-ID, enforces MAX_BODY_BYTES (413), records metrics, logs what matters."""

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
        status = 500
        limit = self.settings.MAX_BODY_BYTES
        received = 0
        rejected = False

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        async def reject_too_large() -> None:
            nonlocal rejected
            rejected = True
            detail = f"request body exceeds {limit} bytes: send fewer instances per request"
            await _send_json(send_with_id, 413, {"detail": detail})

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                # Answer now and tell the app the client left, so it stops reading.
                if not rejected:
                    await reject_too_large()
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:  # after a 413 the app's own answer is dropped
                await send_with_id(message)

        try:
            if int(headers.get("content-length") or 0) > limit:
                await reject_too_large()
            else:
                await self.app(scope, counting_receive, guarded_send)
        # Re-raised unless this middleware already answered 413 and cut the body short.
        except Exception:  # pylint: disable=broad-exception-caught
            if not rejected:  # the app failing on the cut-off body is expected
                raise
        finally:
            self._record(scope, headers, request_id, status, time.perf_counter() - started)

    def _record(
        self, scope: Scope, headers: dict[str, str], request_id: str, status: int, seconds: float
    ) -> None:
        route = scope.get("route")
        route_path = getattr(route, "path", "unmatched")
        self.metrics.requests.labels(route_path, scope["method"], str(status)).inc()
        self.metrics.latency.labels(route_path).observe(seconds)
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
        logger.log(level, "%s %s %d", scope["method"], scope["path"], status, extra=extra)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
