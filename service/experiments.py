"""A/B experiments inside one revision: which model a user gets, and the user's pseudonym.

Cloud Run splits traffic per request, so a user would see both models across requests; a sticky
test needs both models in one revision and an assignment that is a pure function of the user. The
assignment hashes the experiment's salt with the user id (SHA-256, never Python's per-process
`hash`), so every instance, every restart and the offline analysis agree on it.
"""

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

Variant = Literal["champion", "challenger"]
# "ab": each user gets one model everywhere; "interleaving": /v1/rank merges both models'
# rankings (service/interleaving.py) and every other route is the champion's.
Kind = Literal["ab", "interleaving"]
# Requests without a user id are served by the champion and recorded as unassigned: counting them
# as the champion's would skew the split the sample-ratio check tests.
UNASSIGNED: Variant = "champion"


def bucket(salt: str, user_id: str) -> float:
    """The user's place in [0, 1): uniform over users, independent across salts."""
    digest = hashlib.sha256(f"{salt}\x00{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def user_pseudonym(key: bytes, user_id: str) -> str:
    """A keyed hash of the user id for the event record: joinable across events, not reversible
    without the key (a plain hash of an id can be looked up by hashing every id)."""
    return hmac.new(key, user_id.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Experiment:
    """A running experiment: `allocation` is the challenger's share of users in an A/B test."""

    name: str
    salt: str
    allocation: float
    kind: Kind = "ab"

    def variant(self, user_id: str | None) -> Variant:
        if not user_id or self.kind != "ab":
            return UNASSIGNED
        return "challenger" if bucket(self.salt, user_id) < self.allocation else "champion"
