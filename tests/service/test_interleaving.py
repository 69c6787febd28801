"""Team-draft interleaving: attribution on constructed cases, its invariants on any rankings,
and /v1/rank with and without an interleaving experiment."""

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.app import create_app
from service.events import EventLog
from service.interleaving import team_draft
from service.settings import Settings


def seed_where_first_pick_is(team: str) -> str:
    return next(seed for n in range(100) if team_draft([0], [1], seed := f"r{n}")[0][1] == team)


def test_attribution_on_opposite_rankings() -> None:
    """Each pair of rounds gives each team its best item left; coins decide only the order
    within a pair, never who placed what."""
    for n in range(20):
        merged = team_draft([0, 1, 2, 3], [3, 2, 1, 0], f"r{n}")
        assert set(merged[:2]) == {(0, "champion"), (3, "challenger")}
        assert set(merged[2:]) == {(1, "champion"), (2, "challenger")}
    firsts = {team_draft([0, 1, 2, 3], [3, 2, 1, 0], f"r{n}")[0][1] for n in range(20)}
    assert firsts == {"champion", "challenger"}, "a coin, not a fixed first team"


def test_an_item_both_rank_first_goes_to_whoever_picks_first() -> None:
    merged = team_draft([5, 6, 7], [5, 7, 6], seed_where_first_pick_is("challenger"))
    assert merged[0] == (5, "challenger")
    assert merged[1] == (6, "champion"), "the champion's best not yet shown"
    assert [item for item, _ in merged] == [5, 6, 7]


def test_the_same_request_id_merges_the_same_way() -> None:
    assert team_draft([0, 1, 2], [2, 1, 0], "abc") == team_draft([0, 1, 2], [2, 1, 0], "abc")


@given(st.permutations(list(range(12))), st.permutations(list(range(12))), st.text(max_size=8))
def test_every_item_once_teams_balanced_each_in_its_own_order(
    champion: list[int], challenger: list[int], seed: str
) -> None:
    merged = team_draft(champion, challenger, seed)
    assert sorted(item for item, _ in merged) == list(range(12))
    for k in range(1, len(merged) + 1):
        counts = [team for _, team in merged[:k]]
        assert abs(counts.count("champion") - counts.count("challenger")) <= 1
    for team, ranking in (("champion", champion), ("challenger", challenger)):
        for position, (item, placed_by) in enumerate(merged):
            if placed_by == team:
                shown = {i for i, _ in merged[:position]}
                assert item == next(i for i in ranking if i not in shown)


@pytest.fixture
def lines() -> list[bytes]:
    return []


@pytest.fixture
def interleaving_client(
    model_dir: Path, challenger_dir: Path, lines: list[bytes]
) -> Iterator[TestClient]:
    settings = Settings(
        MODEL_DIR=model_dir, EXPERIMENT_NAME="ranker", EXPERIMENT_SALT="ranker-salt",
        EXPERIMENT_KIND="interleaving", EXPERIMENT_CHALLENGER_DIR=challenger_dir,
    )  # fmt: skip
    with TestClient(create_app(settings, events=EventLog("r", write=lines.append))) as client:
        yield client


def queue(transaction: dict[str, object]) -> list[dict[str, object]]:
    return [
        {**transaction, "amount": float(10 + 300 * n), "hour": (3 * n) % 24, "channel": channel}
        for n, channel in enumerate(["online", "chip", "manual_entry", "contactless"] * 2)
    ]


def test_rank_alone_orders_by_the_champions_score(
    client: TestClient, transaction: dict[str, object]
) -> None:
    body = client.post("/v1/rank", json={"transactions": queue(transaction)}).json()
    scores = [r["fraud_probability"] for r in body["ranked"]]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["item"] for r in body["ranked"]) == list(range(8))
    assert body["experiment"] is None


def test_rank_interleaves_and_credits_each_position_to_its_team(
    interleaving_client: TestClient, transaction: dict[str, object], lines: list[bytes]
) -> None:
    transactions = queue(transaction)
    body = interleaving_client.post(
        "/v1/rank", json={"transactions": transactions}, headers={"X-Request-ID": "q-1"}
    ).json()
    assert body["experiment"] == "ranker"
    events = [orjson.loads(line) for chunk in lines for line in chunk.splitlines()]
    assert [e["position"] for e in events] == list(range(8))
    assert [e["item"] for e in events] == [r["item"] for r in body["ranked"]]
    teams = [e["team"] for e in events]
    assert abs(teams.count("champion") - teams.count("challenger")) <= 1
    champion_scores = [
        interleaving_client.post("/v1/predict", json=t).json()["fraud_probability"]
        for t in transactions
    ]
    for event in events:
        if event["team"] == "champion":
            assert event["score"] == pytest.approx(champion_scores[event["item"]])
    # the merge is the one team_draft gives for the two models' orders and this request id
    challenger_scores = {e["item"]: e["score"] for e in events if e["team"] == "challenger"}
    assert challenger_scores, "the challenger placed something"


def test_an_empty_queue_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/rank", json={"transactions": []})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "transactions"]
