"""The shadow phase in the rollout report: how the candidate answered the mirrored requests.

The counts come from the phase's last gate check (what the stable revision measured); the
largest disagreements, with their inputs, and the false-positive and false-negative deltas
once feedback has arrived, come from the stable revision's `shadow` events, which it writes for
every mirrored prediction the candidate disagreed on (service/events.py).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from pipelines.experiments.events import (
    FEEDBACK_FIELDS,
    WITH_FIRST_FEEDBACK,
    EventsError,
    EventStore,
)
from pipelines.rollout.gates import DIFFERENCE_PREFIX
from pipelines.rollout.state import Check, RolloutState

SHADOW_FIELDS = (
    "request_id", "item", "candidate", "score", "decision", "candidate_score",
    "candidate_decision", "logit_difference", "inputs",
)  # fmt: skip
LARGEST = 10
# The candidate's name is the bound parameter ({experiment} is the stores' parameter slot).
# (Times are epoch seconds the controller recorded, formatted as numbers, never user input.)
DISAGREEMENTS_SQL = """
WITH shadow AS ({shadow})
SELECT request_id, item, score, candidate_score, decision, candidate_decision,
  logit_difference, inputs
FROM shadow
WHERE candidate = {experiment} AND event_seconds >= {since}
ORDER BY logit_difference DESC
LIMIT {limit}
"""
# Only flipped rows change who is right; each one's first feedback says how. (WITH_FIRST_FEEDBACK
# names its rows `predictions`: here they are the shadow events.)
FEEDBACK_SQL = (
    WITH_FIRST_FEEDBACK
    + """
SELECT COUNT(*) AS labelled,
  SUM(CASE WHEN p.candidate_decision AND NOT f.is_fraud THEN 1 ELSE 0 END)
    - SUM(CASE WHEN p.decision AND NOT f.is_fraud THEN 1 ELSE 0 END) AS false_positives,
  SUM(CASE WHEN NOT p.candidate_decision AND f.is_fraud THEN 1 ELSE 0 END)
    - SUM(CASE WHEN NOT p.decision AND f.is_fraud THEN 1 ELSE 0 END) AS false_negatives
FROM predictions AS p
JOIN first_feedback AS f ON p.request_id = f.request_id AND p.item = f.item
WHERE p.candidate = {experiment} AND p.event_seconds >= {since}
  AND p.decision <> p.candidate_decision
"""
)


@dataclass(frozen=True)
class ShadowFindings:
    """What the shadow phase showed; events-based parts are empty when none could be read."""

    values: dict[str, float]  # the shadow gate's last values
    latency_ms: dict[str, float]  # candidate_/stable_ p50/p95/p99, from the latency gate
    disagreements: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    feedback: dict[str, Any] | None = None
    events_note: str = ""

    @property
    def differences(self) -> dict[float, float]:
        """Cumulative counts of |log-odds difference| by upper bound."""
        return {
            float(key.removeprefix(DIFFERENCE_PREFIX)): count
            for key, count in self.values.items()
            if key.startswith(DIFFERENCE_PREFIX)
        }


def shadow_checks(state: RolloutState) -> list[Check]:
    return [c for c in state.checks if c.step_percent == 0]


def _gate(check: Check, name: str) -> dict[str, float]:
    return next((g["values"] for g in check.gates if g["gate"] == name), {})


def findings(state: RolloutState, store: EventStore | None) -> ShadowFindings | None:
    """The findings of `state`'s shadow phase, None if it had none with counts."""
    checks = [c for c in shadow_checks(state) if _gate(c, "shadow").get("mirrored") is not None]
    if not checks:
        return None
    last = checks[-1]
    values, latency = _gate(last, "shadow"), _gate(last, "latency")
    if store is None:
        return ShadowFindings(values, latency, events_note="no event store for this platform")
    since = next(d.at for d in state.decisions if d.action == "shadow_start")
    shadow = store.select("shadow", SHADOW_FIELDS)
    try:
        largest = store.rows(
            DISAGREEMENTS_SQL.format(shadow=shadow, since=since, limit=LARGEST,
                                     experiment="{experiment}"),
            state.candidate,
        )  # fmt: skip
        labelled = store.rows(
            FEEDBACK_SQL.format(predictions=shadow, feedback=store.select("feedback",
                                FEEDBACK_FIELDS), since=since, experiment="{experiment}"),
            state.candidate,
        )  # fmt: skip
    except EventsError as error:  # a report is never lost for want of its events
        note = f"the shadow events could not be read: {error}"
        return ShadowFindings(values, latency, events_note=note)
    feedback = labelled[0] if labelled and labelled[0].get("labelled") else None
    return ShadowFindings(values, latency, largest, feedback)


def markdown(found: ShadowFindings, png_name: str) -> list[str]:
    """The report's shadow section."""
    v = found.values
    predictions = v.get("predictions", 0.0)
    agreement = 1 - v.get("flips", 0.0) / predictions if predictions else math.nan
    lines = [
        "",
        "### Shadow phase (mirrored requests, no user exposed)",
        "",
        f"- mirrored requests: {v.get('mirrored', 0):.0f}, failed or timed out: "
        f"{v.get('failures', 0):.0f}, dropped by the mirror's bound: {v.get('dropped', 0):.0f}",
        f"- decisions agree on {agreement:.2%} of {predictions:.0f} predictions; log-odds moved "
        f"by more than the limit on {v.get('shifted', 0):.0f}",
        "",
        "| latency (ms) | p50 | p95 | p99 |",
        "|---|---|---|---|",
    ]
    for who in ("stable", "candidate"):
        row = " | ".join(
            f"{found.latency_ms.get(f'{who}_{p}_ms', math.nan):.1f}" for p in ("p50", "p95", "p99")
        )
        lines.append(f"| {who} | {row} |")
    lines += ["", f"![shadow]({png_name})", ""]
    if found.feedback:
        fb = found.feedback
        lines.append(
            f"- with feedback on {fb['labelled']} flipped predictions: false positives "
            f"{fb['false_positives']:+d}, false negatives {fb['false_negatives']:+d} "
            "(candidate minus stable)"
        )
    elif not found.events_note:
        lines.append("- no feedback on the flipped predictions yet: no error deltas")
    if found.events_note:
        lines.append(f"- {found.events_note}")
    if found.disagreements:
        lines += [
            "",
            "| request | item | stable | candidate | \\|Δ log-odds\\| | input |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {d['request_id']} | {d['item']} | {d['score']:.4f}{' ⚑' * bool(d['decision'])} "
            f"| {d['candidate_score']:.4f}{' ⚑' * bool(d['candidate_decision'])} "
            f"| {d['logit_difference']:.2f} | `{d['inputs']}` |"
            for d in found.disagreements
        ]
    return lines


def plot(found: ShadowFindings, path: Path) -> None:
    """The |log-odds difference| distribution, and both revisions' latency percentiles."""
    fig = Figure(figsize=(9, 3.5))
    left, right = fig.subplots(1, 2)
    cumulative = sorted(found.differences.items())
    total = cumulative[-1][1] if cumulative else 0.0
    labels, shares, previous = [], [], 0.0
    for bound, count in cumulative:
        labels.append(f"≤{bound:g}" if math.isfinite(bound) else f">{cumulative[-2][0]:g}")
        shares.append(100 * (count - previous) / total if total else 0.0)
        previous = count
    left.bar(labels, shares, color="tab:purple")
    left.set_ylabel("% of mirrored predictions")
    left.set_xlabel("|log-odds difference|, candidate vs stable")
    left.tick_params(axis="x", labelrotation=45)
    _latency_bars(right, found.latency_ms, ("p50", "p95", "p99"))
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _latency_bars(axis: Any, latency: dict[str, float], percentiles: Sequence[str]) -> None:
    width = 0.38
    for offset, (who, colour) in enumerate((("stable", "tab:green"), ("candidate", "tab:red"))):
        values = [latency.get(f"{who}_{p}_ms", math.nan) for p in percentiles]
        axis.bar([i + offset * width for i in range(len(percentiles))], values, width,
                 color=colour, label=who)  # fmt: skip
    axis.set_xticks([i + width / 2 for i in range(len(percentiles))], list(percentiles))
    axis.set_ylabel("ms (server side)")
    axis.legend(loc="upper left")
