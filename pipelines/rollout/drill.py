"""A rollback drill in the cloud (Cloud Run or GKE): release the stable revision's own image
again, with injected errors, and require the controller to roll it back within the plan's worst
case. It proves, on the real platform, that the gates, the metrics path and the rollback still
work, before a real fault needs them."""

from dataclasses import replace
from pathlib import Path

from pipelines.rollout.plan import RolloutPlan
from pipelines.rollout.platform import Candidate
from pipelines.rollout.platforms.cloud.platform import CloudPlatform
from pipelines.rollout.report import summarize
from pipelines.rollout.state import RolloutState

DEFAULT_ERROR_RATE = 0.2


def drill_candidate(platform: CloudPlatform, model_dir: Path, error_rate: float) -> Candidate:
    """The stable image as a new revision with `error_rate` of its predictions failing. Its
    rollback must not block that image later, so the re-run guard skips drills."""
    stable = platform.recorded().stable
    candidate = platform.candidate(stable.image, stable.git_sha, model_dir, release_again=True)
    return replace(candidate, env={"FAULT_ERROR_RATE": str(error_rate)})


def drill_verdict(state: RolloutState, plan: RolloutPlan) -> tuple[bool, str]:
    """Passed when the faulty candidate was rolled back, before any user request or within the
    worst case the plan promises; the reason says which."""
    if state.phase != "rolled_back":
        return False, f"the faulty candidate ended {state.phase}: the gates did not catch it"
    took = summarize(state, []).seconds_to_rollback
    if took is None:
        return True, f"rolled back before any user request ({state.reason})"
    if state.first_canary_at is None:
        return True, (
            f"rolled back in the shadow phase, {took:.0f} s after mirroring began, before any "
            f"user request ({state.reason})"
        )
    limit = plan.worst_case_to_rollback_seconds
    if took > limit:
        return (
            False,
            f"rolled back after {took:.0f} s, beyond the plan's worst case of {limit:.0f} s",
        )
    return True, f"rolled back {took:.0f} s after its first user request (limit {limit:.0f} s)"
