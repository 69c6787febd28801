"""The compiled model as native code, built where it runs: `python -m service.native`.

tl2cgen turns an artifact's treelite file into C and compiles it into a shared library. The
artifact never carries that library: native code from a bucket would run unchecked at load, and a
library built on one machine may not load on another. The image's build stage compiles it from the
verified artifact instead (service/Dockerfile), checks it against treelite's own predictor on rows
spread over every feature's range, and records both hashes; the service uses a library only when
its record names the artifact's treelite file and its own sha256 still matches, else it scores
with treelite's predictor and says so in the log.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.artifact import ArtifactError, sha256_of, verified_metadata
from service.compiled import CompiledModel, TreeliteScorer
from service.features import FEATURES, encode_columns

# The same bound the export step holds the treelite file to against the pipeline.
TOLERANCE = 1e-6
CHECK_ROWS = 4_000


class NativeRecord(BaseModel):
    """`<treelite sha256>.json` beside `<treelite sha256>.so`: what was built, from what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    max_difference: Annotated[float, Field(ge=0, le=TOLERANCE)]
    rows_checked: int


def _paths(native_dir: Path, spec: CompiledModel) -> tuple[Path, Path]:
    return native_dir / f"{spec.sha256}.so", native_dir / f"{spec.sha256}.json"


def check_rows(seed: int = 0) -> npt.NDArray[np.object_]:
    """Model-matrix rows over every feature's whole range: half uniform, half log-uniform (the
    trees split finely near zero on amounts and distances); every category many times."""
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {}
    for feature in FEATURES:
        if feature.kind == "categorical":
            columns[feature.name] = rng.choice(feature.categories, CHECK_ROWS)
            continue
        low, high = feature.minimum or 0.0, feature.maximum or 1.0
        uniform = rng.uniform(low, high, CHECK_ROWS // 2)
        logs = np.clip(np.expm1(rng.uniform(0, np.log1p(high), CHECK_ROWS // 2)), low, high)
        values = np.concatenate([uniform, logs])
        columns[feature.name] = np.round(values) if feature.kind == "integer" else values
    return encode_columns(columns)  # type: ignore[arg-type]


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data)
    # Readable by the image's unprivileged user; written by whoever builds.
    os.chmod(handle.name, 0o644)
    os.replace(handle.name, path)


def build(model_dir: Path, native_dir: Path, jobs: int = 4) -> NativeRecord:
    """Compile the artifact's treelite file into `native_dir`, keeping it only if it scores the
    check rows like treelite's predictor does."""
    # A build step, never on the service's path. pylint: disable=import-outside-toplevel
    import tl2cgen
    import treelite

    metadata = verified_metadata(model_dir)
    spec = metadata.compiled
    if spec is None:
        raise ArtifactError(
            f"model {metadata.version} has no compiled file: it is served by its scikit-learn "
            "pipeline, and there is nothing to build"
        )
    native_dir.mkdir(parents=True, exist_ok=True)
    library, record_path = _paths(native_dir, spec)
    model_bytes = (model_dir / spec.file).read_bytes()
    reference = TreeliteScorer(model_bytes, spec)
    with tempfile.TemporaryDirectory(dir=native_dir) as scratch:
        built = Path(scratch) / "model.so"
        tl2cgen.export_lib(
            treelite.Model.deserialize_bytes(model_bytes),
            toolchain="gcc",
            libpath=built,
            params={"parallel_comp": jobs},
            nthread=jobs,
        )
        rows = reference.encode(check_rows())
        native = TreeliteScorer(model_bytes, spec, library=built)
        difference = float(np.max(np.abs(native.fraud_scores(rows) - reference.fraud_scores(rows))))
        if not np.isfinite(difference) or difference > TOLERANCE:
            raise ArtifactError(
                f"the native library for model {metadata.version} differs from treelite's "
                f"predictor by {difference:.3g} (more than {TOLERANCE:g}): not kept; the service "
                "will score with treelite's predictor"
            )
        _write_atomically(library, built.read_bytes())
    record = NativeRecord(
        source_sha256=spec.sha256,
        sha256=sha256_of(library),
        max_difference=difference,
        rows_checked=len(rows),
    )
    _write_atomically(record_path, record.model_dump_json(indent=2).encode())
    return record


def find_library(native_dir: Path, spec: CompiledModel) -> tuple[Path | None, str]:
    """The library built from this treelite file, if one is there and intact; else None, and why
    (for the log)."""
    library, record_path = _paths(native_dir, spec)
    if not record_path.is_file():
        return None, f"no native library for treelite file {spec.sha256[:12]} in {native_dir}"
    try:
        record = NativeRecord.model_validate_json(record_path.read_bytes())
    except ValidationError as error:
        return None, f"{record_path} is not a valid record: {error}"
    if not library.is_file() or sha256_of(library) != record.sha256:
        return None, f"{library} is missing or does not match the sha256 its record holds"
    return library, f"native library {library.name} (checked on {record.rows_checked} rows)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service.native",
        description="Build each artifact's treelite file into a native library (needs gcc).",
    )
    parser.add_argument("model_dirs", nargs="+", type=Path, help="verified artifact folders")
    parser.add_argument("--into", type=Path, required=True, help="where libraries are written")
    args = parser.parse_args(argv)
    for model_dir in args.model_dirs:
        if not (model_dir / "metadata.json").is_file():
            print(f"{model_dir}: no artifact, skipped")
            continue
        try:
            record = build(model_dir, args.into)
        except ArtifactError as error:
            # Not fatal: without a library the service scores with treelite's predictor.
            print(f"{model_dir}: {error}", file=sys.stderr)
            continue
        print(json.dumps({"model_dir": str(model_dir), **record.model_dump()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
