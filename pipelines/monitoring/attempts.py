"""The record of retraining attempts, which the cool-down and the weekly limit count: one JSON
file per attempt, in a folder here or under a prefix of the environment's model bucket.

One object per attempt, written once and never changed: the job's identity may create objects in
the bucket but not overwrite them (infra/identity.py), and two runs never edit one file.
"""

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from pipelines.atomic_file import write_text_atomic

if TYPE_CHECKING:
    from google.cloud import storage

Outcome = Literal["proposed", "failed_gates", "failed"]


class Attempt(BaseModel):
    """When a retrain ran, what started it, and how it ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    triggers: list[str]
    outcome: Outcome
    candidate: str | None = None
    detail: str = ""

    @property
    def file_name(self) -> str:
        return f"attempt-{self.at:%Y%m%dT%H%M%S%fZ}.json"


class AttemptLog(Protocol):
    """Where attempts are kept: read them all (oldest first), add one."""

    def attempts(self) -> list[Attempt]: ...

    def record(self, attempt: Attempt) -> str: ...


class FolderAttempts:
    """Attempts as files in a folder on this machine."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def attempts(self) -> list[Attempt]:
        if not self.folder.is_dir():
            return []
        found = sorted(self.folder.glob("attempt-*.json"))
        return [Attempt.model_validate_json(path.read_bytes()) for path in found]

    def record(self, attempt: Attempt) -> str:
        path = self.folder / attempt.file_name
        write_text_atomic(path, attempt.model_dump_json(indent=2))
        return str(path)


class BucketAttempts:
    """Attempts as objects under `prefix` in a bucket (google-cloud-storage)."""

    def __init__(self, client: "storage.Client", bucket: str, prefix: str) -> None:
        self.bucket = client.bucket(bucket)
        self.prefix = prefix.rstrip("/")

    def attempts(self) -> list[Attempt]:
        blobs = self.bucket.list_blobs(prefix=f"{self.prefix}/attempt-")
        return [
            Attempt.model_validate_json(blob.download_as_bytes())
            for blob in sorted(blobs, key=lambda b: b.name)
        ]

    def record(self, attempt: Attempt) -> str:
        name = f"{self.prefix}/{attempt.file_name}"
        self.bucket.blob(name).upload_from_string(
            attempt.model_dump_json(indent=2), content_type="application/json",
            if_generation_match=0,
        )  # fmt: skip
        return f"gs://{self.bucket.name}/{name}"
