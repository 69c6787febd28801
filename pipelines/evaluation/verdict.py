"""What the offline gates decided, in the shape `verdict.schema.json` fixes for its readers
(the pull-request comment, the deploy job, people)."""

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).with_name("verdict.schema.json")


@dataclass(frozen=True)
class GateResult:
    """One gate: passed or not, why, and the figures next to the thresholds they met or missed."""

    gate: str
    passed: bool
    reason: str
    figures: dict[str, float] = field(default_factory=dict[str, float])
    thresholds: dict[str, float] = field(default_factory=dict[str, float])


def verdict(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    gates: list[GateResult],
    champion_quality: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The verdict document: passed only if every gate passed. `champion_quality` holds the
    champion's quality figures on the same rows, so readers can show deltas."""
    failed = [g.gate for g in gates if not g.passed]
    return {
        "passed": not failed,
        "failed_gates": failed,
        "candidate": candidate,
        "champion": champion,
        "champion_quality": champion_quality,
        "gates": [asdict(g) for g in gates],
        "evaluated_at": datetime.now(UTC).isoformat(),
    }


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))
