"""The small interface every platform implements: local processes, Cloud Run, Kubernetes."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from environments.release import Action
from environments.rollout_policy import ShadowPhase
from environments.traffic import TrafficSplit
from pipelines.experiments.events import EventStore
from pipelines.rollout.window import Snapshot

# Where a metrics window starts: a cumulative reading (local) or a time (a metrics backend).
Mark = Snapshot | float


class DeployError(RuntimeError):
    """The candidate could not be started or never became ready; it received no traffic."""


class MetricsError(RuntimeError):
    """The metrics backend refused or failed a query; the gates treat it as a failure."""


@dataclass(frozen=True)
class Candidate:
    """What a platform is asked to deploy: a revision name, the model it serves (for the golden
    checks), its settings (local; on the cloud only a drill's FAULT_* settings), and the image and
    commit it is built from (cloud)."""

    name: str
    model_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    image: str | None = None
    git_sha: str | None = None


@dataclass(frozen=True)
class Move:
    """One transition of the release state machine and the split it leaves in force.

    Platforms get both: a split alone cannot tell a rollback right after a dark launch from the
    dark launch itself (same split), yet on Cloud Run the recorded phase must move, or the next
    deploy is refused as in progress.
    """

    action: Action
    split: TrafficSplit


class Platform(Protocol):
    """Where revisions run and traffic is split. Implementations must be idempotent."""

    # The shortest useful interval between gate checks: how often new metrics can appear.
    min_check_interval_seconds: float
    # After `stop_mirror`, how long a mirrored request may still reach the candidate: the
    # revisions' switch poll plus one request's time budget. A canary step starts after it, so
    # its windows count user requests alone.
    shadow_settle_seconds: float

    def deploy(self, revision: Candidate) -> None:
        """Start the revision with no traffic; return once it is ready or raise DeployError."""
        ...

    def apply(self, move: Move) -> None:
        """Make the transition; when this returns, new requests follow `move.split`."""
        ...

    def read_traffic(self) -> TrafficSplit:
        """The split in force now, read from the platform itself (never from a cache)."""
        ...

    def mark(self, revision: str) -> Mark:
        """Where a metrics window of `revision` starts (the start of a canary step)."""
        ...

    def window(self, revision: str, since: Mark) -> Snapshot | None:
        """What `revision` counted since `since`, in one shape whatever the backend; None while
        the backend has not caught up with now (the gates then wait: INSUFFICIENT_DATA)."""
        ...

    def is_ready(self, revision: str) -> bool:
        """Whether the revision answers its readiness probe."""
        ...

    def mirror(self, source: str, candidate: str, phase: ShadowPhase, until: float) -> None:
        """Have `source` mirror `phase.sample_rate` of its predictions to `candidate` (at its
        tagged address) until `until` or `stop_mirror`; the revisions pick it up within seconds."""
        ...

    def stop_mirror(self) -> None:
        """Turn mirroring off; idempotent (a switch already gone is fine)."""
        ...

    def tagged_client(self, tag: str) -> httpx.Client:
        """A client whose requests reach the revision carrying `tag`, whatever the split."""
        ...

    def events(self) -> EventStore | None:
        """Where the revisions' events can be queried (the shadow report's disagreements)."""
        ...

    def links(self) -> dict[str, str]:
        """Where people look during a rollout (service, candidate, dashboard), for the report."""
        ...
