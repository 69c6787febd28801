"""The release an environment's stack recorded (its `release` output), as the controller reads it.

The Pulumi program writes this record (infra/release.py) and is its only writer; the controller
reads the phase, the revisions and the split from it, and ignores what only the program needs
(each revision's template). A test holds the two sides to one format.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from environments.release import Phase
from environments.traffic import TrafficSplit, of_release
from pipelines.rollout.platform import DeployError


class RecordedRevision(BaseModel):
    """A revision the stack deployed: its name, and the image and commit it was built from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    image: str
    git_sha: str


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
