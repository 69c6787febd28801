"""The release state machine: one set of phases and transitions, seen from two sides.

The Pulumi program (infra/release.py) records a release in its stack output and applies one
transition per `pulumi up`; the rollout controller (pipelines/rollout/controller.py) records a
rollout in its state file and asks its platform for the same transitions, in order. Both step
through `transition`, so a move one side refuses, the other refuses too.

    stable ──deploy──▶ dark_launched ──canary p──▶ canary ──promote──▶ promoted
                            │   └────────promote────────────────┘        │
                            └──rollback──▶ rolled_back ◀──rollback─ canary
    promoted, rolled_back ──deploy──▶ dark_launched
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# The service's fault-injection settings (service/settings.py), which a rollback drill sets on
# its candidate revision; `DRILL=true` beside them lets the service accept them outside development.
FAULT_KEYS = ("FAULT_ERROR_RATE", "FAULT_LATENCY_MS", "FAULT_INVERT_SCORES")

Phase = Literal["stable", "dark_launched", "canary", "promoted", "rolled_back"]
Action = Literal["deploy", "canary", "promote", "rollback"]
PHASES: tuple[Phase, ...] = ("stable", "dark_launched", "canary", "promoted", "rolled_back")
ACTIONS: tuple[Action, ...] = ("deploy", "canary", "promote", "rollback")
# A candidate has a route (its tag) in these phases; it takes users' traffic only in `canary`.
WITH_CANDIDATE: tuple[Phase, ...] = ("dark_launched", "canary", "rolled_back")
IN_FLIGHT: tuple[Phase, ...] = ("dark_launched", "canary")
FINISHED: tuple[Phase, ...] = ("promoted", "rolled_back")


class ReleaseError(ValueError):
    """A transition that does not fit the current state, or is malformed; nothing changed."""


@dataclass(frozen=True)
class Position:
    """Where a release stands: its phase and the candidate's share of traffic."""

    phase: Phase
    candidate_percent: int = 0


def transition(  # pylint: disable=too-many-arguments
    current: Position | None,
    action: Action,
    *,
    percent: int | None = None,
    steps: Sequence[int] = (),
    force: bool = False,
    candidate: str = "the candidate",
) -> Position:
    """The position after `action` from `current` (None: no release yet), or a ReleaseError.

    A canary percent must be one of the environment's `steps` unless `force` says that a person
    chose to move traffic off the policy's steps by hand.
    """
    if action == "deploy":
        if current is None:
            # The first release has nothing to compare against: it serves all traffic at once.
            return Position("stable")
        if current.phase in IN_FLIGHT:
            raise ReleaseError(
                f"a rollout of {candidate} is in progress ({current.phase}, "
                f"{current.candidate_percent}%): promote or roll it back before deploying another"
            )
        return Position("dark_launched")
    if current is None or current.phase not in WITH_CANDIDATE:
        raise ReleaseError(f"cannot {action}: there is no candidate revision to act on")
    if action == "rollback":
        # Idempotent: rolling back twice (a retried CI job) is not an error.
        return Position("rolled_back")
    if current.phase not in IN_FLIGHT:
        raise ReleaseError(
            f"cannot {action}: {candidate} was {current.phase}; deploy a new candidate first"
        )
    if action == "promote":
        return Position("promoted")
    if percent is None or not 1 <= percent <= 99:
        raise ReleaseError(f"RELEASE_PERCENT={percent} must be between 1 and 99 for a canary")
    if steps and percent not in steps and not force:
        raise ReleaseError(
            f"RELEASE_PERCENT={percent} is not one of this environment's rolloutSteps "
            f"{list(steps)}; to move traffic off the policy by hand, set RELEASE_FORCE=true"
        )
    return Position("canary", percent)


def revision_name(service: str, git_sha: str, sequence: int) -> str:
    """`<service>-<sha7>-<sequence>`: prefixed by the service name, <= 63 characters (Cloud Run)."""
    name = f"{service}-{git_sha[:7]}-{sequence:03d}"
    if len(name) > 63:
        raise ReleaseError(
            f"revision name {name!r} is longer than 63 characters: shorten serviceName"
        )
    return name
