"""The release of an environment as the Pulumi program records it, and how one request moves it.

Pulumi owns revisions and traffic. The state lives in the stack's own `release` output, so it
survives between CI runs without commits; a run without a request reproduces it exactly (no diff,
no traffic moved), and a run with one applies a single transition of the shared state machine
(environments/release.py) or refuses it, changing nothing.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from environments import traffic
from environments.release import (
    ACTIONS,
    FAULT_KEYS,
    PHASES,
    Action,
    Phase,
    Position,
    ReleaseError,
    revision_name,
    transition,
)
from environments.stack_settings import IMAGE_BY_DIGEST
from infra.revision import RevisionSpec

GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
TRUE = frozenset({"1", "true", "yes"})
SpecFor = Callable[[str], RevisionSpec]  # git sha -> the spec of a revision built from it


class Revision(BaseModel):
    """One immutable Cloud Run revision: name, image, commit and everything its template holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    image: str
    git_sha: str
    spec: RevisionSpec


@dataclass(frozen=True)
class ReleaseState:
    """Which revisions serve, how much; `sequence` counts deploys so revision names never repeat."""

    sequence: int
    phase: Phase
    stable: Revision
    candidate: Revision | None = None
    candidate_percent: int = 0

    @property
    def position(self) -> Position:
        return Position(self.phase, self.candidate_percent)

    @property
    def latest(self) -> Revision:
        """The revision the service's template describes: the newest one deployed."""
        return self.candidate or self.stable

    def split(self) -> traffic.TrafficSplit:
        candidate = self.candidate.name if self.candidate else None
        return traffic.of_release(self.stable.name, candidate, self.candidate_percent)

    @property
    def serving(self) -> tuple[Revision, ...]:
        """Every revision with a route: stable, and the candidate while it keeps its tag."""
        return (self.stable,) if self.candidate is None else (self.stable, self.candidate)

    def as_output(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "phase": self.phase,
            "stable": self.stable.model_dump(mode="json"),
            "candidate": self.candidate.model_dump(mode="json") if self.candidate else None,
            "candidate_percent": self.candidate_percent,
        }

    @classmethod
    def from_output(cls, value: Mapping[str, Any]) -> "ReleaseState":
        """The recorded state, validated: a malformed record is refused, never half-read."""
        try:
            candidate = value.get("candidate")
            phase = value["phase"]
            if phase not in PHASES:
                raise ValueError(f"unknown phase {phase!r}")
            return cls(
                sequence=int(value["sequence"]),
                phase=phase,
                stable=Revision.model_validate(value["stable"]),
                candidate=Revision.model_validate(candidate) if candidate else None,
                candidate_percent=int(value.get("candidate_percent", 0)),
            )
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            raise ReleaseError(
                f"the stack's recorded `release` output is malformed ({error}); it was written by "
                "an older program or edited by hand: export the stack, fix or remove the output, "
                "and deploy again"
            ) from None


@dataclass(frozen=True)
class ReleaseRequest:
    """One transition, asked for with RELEASE_* variables by whoever runs `pulumi up`."""

    action: Action
    image: str | None = None
    git_sha: str | None = None
    percent: int | None = None
    force: bool = False  # a canary percent off the environment's rolloutSteps, chosen by a person
    # A rollback drill: faults the new revision serves with (where the environment allows drills)
    faults: Mapping[str, str] = field(default_factory=dict[str, str])

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "ReleaseRequest | None":
        """RELEASE_ACTION and its arguments; None (a plain preview or up) when it is unset."""
        action = environ.get("RELEASE_ACTION", "").strip()
        if not action:
            return None
        if action not in ACTIONS:
            raise ReleaseError(f"RELEASE_ACTION={action!r} is not one of {', '.join(ACTIONS)}")
        percent = environ.get("RELEASE_PERCENT")
        if percent is not None and not percent.strip().isdigit():
            raise ReleaseError(f"RELEASE_PERCENT={percent!r} is not a whole number")
        faults = drill_faults(environ.get("RELEASE_DRILL_FAULTS", ""))
        if faults and action != "deploy":
            raise ReleaseError("RELEASE_DRILL_FAULTS goes with RELEASE_ACTION=deploy only")
        return cls(
            action=action,  # pyright: ignore[reportArgumentType]  # checked against ACTIONS
            image=environ.get("RELEASE_IMAGE") or None,
            git_sha=environ.get("RELEASE_GIT_SHA") or None,
            percent=int(percent) if percent is not None else None,
            force=environ.get("RELEASE_FORCE", "").strip().lower() in TRUE,
            faults=faults,
        )


def drill_faults(text: str) -> dict[str, str]:
    """`FAULT_ERROR_RATE=0.2,FAULT_LATENCY_MS=300` as the revision's environment, with the
    `DRILL=true` that lets the service accept them outside development."""
    pairs = [entry.strip().partition("=") for entry in text.split(",") if entry.strip()]
    faults = {key.strip(): value.strip() for key, _, value in pairs}
    if set(faults) - set(FAULT_KEYS) or not all(faults.values()):
        raise ReleaseError(
            f"RELEASE_DRILL_FAULTS={text!r}: give KEY=VALUE pairs separated by commas, "
            f"keys among {', '.join(FAULT_KEYS)}"
        )
    return {**faults, "DRILL": "true"} if faults else {}


def _new_revision(request: ReleaseRequest, service: str, sequence: int, spec: SpecFor) -> Revision:
    if not request.image or not IMAGE_BY_DIGEST.match(request.image):
        raise ReleaseError(
            f"RELEASE_IMAGE={request.image!r} must be an image by digest "
            "(REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE@sha256:<64 hex>)"
        )
    if not request.git_sha or not GIT_SHA.match(request.git_sha):
        raise ReleaseError(f"RELEASE_GIT_SHA={request.git_sha!r} must be a lowercase hex commit")
    built = spec(request.git_sha)
    if request.faults:
        built = built.model_copy(
            update={"env": dict(sorted({**built.env, **request.faults}.items()))}
        )
    return Revision(
        name=revision_name(service, request.git_sha, sequence),
        image=request.image,
        git_sha=request.git_sha,
        spec=built,
    )


def next_state(
    previous: ReleaseState | None,
    request: ReleaseRequest | None,
    service: str,
    spec: SpecFor,
    steps: Sequence[int] = (),
) -> ReleaseState:
    """The state after `request`; `spec(git_sha)` is what a newly deployed revision is made of,
    and `steps` the environment's canary percentages."""
    if request is None:
        if previous is None:
            raise ReleaseError(
                "this stack has no release yet: the first `pulumi up` needs RELEASE_ACTION=deploy, "
                "RELEASE_IMAGE (by digest) and RELEASE_GIT_SHA (README: first deploy)"
            )
        return previous
    candidate = previous.candidate.name if previous and previous.candidate else "the candidate"
    position = transition(
        previous.position if previous else None,
        request.action,
        percent=request.percent,
        steps=steps,
        force=request.force,
        candidate=candidate,
    )
    if request.action == "deploy" or previous is None:  # transition allows only deploy then
        sequence = (previous.sequence if previous else 0) + 1
        revision = _new_revision(request, service, sequence, spec)
        if previous is None:
            return ReleaseState(sequence=sequence, phase=position.phase, stable=revision)
        # Dark launch: the new revision gets its tagged URL and no users until a canary step.
        return ReleaseState(
            sequence=sequence, phase=position.phase, stable=previous.stable, candidate=revision
        )
    if request.action == "promote":
        return replace(previous, phase=position.phase, stable=previous.candidate, candidate=None)
    return replace(previous, phase=position.phase, candidate_percent=position.candidate_percent)
