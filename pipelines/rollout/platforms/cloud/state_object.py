"""A rollout's record in Cloud Storage, where the next CI job finds it (a runner's disk is gone).

It lives in the environment's own state bucket, beside Pulumi's state, which the deployer may
already read and write. An object upload replaces the object whole or not at all, so a reader
never sees half a record, as with the local file's atomic rename.
https://cloud.google.com/storage/docs/json_api/v1/objects
"""

import json
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from pipelines.rollout.platform import DeployError
from pipelines.rollout.state import RolloutState

STORAGE_API = "https://storage.googleapis.com"


@dataclass(frozen=True)
class StorageObject:
    """`gs://<bucket>/<name>`: read, replaced and deleted by an authorized client (AccessToken)."""

    http: httpx.Client
    bucket: str
    name: str

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self.http.send(request)
        except httpx.HTTPError as error:
            raise DeployError(f"Cloud Storage did not answer for {self.url}: {error!r}") from error
        if response.status_code not in (200, 204, 404):
            raise DeployError(
                f"Cloud Storage answered {response.status_code} for {self.url}: "
                f"{response.text[:300]}"
            )
        return response

    @property
    def _object_url(self) -> str:
        return f"{STORAGE_API}/storage/v1/b/{self.bucket}/o/{quote(self.name, safe='')}"

    def read(self) -> bytes | None:
        """The object's bytes; None when there is no such object."""
        response = self._send(
            self.http.build_request("GET", self._object_url, params={"alt": "media"})
        )
        return None if response.status_code == 404 else response.content

    def write(self, content: bytes) -> None:
        request = self.http.build_request(
            "POST",
            f"{STORAGE_API}/upload/storage/v1/b/{self.bucket}/o",
            params={"uploadType": "media", "name": self.name},
            content=content,
            headers={"Content-Type": "application/json"},
        )
        if self._send(request).status_code != 200:
            raise DeployError(f"Cloud Storage has no bucket {self.bucket} (bootstrap creates it)")

    def delete(self) -> None:
        """Gone afterwards, whether or not it was there."""
        self._send(self.http.build_request("DELETE", self._object_url))


class StateObject(StorageObject):
    """The rollout record of one environment's service."""

    def load(self) -> RolloutState | None:
        document = self.read()
        if document is None:
            return None
        try:
            return RolloutState.model_validate_json(document)
        except (ValueError, ValidationError) as error:
            raise DeployError(
                f"{self.url} is not a rollout record ({error}); delete it to start afresh"
            ) from error

    def save(self, state: RolloutState) -> None:
        self.write(json.dumps(state.model_dump(mode="json"), indent=1).encode())
