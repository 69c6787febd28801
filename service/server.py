"""The HTTP server the service and the local router run: uvicorn with a deadline on request heads.

uvicorn bounds the idle time between requests (keep-alive) but not how long a client may take to
send a request's head, nor how long a new connection may stay silent: a client trickling header
bytes holds a connection open forever. Cloud Run's front end absorbs most of that; the local router
and a Kubernetes ingress pass it through. Bodies are bounded in the app (service/middleware.py).
"""

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Outlive the keep-alive of whatever sits in front (router, load balancer): a server that closes
# an idle connection just as the client reuses it fails that request.
KEEP_ALIVE_SECONDS = 75
logger = logging.getLogger("uvicorn.error")


def _timeout_response(seconds: float) -> bytes:
    body = f"request head not received within {seconds:g} s (HEADER_READ_TIMEOUT_S)\n".encode()
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class HeadDeadlineProtocol(HttpToolsProtocol):
    """httptools' protocol, plus a timer from a connection's opening, and from each request's first
    byte, to the end of that request's head; when it fires the client gets a 408 and is dropped."""

    head_timeout_s = 10.0  # set per server by `head_deadline_protocol`
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            logger.warning(
                "closed a connection whose request head took over %g s", self.head_timeout_s
            )
            self.transport.write(_timeout_response(self.head_timeout_s))
            self.transport.close()


def head_deadline_protocol(seconds: float) -> type[HeadDeadlineProtocol]:
    """The protocol class for one server, with its own deadline."""
    return type("HeadDeadline", (HeadDeadlineProtocol,), {"head_timeout_s": seconds})


def serve(app: Any, host: str, port: int, head_timeout_s: float, **options: Any) -> None:
    """Run `app` with uvloop, httptools and the head deadline until SIGTERM or Ctrl-C."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=head_deadline_protocol(head_timeout_s),
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **options,
    )
