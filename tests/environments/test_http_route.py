from typing import Any

import pytest

from environments.http_route import RouteError, rules, split_of
from environments.traffic import TrafficSplit, canary, promoted, stable_only

SPLITS = [
    stable_only("a-001"),
    canary("a-001", "a-002", 0),
    canary("a-001", "a-002", 10),
    canary("a-001", "a-002", 99),
    promoted("a-002"),
]


@pytest.mark.parametrize("split", SPLITS, ids=lambda s: str(s.as_dict()))
def test_every_split_round_trips_through_the_routes_rules(split: TrafficSplit) -> None:
    assert split_of(rules(split)) == split


def test_header_names_match_whatever_their_case() -> None:
    written = rules(canary("a-001", "a-002", 10))
    written[0]["matches"][0]["headers"][0]["name"] = "x-rollout-tag"
    assert split_of(written).tagged("candidate") == "a-002"


def weighted(*refs: tuple[str, int | None]) -> dict[str, Any]:
    return {
        "backendRefs": [
            {"name": name, "port": 80} | ({} if weight is None else {"weight": weight})
            for name, weight in refs
        ]
    }


@pytest.mark.parametrize(
    ("route_rules", "message"),
    [
        ([], "no weighted rule"),
        ([weighted(("a", 60)), weighted(("b", 40))], "two rules without a tag header"),
        ([weighted(("a", 60), ("b", 30))], "sum to 90"),
        ([weighted(("a", None), ("b", None))], "sum to 2"),  # the API's default weight is 1
        (
            [{"matches": [{"headers": [{"name": "X-Team", "value": "x"}]}], **weighted(("b", 1))},
             weighted(("a", 100))],
            "never writes",
        ),
        (
            [{"matches": [{"headers": [{"name": "X-Rollout-Tag", "value": "candidate"}]}],
              **weighted(("c", None))},
             weighted(("a", 100))],
            r"tagged revisions \['c'\] are missing",
        ),
    ],
    ids=["empty", "two-defaults", "short", "default-weights", "foreign-header", "stray-tag"],
)  # fmt: skip
def test_a_route_edited_by_hand_is_refused_with_what_is_wrong(
    route_rules: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(RouteError, match=message):
        split_of(route_rules)
