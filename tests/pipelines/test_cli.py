from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.registry import versions

runner = CliRunner()


def test_train_publishes_and_prints_the_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--registry", str(tmp_path), "--rows", "2000"])
    assert result.exit_code == 0, result.output
    assert versions(tmp_path) == ["v1"]
    assert str(tmp_path / "v1") in result.stdout


def test_train_rejects_a_bad_knob_with_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--registry", str(tmp_path), "--fraud-rate", "2"])
    assert result.exit_code == 2
    assert "fraud_rate=2.0" in result.output
    assert versions(tmp_path) == []
