"""A model registry in a folder: numbered versions, each published whole or not at all.

Publishing writes into a hidden temporary folder and renames it into place, so a crash or a
concurrent publisher never leaves a half-written version where the service could load it.
"""

import io
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from service.artifact import METADATA_FILE, MODEL_FILE, ModelMetadata, load_verified

DEFAULT_REGISTRY = Path("artifacts/registry")
VERSION_NAME = re.compile(r"^v(\d+)$")
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class RegistryError(LookupError):
    """A version that does not exist, or a registry with no versions when one is needed."""


_MEMO_ID = re.compile(r'("__id__": |"file": ")(\d+)')


def _renamed(name: str, renumbered: dict[str, str]) -> str:
    stem, dot, suffix = name.partition(".")
    return f"{renumbered.get(stem, stem)}{dot}{suffix}"


def deterministic_zip(data: bytes) -> bytes:
    """Rewrite a skops file so the same model always gives the same bytes, hence the same sha256.

    skops names arrays and memo entries after Python object ids, and zips with the current time;
    renumbering ids by first appearance and fixing timestamps keeps the meaning and drops the noise.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        members = {name: source.read(name) for name in source.namelist()}
    schema = members["schema.json"].decode()
    renumbered: dict[str, str] = {}

    def stable_id(match: re.Match[str]) -> str:
        number = renumbered.setdefault(match.group(2), str(len(renumbered) + 1))
        return match.group(1) + number

    schema = _MEMO_ID.sub(stable_id, schema)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        entries = {_renamed(name, renumbered): name for name in members}
        for target_name in sorted(entries, key=lambda n: (len(n), n)):
            name = entries[target_name]
            content = schema.encode() if name == "schema.json" else members[name]
            info = zipfile.ZipInfo(target_name, date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, content)
    return out.getvalue()


def versions(root: Path = DEFAULT_REGISTRY) -> list[str]:
    """Published versions, oldest first."""
    if not root.is_dir():
        return []
    return sort_versions(p.name for p in root.iterdir())


def sort_versions(names: Iterable[str]) -> list[str]:
    """The names that are versions (`v<N>`), in publishing order: v10 after v9."""
    found = [(int(m.group(1)), name) for name in names if (m := VERSION_NAME.match(name))]
    return [name for _, name in sorted(found)]


def resolve(root: Path = DEFAULT_REGISTRY, version: str = "latest") -> Path:
    """The folder of `version` ("latest" for the newest), or a RegistryError saying what exists."""
    published = versions(root)
    if not published:
        raise RegistryError(f"no model in the registry {root}: run `make train` first")
    name = published[-1] if version == "latest" else version
    if name not in published:
        raise RegistryError(f"no version {version!r} in {root}; published: {', '.join(published)}")
    return root / name


def _fsync_write(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def stage(
    model_bytes: bytes,
    metadata: ModelMetadata,
    version: str,
    folder: Path,
    compiled: bytes | None = None,
) -> None:
    """Write a version's files into an empty `folder` and verify them as the service would: a
    registry, folder or bucket, never publishes what serving would refuse. `compiled` is the
    file `metadata.compiled` names, when it names one."""
    if (compiled is None) != (metadata.compiled is None):
        raise RegistryError(
            "the metadata and the files disagree on a compiled model: publish the compiled "
            "bytes with the metadata that records them (train.compiled_bytes), or neither"
        )
    _fsync_write(folder / MODEL_FILE, model_bytes)
    if compiled is not None and metadata.compiled is not None:
        _fsync_write(folder / metadata.compiled.file, compiled)
    final_metadata = metadata.model_copy(update={"version": version})
    _fsync_write(folder / METADATA_FILE, final_metadata.model_dump_json(indent=2).encode())
    load_verified(folder)


def publish(
    model_bytes: bytes,
    metadata: ModelMetadata,
    root: Path = DEFAULT_REGISTRY,
    compiled: bytes | None = None,
) -> Path:
    """Store a model as the next version and return its folder (the registry sets the version)."""
    root.mkdir(parents=True, exist_ok=True)
    while True:
        published = versions(root)
        number = int(published[-1][1:]) + 1 if published else 1
        version = f"v{number}"
        staging = Path(tempfile.mkdtemp(prefix=".publishing-", dir=root))
        try:
            stage(model_bytes, metadata, version, staging, compiled)
            try:
                staging.rename(root / version)
            except OSError:
                # Another publisher took this number first: try the next one.
                if (root / version).exists():
                    continue
                raise
            return root / version
        finally:
            if staging.exists():
                shutil.rmtree(staging)
