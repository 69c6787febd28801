"""A/B statistics on a rate whose unit of randomisation is the user.

Users are assigned, predictions are counted: a user with many labelled predictions is one
randomised unit, not many, so per-prediction rates take their variance by the delta method over
users (Deng, Knoblich and Lu, 2018). With one prediction per user it is exactly the two-proportion
test. Peeking is safe by construction: the decision rule is a mixture sequential probability
ratio test (Johari, Pekelis and Walsh, "Always valid inference", 2017), whose p-value may be
read at every look; the fixed-horizon z-test is reported beside it, valid only at the planned
sample size.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Floats = npt.NDArray[np.float64]
SRM_ALPHA = 0.001  # the field's usual bar: a mismatch this unlikely means assignment is broken


@dataclass(frozen=True)
class ArmRate:
    """One variant's rate: successes over labelled predictions, and its delta-method variance."""

    users: int
    labelled: int
    successes: int
    rate: float
    variance: float

    def interval(self, alpha: float) -> tuple[float, float]:
        half = float(stats.norm.ppf(1 - alpha / 2)) * math.sqrt(self.variance)
        return max(0.0, self.rate - half), min(1.0, self.rate + half)


def arm_rate(successes: Floats, labelled: Floats) -> ArmRate:
    """Per-user successes and labelled counts (users with no label are left out by the caller)."""
    users = len(labelled)
    total = float(labelled.sum())
    if users < 2 or total == 0:
        return ArmRate(users, int(total), int(successes.sum()), math.nan, math.nan)
    rate = float(successes.sum()) / total
    mean_n = total / users
    residual = successes - rate * labelled  # linearised ratio: Var(R) = Var(y - R n) / (N n̄²)
    variance = float(np.var(residual, ddof=1)) / (users * mean_n**2)
    return ArmRate(users, int(total), int(successes.sum()), rate, variance)


@dataclass(frozen=True)
class Comparison:
    """Challenger minus champion, with the fixed-horizon test and its interval."""

    difference: float
    standard_error: float
    z: float
    p_value: float
    interval: tuple[float, float]


def compare(champion: ArmRate, challenger: ArmRate, alpha: float) -> Comparison:
    difference = challenger.rate - champion.rate
    se = math.sqrt(champion.variance + challenger.variance)
    if not se > 0:
        return Comparison(difference, se, math.nan, math.nan, (math.nan, math.nan))
    z = difference / se
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    p = 2 * float(stats.norm.sf(abs(z)))
    return Comparison(difference, se, z, p, (difference - half, difference + half))


def msprt_p_value(difference: float, variance: float, tau: float) -> float:
    """1/Λ of the normal-mixture SPRT for a difference of means, capped at 1.

    Λ = sqrt(V / (V + τ²)) · exp(τ² Δ² / (2 V (V + τ²))), with τ the mixture's spread (set to the
    effect the experiment is planned to detect: the test is most powerful near it).
    """
    if not variance > 0:
        return 1.0
    total = variance + tau**2
    log_lambda = 0.5 * math.log(variance / total) + tau**2 * difference**2 / (2 * variance * total)
    return min(1.0, math.exp(-log_lambda))


def always_valid_p_values(looks: Sequence[tuple[ArmRate, ArmRate]], tau: float) -> list[float]:
    """The running minimum of the mixture p-value over the looks (champion, challenger): at any
    look, stopping when it falls below alpha keeps the false-positive rate at most alpha."""
    p, out = 1.0, []
    for champion, challenger in looks:
        if math.isfinite(champion.variance) and math.isfinite(challenger.variance):
            difference = challenger.rate - champion.rate
            p = min(p, msprt_p_value(difference, champion.variance + challenger.variance, tau))
        out.append(p)
    return out


@dataclass(frozen=True)
class SampleRatio:
    """Does the split of users match the planned allocation?"""

    expected_share: float
    observed_share: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_ALPHA


def sample_ratio(champion_users: int, challenger_users: int, allocation: float) -> SampleRatio:
    total = champion_users + challenger_users
    if total == 0:
        return SampleRatio(allocation, math.nan, 1.0)
    expected = [total * (1 - allocation), total * allocation]
    p = float(stats.chisquare([champion_users, challenger_users], expected).pvalue)
    return SampleRatio(allocation, challenger_users / total, p)


def users_needed(
    baseline: float, effect: float, alpha: float, power: float, allocation: float
) -> int:
    """Users for a two-sided fixed-horizon test to detect `effect` on `baseline` with `power`,
    with `allocation` of them on the challenger (one labelled prediction per user)."""
    if not 0 < baseline < 1 or not 0 < baseline + effect < 1 or effect == 0:
        raise ValueError(
            f"baseline {baseline} and baseline + effect {baseline + effect} must lie in (0, 1), "
            "and the effect must not be 0"
        )
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    challenger = baseline + effect
    spread = (
        baseline * (1 - baseline) / (1 - allocation) + challenger * (1 - challenger) / allocation
    )
    return math.ceil(z**2 * spread / effect**2)
