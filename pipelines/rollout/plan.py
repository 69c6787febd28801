"""What a rollout in an environment will do and how long it may take, from its policy: the plan a
reviewer reads in the pull request before merging, so a slow or risky policy is seen up front."""

from dataclasses import dataclass

from environments.rollout_policy import load_policy
from pipelines.rollout.platforms.cloud.platform import SCRAPE_INTERVAL_S, SHADOW_SETTLE_S


@dataclass(frozen=True)
class RolloutPlan:
    """The shadow phase and the canary steps with their timing, and the bounds that follow."""

    environment: str
    steps: tuple[int, ...]
    bake_seconds: float
    check_interval_seconds: float  # as the controller checks: never faster than the platform
    max_extension_seconds: float
    shadow_requests: int = 0  # mirrored requests to pass first; 0: no shadow phase
    shadow_max_seconds: float = 0.0

    @property
    def shadow_longest_seconds(self) -> float:
        """The shadow phase at its limit, and the wait for its last mirrored requests."""
        return self.shadow_max_seconds + SHADOW_SETTLE_S if self.shadow_requests else 0.0

    @property
    def nominal_seconds(self) -> float:
        """Every step baked once, when the gates have their data in time."""
        return len(self.steps) * self.bake_seconds

    @property
    def longest_seconds(self) -> float:
        """The shadow phase and every step extended to their limits while gates wait for data."""
        steps = len(self.steps) * (self.bake_seconds + self.max_extension_seconds)
        return self.shadow_longest_seconds + steps

    @property
    def worst_case_to_rollback_seconds(self) -> float:
        """The longest a faulty candidate can run in one phase before the decision to roll back:
        a fault the gates see only at the last check of a step (after its longest extension) or
        of the shadow phase."""
        shadow = self.shadow_max_seconds if self.shadow_requests else 0.0
        return max(self.bake_seconds + self.max_extension_seconds, shadow)


def cloud_plan(environment: str) -> RolloutPlan:
    """The plan of a cloud environment, whose checks follow the metrics collector's scrapes."""
    policy = load_policy(environment)
    return RolloutPlan(
        environment=environment,
        steps=tuple(policy.steps),
        bake_seconds=policy.bake_seconds,
        check_interval_seconds=max(policy.check_interval_seconds, SCRAPE_INTERVAL_S),
        max_extension_seconds=policy.max_extension_seconds,
        shadow_requests=policy.shadow.requests,
        shadow_max_seconds=policy.shadow.max_seconds,
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
        "| environment | shadow phase | canary steps | bake per step | checks every | nominal "
        "| longest | worst case before rollback |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for plan in plans:
        steps = " → ".join(f"{step}%" for step in plan.steps) + " → 100%"
        shadow = (
            f"{plan.shadow_requests} mirrored requests, at most {duration(plan.shadow_max_seconds)}"
            if plan.shadow_requests
            else "none"
        )
        lines.append(
            f"| {plan.environment} | {shadow} | {steps} | {duration(plan.bake_seconds)} "
            f"| {duration(plan.check_interval_seconds)} | {duration(plan.nominal_seconds)} "
            f"| {duration(plan.longest_seconds)} "
            f"| {duration(plan.worst_case_to_rollback_seconds)} |"
        )
    return "\n".join(lines)
