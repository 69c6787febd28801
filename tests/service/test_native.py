"""The native library of a compiled model: built where it runs, checked, and used only while
intact; otherwise the service scores with treelite's predictor and says why."""

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from service.artifact import ArtifactError
from service.compiled import TreeliteScorer
from service.model import ScoringModel
from service.native import NativeRecord, build, check_rows, main
from service.settings import Settings
from tests.service.answers import assert_same_answers, batch_answers

pytestmark = pytest.mark.integration  # compiles C with gcc: seconds


@pytest.fixture(scope="module")
def native_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("native")
    build(model_dir, folder, jobs=2)
    return folder


def test_the_library_is_recorded_with_its_source_and_its_own_hash(
    model_dir: Path, native_dir: Path
) -> None:
    (record_file,) = native_dir.glob("*.json")
    record = NativeRecord.model_validate_json(record_file.read_bytes())
    spec = ScoringModel.load(model_dir).metadata.compiled
    assert spec is not None
    assert record.source_sha256 == spec.sha256 == record_file.stem
    assert record.rows_checked == len(check_rows())
    assert (native_dir / f"{spec.sha256}.so").stat().st_mode & 0o044 == 0o044  # image user reads


def test_the_native_trees_score_as_treelite_does_on_unseen_rows(
    model_dir: Path, native_dir: Path
) -> None:
    native = ScoringModel.load(model_dir, native_dir)
    plain = ScoringModel.load(model_dir)
    assert native.runtime == "tl2cgen"
    rows = check_rows(seed=7)
    assert np.max(np.abs(native.score_rows(rows) - plain.score_rows(rows))) <= 1e-6


def test_the_service_answers_the_same_with_and_without_the_library(
    model_dir: Path, native_dir: Path
) -> None:
    assert_same_answers(
        batch_answers(Settings(MODEL_DIR=model_dir, NATIVE_MODEL_DIR=native_dir), 200, seed=92),
        batch_answers(Settings(MODEL_DIR=model_dir), 200, seed=92),
    )


def _tampered(native_dir: Path, scratch: Path) -> Path:
    copy = Path(shutil.copytree(native_dir, scratch / "native"))
    (library,) = copy.glob("*.so")
    library.write_bytes(library.read_bytes() + b"\0")
    return copy


def _empty(_native_dir: Path, scratch: Path) -> Path:
    return scratch


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (_tampered, "does not match the sha256 its record holds"),
        (_empty, "no native library for treelite file"),
    ],
)
def test_without_an_intact_library_treelite_scores_and_the_log_says_why(
    model_dir: Path,
    native_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    spoil: Callable[[Path, Path], Path],
    reason: str,
) -> None:
    with caplog.at_level(logging.WARNING, logger="service"):
        model = ScoringModel.load(model_dir, spoil(native_dir, tmp_path))
    assert model.runtime == "treelite"
    assert reason in caplog.text


def test_a_library_that_disagrees_is_not_kept(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = TreeliteScorer.fraud_scores

    def off(self: TreeliteScorer, rows: np.ndarray) -> np.ndarray:
        scores = original(self, rows)
        return scores + 1e-3 if self.runtime == "tl2cgen" else scores

    monkeypatch.setattr(TreeliteScorer, "fraud_scores", off)
    with pytest.raises(ArtifactError, match=r"differs from treelite's predictor by 0\.001"):
        build(model_dir, tmp_path, jobs=2)
    assert not list(tmp_path.glob("*.so"))
    assert not list(tmp_path.glob("*.json"))


def test_the_command_skips_folders_without_a_compiled_model(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "challenger"
    empty.mkdir()
    assert main([str(model_dir), str(empty), "--into", str(tmp_path / "out")]) == 0
    lines = capsys.readouterr().out.splitlines()  # tl2cgen logs its own lines too
    (built,) = (json.loads(line) for line in lines if line.startswith("{"))
    assert built["rows_checked"] == len(check_rows())
    assert lines[-1] == f"{empty}: no artifact, skipped"
