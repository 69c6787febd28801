"""Where a model lives, for every command that writes or reads one: a folder on this machine (the
folder registry, or one version in it), or the environment's bucket, `gs://<bucket>/<prefix>`
(the registry, whose latest version is meant when none is named) or `gs://…/<prefix>/v<N>`.

The bucket client is imported only when a `gs://` location is used: it adds most of a second to
every command's start, which local work should not pay.
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines import model_registry
from service.artifact import ModelMetadata

if TYPE_CHECKING:
    from pipelines.bucket_registry import BucketRegistry

BUCKET_SCHEME = "gs://"


@dataclass(frozen=True)
class LocalModel:
    """A model folder on this machine, and the location it stands for (reports name that)."""

    folder: Path
    location: str

    @classmethod
    def of(cls, folder: Path) -> "LocalModel":
        return cls(folder, str(folder))


def _bucket_registry(location: str) -> "BucketRegistry":
    from pipelines.bucket_registry import (  # pylint: disable=import-outside-toplevel
        BucketLocation,
        BucketRegistry,
        default_client,
    )

    return BucketRegistry(default_client(), BucketLocation.parse(location))


def publish_to(
    registry: str, model_bytes: bytes, metadata: ModelMetadata, compiled: bytes | None = None
) -> str:
    """Publish as the registry's next version; returns the new version's location."""
    if registry.startswith(BUCKET_SCHEME):
        return str(_bucket_registry(registry).publish(model_bytes, metadata, compiled))
    return str(model_registry.publish(model_bytes, metadata, Path(registry), compiled))


def copy_to(location: str, destination: Path) -> str:
    """Copy the model at `location` to `destination` (which must not exist); returns the location
    of the version copied, which for a bucket registry names the version it resolved to."""
    if location.startswith(BUCKET_SCHEME):
        return str(_bucket_registry(location).download(destination))
    source = Path(location)
    if not source.is_dir():
        raise model_registry.RegistryError(f"no model folder {location}: train or fetch it first")
    shutil.copytree(source, destination)
    return location


@contextmanager
def local_model(location: str) -> Iterator[LocalModel]:
    """The model at `location` as a folder here: a local folder as it is, a bucket's version
    downloaded and verified into a temporary folder that is removed afterwards."""
    if not location.startswith(BUCKET_SCHEME):
        yield LocalModel.of(Path(location))
        return
    with tempfile.TemporaryDirectory(prefix="model-") as scratch:
        folder = Path(scratch) / "model"
        yield LocalModel(folder, copy_to(location, folder))
