"""An A/B experiment's verdict from its events: win, loss or no decision, and why.

The metric is a rate over the predictions that got feedback (events.METRICS: the share of
confirmed frauds flagged, or of decisions that were right); higher is better. The decision is
the always-valid test's, so the analysis may be run every day without inflating false
positives; a sample-ratio mismatch voids it.
"""

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from environments.experiment import ExperimentPlan
from pipelines.experiments.ab_test import (
    ArmRate,
    Comparison,
    SampleRatio,
    always_valid_p_values,
    arm_rate,
    compare,
    sample_ratio,
    users_needed,
)
from pipelines.experiments.events import (
    ASSIGNMENTS,
    FEEDBACK_QUALITY,
    OUTCOMES,
    EventStore,
    fetch,
)

Decision = Literal["win", "loss", "no decision"]
EXIT_CODES: dict[Decision, int] = {"win": 0, "loss": 1, "no decision": 3}
MAX_LOOKS = 100


def planned_size(plan: ExperimentPlan) -> int:
    """Counted predictions (one per user at the planning stage) for the fixed horizon."""
    return users_needed(plan.baseline, plan.minimum_effect, plan.alpha, plan.power,
                        plan.allocation)  # fmt: skip


@dataclass(frozen=True)
class Look:
    """The state of the evidence after one time bucket."""

    at: float
    champion: ArmRate
    challenger: ArmRate
    p_value: float


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows, and the decision with its reason."""

    plan: ExperimentPlan
    decision: Decision
    reason: str
    champion: ArmRate
    challenger: ArmRate
    comparison: Comparison
    sample_ratio: SampleRatio
    assigned_users: dict[str, int]
    feedback: dict[str, int]
    looks: list[Look]

    @property
    def always_valid_p(self) -> float:
        """The decision's p-value: the running minimum at the last look."""
        return self.looks[-1].p_value if self.looks else 1.0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    def as_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["plan"] = self.plan.model_dump() | {"planned_size": planned_size(self.plan)}
        document["always_valid_p"] = self.always_valid_p
        return _finite(document)


def analyze(store: EventStore, plan: ExperimentPlan, look_seconds: int = 3600) -> Analysis:
    """Read the events once per query and judge the experiment."""
    outcomes = fetch(store, OUTCOMES, plan.name, plan.metric, look_seconds)
    assigned = {r["variant"]: int(r["users"]) for r in fetch(store, ASSIGNMENTS, plan.name)}
    (quality,) = fetch(store, FEEDBACK_QUALITY, plan.name) or [{}]
    feedback = {k: int(quality.get(k) or 0) for k in ("received", "repeated", "unmatched")}
    looks = _looks(outcomes, plan, look_seconds)
    champion, challenger = (looks[-1].champion, looks[-1].challenger) if looks else (
        arm_rate(np.zeros(0), np.zeros(0)), arm_rate(np.zeros(0), np.zeros(0)))  # fmt: skip
    comparison = compare(champion, challenger, plan.alpha)
    ratio = sample_ratio(
        assigned.get("champion", 0), assigned.get("challenger", 0), plan.allocation
    )
    p = looks[-1].p_value if looks else 1.0
    decision, reason = _decide(plan, comparison, p, ratio, champion.labelled + challenger.labelled)
    return Analysis(plan, decision, reason, champion, challenger, comparison, ratio,
                    assigned, feedback, looks)  # fmt: skip


def _decide(
    plan: ExperimentPlan, comparison: Comparison, p: float, ratio: SampleRatio, counted: int
) -> tuple[Decision, str]:
    if ratio.mismatch:
        return "no decision", (
            f"sample ratio mismatch: {ratio.observed_share:.2%} of users on the challenger, "
            f"{ratio.expected_share:.0%} planned (p={ratio.p_value:.2g}); assignment or logging "
            "is broken, so no difference can be trusted"
        )
    progress = f"{counted:,} of {planned_size(plan):,} planned counted predictions"
    if p <= plan.alpha and comparison.difference > 0:
        return "win", (
            f"the challenger's {plan.metric.replace('_', ' ')} is {comparison.difference:+.2%} "
            f"(always-valid p={p:.2g} ≤ {plan.alpha}); {progress}"
        )
    if p <= plan.alpha:
        return "loss", (
            f"the challenger's {plan.metric.replace('_', ' ')} is {comparison.difference:+.2%} "
            f"(always-valid p={p:.2g} ≤ {plan.alpha}); {progress}"
        )
    return "no decision", (
        f"no significant difference yet (always-valid p={p:.2g} > {plan.alpha}); {progress}"
    )


def _looks(rows: list[dict[str, Any]], plan: ExperimentPlan, look_seconds: int) -> list[Look]:
    """Cumulative per-user totals at up to MAX_LOOKS time buckets, and the running p-value."""
    if not rows:
        return []
    users = {u: i for i, u in enumerate(sorted({r["user_hash"] for r in rows}))}
    user = np.array([users[r["user_hash"]] for r in rows])
    challenger = np.array([r["variant"] == "challenger" for r in rows])
    look = np.array([int(r["look"]) for r in rows])
    labelled = np.array([float(r["labelled"]) for r in rows])
    successes = np.array([float(r["successes"]) for r in rows])
    edges = np.unique(look)
    if len(edges) > MAX_LOOKS:
        edges = np.unique(np.quantile(edges, np.linspace(0, 1, MAX_LOOKS), method="higher"))
    rates: list[tuple[float, ArmRate, ArmRate]] = []
    for edge in edges:
        arms = []
        for side in (~challenger, challenger):
            mask = side & (look <= edge)
            n = np.bincount(user[mask], weights=labelled[mask], minlength=len(users))
            y = np.bincount(user[mask], weights=successes[mask], minlength=len(users))
            seen = n > 0
            arms.append(arm_rate(y[seen].astype(np.float64), n[seen].astype(np.float64)))
        rates.append((float(edge + 1) * look_seconds, arms[0], arms[1]))
    p_values = always_valid_p_values([(a, b) for _, a, b in rates], tau=plan.minimum_effect)
    return [Look(at, a, b, p) for (at, a, b), p in zip(rates, p_values, strict=True)]


def _finite(value: Any) -> Any:
    """JSON has no NaN: undefined figures become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    return value
