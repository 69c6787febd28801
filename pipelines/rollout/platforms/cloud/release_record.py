"""The release an environment's stack recorded (its `release` output), as the controller reads it.

The Pulumi program writes this record (infra/release.py) and is its only writer; the controller
reads the phase, the revisions and the split from it, and ignores what only the program needs
(each revision's template). A test holds the two sides to one format.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from environments.release import FAULT_KEYS, Phase
from environments.traffic import TrafficSplit, of_release
from pipelines.rollout.platform import DeployError


class RecordedRevision(BaseModel):
    """A revision the stack deployed: its name, the image and commit it was built from, and its
    environment (a drill's revision carries `DRILL=true` there)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    image: str
    git_sha: str
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _env_from_spec(cls, data: Any) -> Any:
        if isinstance(data, dict) and "spec" in data:
            return {**data, "env": (data["spec"] or {}).get("env", {})}
        return data

    @property
    def drill(self) -> bool:
        return self.env.get("DRILL") == "true"

    @property
    def faults(self) -> dict[str, str]:
        return {key: value for key, value in self.env.items() if key in FAULT_KEYS}


class RecordedRelease(BaseModel):
    """Which revisions serve, in which phase; `sequence` numbers the next revision's name."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sequence: int
    phase: Phase
    stable: RecordedRevision
    candidate: RecordedRevision | None = None
    candidate_percent: int = 0

    def split(self) -> TrafficSplit:
        candidate = self.candidate.name if self.candidate else None
        return of_release(self.stable.name, candidate, self.candidate_percent)

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any], environment: str) -> "RecordedRelease":
        release = outputs.get("release")
        if not release:
            raise DeployError(
                f"the {environment} stack has no release yet: its first deploy serves all "
                f"traffic at once, with nothing to compare a canary against. Run it by hand "
                f"(README: first deploy), then roll out with this command"
            )
        try:
            return cls.model_validate(release)
        except ValidationError as error:
            raise DeployError(
                f"the {environment} stack's `release` output is not a release record: {error}"
            ) from error
