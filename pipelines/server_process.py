"""Start a server as a child process, wait until it is ready, and always stop it.

Children run in their own session so a Ctrl-C reaches only this process, which then stops them in
order; `stop` escalates from SIGTERM to SIGKILL so nothing outlives the command that started it.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx


class ServerStartError(RuntimeError):
    """The server exited or was not ready in time; the message ends with its last log lines."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """One child server on 127.0.0.1 with its log in a file; usable as a context manager."""

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/readyz",
    ) -> None:
        self.argv = list(argv)
        self.port = port
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerStartError("the server was not started")
        return self.process.pid

    def start(self) -> "ServerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # The child outlives this block by design; stop() and __exit__ end it.
            self.process = subprocess.Popen(  # noqa: S603  # pylint: disable=consider-using-with
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        return self

    def log_tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        """Poll the ready path until 200; returns seconds waited. Raises with the log tail."""
        if self.process is None:
            raise ServerStartError("wait_ready() before start()")
        started = time.monotonic()
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() - started < timeout_s:
                if self.process.poll() is not None:
                    raise ServerStartError(
                        f"{' '.join(self.argv)} exited with code {self.process.returncode}:\n"
                        + self.log_tail()
                    )
                try:
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass  # not listening yet: poll again
                time.sleep(0.05)
        self.stop()
        raise ServerStartError(
            f"not ready after {timeout_s:.0f}s on {self.url}:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass  # it exited between the poll and the signal: nothing left to stop

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def service_process(
    model_dir: Path, port: int, log_path: Path, env: Mapping[str, str] | None = None
) -> ServerProcess:
    """The prediction service (`python -m service`) serving `model_dir` on 127.0.0.1:`port`."""
    settings = {"MODEL_DIR": str(model_dir), "PORT": str(port), "HOST": "127.0.0.1", **(env or {})}
    return ServerProcess([sys.executable, "-m", "service"], port, log_path, settings)
