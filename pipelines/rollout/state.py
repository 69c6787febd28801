"""What a rollout has decided so far, persisted after every decision.

A controller that is killed leaves this file behind; the next run reads it and resumes from the
last recorded step (or rolls back), so traffic is never on a split nobody recorded.
"""

import json
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from environments.release import FINISHED, Action, Phase, Position
from pipelines.atomic_file import write_json_atomic


class Decision(BaseModel):
    """An action the controller took, with why, and the split it left in force."""

    at: float
    action: str
    reason: str
    traffic: list[dict[str, Any]] | None = None
    release: Action | None = None  # the release transition that split came from


class Check(BaseModel):
    """One gate evaluation while baking a step (step 0: the shadow phase, at 0% of users)."""

    at: float
    step_percent: int
    verdict: str
    gates: list[dict[str, Any]]


class RolloutState(BaseModel):
    """The whole record of one rollout."""

    rollout_id: str
    environment: str
    stable: str
    candidate: str
    candidate_model_dir: str
    candidate_env: dict[str, str] = Field(default_factory=dict)
    # The release state machine's phase (environments/release.py); a rollout starts dark_launched:
    # its first recorded decision is the intent to deploy the candidate at 0%.
    phase: Phase = "dark_launched"
    candidate_percent: int = 0
    step_index: int = 0
    evidence: float = 0.0
    shadow_done: bool = False  # the shadow phase ended (passed, skipped or inconclusive)
    started_at: float
    finished_at: float | None = None
    first_canary_at: float | None = None
    back_on_stable_at: float | None = None
    reason: str = ""
    decisions: list[Decision] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED

    @property
    def position(self) -> Position:
        return Position(self.phase, self.candidate_percent)


class StateStore(Protocol):
    """Where a rollout's record lives between runs: a file locally, an object in the cloud."""

    def load(self) -> RolloutState | None: ...

    def save(self, state: RolloutState) -> None: ...


class StateFile:
    """One JSON file, replaced atomically on every save."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> RolloutState | None:
        if not self.path.exists():
            return None
        return RolloutState.model_validate(json.loads(self.path.read_text(encoding="utf-8")))

    def save(self, state: RolloutState) -> None:
        write_json_atomic(self.path, state.model_dump(mode="json"))
