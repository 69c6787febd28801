"""A retrained model's pull request: on GitHub through the REST API, locally as a branch made
without touching the checkout, with the model card and the monitoring report in its text."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pipelines.delivery.github_api import Repository
from pipelines.monitoring.proposal import PIN_PATH, Proposal, commit_on_branch, write_local
from pipelines.monitoring.retrain import Decision
from pipelines.pinned_model import PinnedModel
from tests.delivery.fake_github import FakeGitHub

PIN = PinnedModel(version="v7", uri="gs://acme-prod-models/models/v7", sha256="ab" * 32)
PROPOSAL = Proposal(
    "prod",
    PIN,
    Decision(True, ["feature_drift"], "feature_drift raised; 9000 labelled"),
    "# Model card: fraud scorer v7\n\n| quality | pass |",
    "# Monitoring: model v6\n\namount drifted",
)


def test_the_body_carries_the_why_the_card_and_the_report() -> None:
    body = PROPOSAL.body()
    assert "`feature_drift`" in body
    assert "`v7`" in body
    assert PIN_PATH in body
    assert "# Model card: fraud scorer v7" in body
    assert "amount drifted" in body
    assert "Nothing has been deployed yet" in body
    assert PROPOSAL.title == "Retrained model v7 for prod (feature_drift)"


def test_on_github_the_pin_changes_on_a_new_branch_and_a_pull_request_opens() -> None:
    github = FakeGitHub()
    github.files["main"] = {PIN_PATH: ('{"version": "v6"}', "f" * 40)}
    url = Repository(github.client(), "o/r").propose_file(PROPOSAL.change(base="main"))
    assert url == "https://github.com/o/r/pull/100"
    branch = PROPOSAL.branch
    assert branch == f"retrain/prod-v7-{'ab' * 4}"
    assert json.loads(github.files[branch][PIN_PATH][0]) == PIN.model_dump()
    assert github.files["main"][PIN_PATH][0] == '{"version": "v6"}', "main is untouched"
    (pull,) = github.pulls
    assert (pull["head"], pull["base"], pull["title"]) == (branch, "main", PROPOSAL.title)


def test_a_refusal_names_the_permission_the_job_lacks() -> None:
    with pytest.raises(Exception, match="contents: write"):
        Repository(FakeGitHub(status=403).client(), "o/r").propose_file(PROPOSAL.change("main"))


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git checkout with one commit and an uncommitted edit that must survive."""
    git = shutil.which("git")
    assert git
    root = tmp_path / "checkout"
    (root / "models").mkdir(parents=True)
    (root / "models" / "production.json").write_text('{"version": "v6"}\n')
    commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], commit):
        subprocess.run([git, "-C", str(root), *args], check=True)
    (root / "models" / "production.json").write_text('{"version": "edited"}\n')
    return root


def test_locally_a_branch_holds_the_change_and_the_checkout_is_left_alone(
    repository: Path, tmp_path: Path
) -> None:
    made = write_local(PROPOSAL, tmp_path / "proposal", repository)
    assert "pull-request.md" in made
    assert PROPOSAL.branch in made
    text = (tmp_path / "proposal" / "pull-request.md").read_text()
    assert text.startswith(f"# {PROPOSAL.title}")
    git = shutil.which("git") or "git"
    shown = subprocess.run(
        [git, "-C", str(repository), "show", f"{PROPOSAL.branch}:{PIN_PATH}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(shown) == PIN.model_dump()
    assert (repository / PIN_PATH).read_text() == '{"version": "edited"}\n', "working tree kept"
    status = subprocess.run(
        [git, "-C", str(repository), "status", "--porcelain"], capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert status.strip() == f"M {PIN_PATH}", "the index is as it was"


def test_outside_a_git_checkout_there_is_only_the_text(tmp_path: Path) -> None:
    assert commit_on_branch(tmp_path, PROPOSAL.change("HEAD")) is None
    assert "not a git checkout" in write_local(PROPOSAL, tmp_path / "p", tmp_path)
