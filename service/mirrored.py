"""What a live request hands the shadow mirror: its rows and stable's answers to them.

Apart from service/shadow.py so the request path does not import the mirror's HTTP client: a
revision with no shadow switch configured never loads it, and starts that much sooner.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from service.schemas import Transaction


@dataclass(frozen=True)
class Mirrored:
    """One live request and stable's answers to it."""

    route: str
    request_id: str
    transactions: Sequence[Transaction]
    scores: Sequence[float]
    decisions: Sequence[bool]

    def body(self) -> bytes:
        rows = [t.model_dump(mode="json") for t in self.transactions]
        return orjson.dumps(rows[0] if self.route == "predict" else {"instances": rows})
