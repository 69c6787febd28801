"""What a running app holds: settings, the verified model, the batcher, metrics, readiness."""

from dataclasses import dataclass

from service.batcher import MicroBatcher
from service.faults import Faults
from service.metrics import ServiceMetrics
from service.model import ScoringModel
from service.settings import Settings


@dataclass
class Runtime:
    """Built by the lifespan before the first request; `ready` turns false again while draining."""

    settings: Settings
    model: ScoringModel
    batcher: MicroBatcher
    metrics: ServiceMetrics
    faults: Faults
    ready: bool = False
