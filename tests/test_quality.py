"""The repository's own checks run for real: pre-commit hooks and the container lint."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [shutil.which("hadolint") or "hadolint", str(ROOT / "service" / "Dockerfile")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_container_runs_as_a_non_root_user() -> None:
    """The final stage switches to a numeric non-zero uid before its command."""
    lines = (ROOT / "service" / "Dockerfile").read_text().splitlines()
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    users = [line.split()[1] for line in final_stage if line.startswith("USER ")]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in ("0", "root")


@pytest.mark.skipif(shutil.which("pulumi") is not None, reason="would run a real preview")
@pytest.mark.parametrize("target", ["preview", "up", "bootstrap"])
def test_pulumi_targets_say_where_the_cli_comes_from(target: str) -> None:
    done = subprocess.run(
        [shutil.which("make") or "make", "-s", "-C", str(ROOT), target, "ENV=dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "the Pulumi CLI is not on PATH" in done.stderr
    assert "https://www.pulumi.com/docs/install/" in done.stderr


@pytest.mark.integration
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="pre-commit needs a git checkout")
def test_pre_commit_hooks_pass_on_every_file() -> None:
    """`make lint` as CI would run it: every hook, every file, offline."""
    pre_commit = shutil.which("pre-commit") or "pre-commit"
    done = subprocess.run(
        [pre_commit, "run", "--all-files", "--show-diff-on-failure"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
