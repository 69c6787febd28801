import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from environments.release import revision_name
from environments.stack_settings import load_file
from environments.traffic import CANDIDATE_TAG
from infra.release import (
    ReleaseError,
    ReleaseRequest,
    ReleaseState,
    next_state,
)
from infra.revision import RevisionSpec, build_spec

SETTINGS = load_file("staging")
SERVICE = "fraud-scorer"


def spec_for(git_sha: str) -> RevisionSpec:
    return build_spec(SETTINGS, git_sha)


def image(n: int) -> str:
    return f"europe-west1-docker.pkg.dev/p-shared/services/app@sha256:{n:064x}"


def deploy(n: int) -> ReleaseRequest:
    return ReleaseRequest("deploy", image=image(n), git_sha=f"{n:040x}")


def apply(*requests: ReleaseRequest | None) -> ReleaseState:
    state = None
    for request in requests:
        state = next_state(state, request, SERVICE, spec_for)
    assert state is not None
    return state


def test_the_first_release_serves_everything_at_once() -> None:
    state = apply(deploy(1))
    assert state.phase == "stable"
    assert [(t.revision, t.percent, t.tag) for t in state.split().targets] == [
        ("fraud-scorer-0000000-001", 100, None)
    ]


def test_a_new_candidate_is_dark_launched_with_its_tag() -> None:
    state = apply(deploy(1), deploy(2))
    assert state.phase == "dark_launched"
    assert state.latest == state.candidate
    split = state.split()
    assert split.percent(state.stable.name) == 100
    assert split.tagged(CANDIDATE_TAG) == state.latest.name
    assert split.percent(state.latest.name) == 0


def test_canary_promote_and_rollback_move_only_the_candidate() -> None:
    canary = apply(deploy(1), deploy(2), ReleaseRequest("canary", percent=25))
    assert canary.split().percent(canary.stable.name) == 75
    promoted = next_state(canary, ReleaseRequest("promote"), SERVICE, spec_for)
    assert promoted.phase == "promoted"
    assert promoted.candidate is None
    assert promoted.stable == canary.candidate
    rolled_back = next_state(canary, ReleaseRequest("rollback"), SERVICE, spec_for)
    assert rolled_back.phase == "rolled_back"
    assert rolled_back.split().percent(canary.stable.name) == 100
    assert rolled_back.split().tagged(CANDIDATE_TAG) == canary.latest.name, "kept for debugging"
    assert next_state(rolled_back, ReleaseRequest("rollback"), SERVICE, spec_for) == rolled_back


def test_no_request_reproduces_the_state_exactly() -> None:
    state = apply(deploy(1), deploy(2), ReleaseRequest("canary", percent=5))
    assert next_state(state, None, SERVICE, lambda _: pytest.fail("no revision is built")) is state


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ((None,), "no release yet"),
        ((ReleaseRequest("canary", percent=5),), "no candidate"),
        ((deploy(1), ReleaseRequest("promote")), "no candidate"),
        ((deploy(1), deploy(2), deploy(3)), "in progress"),
        ((deploy(1), deploy(2), ReleaseRequest("canary", percent=100)), "between 1 and 99"),
        ((deploy(1), deploy(2), ReleaseRequest("canary")), "between 1 and 99"),
        (
            (deploy(1), deploy(2), ReleaseRequest("rollback"), ReleaseRequest("canary", percent=5)),
            "was rolled_back",
        ),
        ((ReleaseRequest("deploy", image="app:latest", git_sha="abcdef1"),), "by digest"),
        ((ReleaseRequest("deploy", image=image(1), git_sha="main"),), "hex commit"),
    ],
)
def test_transitions_that_do_not_fit_are_refused(
    requests: tuple[ReleaseRequest | None, ...], message: str
) -> None:
    with pytest.raises(ReleaseError, match=message):
        apply(*requests)


def test_a_rolled_back_candidate_is_replaced_by_the_next_deploy() -> None:
    state = apply(deploy(1), deploy(2), ReleaseRequest("rollback"), deploy(3))
    assert state.phase == "dark_launched"
    assert state.candidate is not None
    assert state.candidate.name == "fraud-scorer-0000000-003"


def test_the_state_round_trips_through_a_stack_output() -> None:
    """Typed end to end: what is recorded comes back as the same typed revisions."""
    state = apply(deploy(1), deploy(2), ReleaseRequest("canary", percent=25))
    output = json.loads(json.dumps(state.as_output()))  # as the engine stores it
    assert ReleaseState.from_output(output) == state
    assert state.candidate is not None
    assert state.candidate.spec.env["GIT_SHA"] == f"{2:040x}"


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda out: out.pop("stable"),
        lambda out: out.update(phase="shipping"),
        lambda out: out["stable"]["spec"].pop("service_account"),
        lambda out: out["stable"]["spec"].update(concurrency="many"),
        lambda out: out["stable"]["spec"].update(surprise=1),
    ],
    ids=["no stable", "unknown phase", "missing field", "wrong type", "unknown field"],
)
def test_a_malformed_record_is_refused_whole(corrupt: Callable[[dict[str, Any]], object]) -> None:
    output = json.loads(json.dumps(apply(deploy(1)).as_output()))
    corrupt(output)
    with pytest.raises(ReleaseError, match="recorded `release` output is malformed"):
        ReleaseState.from_output(output)


def test_requests_come_from_release_variables() -> None:
    assert ReleaseRequest.from_environ({}) is None
    assert ReleaseRequest.from_environ({"RELEASE_ACTION": "canary", "RELEASE_PERCENT": "25"}) == (
        ReleaseRequest("canary", percent=25)
    )
    with pytest.raises(ReleaseError, match="not one of deploy, canary, promote, rollback"):
        ReleaseRequest.from_environ({"RELEASE_ACTION": "ship-it"})
    with pytest.raises(ReleaseError, match="not a whole number"):
        ReleaseRequest.from_environ({"RELEASE_ACTION": "canary", "RELEASE_PERCENT": "2.5"})


def test_revision_names_fit_cloud_run_limits() -> None:
    assert revision_name("a" * 49, "f" * 40, 7) == "a" * 49 + "-fffffff-007"
    with pytest.raises(ReleaseError, match="longer than 63"):
        revision_name("a" * 52, "f" * 40, 7)


requests = st.one_of(
    st.integers(1, 50).map(deploy),
    st.integers(1, 99).map(lambda p: ReleaseRequest("canary", percent=p)),
    st.just(ReleaseRequest("promote")),
    st.just(ReleaseRequest("rollback")),
    st.none(),
)


@given(st.lists(requests, max_size=12))
def test_any_sequence_keeps_a_valid_split(sequence: list[ReleaseRequest | None]) -> None:
    """Accepted or refused, every request leaves a split that sums to 100 with unique names."""
    state = apply(deploy(0))
    names = {state.stable.name}
    for request in sequence:
        try:
            new = next_state(state, request, SERVICE, spec_for)
        except ReleaseError:
            continue
        if new.candidate is not None and new.candidate != state.candidate:
            assert new.candidate.name not in names, "a revision name was reused"
            names.add(new.candidate.name)
        state = new
        split = state.split()
        assert sum(t.percent for t in split.targets) == 100
        assert (split.tagged(CANDIDATE_TAG) is not None) == (state.candidate is not None)
