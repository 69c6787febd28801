import io
import zipfile
from pathlib import Path

import pytest

from pipelines.model_registry import RegistryError, deterministic_zip, publish, resolve, versions
from pipelines.train import TrainResult, compiled_bytes, metadata_for
from service.artifact import METADATA_FILE, read_metadata


def test_versions_are_numbered_and_latest_resolves(trained: TrainResult, tmp_path: Path) -> None:
    metadata = metadata_for(trained)
    first = publish(trained.model_bytes, metadata, tmp_path, compiled_bytes(trained))
    second = publish(trained.model_bytes, metadata, tmp_path, compiled_bytes(trained))
    assert (first.name, second.name) == ("v1", "v2")
    assert versions(tmp_path) == ["v1", "v2"]
    assert resolve(tmp_path) == second
    assert read_metadata(second).version == "v2"


def test_version_ten_sorts_after_nine(trained: TrainResult, tmp_path: Path) -> None:
    for number in range(1, 10):
        (tmp_path / f"v{number}").mkdir()
    assert (
        publish(trained.model_bytes, metadata_for(trained), tmp_path, compiled_bytes(trained)).name
        == "v10"
    )
    assert resolve(tmp_path).name == "v10"


def test_unknown_version_lists_what_exists(trained: TrainResult, tmp_path: Path) -> None:
    publish(trained.model_bytes, metadata_for(trained), tmp_path, compiled_bytes(trained))
    with pytest.raises(RegistryError, match="published: v1"):
        resolve(tmp_path, "v7")


def test_empty_registry_says_to_train(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="make train"):
        resolve(tmp_path)


def test_a_failed_publish_leaves_nothing_behind(trained: TrainResult, tmp_path: Path) -> None:
    """Bytes that do not match the metadata are refused and no folder, final or temporary, stays."""
    with pytest.raises(RuntimeError, match="sha256"):
        publish(
            trained.model_bytes + b"x", metadata_for(trained), tmp_path, compiled_bytes(trained)
        )
    assert not list(tmp_path.iterdir())


def test_published_metadata_is_complete(trained: TrainResult, tmp_path: Path) -> None:
    folder = publish(trained.model_bytes, metadata_for(trained), tmp_path, compiled_bytes(trained))
    metadata = read_metadata(folder)
    assert metadata.data_fingerprint == trained.data_fingerprint
    assert metadata.metrics == trained.metrics
    assert (folder / METADATA_FILE).read_text().startswith("{")


def test_deterministic_zip_is_idempotent(trained: TrainResult) -> None:
    """Re-normalizing a normalized file changes nothing, and every entry has the fixed time."""
    assert deterministic_zip(trained.model_bytes) == trained.model_bytes
    with zipfile.ZipFile(io.BytesIO(trained.model_bytes)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
