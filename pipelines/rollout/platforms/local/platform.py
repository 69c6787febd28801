"""The local platform: each revision a real service process on 127.0.0.1, behind the router.

Process ids and ports live in `platform.json` in the work folder, so a controller that was killed
can attach to the platform it left running, as it would to Cloud Run, and finish the rollout.
Processes follow the controller's rule for traffic, record first, then act: a revision's intent
(name, port) is recorded before it is spawned and its pid right after, and every child carries a
marker (processes.py), so one spawned by a controller killed before it could record the pid is
still found, adopted or stopped. Nothing the platform starts outlives `shutdown`.
"""

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from environments.rollout_policy import ShadowPhase
from environments.traffic import CANDIDATE_TAG, TrafficSplit, stable_only
from pipelines.atomic_file import write_json_atomic
from pipelines.experiments.events import EventStore, LogFiles
from pipelines.rollout.crash_points import crash_point
from pipelines.rollout.platform import Candidate, DeployError, Mark, Move
from pipelines.rollout.platforms.local.processes import MARKER, alive, marked, marker, stop_group
from pipelines.rollout.platforms.local.router import TAG_HEADER
from pipelines.rollout.window import Snapshot, parse_metrics
from pipelines.server_process import ServerProcess, ServerStartError, free_port, service_process
from service.shadow import ShadowSwitch

READY_TIMEOUT_S = 90.0
SHADOW_POLL_S = 0.5
SHADOW_TIMEOUT_S = 1.0
ROUTER_MODULE = "pipelines.rollout.platforms.local.router"


class LocalPlatform:
    """Revisions and router as child processes, recorded in `<workdir>/platform.json`."""

    min_check_interval_seconds = 0.0  # every check reads each revision's /metrics live
    shadow_settle_seconds = SHADOW_POLL_S + SHADOW_TIMEOUT_S

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.record_path = workdir / "platform.json"
        self.router_config = workdir / "router.json"
        # The shadow switch every revision polls (service/shadow.py), as Cloud Run's poll an object.
        self.shadow_switch = workdir / "shadow.json"
        self.record: dict[str, Any] = self._load()
        # Handles of the processes this object started (a re-attached platform has none: pids).
        self._children: dict[str, ServerProcess] = {}

    def _load(self) -> dict[str, Any]:
        if self.record_path.exists():
            return json.loads(self.record_path.read_text())
        return {"id": "", "router": {}, "revisions": {}}

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
        return isinstance(router_pid, int) and alive(router_pid)

    def start(self, stable: Candidate) -> None:
        """Start the stable revision and the router sending it all traffic."""
        if self.running():
            raise DeployError(
                f"a local platform already runs from {self.workdir}: shut it down first"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.shutdown()  # whatever a killed earlier start left behind
        self.record = {"id": uuid.uuid4().hex[:12], "router": {}, "revisions": {}}
        self._save()
        self._start_revision(stable)
        backends = {stable.name: self._revision_url(stable.name)}
        write_json_atomic(
            self.router_config,
            {"backends": backends, "traffic": stable_only(stable.name).as_dict()},
        )
        port = free_port()
        self.record["router"] = {"port": port}  # intent first: a killed start can be cleaned
        self._save()
        argv = [sys.executable, "-m", ROUTER_MODULE, str(self.router_config), str(port)]
        router = ServerProcess(
            argv,
            port,
            self.workdir / "router.log",
            {MARKER: marker(self.record["id"], "router")},
            ready_path="/_router/traffic",
        )
        router.start()
        self._children["router"] = router
        self.record["router"]["pid"] = router.pid
        self._save()
        router.wait_ready(timeout_s=READY_TIMEOUT_S)

    def _start_revision(self, revision: Candidate) -> None:
        port = free_port()
        env = {
            "K_REVISION": revision.name,
            "SHADOW_CONTROL": str(self.shadow_switch),
            "SHADOW_POLL_S": str(SHADOW_POLL_S),
            "SHADOW_TIMEOUT_MS": str(SHADOW_TIMEOUT_S * 1000),
            **revision.env,
        }
        self.record["revisions"][revision.name] = {
            "port": port, "model_dir": str(revision.model_dir), "env": env,
        }  # fmt: skip
        self._save()
        crash_point(f"intent:{revision.name}")
        server = service_process(
            revision.model_dir,
            port,
            self.workdir / f"{revision.name}.log",
            env | {MARKER: marker(self.record["id"], revision.name)},
        )
        server.start()
        crash_point(f"spawned:{revision.name}")
        self._children[revision.name] = server
        self.record["revisions"][revision.name]["pid"] = server.pid
        self._save()
        try:
            server.wait_ready(timeout_s=READY_TIMEOUT_S)
        except ServerStartError as error:
            server.stop()
            del self.record["revisions"][revision.name]
            self._save()
            raise DeployError(f"revision {revision.name} never became ready: {error}") from error

    def _stop(self, name: str) -> list[int]:
        """Stop every process of `name`: its handle, its recorded pid, any carrying its marker."""
        child = self._children.pop(name, None)
        if child is not None:
            child.stop()
        entry = self.record["router"] if name == "router" else self.record["revisions"].get(name)
        pids = {int(entry["pid"])} if entry and isinstance(entry.get("pid"), int) else set()
        if self.record.get("id"):
            tag = marker(self.record["id"], name)
            pids |= {found.pid for found in marked(tag) if found.marker == tag}
        stopped = sorted(pid for pid in pids if alive(pid))
        for pid in stopped:
            stop_group(pid)
        return stopped

    def deploy(self, revision: Candidate) -> None:
        known = self.record["revisions"].get(revision.name)
        pid = known.get("pid") if known else None
        if isinstance(pid, int) and alive(pid) and self.is_ready(revision.name):
            return  # idempotent: a re-run adopts the candidate it already started
        self._stop(revision.name)  # a half-started or unready leftover, recorded or not
        self.record["revisions"].pop(revision.name, None)
        self._save()
        self._start_revision(revision)
        with httpx.Client(timeout=10) as client:
            body = {
                "backends": {revision.name: self._revision_url(revision.name)},
                "traffic": self.read_traffic().as_dict(),
            }
            client.put(f"{self.router_url}/_router/traffic", json=body).raise_for_status()

    def apply(self, move: Move) -> None:
        """The router holds nothing but the split: every transition is setting it."""
        with httpx.Client(timeout=10) as client:
            response = client.put(
                f"{self.router_url}/_router/traffic", json={"traffic": move.split.as_dict()}
            )
        if response.status_code != 200:
            raise DeployError(f"router refused the split: {response.text}")

    def read_traffic(self) -> TrafficSplit:
        with httpx.Client(timeout=10) as client:
            response = client.get(f"{self.router_url}/_router/traffic")
        response.raise_for_status()
        return TrafficSplit.from_dict(response.json()["traffic"])

    def mark(self, revision: str) -> Mark:
        return self._snapshot(revision)

    def window(self, revision: str, since: Mark) -> Snapshot | None:
        """Read live from the revision's /metrics: never behind."""
        if not isinstance(since, Snapshot):
            raise TypeError(f"the local platform marks windows with snapshots, not {since!r}")
        return self._snapshot(revision).minus(since)

    def _snapshot(self, revision: str) -> Snapshot:
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

    def mirror(self, source: str, candidate: str, phase: ShadowPhase, until: float) -> None:
        """Through the router, by the candidate's tag: the same address a user's tagged request
        takes, as on Cloud Run."""
        switch = ShadowSwitch(
            source=source,
            candidate=candidate,
            url=self.router_url,
            headers={TAG_HEADER: CANDIDATE_TAG},
            sample_rate=phase.sample_rate,
            max_logit_difference=phase.max_logit_difference,
            expires_at=until,
        )
        write_json_atomic(self.shadow_switch, switch.model_dump(mode="json"))

    def stop_mirror(self) -> None:
        self.shadow_switch.unlink(missing_ok=True)

    def tagged_client(self, tag: str) -> httpx.Client:
        return httpx.Client(base_url=self.router_url, headers={TAG_HEADER: tag}, timeout=10)

    def events(self) -> EventStore | None:
        logs = [self.workdir / f"{name}.log" for name in self.record["revisions"]]
        existing = [log for log in logs if log.is_file()]
        return LogFiles(existing) if existing else None

    def links(self) -> dict[str, str]:
        return {"router": self.router_url}

    def stop_unused(self) -> list[str]:
        """Stop revisions with no traffic and no tag (Cloud Run would scale them to zero)."""
        split = self.read_traffic()
        in_use = {t.revision for t in split.targets if t.percent > 0 or t.tag}
        stopped = [name for name in self.record["revisions"] if name not in in_use]
        for name in stopped:
            self._stop(name)
            del self.record["revisions"][name]
        self._save()
        return stopped

    def shutdown(self) -> dict[str, list[int]]:
        """Stop every process this platform started, recorded or only marked; safe to call
        twice. The record on disk is the truth (another process may have added to it since this
        object read it). Returns what it stopped, by name."""
        self.record = self._load()
        names = {"router", *self.record["revisions"]}
        if self.record.get("id"):
            names |= {p.marker.split(":", 1)[1] for p in marked(f"{self.record['id']}:")}
        stopped = {name: pids for name in sorted(names) if (pids := self._stop(name))}
        for child in self._children.values():
            child.stop()
        self._children.clear()
        self.record = {"id": "", "router": {}, "revisions": {}}
        self.record_path.unlink(missing_ok=True)
        return stopped
