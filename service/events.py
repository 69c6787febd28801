"""Prediction and feedback events: one JSON line each on stdout, the service's only record.

The service stays stateless: in Google Cloud a log sink routes these lines to BigQuery, locally the
revisions' log files are the table (pipelines/experiments/events.py reads both with one SQL).
The keys are Cloud Logging's structured-log format: `severity` and `time` are lifted into the log
entry, the rest lands in `jsonPayload`. A line is written and flushed in one call, so a killed
process loses no event it answered for.
"""

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from service.experiments import Variant
from service.interleaving import Team
from service.schemas import Transaction

EVENT_VERSION = 1
EventKind = Literal["prediction", "feedback", "shadow"]


def _stdout(line: bytes) -> None:
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


@dataclass(frozen=True)
class Served:
    """Who was served what: the same for every item of one request."""

    request_id: str
    route: str
    model_version: str
    threshold: float
    experiment: str | None = None
    variant: Variant | None = None
    user_hash: str | None = None  # the pseudonym, never the id as sent


@dataclass(frozen=True)
class RankedEntry:
    """One position of a ranking as shown: the request's item there and who placed it."""

    position: int
    item: int
    team: Team | None
    score: float
    decision: bool


@dataclass(frozen=True)
class ShadowRow:
    """One mirrored prediction on which the candidate disagreed: both answers and the input."""

    item: int
    score: float
    decision: bool
    candidate_score: float
    candidate_decision: bool
    logit_difference: float
    inputs: str  # the transaction as JSON text: one column type in DuckDB and BigQuery alike

    def as_event(self) -> dict[str, Any]:
        return {
            "item": self.item, "score": self.score, "decision": self.decision,
            "candidate_score": self.candidate_score,
            "candidate_decision": self.candidate_decision,
            "logit_difference": self.logit_difference, "inputs": self.inputs,
        }  # fmt: skip


@dataclass
class EventLog:
    """Writes events for one revision; `write` is stdout unless a test captures the lines."""

    revision: str
    enabled: bool = True
    write: Callable[[bytes], object] = field(default=_stdout)

    def predictions(
        self,
        served: Served,
        transactions: Sequence[Transaction],
        scores: Sequence[float],
        decisions: Sequence[bool],
    ) -> None:
        """One event per scored transaction, `item` its position in the request, with its
        inputs: what drift monitoring compares with the training data, and what retraining
        learns from once feedback labels it. JSON text, one column type in DuckDB and BigQuery."""
        if not self.enabled:
            return
        # A validated model's __dict__ holds exactly its fields, in order: orjson writes the same
        # text as model_dump_json, five times faster, which counts per row of a batch.
        self._served(served, [
            {"item": item, "score": score, "decision": decision,
             "inputs": orjson.dumps(transaction.__dict__).decode()}
            for item, (transaction, score, decision) in enumerate(
                zip(transactions, scores, decisions, strict=True)
            )
        ])  # fmt: skip

    def ranking(self, served: Served, ranked: Sequence[RankedEntry]) -> None:
        """One event per position of a ranking: which item, placed by which team, if any."""
        self._served(served, [
            {"item": e.item, "position": e.position, "team": e.team, "score": e.score,
             "decision": e.decision}
            for e in ranked
        ])  # fmt: skip

    def _served(self, served: Served, rows: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        base = self._base("prediction") | {
            "request_id": served.request_id,
            "route": served.route,
            "model_version": served.model_version,
            "threshold": served.threshold,
            "experiment": served.experiment,
            "variant": served.variant,
            "user_hash": served.user_hash,
        }
        # The shared fields are serialised once; each row's own are spliced in after them.
        head = orjson.dumps(base)[:-1] + b","
        self.write(b"".join(head + orjson.dumps(row)[1:] + b"\n" for row in rows))

    def feedback(self, request_id: str, item: int, is_fraud: bool) -> None:
        if not self.enabled:
            return
        entry = self._base("feedback") | {
            "request_id": request_id, "item": item, "is_fraud": is_fraud,
        }  # fmt: skip
        self.write(orjson.dumps(entry) + b"\n")

    def shadow(self, request_id: str, candidate: str, rows: Sequence[ShadowRow]) -> None:
        """Mirrored predictions where the candidate disagreed with this revision: what the
        shadow report lists, and what feedback later turns into false-positive and
        false-negative deltas (agreeing rows change neither, so they are not written)."""
        if not self.enabled or not rows:
            return
        base = self._base("shadow") | {"request_id": request_id, "candidate": candidate}
        self.write(b"".join(orjson.dumps(base | row.as_event()) + b"\n" for row in rows))

    def _base(self, kind: EventKind) -> dict[str, Any]:
        return {
            "severity": "INFO",
            "time": datetime.now(UTC).isoformat(),
            "event": kind,
            "event_version": EVENT_VERSION,
            "revision": self.revision,
        }
