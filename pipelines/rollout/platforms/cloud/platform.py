"""A cloud platform: the same controller, gates and reports against a real service, on Cloud Run
or on Kubernetes.

Pulumi is the only writer: every traffic change is one `pulumi up` transition of the stack
(pulumi_stack.py), and the stack's `release` output is the record of what it declared. The
platform itself says what it serves now (a `Serving`: Cloud Run's Admin API, or the cluster's
HTTPRoute), and a Prometheus API what each revision counted (prometheus.py). Forward moves refuse
to build on a split someone changed by hand; a rollback always restores the recorded stable
revision, whatever it finds.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from environments.release import IN_FLIGHT, Action, Phase, revision_name
from environments.rollout_policy import ShadowPhase
from environments.stack_settings import StackSettings
from environments.traffic import CANDIDATE_TAG, TrafficSplit
from pipelines.experiments.events import EventStore
from pipelines.rollout.platform import Candidate, DeployError, Mark, Move
from pipelines.rollout.platforms.cloud.prometheus import PrometheusWindows
from pipelines.rollout.platforms.cloud.pulumi_stack import PulumiStack
from pipelines.rollout.platforms.cloud.release_record import RecordedRelease
from pipelines.rollout.platforms.cloud.state_object import StorageObject
from pipelines.rollout.window import Snapshot
from service.settings import Settings
from service.shadow import ShadowSwitch

# How often the metrics collector scrapes each revision (Cloud Run's sidecar and the GKE
# PodMonitoring alike, infra/): a gate check more often than this sees no new sample.
SCRAPE_INTERVAL_S = 30.0
# Revisions run with the service's default shadow settings (infra sets none).
_DEFAULTS = Settings.model_construct()
SHADOW_SETTLE_S = _DEFAULTS.SHADOW_POLL_S + _DEFAULTS.SHADOW_TIMEOUT_MS / 1000
PHASE_AFTER: dict[Action, Phase] = {
    "deploy": "dark_launched",
    "canary": "canary",
    "promote": "promoted",
    "rollback": "rolled_back",
}


class TrafficDriftError(DeployError):
    """The platform serves a split the stack did not record: someone changed traffic by hand."""


class Serving(Protocol):
    """What one platform serves now, read from the platform itself, and how to reach a revision."""

    @property
    def where(self) -> str:
        """How messages name it: "Cloud Run", "the cluster"."""
        ...

    def split(self) -> TrafficSplit:
        """The split in force now."""
        ...

    def is_ready(self, revision: str) -> bool:
        """Whether the revision answers its readiness probe."""
        ...

    def tagged_client(self, tag: str) -> httpx.Client:
        """A client whose requests reach only the revision carrying `tag`."""
        ...

    def mirror_target(self) -> tuple[str, str | None]:
        """Where the stable revision's instances reach the candidate: a URL and, when that URL
        needs an ID token, its audience."""
        ...


def check_no_drift(live: TrafficSplit, recorded: TrafficSplit, where: str) -> None:
    """Refuse to act when the platform serves another split than the one the stack recorded."""
    if live != recorded:
        raise TrafficDriftError(
            f"{where} serves {live.as_dict()} but the stack recorded {recorded.as_dict()}: "
            "traffic was changed outside Pulumi. Put the recorded split back with a plain "
            "`pulumi up` (no RELEASE_* inputs), or end the rollout with "
            "`RELEASE_ACTION=rollback make up ENV=<environment>`"
        )


def _candidate_of(move: Move) -> str | None:
    """The candidate a move is about: the tagged revision, or the one a promotion leaves alone."""
    if move.action == "promote":
        return move.split.targets[0].revision
    return move.split.tagged(CANDIDATE_TAG)


def _recorded_candidate(recorded: RecordedRelease) -> str | None:
    if recorded.phase == "promoted":
        return recorded.stable.name
    return recorded.candidate.name if recorded.candidate else None


@dataclass
class CloudPlatform:  # pylint: disable=too-many-instance-attributes  # one field per boundary
    """One environment's service on Cloud Run or Kubernetes (`serving` says which)."""

    settings: StackSettings
    stack: PulumiStack
    serving: Serving
    windows: PrometheusWindows
    switch: StorageObject  # the shadow switch every instance polls (settings.shadow_switch)
    event_store: EventStore | None = None  # the environment's events dataset in BigQuery
    min_check_interval_seconds: float = SCRAPE_INTERVAL_S
    shadow_settle_seconds: float = SHADOW_SETTLE_S

    def recorded(self) -> RecordedRelease:
        return RecordedRelease.from_outputs(self.stack.outputs(), self.settings.environment)

    def candidate(
        self, image: str, git_sha: str, model_dir: Path, release_again: bool = False
    ) -> Candidate:
        """The revision a deploy of `image` gets: the one in flight if it is this image (a
        re-run resumes it), else the stack's next name. The image and commit that were just
        rolled back are refused unless `release_again`: re-running a workflow must not release
        what the gates or a person took back; a new commit or an explicit request does."""
        recorded = self.recorded()
        last = recorded.candidate
        if (
            recorded.phase == "rolled_back"
            and last
            and not last.drill
            and (last.image, last.git_sha) == (image, git_sha)
            and not release_again
        ):
            raise DeployError(
                f"{last.name} ({image} from {git_sha[:7]}) was rolled back in "
                f"{self.settings.environment}: push a fix, or release it again on purpose with "
                "--release-again (the deploy workflow's `release_again` input)"
            )
        flying = recorded.candidate if recorded.phase in IN_FLIGHT else None
        if flying and (flying.image, flying.git_sha) == (image, git_sha):
            name = flying.name
        else:
            name = revision_name(self.settings.service_name, git_sha, recorded.sequence + 1)
        return Candidate(name, model_dir, image=image, git_sha=git_sha)

    def deploy(self, revision: Candidate) -> None:
        """`pulumi up` returns once the platform has the revision ready (or fails with its
        reason: Cloud Run's, or Pulumi's wait for the Deployment's rollout)."""
        if not revision.image or not revision.git_sha:
            raise DeployError(f"{revision.name}: a cloud candidate needs its image and commit")
        recorded = self.recorded()
        if recorded.phase in IN_FLIGHT and _recorded_candidate(recorded) == revision.name:
            return  # an earlier run deployed it
        check_no_drift(self.read_traffic(), recorded.split(), self.serving.where)
        self.stack.transition(
            "deploy", image=revision.image, git_sha=revision.git_sha, faults=revision.env
        )
        deployed = _recorded_candidate(self.recorded())
        if deployed != revision.name:
            raise DeployError(
                f"the {self.settings.environment} stack deployed {deployed}, not {revision.name}: "
                "another deploy ran on this stack meanwhile"
            )

    def apply(self, move: Move) -> None:
        recorded = self.recorded()
        live = self.read_traffic()
        if recorded.phase == PHASE_AFTER[move.action] and recorded.split() == move.split:
            if live != recorded.split():
                self.stack.reconcile()  # recorded but not (or no longer) live
        elif move.action == "rollback":
            flying = recorded.candidate.name if recorded.candidate else None
            if recorded.phase in IN_FLIGHT and flying == (_candidate_of(move) or flying):
                self.stack.transition("rollback")
            else:  # its deploy never reached the record: put the recorded release back
                self.stack.reconcile()
        else:
            check_no_drift(live, recorded.split(), self.serving.where)
            candidate = _candidate_of(move) or ""
            percent = move.split.percent(candidate) if move.action == "canary" else None
            self.stack.transition(move.action, percent=percent)
        self._expect(move)

    def _expect(self, move: Move) -> None:
        live = self.read_traffic()
        if move.action == "rollback":
            stable = next(t.revision for t in move.split.targets if t.percent == 100)
            if live.percent(stable) == 100:
                return
        elif live == move.split:
            return
        raise DeployError(
            f"after `pulumi up` ({move.action}) {self.serving.where} serves {live.as_dict()}, "
            f"not {move.split.as_dict()}"
        )

    def read_traffic(self) -> TrafficSplit:
        return self.serving.split()

    def mark(self, revision: str) -> Mark:
        return self.windows.mark(revision)

    def window(self, revision: str, since: Mark) -> Snapshot | None:
        return self.windows.window(revision, since)

    def is_ready(self, revision: str) -> bool:
        return self.serving.is_ready(revision)

    def mirror(self, source: str, candidate: str, phase: ShadowPhase, until: float) -> None:
        """The stable revision's instances call the candidate where the platform says they
        can reach it, with an ID token of their own identity where that needs one."""
        url, audience = self.serving.mirror_target()
        switch = ShadowSwitch(
            source=source,
            candidate=candidate,
            url=url,
            sample_rate=phase.sample_rate,
            max_logit_difference=phase.max_logit_difference,
            expires_at=until,
            audience=audience,
        )
        self.switch.write(switch.model_dump_json().encode())

    def stop_mirror(self) -> None:
        self.switch.delete()

    def tagged_client(self, tag: str) -> httpx.Client:
        return self.serving.tagged_client(tag)

    def events(self) -> EventStore | None:
        return self.event_store

    def links(self) -> dict[str, str]:
        outputs = self.stack.outputs()
        wanted = {
            "service": "service_url",
            "candidate": "candidate_url",
            "dashboard": "dashboard_url",
        }
        return {name: str(outputs[key]) for name, key in wanted.items() if outputs.get(key)}
