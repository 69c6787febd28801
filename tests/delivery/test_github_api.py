"""One comment per pull request, edited in place; one issue per drift, closed when it is gone."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.delivery.github_api import GitHubError, Repository, run_url
from pipelines.delivery.pr_comment import MARKER
from tests.delivery.fake_github import PERSON, FakeGitHub

PREVIEWS = Path(__file__).parent / "previews"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> FakeGitHub:
    """The commands' GitHub, as a job sees it: a token and the repository in the environment."""
    fake = FakeGitHub()
    monkeypatch.setattr("pipelines.delivery.commands.client", lambda _token: fake.client())
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    return fake


def test_the_comment_is_posted_once_then_edited_in_place() -> None:
    github = FakeGitHub(page_size=2)
    github.comments[7] = [
        {"id": 1, "user": PERSON, "body": f"quoting the bot: {MARKER}"},
        {"id": 2, "user": PERSON, "body": "looks good"},
        {"id": 3, "user": PERSON, "body": "one more page"},
    ]
    repository = Repository(github.client(), "o/r")
    first = repository.upsert_comment(7, MARKER, f"{MARKER}\nfirst push")
    second = repository.upsert_comment(7, MARKER, f"{MARKER}\nsecond push")
    assert first == second
    bot = [c for c in github.comments[7] if c["user"]["type"] == "Bot"]
    assert [c["body"] for c in bot] == [f"{MARKER}\nsecond push"]
    assert github.comments[7][0]["body"] == f"quoting the bot: {MARKER}", "a person's is untouched"


def test_a_refusal_names_the_permission_the_job_needs() -> None:
    repository = Repository(FakeGitHub(status=403).client(), "o/r")
    with pytest.raises(GitHubError, match="pull-requests: write"):
        repository.upsert_comment(7, MARKER, "body")


def test_the_pr_comment_command_writes_and_posts(
    github: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    previews = tmp_path / "previews"
    previews.mkdir()
    (previews / "staging.txt").write_text((PREVIEWS / "replace.txt").read_text("utf-8"), "utf-8")
    args = ["pr-comment", "--previews", str(previews), "--verdict", str(tmp_path / "none.json"),
            "--out", str(tmp_path / "comment.md"), "--pull-request", "7"]  # fmt: skip
    for _ in range(2):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert [c.split()[0] for c in github.calls].count("POST") == 1, "posted once, then edited"
    body = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert "| dev | not run" in body
    assert "| staging | 1 to create" in body
    assert "## Infrastructure previews, in full" in (tmp_path / "summary.md").read_text("utf-8")


def drift(tmp_path: Path, report: str, *flags: str) -> int:
    path = tmp_path / "dev.txt"
    path.write_text((PREVIEWS / f"{report}.txt").read_text("utf-8"), "utf-8")
    args = ["drift-issue", "--environment", "dev", "--report", str(path), *flags]
    return CliRunner().invoke(app, args).exit_code


def test_drift_keeps_one_issue_open_and_closes_it_when_gone(
    github: FakeGitHub, tmp_path: Path
) -> None:
    assert drift(tmp_path, "replace", "--post") == 1
    assert drift(tmp_path, "replace", "--post") == 1
    assert [(i["title"], i["state"]) for i in github.issues] == [
        ("Infrastructure drift in dev", "open")
    ]
    assert "objectCreator" in github.issues[0]["body"]
    assert drift(tmp_path, "no_changes", "--post") == 0
    assert github.issues[0]["state"] == "closed"
    assert github.comments[1][0]["body"].startswith("No drift any more")


def test_a_drift_check_that_failed_is_not_reported_as_drift(tmp_path: Path) -> None:
    (tmp_path / "dev.txt").write_text("error: failed to decrypt the stack\n", encoding="utf-8")
    args = ["drift-issue", "--environment", "dev", "--report", str(tmp_path / "dev.txt")]
    assert CliRunner().invoke(app, args).exit_code == 2
    assert drift(tmp_path, "no_changes") == 0
    missing = ["drift-issue", "--environment", "dev", "--report", str(tmp_path / "x.txt")]
    assert CliRunner().invoke(app, missing).exit_code == 2


def test_the_run_link_needs_the_three_variables() -> None:
    environ = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r"}
    assert run_url(environ) is None
    assert run_url({**environ, "GITHUB_RUN_ID": "9"}) == "https://github.com/o/r/actions/runs/9"
