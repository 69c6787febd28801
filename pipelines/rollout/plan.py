"""What a rollout in an environment will do and how long it may take, from its policy: the plan a
reviewer reads in the pull request before merging, so a slow or risky policy is seen up front."""

from dataclasses import dataclass

from environments.rollout_policy import load_policy
from pipelines.rollout.platforms.cloudrun.platform import SCRAPE_INTERVAL_S


@dataclass(frozen=True)
class RolloutPlan:
    """Canary steps and their timing, with the bounds that follow from them."""

    environment: str
    steps: tuple[int, ...]
    bake_seconds: float
    check_interval_seconds: float  # as the controller checks: never faster than the platform
    max_extension_seconds: float

    @property
    def nominal_seconds(self) -> float:
        """Every step baked once, when the gates have their data in time."""
        return len(self.steps) * self.bake_seconds

    @property
    def longest_seconds(self) -> float:
        """Every step extended to its limit while gates wait for enough requests."""
        return len(self.steps) * (self.bake_seconds + self.max_extension_seconds)

    @property
    def worst_case_to_rollback_seconds(self) -> float:
        """The longest a faulty candidate can serve one step before the decision to roll back:
        a fault the gates see only at the step's last check, after its longest extension."""
        return self.bake_seconds + self.max_extension_seconds


def cloud_plan(environment: str) -> RolloutPlan:
    """The plan of a Cloud Run environment, whose checks follow the metrics collector's scrapes."""
    policy = load_policy(environment)
    return RolloutPlan(
        environment=environment,
        steps=tuple(policy.steps),
        bake_seconds=policy.bake_seconds,
        check_interval_seconds=max(policy.check_interval_seconds, SCRAPE_INTERVAL_S),
        max_extension_seconds=policy.max_extension_seconds,
    )


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `1 h 05 min`: how people read a wait."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def plan_table(plans: list[RolloutPlan]) -> str:
    """A Markdown table, one environment per row."""
    lines = [
        "| environment | canary steps | bake per step | checks every | nominal | longest "
        "| worst case before rollback |",
        "|---|---|---|---|---|---|---|",
    ]
    for plan in plans:
        steps = " → ".join(f"{step}%" for step in plan.steps) + " → 100%"
        lines.append(
            f"| {plan.environment} | {steps} | {duration(plan.bake_seconds)} "
            f"| {duration(plan.check_interval_seconds)} | {duration(plan.nominal_seconds)} "
            f"| {duration(plan.longest_seconds)} "
            f"| {duration(plan.worst_case_to_rollback_seconds)} |"
        )
    return "\n".join(lines)
