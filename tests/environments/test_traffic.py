import pytest

from environments.traffic import (
    CANDIDATE_TAG,
    Target,
    TrafficError,
    TrafficSplit,
    canary,
    promoted,
)


def test_release_states_are_valid_splits() -> None:
    dark = canary("v1", "v2", 0)
    assert (dark.percent("v1"), dark.percent("v2"), dark.tagged(CANDIDATE_TAG)) == (100, 0, "v2")
    assert canary("v1", "v2", 25).percent("v2") == 25
    assert promoted("v2").targets == (Target("v2", 100),)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        ((Target("a", 60), Target("b", 30)), "sum to 90"),
        ((Target("a", 50), Target("a", 50)), "appears twice"),
        ((Target("a", 150), Target("b", -50)), "between 0 and 100"),
        ((Target("a", 50, "t"), Target("b", 50, "t")), "a tag appears twice"),
    ],
)
def test_invalid_splits_are_refused(targets: tuple[Target, ...], message: str) -> None:
    with pytest.raises(TrafficError, match=message):
        TrafficSplit(targets)


def test_round_trip_through_json_form() -> None:
    split = canary("v1", "v2", 10)
    assert TrafficSplit.from_dict(split.as_dict()) == split
