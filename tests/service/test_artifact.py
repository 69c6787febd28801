import gc
import hashlib
import shutil
from pathlib import Path

import pytest
import skops.io
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from pipelines.train import TrainResult, metadata_for
from service.artifact import MODEL_FILE, ArtifactError, load_verified, read_metadata
from service.model import ScoringModel


@pytest.fixture
def artifact_copy(model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / "artifact"))


def test_a_verified_artifact_loads_and_self_tests(model_dir: Path) -> None:
    model = ScoringModel.load(model_dir)
    assert 0 <= model.self_test() <= 1


def test_a_tampered_model_is_refused(artifact_copy: Path) -> None:
    """One flipped byte is enough: the checksum is checked before deserializing."""
    path = artifact_copy / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="modified or corrupted"):
        load_verified(artifact_copy)


def test_missing_metadata_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="make train"):
        load_verified(tmp_path)


def test_invalid_metadata_is_refused(artifact_copy: Path) -> None:
    (artifact_copy / "metadata.json").write_text('{"version": 3}')
    with pytest.raises(ArtifactError, match="not valid model metadata"):
        load_verified(artifact_copy)


def test_a_model_for_another_schema_is_refused(artifact_copy: Path) -> None:
    metadata = read_metadata(artifact_copy)
    changed = metadata.model_copy(update={"feature_schema": metadata.feature_schema[:-1]})
    (artifact_copy / "metadata.json").write_text(changed.model_dump_json())
    with pytest.raises(ArtifactError, match="different feature schema"):
        load_verified(artifact_copy)


def test_untrusted_types_are_refused(artifact_copy: Path, trained: TrainResult) -> None:
    """A file that would import arbitrary functions is refused even with a matching checksum."""
    sneaky = Pipeline([("f", FunctionTransformer(eval))])
    data = skops.io.dumps(sneaky)
    (artifact_copy / MODEL_FILE).write_bytes(data)
    metadata = metadata_for(trained).model_copy(
        update={"version": "v1", "sha256": hashlib.sha256(data).hexdigest()}
    )
    (artifact_copy / "metadata.json").write_text(metadata.model_dump_json())
    with pytest.raises(ArtifactError, match=r"outside the trusted list: builtins\.eval"):
        load_verified(artifact_copy)


def test_no_garbage_collection_runs_while_the_model_is_parsed(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPython 3.11's AST state is shared by threads; a collection mid-parse can break np.load."""
    seen: list[bool] = []
    real_load = skops.io.load

    def recording_load(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return real_load(*args, **kwargs)  # pyright: ignore[reportArgumentType]

    monkeypatch.setattr(skops.io, "load", recording_load)
    load_verified(model_dir)
    assert seen == [False]
    assert gc.isenabled(), "collection is back on afterwards"
