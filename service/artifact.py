"""Model artifacts: metadata, and loading that verifies the file before deserializing a byte.

An artifact is a folder with `model.skops` and `metadata.json`, and `model.treelite` when the model
was compiled (service/compiled.py). Loading checks every file's sha256 recorded in the metadata,
refuses types outside an explicit allow-list (skops never runs arbitrary pickles), and refuses a
model trained for a different feature schema than this service accepts. scikit-learn and skops
are imported only to load the pipeline, so a compiled model's start never pays for them.
"""

import gc
import hashlib
from collections.abc import Generator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.compiled import CompiledModel, TreeliteScorer
from service.features import feature_schema
from service.reference import TrainingReference

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"

# Types the sample pipeline needs beyond skops' default-trusted scikit-learn and numpy types.
# Anything else in a model file is refused: extend this list deliberately when the model changes.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


class ArtifactError(RuntimeError):
    """The artifact cannot be trusted or used; the message says what is wrong and what to do."""


class ModelMetadata(BaseModel):
    """What `metadata.json` records about a trained model."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    version: str
    model_file: str = MODEL_FILE
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime
    git_sha: str
    data_fingerprint: str
    seed: int
    threshold: float = Field(gt=0, lt=1)
    metrics: dict[str, float]
    feature_schema: list[dict[str, object]]
    training: dict[str, object] = Field(default_factory=dict)
    # What monitoring compares live traffic with; absent in models trained before it existed.
    reference: TrainingReference | None = None
    # The compiled scoring path, when the model could be compiled exactly.
    compiled: CompiledModel | None = None


class ProbabilityModel(Protocol):
    """The one method the service calls on a model."""

    def predict_proba(self, rows: npt.NDArray[np.object_], /) -> npt.NDArray[np.float64]:
        """Class probabilities, one row per input row."""
        ...


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks so large models do not need twice their size in RAM."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_metadata(artifact_dir: Path) -> ModelMetadata:
    """Parse `metadata.json`, naming the folder and the problem when it is absent or invalid."""
    path = artifact_dir / METADATA_FILE
    if not path.is_file():
        raise ArtifactError(
            f"no {METADATA_FILE} in {artifact_dir}: point MODEL_DIR at a trained artifact "
            "(run `make train`)"
        )
    try:
        return ModelMetadata.model_validate_json(path.read_bytes())
    except ValidationError as error:
        raise ArtifactError(f"{path} is not valid model metadata: {error}") from error


@contextmanager
def _collection_paused() -> Generator[None]:
    """No garbage collection while skops parses array headers (np.load -> ast.literal_eval).

    CPython 3.11 keeps the AST constructor's recursion depth in interpreter-wide state. A collection
    in mid-parse runs finalizers, which can hand the GIL to a thread that parses too (formatting a
    traceback does), and the first parse then fails with a spurious `SystemError: AST constructor
    recursion depth mismatch` (python/cpython#106905). Seen once in the controller's smoke check.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _checked(artifact_dir: Path, file: str, recorded: str) -> Path:
    """The file, after its sha256 matched the metadata's."""
    path = artifact_dir / file
    if not path.is_file():
        raise ArtifactError(f"{path} is missing: the artifact is incomplete, re-train it")
    actual = sha256_of(path)
    if actual != recorded:
        raise ArtifactError(
            f"{path} has sha256 {actual} but metadata records {recorded}: the file "
            "was modified or corrupted after training; refusing to load it. Re-train or re-fetch "
            "the artifact from the registry."
        )
    return path


def verified_metadata(artifact_dir: Path) -> ModelMetadata:
    """The metadata, once every file it names matches its sha256 and the feature schema is
    this service's."""
    metadata = read_metadata(artifact_dir)
    _checked(artifact_dir, metadata.model_file, metadata.sha256)
    if metadata.compiled is not None:
        _checked(artifact_dir, metadata.compiled.file, metadata.compiled.sha256)
    if metadata.feature_schema != feature_schema():
        raise ArtifactError(
            f"model {metadata.version} was trained on a different feature schema than this service "
            "accepts; re-train it with this version of the code"
        )
    return metadata


def load_verified(artifact_dir: Path) -> tuple[ModelMetadata, ProbabilityModel]:
    """Verify checksums, types and feature schema, then deserialize the scikit-learn model."""
    metadata = verified_metadata(artifact_dir)
    try:
        import skops.io  # pylint: disable=import-outside-toplevel  # pyright: ignore[reportMissingTypeStubs]
    except ModuleNotFoundError as error:
        raise ArtifactError(
            f"model {metadata.version} has no compiled file and this installation has no "
            f"scikit-learn or skops ({error.name} is missing): build the image with "
            "--build-arg SCORING_GROUP=pipeline-serving (`python -m pipelines scoring-group` "
            "says which a model needs)"
        ) from error
    model_path = artifact_dir / metadata.model_file
    with _collection_paused():
        found = skops.io.get_untrusted_types(file=model_path)
    untrusted = sorted(set(found) - set(TRUSTED_TYPES))
    if untrusted:
        raise ArtifactError(
            f"{model_path} contains types outside the trusted list: {', '.join(untrusted)}. "
            "If they are expected, add them to TRUSTED_TYPES in service/artifact.py after review."
        )
    with _collection_paused():
        model = skops.io.load(model_path, trusted=TRUSTED_TYPES)
    if not callable(getattr(model, "predict_proba", None)):
        raise ArtifactError(
            f"{model_path} holds a {type(model).__name__}, which has no predict_proba"
        )
    return metadata, model


def load_scorer(
    artifact_dir: Path, library: Path | None = None
) -> tuple[ModelMetadata, ProbabilityModel]:
    """What serves: the compiled model when the artifact has one (verified, as every file is),
    its trees in `library` when given (service/native.py), else the scikit-learn pipeline."""
    metadata = verified_metadata(artifact_dir)
    compiled = metadata.compiled
    if compiled is None:
        return load_verified(artifact_dir)
    path = artifact_dir / compiled.file
    try:
        return metadata, TreeliteScorer(path.read_bytes(), compiled, library)
    except ValueError as error:
        raise ArtifactError(f"{path} does not load as a treelite model: {error}") from error
