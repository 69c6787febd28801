"""Each cloud monitoring run's report, kept in the environment's model bucket under
`monitoring/<service>/<UTC time>/`, where the alert's documentation points: the job's own
filesystem is gone when it ends. Objects are created once and never overwritten, which is all
the job's identity may do in that bucket."""

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import storage

CONTENT_TYPES = {".md": "text/markdown", ".json": "application/json", ".png": "image/png"}


def report_prefix(service_name: str, at: datetime) -> str:
    return f"monitoring/{service_name}/{at.astimezone(UTC):%Y-%m-%dT%H%M%SZ}"


def archive_report(client: "storage.Client", bucket: str, prefix: str, folder: Path) -> list[str]:
    """Upload the report files of `folder` under `prefix`; returns their gs:// locations."""
    target = client.bucket(bucket)
    kept = []
    for path in sorted(folder.iterdir()):
        if path.suffix not in CONTENT_TYPES or not path.is_file():
            continue
        name = f"{prefix}/{path.name}"
        target.blob(name).upload_from_filename(
            str(path), content_type=CONTENT_TYPES[path.suffix], if_generation_match=0
        )
        kept.append(f"gs://{bucket}/{name}")
    return kept
