"""The local platform: each revision a real service process on 127.0.0.1, behind the router.

Process ids and ports live in `platform.json` in the work folder, so a controller that was killed
can attach to the platform it left running, as it would to Cloud Run, and finish the rollout.
"""

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from environments.traffic import TrafficSplit, stable_only
from pipelines.atomic_file import write_json_atomic
from pipelines.rollout.platform import Candidate, DeployError
from pipelines.rollout.platforms.local.router import TAG_HEADER
from pipelines.rollout.window import Snapshot, parse_metrics
from pipelines.server_process import ServerProcess, ServerStartError, free_port, service_process

READY_TIMEOUT_S = 90.0
ROUTER_MODULE = "pipelines.rollout.platforms.local.router"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group (children start their own), SIGKILL after the grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so it stops being "alive"
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


class LocalPlatform:
    """Revisions and router as child processes, recorded in `<workdir>/platform.json`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.record_path = workdir / "platform.json"
        self.router_config = workdir / "router.json"
        self.record: dict[str, dict[str, Any]] = {"router": {}, "revisions": {}}
        if self.record_path.exists():
            self.record = json.loads(self.record_path.read_text())
        # Handles of the processes this object started (a re-attached platform has none: pids).
        self._children: dict[str, ServerProcess] = {}

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.record['router']['port']}"

    def _save(self) -> None:
        write_json_atomic(self.record_path, self.record)

    def _revision_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.record['revisions'][name]['port']}"

    def running(self) -> bool:
        """Whether a router and its revisions recorded here are still alive."""
        router_pid = self.record["router"].get("pid")
        return isinstance(router_pid, int) and _alive(router_pid)

    def start(self, stable: Candidate) -> None:
        """Start the stable revision and the router sending it all traffic."""
        if self.running():
            raise DeployError(
                f"a local platform already runs from {self.workdir}: shut it down first"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.record = {"router": {}, "revisions": {}}
        self._start_revision(stable)
        backends = {stable.name: self._revision_url(stable.name)}
        write_json_atomic(
            self.router_config,
            {"backends": backends, "traffic": stable_only(stable.name).as_dict()},
        )
        port = free_port()
        argv = [sys.executable, "-m", ROUTER_MODULE, str(self.router_config), str(port)]
        router = ServerProcess(
            argv, port, self.workdir / "router.log", ready_path="/_router/traffic"
        )
        router.start()
        self._children["router"] = router
        self.record["router"] = {"pid": router.pid, "port": port}
        self._save()
        router.wait_ready(timeout_s=READY_TIMEOUT_S)

    def _start_revision(self, revision: Candidate) -> None:
        port = free_port()
        env = {"K_REVISION": revision.name, **revision.env}
        server = service_process(
            revision.model_dir, port, self.workdir / f"{revision.name}.log", env
        )
        server.start()
        self._children[revision.name] = server
        self.record["revisions"][revision.name] = {
            "pid": server.pid, "port": port, "model_dir": str(revision.model_dir), "env": env,
        }  # fmt: skip
        self._save()
        try:
            server.wait_ready(timeout_s=READY_TIMEOUT_S)
        except ServerStartError as error:
            server.stop()
            del self.record["revisions"][revision.name]
            self._save()
            raise DeployError(f"revision {revision.name} never became ready: {error}") from error

    def deploy(self, revision: Candidate) -> None:
        known = self.record["revisions"].get(revision.name)
        if known and _alive(int(str(known["pid"]))) and self.is_ready(revision.name):
            return  # idempotent: a re-run finds the candidate it already started
        self._start_revision(revision)
        with httpx.Client(timeout=10) as client:
            body = {
                "backends": {revision.name: self._revision_url(revision.name)},
                "traffic": self.read_traffic().as_dict(),
            }
            client.put(f"{self.router_url}/_router/traffic", json=body).raise_for_status()

    def set_traffic(self, split: TrafficSplit) -> None:
        with httpx.Client(timeout=10) as client:
            response = client.put(
                f"{self.router_url}/_router/traffic", json={"traffic": split.as_dict()}
            )
        if response.status_code != 200:
            raise DeployError(f"router refused the split: {response.text}")

    def read_traffic(self) -> TrafficSplit:
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{self.router_url}/_router/traffic")
        response.raise_for_status()
        return TrafficSplit.from_dict(response.json()["traffic"])

    def snapshot(self, revision: str) -> Snapshot:
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{self._revision_url(revision)}/metrics")
        response.raise_for_status()
        return parse_metrics(response.text)

    def is_ready(self, revision: str) -> bool:
        try:
            with httpx.Client(timeout=2) as client:
                return client.get(f"{self._revision_url(revision)}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    def tagged_client(self, tag: str) -> httpx.Client:
        return httpx.Client(base_url=self.router_url, headers={TAG_HEADER: tag}, timeout=10)

    def stop_unused(self) -> list[str]:
        """Stop revisions with no traffic and no tag (Cloud Run would scale them to zero)."""
        split = self.read_traffic()
        in_use = {t.revision for t in split.targets if t.percent > 0 or t.tag}
        stopped = [name for name in self.record["revisions"] if name not in in_use]
        for name in stopped:
            child = self._children.pop(name, None)
            if child is not None:
                child.stop()
            _stop_group(int(self.record["revisions"].pop(name)["pid"]))
        self._save()
        return stopped

    def shutdown(self) -> None:
        """Stop every process this platform started; safe to call twice."""
        pids = [self.record["router"].get("pid")] + [
            r.get("pid") for r in self.record["revisions"].values()
        ]
        for child in self._children.values():
            child.stop()
        for pid in pids:
            if isinstance(pid, int):
                _stop_group(pid)
        self._children.clear()
        self.record = {"router": {}, "revisions": {}}
        self.record_path.unlink(missing_ok=True)
