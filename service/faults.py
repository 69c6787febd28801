"""Injected faults for rollback drills and the local demo: errors, latency, inverted scores.

A revision setting, off by default and refused outside ENVIRONMENT=development (see settings), so
a drill can prove that the gates catch each failure mode without a real bug.
"""

import asyncio
import random
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from service.settings import Settings


class InjectedFaultError(RuntimeError):
    """The request was chosen to fail; the route answers 500 as a real crash would."""


@dataclass
class Faults:
    """What to break, and the random source that decides which requests break."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    invert_scores: bool = False
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Faults":
        return cls(
            settings.FAULT_ERROR_RATE, settings.FAULT_LATENCY_MS, settings.FAULT_INVERT_SCORES
        )

    async def before_prediction(self, single: bool) -> None:
        """Add the configured delay, then fail the configured share of single predictions.

        Batch calls are spared errors on purpose: the rollout's golden checks use a batch, so an
        error drill exercises the canary gates rather than stopping at the smoke checks.
        """
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if single and self.error_rate and self.rng.random() < self.error_rate:
            raise InjectedFaultError("injected fault (FAULT_ERROR_RATE)")

    def scores(self, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """A silently wrong model: plausible probabilities, ranked backwards."""
        return 1.0 - scores if self.invert_scores else scores
