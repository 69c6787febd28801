"""The service on the compiled scoring path: verified like every file, answering as the pipeline
does, and starting without scikit-learn or skops."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.model_registry import publish
from pipelines.train import TrainResult, metadata_for
from service.artifact import ArtifactError
from service.compiled import COMPILED_FILE
from service.model import ScoringModel
from service.settings import Settings
from tests.service.answers import assert_same_answers, batch_answers


@pytest.fixture(scope="module")
def without_compiled(trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same model published without its compiled file: served by scikit-learn."""
    metadata = metadata_for(trained).model_copy(update={"compiled": None})
    return publish(trained.model_bytes, metadata, tmp_path_factory.mktemp("plain"))


def test_an_artifact_with_a_compiled_file_is_served_by_it(
    model_dir: Path, without_compiled: Path
) -> None:
    assert ScoringModel.load(model_dir).compiled
    assert (model_dir / COMPILED_FILE).is_file()
    assert not ScoringModel.load(without_compiled).compiled


def test_the_service_answers_the_same_with_and_without_the_compiled_file(
    model_dir: Path, without_compiled: Path
) -> None:
    assert_same_answers(
        batch_answers(Settings(MODEL_DIR=model_dir), n_rows=300, seed=91),
        batch_answers(Settings(MODEL_DIR=without_compiled), n_rows=300, seed=91),
    )


def test_a_compiled_file_whose_hash_is_wrong_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "artifact"))
    path = copy / COMPILED_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.treelite has sha256 .* modified or corrupted"):
        ScoringModel.load(copy)


def test_a_missing_compiled_file_is_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "artifact"))
    (copy / COMPILED_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"model\.treelite is missing"):
        ScoringModel.load(copy)


def test_the_compiled_path_starts_without_scikit_learn_or_skops(model_dir: Path) -> None:
    """What lets its image leave them out, and its cold start skip their imports."""
    program = (
        "import json, sys; from pathlib import Path; from service.model import ScoringModel; "
        f"model = ScoringModel.load(Path({str(model_dir)!r})); model.self_test(); "
        "print(json.dumps(sorted(m for m in ('sklearn', 'skops') if m in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_an_uncompiled_model_in_an_image_without_scikit_learn_says_how_to_build(
    without_compiled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "skops.io", None)  # as if the group were not installed
    with pytest.raises(ArtifactError, match="--build-arg SCORING_GROUP=pipeline-serving"):
        ScoringModel.load(without_compiled)


def test_the_image_group_follows_the_models_it_bakes_in(
    model_dir: Path, without_compiled: Path
) -> None:
    runner = CliRunner()
    compiled = runner.invoke(app, ["scoring-group", "--model", str(model_dir)])
    assert (compiled.exit_code, compiled.stdout) == (0, "group=\n")
    mixed = ["scoring-group", "--model", str(model_dir), "--model", str(without_compiled)]
    assert runner.invoke(app, mixed).stdout == "group=pipeline-serving\n"
    assert runner.invoke(app, ["scoring-group", "--model", "/nowhere"]).exit_code == 2
