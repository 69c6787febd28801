"""Every process the local platform starts can be found again, even one it never got to record.

Each child carries `LOCAL_PLATFORM_PROCESS=<platform id>:<name>` in its environment, and the
platform records the intent (name, port) before it spawns and the pid right after. A controller
killed between the two leaves a process that only the marker names; `marked` finds it, on Linux
and macOS alike (psutil reads other processes' environments where /proc does not exist).
"""

import contextlib
import os
import signal
import time
from dataclasses import dataclass

import psutil

MARKER = "LOCAL_PLATFORM_PROCESS"


@dataclass(frozen=True)
class Found:
    """A live process that carries a marker."""

    pid: int
    marker: str
    command: str


def marker(platform_id: str, name: str) -> str:
    return f"{platform_id}:{name}"


def marked(prefix: str, variable: str = MARKER) -> list[Found]:
    """Live processes whose `variable` starts with `prefix` (processes we may not read: skipped)."""
    found: list[Found] = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            value = process.environ().get(variable, "")
            if value.startswith(prefix) and process.status() != psutil.STATUS_ZOMBIE:
                command = " ".join(process.info["cmdline"] or [])
                found.append(Found(process.info["pid"], value, command))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group (children start their own), SIGKILL after the grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so it stops being "alive"
        if not alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
