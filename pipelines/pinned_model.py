"""The model production serves, pinned in the repository (`models/production.json`).

A pull request that changes the pin is how a new model ships: it is reviewed like code, and the
image build fetches exactly the pinned artifact, verifies it (the pin's sha256, the file's own
checksum, its types and feature schema, as the service does at start-up) and bakes it in.
"""

import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.atomic_file import write_json_atomic
from service.artifact import ArtifactError, load_verified, read_metadata

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
PIN_FILE = REPOSITORY_ROOT / "models" / "production.json"


class PinError(ValueError):
    """No pin, a malformed one, or an artifact that is not the pinned one."""


class PinnedModel(BaseModel):
    """Which artifact serves production: its version, where the registry keeps it, its hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    uri: str  # the artifact folder: relative to the repository root, or absolute
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def pin(model_dir: Path, path: Path = PIN_FILE) -> PinnedModel:
    """Pin the verified artifact in `model_dir`; its folder is recorded relative to the root."""
    metadata, _ = load_verified(model_dir)
    folder = model_dir.resolve()
    uri = (
        str(folder.relative_to(REPOSITORY_ROOT))
        if folder.is_relative_to(REPOSITORY_ROOT)
        else str(folder)
    )
    pinned = PinnedModel(version=metadata.version, uri=uri, sha256=metadata.sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, pinned.model_dump())
    return pinned


def load_pin(path: Path = PIN_FILE) -> PinnedModel:
    if not path.is_file():
        raise PinError(
            f"no {path}: pin the model production should serve with "
            "`python -m pipelines pin --model artifacts/registry/<version>` and commit the file"
        )
    try:
        return PinnedModel.model_validate_json(path.read_bytes())
    except ValidationError as error:
        raise PinError(f"{path} is not a model pin: {error}") from error


def fetch(pinned: PinnedModel, destination: Path) -> Path:
    """Copy the pinned artifact to `destination` and verify it is exactly the pinned one; a
    copy that does not verify never replaces what `destination` held."""
    source = Path(pinned.uri)
    source = source if source.is_absolute() else REPOSITORY_ROOT / source
    if not source.is_dir():
        raise PinError(f"the pinned artifact {pinned.uri} does not exist: train or fetch it first")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        copy = Path(shutil.copytree(source, staging / "model"))
        try:
            metadata = read_metadata(copy)
            load_verified(copy)
        except ArtifactError as error:
            raise PinError(f"the pinned artifact {pinned.uri} does not verify: {error}") from error
        if (metadata.sha256, metadata.version) != (pinned.sha256, pinned.version):
            raise PinError(
                f"{pinned.uri} holds {metadata.version} with sha256 {metadata.sha256}, but the pin "
                f"names {pinned.version} with {pinned.sha256}: the registry entry changed, or the "
                "pin points at the wrong folder"
            )
        if destination.exists():
            destination.rename(staging / "previous")  # removed with the staging folder
        copy.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination
