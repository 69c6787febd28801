"""Transitions through the Pulumi CLI, against a fake `pulumi` that records how it was called."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud.pulumi_stack import REPOSITORY_ROOT, PulumiStack

REFUSED = "error: RELEASE_PERCENT=37 is not one of this environment's rolloutSteps"
FAKE_PULUMI = """#!{python}
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    release = {{k: v for k, v in os.environ.items() if k.startswith("RELEASE_")}}
    log.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "release": release}}) + "\\n")
if sys.argv[1] == "stack":
    print(open(os.environ["FAKE_PULUMI_OUTPUTS"]).read())
else:
    print("Updating (dev)\\n  ~ gcp:cloudrunv2:Service app-service update [diff: ~traffics]")
    if os.environ.get("FAKE_PULUMI_FAIL"):
        sys.stderr.write(os.environ["FAKE_PULUMI_FAIL"])
sys.exit(1 if os.environ.get("FAKE_PULUMI_FAIL") else 0)
"""


@pytest.fixture
def fake(tmp_path: Path) -> dict[str, str]:
    executable = tmp_path / "pulumi"
    executable.write_text(FAKE_PULUMI.format(python=sys.executable))
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"release": {"phase": "canary"}, "service_url": "https://x"}))
    return {
        "FAKE_PULUMI_LOG": str(tmp_path / "calls.jsonl"),
        "FAKE_PULUMI_OUTPUTS": str(outputs),
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
        "RELEASE_IMAGE": "left over from an earlier step",
    }


def calls(environ: dict[str, str]) -> list[dict[str, object]]:
    lines = Path(environ["FAKE_PULUMI_LOG"]).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_a_transition_is_one_pulumi_up_from_the_root_with_the_policy_pack(
    fake: dict[str, str],
) -> None:
    PulumiStack("dev", environ=fake).transition("canary", percent=10)
    (call,) = calls(fake)
    assert call["argv"] == [
        "up", "--yes", "--policy-pack", str(REPOSITORY_ROOT / "infra" / "policy"),
        "--stack", "dev", "--non-interactive",
    ]  # fmt: skip
    assert call["cwd"] == str(REPOSITORY_ROOT)
    assert call["release"] == {"RELEASE_ACTION": "canary", "RELEASE_PERCENT": "10"}, (
        "exactly this transition's inputs: nothing left over from the caller's environment"
    )


def test_a_deploy_carries_the_image_and_commit(fake: dict[str, str]) -> None:
    image = "europe-west1-docker.pkg.dev/p/services/app@sha256:" + "a" * 64
    PulumiStack("prod", environ=fake).transition("deploy", image=image, git_sha="abc1234")
    (call,) = calls(fake)
    assert call["release"] == {
        "RELEASE_ACTION": "deploy", "RELEASE_IMAGE": image, "RELEASE_GIT_SHA": "abc1234",
    }  # fmt: skip


def test_a_refused_transition_raises_with_pulumis_own_words(fake: dict[str, str]) -> None:
    with pytest.raises(DeployError, match="not one of this environment's rolloutSteps"):
        PulumiStack("dev", environ=fake | {"FAKE_PULUMI_FAIL": REFUSED}).transition(
            "canary", percent=37
        )


def test_a_plain_up_carries_no_release_inputs(fake: dict[str, str]) -> None:
    PulumiStack("dev", environ=fake).reconcile()
    (call,) = calls(fake)
    argv = call["argv"]
    assert isinstance(argv, list)
    assert argv[0] == "up"
    assert call["release"] == {}, "not even the RELEASE_IMAGE the caller had set"


def test_a_lock_left_by_a_killed_up_is_explained(fake: dict[str, str]) -> None:
    locked = (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other "
        "process(es) to end or delete the lock file with `pulumi cancel`.\n  gs://my-ml-dev-dev-"
        "pulumi-state/.pulumi/locks/organization/cloudrun-ml-rollouts/dev/ab12.json: created by "
        "runner@fv-az1 (pid 2211) at 2026-11-25T09:12:44Z"
    )
    with pytest.raises(DeployError, match=r"killed leaves its lock.*pulumi cancel --stack"):
        PulumiStack("dev", environ=fake | {"FAKE_PULUMI_FAIL": locked}).transition("promote")


def test_outputs_are_read_as_json(fake: dict[str, str]) -> None:
    outputs = PulumiStack("dev", environ=fake).outputs()
    assert outputs["release"] == {"phase": "canary"}
    assert calls(fake)[0]["argv"] == [
        "stack", "output", "--json", "--stack", "dev", "--non-interactive",
    ]  # fmt: skip
    Path(fake["FAKE_PULUMI_OUTPUTS"]).write_text("warning: not json", encoding="utf-8")
    with pytest.raises(DeployError, match="printed no JSON"):
        PulumiStack("dev", environ=fake).outputs()


def test_a_missing_cli_says_where_to_get_it(tmp_path: Path) -> None:
    stack = PulumiStack("dev", executable=str(tmp_path / "no-pulumi"), environ={})
    with pytest.raises(DeployError, match=r"pulumi\.com/docs/install"):
        stack.transition("rollback")
