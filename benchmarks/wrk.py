"""wrk as the load generator: a C client that keeps up with any Python server on one core.

Bodies rotate per request from a file (one JSON body per line), formatted once per wrk thread so
the client spends its time sending. The Lua `done` hook prints one JSON line with the counts and
latency percentiles; the client's own CPU comes from its rusage, so a saturated client shows.
"""

import json
import resource
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MARKER = "WRK_RESULT "

# wrk calls `init` once per thread, `request` per request and `done` once, in the main state.
SCRIPT = """
local requests = {}
local next_request = 0

function init(args)
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("POST", args[2], headers, line)
  end
  next_request = math.random(#requests) - 1
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    "%MARKER%", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""".replace("%MARKER%", MARKER)


class WrkError(RuntimeError):
    """wrk is missing, failed, or printed no result; the message says which and how to fix it."""


@dataclass(frozen=True)
class WrkResult:
    """One run: `errors` counts non-2xx answers, broken connections and timeouts."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu_s: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def client_cpu_share(self) -> float:
        """Of one core: near 1.0, the client, not the server, set the pace."""
        return self.client_cpu_s / self.seconds


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkError(
            "wrk is not installed: `apt-get install wrk` (Debian, Ubuntu) or `brew install wrk`"
        )
    return found


def parse_result(stdout: str, client_cpu_s: float) -> WrkResult:
    """The result line the script's `done` printed."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            raw = json.loads(line.removeprefix(MARKER))
            return WrkResult(
                requests=raw["requests"],
                seconds=raw["duration_us"] / 1e6,
                errors=raw["errors"],
                p50_ms=raw["p50_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                client_cpu_s=client_cpu_s,
            )
    raise WrkError(f"wrk printed no result line:\n{stdout[-2000:]}")


def write_bodies(path: Path, bodies: Sequence[bytes]) -> Path:
    """One body per line, as the script reads them; JSON bodies hold no raw newline."""
    if any(b"\n" in body for body in bodies):
        raise ValueError("a body contains a newline: serialise it without indentation")
    path.write_bytes(b"\n".join(bodies) + b"\n")
    return path


def run_wrk(
    url: str,
    path: str,
    bodies_file: Path,
    connections: int,
    seconds: float,
    cpu: int | None = None,
) -> WrkResult:
    """`connections` keep-alive connections from one wrk thread, pinned to `cpu` if given."""
    script = bodies_file.with_suffix(".lua")
    script.write_text(SCRIPT)
    argv = [
        wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
        "-s", str(script), url, "--", str(bodies_file), path,
    ]  # fmt: skip
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = subprocess.run(  # noqa: S603 (a fixed argv, no shell)
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = finished.stdout.decode(errors="replace")
    if finished.returncode != 0:
        raise WrkError(f"wrk exited with {finished.returncode}:\n{output[-2000:]}")
    client_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_result(output, client_cpu_s)
