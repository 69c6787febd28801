"""A Cloud Storage emulator on 127.0.0.1: the JSON API calls the registry makes, as the service
answers them. google-cloud-storage talks to it through its own emulator switch,
`STORAGE_EMULATOR_HOST`, so the library's real requests, preconditions and checksums are exercised.
https://cloud.google.com/storage/docs/json_api/v1/objects
"""

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import google_crc32c


def _crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - GCS's own hash


@dataclass
class StoredObject:
    """One live generation of an object."""

    data: bytes
    generation: int
    served: bytes | None = None  # set to send other bytes than stored, with the stored checksums


@dataclass
class FakeStorage:
    """The buckets' contents, and knobs for what the real service does now and then."""

    buckets: set[str] = field(default_factory=set)
    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    page_size: int = 1000
    status_for: dict[str, int] = field(default_factory=dict)  # "GET list" | "POST <name>" -> status
    before_upload: Callable[[str], None] = lambda _name: None  # runs as an upload arrives
    generations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, bucket: str, name: str, data: bytes) -> None:
        self.generations += 1
        self.objects[bucket, name] = StoredObject(data, self.generations)

    def resource(self, bucket: str, name: str) -> dict[str, Any]:
        stored = self.objects[bucket, name]
        return {
            "kind": "storage#object",
            "bucket": bucket,
            "name": name,
            "generation": str(stored.generation),
            "metageneration": "1",
            "size": str(len(stored.data)),
            "crc32c": _crc32c(stored.data),
            "md5Hash": _md5(stored.data),
        }


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """The metadata and media parts of a `multipart/related` upload."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    assert boundary, content_type
    parts = body.split(b"--" + boundary.group(1).encode())
    metadata, media = (part.split(b"\r\n\r\n", 1)[1] for part in parts[1:3])
    return json.loads(metadata.rstrip(b"\r\n")), media.removesuffix(b"\r\n")


class _Handler(BaseHTTPRequestHandler):
    """Answers from `storage`, which each emulator sets on its own subclass."""

    storage: FakeStorage

    def log_message(self, format: str, *args: Any) -> None:
        del format, args  # the tests read the storage, not a request log

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        error = {"error": {"code": status, "message": message, "errors": [{"message": message}]}}
        self._answer(status, json.dumps(error).encode())

    def _route(self) -> tuple[list[str], dict[str, str]]:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        return [unquote(part) for part in url.path.strip("/").split("/")], query

    def do_GET(self) -> None:  # pylint: disable=invalid-name
        parts, query = self._route()
        with self.storage.lock:
            match parts:
                case ["storage", "v1", "b", bucket] if bucket in self.storage.buckets:
                    self._answer(
                        200, json.dumps({"kind": "storage#bucket", "name": bucket}).encode()
                    )
                case ["storage", "v1", "b", bucket, "o"] if bucket in self.storage.buckets:
                    self._list(bucket, query)
                case ["download", "storage", "v1", "b", bucket, "o", name] if (
                    bucket,
                    name,
                ) in self.storage.objects:
                    self._media(bucket, name)
                case _:
                    self._error(404, f"No such object or bucket: {self.path}")

    def _list(self, bucket: str, query: dict[str, str]) -> None:
        if status := self.storage.status_for.get("GET list"):
            self._error(status, "the caller does not have self.storage.objects.list access")
            return
        prefix = query.get("prefix", "")
        names = sorted(n for b, n in self.storage.objects if b == bucket and n.startswith(prefix))
        start = int(query.get("pageToken", "0"))
        page = names[start : start + self.storage.page_size]
        body: dict[str, Any] = {
            "kind": "storage#objects",
            "items": [self.storage.resource(bucket, name) for name in page],
        }
        if start + self.storage.page_size < len(names):
            body["nextPageToken"] = str(start + self.storage.page_size)
        self._answer(200, json.dumps(body).encode())

    def _media(self, bucket: str, name: str) -> None:
        stored = self.storage.objects[bucket, name]
        hashes = f"crc32c={_crc32c(stored.data)},md5={_md5(stored.data)}"
        headers = {
            "Content-Type": "application/octet-stream",
            "x-goog-hash": hashes,
            "x-goog-generation": str(stored.generation),
            "x-goog-stored-content-encoding": "identity",
        }
        self._answer(200, stored.served if stored.served is not None else stored.data, headers)

    def do_POST(self) -> None:  # pylint: disable=invalid-name
        parts, query = self._route()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        match parts:
            case ["upload", "storage", "v1", "b", bucket, "o"] if bucket in self.storage.buckets:
                assert query.get("uploadType") == "multipart", "only small models here"
                metadata, media = _multipart(self.headers["Content-Type"], body)
                self._upload(bucket, metadata, media, query)
            case _:
                self._error(404, f"No such bucket: {self.path}")

    def _upload(
        self, bucket: str, metadata: dict[str, Any], media: bytes, query: dict[str, str]
    ) -> None:
        name = metadata["name"]
        self.storage.before_upload(name)
        with self.storage.lock:
            if status := self.storage.status_for.get(f"POST {name}"):
                self._error(status, f"refused: {name}")
                return
            if "crc32c" in metadata and metadata["crc32c"] != _crc32c(media):
                self._error(400, "Provided CRC32C does not match the data")
                return
            exists = (bucket, name) in self.storage.objects
            if query.get("ifGenerationMatch") == "0" and exists:
                self._error(412, "At least one of the pre-conditions you specified did not hold.")
                return
            self.storage.put(bucket, name, media)
            self._answer(200, json.dumps(self.storage.resource(bucket, name)).encode())


@contextmanager
def storage_emulator(storage: FakeStorage) -> Iterator[str]:
    """Serve `storage` on 127.0.0.1; yields the URL for STORAGE_EMULATOR_HOST."""
    handler = type("Handler", (_Handler,), {"storage": storage})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
