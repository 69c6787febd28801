"""What a running app holds: settings, the verified models, batchers, metrics, events, readiness."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.batcher import MicroBatcher
from service.events import EventLog
from service.experiments import Experiment, Variant
from service.faults import Faults
from service.metrics import ServiceMetrics
from service.model import ScoringModel
from service.schemas import Transaction
from service.settings import Settings

if TYPE_CHECKING:  # the mirror and its HTTP client load only where a switch is configured
    from service.shadow import ShadowMirror


@dataclass(frozen=True)
class Arm:
    """One model and the batcher that feeds it."""

    model: ScoringModel
    batcher: MicroBatcher[Transaction]


@dataclass
class Runtime:
    """Built by the lifespan before the first request; `ready` turns false again while draining.

    `model` and `batcher` are the champion's; with an experiment, `challenger` is the other arm.
    `shadow` mirrors to a candidate while the switch says so (SHADOW_CONTROL set).
    """

    settings: Settings
    model: ScoringModel
    batcher: MicroBatcher[Transaction]
    metrics: ServiceMetrics
    faults: Faults
    events: EventLog
    experiment: Experiment | None = None
    challenger: Arm | None = None
    shadow: "ShadowMirror | None" = None
    ready: bool = False

    def arm(self, variant: Variant | None) -> Arm:
        if variant == "challenger" and self.challenger is not None:
            return self.challenger
        return Arm(self.model, self.batcher)
