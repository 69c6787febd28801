from pathlib import Path

import google.auth
import pytest
from google.auth import exceptions
from typer.testing import CliRunner, Result

from pipelines.cli import app
from pipelines.model_registry import versions

runner = CliRunner()


def said(result: Result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


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


def test_rollout_without_a_platform_says_how_to_start_one(tmp_path: Path, model_dir: Path) -> None:
    result = runner.invoke(
        app, ["rollout", "--model", str(model_dir), "--workdir", str(tmp_path / "nothing")]
    )
    assert result.exit_code == 2
    assert "start one with `local-up`" in said(result)


def test_rollout_with_an_invalid_policy_exits_2(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "local.yaml").write_text("rollout:\n  steps: [50, 10]\n")
    result = runner.invoke(
        app, ["rollout", "--model", str(model_dir), "--environments-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "invalid rollout policy" in said(result)


def test_rollout_of_a_folder_without_a_model_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["rollout", "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "no metadata.json" in said(result)


def test_status_and_rollback_with_nothing_recorded(tmp_path: Path) -> None:
    status = runner.invoke(app, ["status", "--workdir", str(tmp_path)])
    assert status.exit_code == 0
    assert "no rollout recorded" in said(status)
    assert "no local platform running" in said(status)
    rollback = runner.invoke(app, ["rollback", "--workdir", str(tmp_path)])
    assert rollback.exit_code == 0
    assert "nothing to roll back" in said(rollback)
    assert runner.invoke(app, ["local-down", "--workdir", str(tmp_path)]).exit_code == 0


def test_serve_of_an_unknown_version_names_what_exists(tmp_path: Path) -> None:
    runner.invoke(app, ["train", "--registry", str(tmp_path), "--rows", "2000"])
    result = runner.invoke(app, ["serve", "--registry", str(tmp_path), "--version", "v9"])
    assert result.exit_code == 2
    assert "published: v1" in said(result)


IMAGE = "europe-west1-docker.pkg.dev/my-ml-shared/services/fraud-scorer@sha256:" + "2" * 64


def test_a_cloud_rollout_needs_the_image_and_commit(model_dir: Path) -> None:
    result = runner.invoke(app, ["rollout", "--model", str(model_dir), "--environment", "dev"])
    assert result.exit_code == 2
    assert "needs --image (by digest) and --git-sha" in said(result)


def test_local_drills_are_refused_in_a_cloud_environment(model_dir: Path) -> None:
    result = runner.invoke(
        app,
        ["rollout", "--model", str(model_dir), "--environment", "staging", "--image", IMAGE,
         "--git-sha", "2" * 40, "--fault-error-rate", "0.3"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "drive the local platform only" in said(result)
    assert "pipelines drill" in said(result)


def test_a_cloud_drill_runs_only_where_the_environment_file_allows_it(model_dir: Path) -> None:
    result = runner.invoke(app, ["drill", "--environment", "staging", "--model", str(model_dir)])
    assert result.exit_code == 2
    assert "Pulumi.staging.yaml does not allow drills (allowDrills: true)" in said(result)


def test_a_cloud_command_without_credentials_says_how_to_get_them(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_credentials(**_: object) -> None:
        raise exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    for command in (
        ["status", "--environment", "prod"],
        ["rollback", "--environment", "prod"],
        ["drill", "--environment", "dev", "--model", str(model_dir)],
        ["experiment", "analyze", "threshold-test", "--environment", "prod"],
        ["rollout", "--model", str(model_dir), "--environment", "prod", "--image", IMAGE,
         "--git-sha", "2" * 40],
    ):  # fmt: skip
        result = runner.invoke(app, command)
        assert result.exit_code == 2, command
        assert "no Google credentials" in said(result)
        assert "gcloud auth application-default login" in said(result)


def test_an_experiment_is_analyzed_from_logs_or_an_environment_not_both(tmp_path: Path) -> None:
    log = tmp_path / "revision.log"
    log.write_text("")
    for extra in ([], ["--log", str(log), "--environment", "prod"]):
        result = runner.invoke(app, ["experiment", "analyze", "x", *extra])
        assert result.exit_code == 2
        assert "either --log files (local) or --environment (BigQuery)" in said(result)


def test_an_empty_log_is_no_decision_yet(tmp_path: Path) -> None:
    log = tmp_path / "revision.log"
    log.write_text('{"severity": "INFO", "message": "serving"}\n')
    result = runner.invoke(
        app, ["experiment", "analyze", "x", "--log", str(log), "--reports", str(tmp_path)]
    )
    assert result.exit_code == 3
    assert "no significant difference yet" in said(result)
    assert (tmp_path / "x.md").is_file()


def test_the_size_of_an_experiment_and_a_plan_that_cannot_be() -> None:
    assert (
        runner.invoke(
            app, ["experiment", "size", "--baseline", "0.5", "--effect", "0.1"]
        ).stdout.strip()
        == "770"
    )
    result = runner.invoke(app, ["experiment", "size", "--baseline", "0.95", "--effect", "0.1"])
    assert result.exit_code == 2
    assert "must lie in (0, 1)" in said(result)
