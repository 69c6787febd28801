"""Team-draft interleaving (Radlinski, Kurup and Joachims, 2008): one list from two rankings.

Each round, the team with fewer picks (a coin flip on ties) adds its best item not yet shown,
and is credited with that position. Reviewers see one list and never know who placed what;
feedback on an item counts for the team that placed it, so the two rankers are compared on the
same queries and the same reviewers, which needs far fewer queries than an A/B test of rankings.
The coin is seeded by the request id, so a ranking can be reproduced from its events.
"""

import hashlib
import random
from collections.abc import Sequence
from typing import Literal

Team = Literal["champion", "challenger"]


def team_draft(
    champion: Sequence[int], challenger: Sequence[int], seed: str
) -> list[tuple[int, Team]]:
    """The merged list as (item, team), from two rankings of the same items (best first)."""
    coin = random.Random(hashlib.sha256(seed.encode()).digest())  # noqa: S311  # not a secret
    rankings: dict[Team, Sequence[int]] = {"champion": champion, "challenger": challenger}
    picks: dict[Team, int] = {"champion": 0, "challenger": 0}
    shown: set[int] = set()
    merged: list[tuple[int, Team]] = []
    while len(shown) < len(set(champion) | set(challenger)):
        if picks["champion"] != picks["challenger"]:
            team: Team = "champion" if picks["champion"] < picks["challenger"] else "challenger"
        else:
            team = "champion" if coin.random() < 0.5 else "challenger"
        item = next((i for i in rankings[team] if i not in shown), None)
        if item is None:  # this team's list is exhausted: the other places the rest
            team = "challenger" if team == "champion" else "champion"
            item = next(i for i in rankings[team] if i not in shown)
        shown.add(item)
        picks[team] += 1
        merged.append((item, team))
    return merged
