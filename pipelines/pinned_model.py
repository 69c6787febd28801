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
from pipelines.model_location import BUCKET_SCHEME, copy_to, local_model
from pipelines.model_registry import RegistryError
from service.artifact import ArtifactError, load_verified, read_metadata

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
PIN_FILE = REPOSITORY_ROOT / "models" / "production.json"


class PinError(ValueError):
    """No pin, a malformed one, or an artifact that is not the pinned one."""


class PinnedModel(BaseModel):
    """Which artifact serves production: its version, where the registry keeps it, its hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    # gs://<bucket>/<prefix>/v<N>, or a folder: relative to the repository root, or absolute
    uri: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


def pin(location: str, path: Path = PIN_FILE) -> PinnedModel:
    """Pin the verified artifact at `location`: a bucket version, or a folder, recorded relative
    to the repository root when it is inside it."""
    with local_model(location) as model:
        metadata, _ = load_verified(model.folder)
    uri = model.location
    if not uri.startswith(BUCKET_SCHEME):
        folder = Path(uri).resolve()
        uri = str(
            folder.relative_to(REPOSITORY_ROOT)
            if folder.is_relative_to(REPOSITORY_ROOT)
            else folder
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


def _source(pinned: PinnedModel) -> str:
    if pinned.uri.startswith(BUCKET_SCHEME) or Path(pinned.uri).is_absolute():
        return pinned.uri
    return str(REPOSITORY_ROOT / pinned.uri)


def fetch(pinned: PinnedModel, destination: Path) -> Path:
    """Copy the pinned artifact to `destination` and verify it is exactly the pinned one; a
    copy that does not verify never replaces what `destination` held."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
    try:
        copy = staging / "model"
        try:
            copy_to(_source(pinned), copy)
            metadata = read_metadata(copy)
            load_verified(copy)
        except RegistryError as error:
            raise PinError(f"the pinned artifact {pinned.uri} cannot be had: {error}") from error
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
