"""The controller reads the release record the program writes: one format, held by this test."""

import pytest

from environments.release import ReleaseError
from environments.stack_settings import load_file
from infra.release import ReleaseRequest, ReleaseState, next_state
from infra.revision import build_spec
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud.release_record import RecordedRelease

SETTINGS = load_file("staging")


def deploy(previous: ReleaseState | None, n: int) -> ReleaseState:
    request = ReleaseRequest(
        "deploy",
        image=f"{SETTINGS.registry}/fraud-scorer@sha256:{str(n) * 64}",
        git_sha=str(n) * 40,
    )
    return next_state(
        previous, request, SETTINGS.service_name, lambda sha: build_spec(SETTINGS, sha)
    )


@pytest.mark.parametrize("action", ["deploy", "canary", "promote", "rollback"])
def test_every_phase_the_program_records_reads_back_the_same(action: str) -> None:
    state = deploy(deploy(None, 1), 2)
    if action != "deploy":
        percent = 25 if action == "canary" else None
        request = ReleaseRequest(action, percent=percent)  # pyright: ignore[reportArgumentType]
        state = next_state(
            state, request, SETTINGS.service_name, lambda sha: build_spec(SETTINGS, sha)
        )
    recorded = RecordedRelease.from_outputs({"release": state.as_output()}, "staging")
    assert recorded.phase == state.phase
    assert recorded.sequence == state.sequence
    assert recorded.split() == state.split()
    assert recorded.stable.name == state.stable.name
    assert recorded.stable.image == state.stable.image
    assert (recorded.candidate.name if recorded.candidate else None) == (
        state.candidate.name if state.candidate else None
    )


def test_a_stack_without_a_release_says_how_to_make_the_first_one() -> None:
    with pytest.raises(DeployError, match=r"no release yet.*first deploy"):
        RecordedRelease.from_outputs({"service_url": "https://x"}, "prod")


def test_a_record_that_is_not_a_release_is_refused_whole() -> None:
    with pytest.raises(DeployError, match="not a release record"):
        RecordedRelease.from_outputs({"release": {"phase": "canary"}}, "dev")
    with pytest.raises(ReleaseError):  # and the program refuses it too
        ReleaseState.from_output({"phase": "canary"})
