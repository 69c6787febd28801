"""The model registry in the environment's bucket: the folder registry's layout, never overwritten.

`gs://<bucket>/<prefix>/v<N>/model.skops`, then `metadata.json`, each created with
`if_generation_match=0`, so an upload fails rather than replace an object: a published version
never changes under its name (the bucket keeps old generations too, but readers take the live one).
`metadata.json` goes last and is the commit point: only versions that have it are listed, so a
publisher that dies halfway leaves an unlisted number, never a half model. Of two publishers racing
for a number, the second's create fails (412) and it takes the next number. Uploads and downloads
carry CRC32C checksums (the library checks them), and a download is verified as the service verifies
before it is handed over. https://cloud.google.com/storage/docs/request-preconditions
"""

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption

from pipelines.model_registry import RegistryError, sort_versions, stage
from service.artifact import (
    METADATA_FILE,
    MODEL_FILE,
    ArtifactError,
    ModelMetadata,
    load_verified,
    read_metadata,
)

SCHEME = "gs://"
_LOCATION = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,221}[a-z0-9])(?:/(?P<path>.*))?$")
_ATTEMPTS = 20
# What a call can end in after the library's own retries: an API error or a lost connection; a
# download also a checksum mismatch or a file that does not verify.
API_ERRORS = (api_exceptions.GoogleAPIError, requests.RequestException)
TRANSFER_ERRORS = (*API_ERRORS, DataCorruption, ArtifactError)


@dataclass(frozen=True)
class BucketLocation:
    """`gs://bucket/prefix` (the registry; its latest version) or `gs://bucket/prefix/v<N>`."""

    bucket: str
    prefix: str
    version: str | None

    @classmethod
    def parse(cls, uri: str) -> "BucketLocation":
        match = _LOCATION.match(uri.rstrip("/"))
        if not match:
            raise RegistryError(
                f"{uri!r} is not a registry location: use gs://<bucket>/<prefix> for a registry "
                "or gs://<bucket>/<prefix>/v<N> for one version"
            )
        parts = [part for part in (match.group("path") or "").split("/") if part]
        version = parts.pop() if parts and sort_versions(parts[-1:]) else None
        if not parts:
            raise RegistryError(
                f"{uri!r} names no folder for the registry: use gs://{match.group('bucket')}/models"
            )
        return cls(match.group("bucket"), "/".join(parts), version)

    def at(self, version: str) -> "BucketLocation":
        return BucketLocation(self.bucket, self.prefix, version)

    def __str__(self) -> str:
        suffix = f"/{self.version}" if self.version else ""
        return f"{SCHEME}{self.bucket}/{self.prefix}{suffix}"


def default_client() -> storage.Client:
    """A client with Application Default Credentials (in GitHub Actions, the federated identity
    the auth step set up); the error says how to get credentials when there are none."""
    try:
        return storage.Client(project=None)  # buckets are named globally: no project needed
    except auth_exceptions.DefaultCredentialsError as error:
        raise RegistryError(
            f"no Google credentials for the model bucket: {error}. Locally, run "
            "`gcloud auth application-default login`; in GitHub Actions, the auth step must run "
            "before this one"
        ) from error


class BucketRegistry:
    """Publish to and download from one registry prefix in one bucket."""

    def __init__(self, client: storage.Client, location: BucketLocation) -> None:
        self.location = location
        self.bucket = client.bucket(location.bucket)

    def _blob(self, version: str, file: str) -> storage.Blob:
        return self.bucket.blob(f"{self.location.prefix}/{version}/{file}")

    def _names(self) -> list[str]:
        """Every object name under the prefix, relative to it."""
        prefix = f"{self.location.prefix}/"
        try:
            return [blob.name[len(prefix) :] for blob in self.bucket.list_blobs(prefix=prefix)]
        except API_ERRORS as error:
            raise RegistryError(f"cannot list {self.location}: {error}") from error

    def versions(self) -> list[str]:
        """Published versions (those with metadata), oldest first."""
        committed = (
            name.split("/")[0] for name in self._names() if name.endswith(f"/{METADATA_FILE}")
        )
        return sort_versions(committed)

    def resolve(self) -> BucketLocation:
        """The location's own version, or the newest published one."""
        published = self.versions()
        if not published:
            raise RegistryError(
                f"no model in the registry {self.location}: "
                f"run `python -m pipelines train --registry {self.location}` first"
            )
        wanted = self.location.version or published[-1]
        if wanted not in published:
            raise RegistryError(
                f"no version {wanted!r} in {self.location.at(wanted)}; "
                f"published: {', '.join(published)}"
            )
        return self.location.at(wanted)

    def _create(self, version: str, folder: Path, file: str) -> bool:
        """Upload one file unless the object exists; False when it does."""
        try:
            self._blob(version, file).upload_from_filename(
                str(folder / file), if_generation_match=0
            )
        except api_exceptions.PreconditionFailed:
            return False
        except API_ERRORS as error:
            raise RegistryError(
                f"cannot write {self.location.at(version)}/{file}: {error}"
            ) from error
        return True

    def publish(
        self, model_bytes: bytes, metadata: ModelMetadata, compiled: bytes | None = None
    ) -> BucketLocation:
        """Store a model as the next version; returns where it now lives."""
        seen = sort_versions({name.split("/")[0] for name in self._names()})
        number = int(seen[-1][1:]) + 1 if seen else 1
        with tempfile.TemporaryDirectory(prefix="publishing-") as scratch:
            for _ in range(_ATTEMPTS):
                version = f"v{number}"
                folder = Path(scratch) / version
                folder.mkdir()
                stage(model_bytes, metadata, version, folder, compiled)
                if not self._create(version, folder, MODEL_FILE):
                    number += 1  # another publisher holds this number, whole or halfway
                    continue
                if metadata.compiled and not self._create(version, folder, metadata.compiled.file):
                    raise RegistryError(
                        f"{self.location.at(version)}/{metadata.compiled.file} appeared while "
                        "this publisher held the version: something writes the registry without "
                        "preconditions; inspect the bucket before publishing again"
                    )
                if not self._create(version, folder, METADATA_FILE):
                    raise RegistryError(
                        f"{self.location.at(version)}/{METADATA_FILE} appeared while this "
                        "publisher held the version: something writes the registry without "
                        "preconditions; inspect the bucket before publishing again"
                    )
                return self.location.at(version)
        raise RegistryError(
            f"{_ATTEMPTS} version numbers in a row were taken in {self.location}: too many "
            "concurrent publishers, or objects left without metadata; retry later"
        )

    def download(self, destination: Path) -> BucketLocation:
        """Copy the resolved version into `destination` (which must not exist) and verify it; a
        copy that does not verify is removed and never handed over."""
        location = self.resolve()
        version = location.version or ""
        destination.mkdir(parents=True)
        try:
            for file in (METADATA_FILE, MODEL_FILE):
                self._blob(version, file).download_to_filename(str(destination / file))
            if compiled := read_metadata(destination).compiled:
                self._blob(version, compiled.file).download_to_filename(
                    str(destination / compiled.file)
                )
            load_verified(destination)
        except BaseException as error:
            shutil.rmtree(destination)
            if isinstance(error, TRANSFER_ERRORS):
                raise RegistryError(
                    f"{location} did not download whole and verified: {error}"
                ) from (error)
            raise
        return location
