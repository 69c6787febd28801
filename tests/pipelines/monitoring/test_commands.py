"""`monitor` and `retrain` on a revision's log file: what they print, write and exit with."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.data import DataSpec
from pipelines.model_registry import publish
from pipelines.train import compiled_bytes
from tests.pipelines.monitoring.conftest import Monitored
from tests.pipelines.monitoring.test_retrain import write_events
from tests.pipelines.test_cli import said

runner = CliRunner()


@pytest.fixture
def served(monitored: Monitored, tmp_path: Path) -> tuple[Path, Path]:
    """A registry holding the monitored model, and a log of its drifted traffic."""
    registry = tmp_path / "registry"
    publish(
        monitored.result.model_bytes, monitored.metadata, registry, compiled_bytes(monitored.result)
    )
    log = tmp_path / "service.log"
    write_events(log, monitored, DataSpec(n_rows=1500, seed=81, amount_scale=1.8))
    return registry, log


def test_monitor_finds_the_served_version_and_writes_its_report(
    served: tuple[Path, Path], tmp_path: Path
) -> None:
    registry, log = served
    reports = tmp_path / "reports"
    result = runner.invoke(app, ["monitor", "--log", str(log), "--registry", str(registry),
                                 "--reports", str(reports)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "feature_drift" in said(result)
    document = json.loads((reports / "monitoring.json").read_text())
    assert document["model_version"] == "v1"
    assert "feature_drift" in document["raised"]
    assert (reports / "monitoring.png").is_file()


def test_retrain_stays_put_while_labels_are_too_few(
    served: tuple[Path, Path], tmp_path: Path
) -> None:
    """1,500 labelled rows; the local policy needs 4,000: nothing is trained, exit 0."""
    registry, log = served
    result = runner.invoke(app, ["retrain", "--log", str(log), "--registry", str(registry),
                                 "--reports", str(tmp_path / "r")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "skipped" in said(result)
    assert "a retrain needs 4000 labelled predictions" in said(result)
    assert not (tmp_path / "r" / "retrain").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--log", "/nowhere.log"], "no event log at /nowhere.log"),
        (["--environment", "dev", "--log", "x.log"], "give either --log files"),
        ([], "give either --log files"),
        (["--publish", "--log", "x.log"], "--publish writes to an environment's project"),
    ],
)
def test_bad_input_exits_2_with_the_reason(arguments: list[str], message: str) -> None:
    result = runner.invoke(app, ["monitor", *arguments])
    assert result.exit_code == 2
    assert message in said(result)


def test_a_window_without_predictions_is_said(tmp_path: Path) -> None:
    log = tmp_path / "empty.log"
    log.write_text('{"severity": "INFO", "message": "started"}\n')
    result = runner.invoke(app, ["monitor", "--log", str(log)])
    assert result.exit_code == 2
    assert "no prediction with its inputs in the window of local" in said(result)
