"""The invariants the workflows must keep, checked on their YAML (they run only on GitHub;
actionlint and zizmor, as pre-commit hooks, check syntax, expressions and security findings)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from environments.stack_settings import load_file
from pipelines.cli import app
from pipelines.rollout.plan import cloud_plan

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+\s*$")
LOCAL = re.compile(r"^\s*(?:-\s+)?uses:\s+\$/\.github/")
# The one `run:` that is neither a make target nor a CLI command: the all-green gate, which runs
# before any checkout, reads the results GitHub passes it and nothing else.
GATE = "for result in $RESULTS; do"


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads `on` as true
    return document


def jobs(path: Path) -> dict[str, dict[str, Any]]:
    return load(path)["jobs"]


def steps(path: Path) -> list[dict[str, Any]]:
    return [step for job in jobs(path).values() for step in job.get("steps", [])]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][\w-]*):", text, re.MULTILINE))


def cli_commands() -> set[str]:
    return {command.name for command in app.registered_commands if command.name}


def test_there_are_workflows() -> None:
    assert {p.name for p in FILES} >= {
        "pull-request.yml", "deploy.yml", "deploy-environment.yml", "rollback.yml", "drift.yml",
        "drill.yml", "retrain.yml",
    }  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_empty_by_default_and_granted_per_job(path: Path) -> None:
    assert load(path)["permissions"] == {}
    for name, job in jobs(path).items():
        assert "permissions" in job, f"{name} declares what it needs"
        assert "write-all" not in str(job["permissions"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_job_with_steps_has_a_timeout(path: Path) -> None:
    for name, job in jobs(path).items():
        assert "steps" in job or "uses" in job, name
        if "steps" in job:
            assert 0 < job["timeout-minutes"] <= 240, name


@pytest.mark.parametrize(
    "path", [*FILES, ROOT / ".github" / "actions" / "setup" / "action.yml"], ids=lambda p: p.name
)
def test_every_action_is_pinned_by_commit_with_its_version(path: Path) -> None:
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\s*(?:-\s+)?uses:", line):
            assert PINNED.match(line) or LOCAL.match(line), line


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_command_runs_on_a_laptop_too(path: Path) -> None:
    """A `run:` is a make target or a CLI command, never an inline script, and never has an
    expression in it: inputs reach commands through `env:` only."""
    targets, commands = make_targets(), cli_commands()
    for step in steps(path):
        if "run" not in step:
            continue
        run = step["run"].strip()
        assert "${{" not in run, run
        if run.startswith(GATE):
            continue
        words = run.split()
        if words[0] == "make":
            assert words[1] in targets, run
        else:
            assert words[:5] == ["uv", "run", "python", "-m", "pipelines"], run
            assert words[5] in commands, run


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_checkout_keeps_credentials_and_no_trigger_runs_untrusted_code(path: Path) -> None:
    assert "pull_request_target" not in load(path)["on"]
    for step in steps(path):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_pull_requests_end_in_one_required_check_and_forks_get_no_cloud() -> None:
    pr = jobs(WORKFLOWS / "pull-request.yml")
    gate = pr["all-green"]
    assert set(gate["needs"]) == set(pr) - {"all-green"}
    assert gate["if"] == "always()"
    same_repository = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same_repository in pr["preview"]["if"]
    assert same_repository in pr["comment"]["if"]
    assert "id-token" not in pr["lint"]["permissions"]
    assert "id-token" not in pr["test"]["permissions"]
    assert pr["comment"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert pr["preview"]["env"]["AS"] == "previewer"
    assert pr["preview"]["strategy"]["matrix"]["environment"] == ["dev", "staging", "prod"]


def test_the_image_is_built_once_and_promoted_by_digest_through_the_environments() -> None:
    deploy = jobs(WORKFLOWS / "deploy.yml")
    builds = [name for name, job in deploy.items() if "steps" in job]
    assert builds == ["build"]
    assert "@${{ steps.build.outputs.digest }}" in deploy["build"]["outputs"]["image"]
    chain = [("dev", ["build"]), ("staging", ["build", "dev"]), ("prod", ["build", "staging"])]
    for environment, needs in chain:
        job = deploy[environment]
        assert job["uses"] == "$/.github/workflows/deploy-environment.yml"
        assert [job["needs"]] == [needs] or job["needs"] == needs[0]
        assert job["with"]["environment"] == environment
        assert job["with"]["image"] == "${{ needs.build.outputs.image }}"
    assert load(WORKFLOWS / "deploy.yml")["concurrency"]["cancel-in-progress"] is False


def test_each_environment_rolls_out_alone_never_cut_off_and_within_its_timeout() -> None:
    rollout = jobs(WORKFLOWS / "deploy-environment.yml")["rollout"]
    assert rollout["environment"] == "${{ inputs.environment }}"
    assert rollout["concurrency"] == {
        "group": "rollout-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    longest = max(cloud_plan(env).longest_seconds for env in ("dev", "staging", "prod"))
    assert rollout["timeout-minutes"] * 60 >= longest + 30 * 60, "a rollout is never timed out"
    names = [step.get("run") for step in rollout["steps"]]
    assert names.index("make preflight") < names.index("make rollout"), "preflight first"


def test_rollback_and_drift_are_one_command_each() -> None:
    rollback = load(WORKFLOWS / "rollback.yml")
    dispatch = rollback["on"]["workflow_dispatch"]["inputs"]
    assert dispatch["environment"]["options"] == ["dev", "staging", "prod"]
    job = rollback["jobs"]["rollback"]
    assert job["env"]["REASON"] == "${{ inputs.reason }}", "free text reaches the shell via env"
    assert "make rollback" in [step.get("run") for step in job["steps"]]
    drift = load(WORKFLOWS / "drift.yml")
    assert drift["on"]["schedule"]
    assert drift["jobs"]["drift"]["env"]["AS"] == "previewer"


def test_the_drill_runs_where_drills_are_allowed_and_queues_behind_its_rollouts() -> None:
    job = load(WORKFLOWS / "drill.yml")["jobs"]["drill"]
    environment = job["environment"]
    assert load_file(environment).allow_drills
    assert job["concurrency"] == {"group": f"rollout-{environment}", "cancel-in-progress": False}
    assert job["timeout-minutes"] * 60 >= cloud_plan(environment).worst_case_to_rollback_seconds
    names = [step.get("run") for step in job["steps"]]
    assert names.index("make preflight") < names.index("make model") < names.index("make drill")


def test_the_toolchain_matches_the_makefile() -> None:
    action = (ROOT / ".github" / "actions" / "setup" / "action.yml").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    uv = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert uv
    assert f'version: "{uv.group(1)}"' in action
    assert "pulumi-version-file: .pulumi-version" in action


def test_dependabot_keeps_actions_lockfile_and_base_image_fresh() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "uv", "docker"}


def test_retraining_proposes_through_a_pull_request_and_never_deploys() -> None:
    """As the environment's deployer (its GitHub environment's rules apply), with the grants a
    branch, a pull request and an issue need, and no deploy step."""
    (job,) = jobs(WORKFLOWS / "retrain.yml").values()
    assert job["environment"] == "${{ inputs.environment || 'prod' }}"
    assert job["permissions"] == {
        "contents": "write", "pull-requests": "write", "issues": "write", "id-token": "write"
    }  # fmt: skip
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-1].startswith('uv run python -m pipelines retrain --environment "$ENV" --post')
    assert not any("rollout" in run or "make up" in run for run in runs)
    dispatch = load(WORKFLOWS / "retrain.yml")["on"]["workflow_dispatch"]["inputs"]
    assert dispatch["environment"]["options"] == ["prod", "staging", "dev"]
