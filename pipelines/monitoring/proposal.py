"""What a retrain hands over: a pull request that bumps the pinned model, with the model card and
the monitoring report in its body, or, when the candidate failed its gates, a report for a person
and nothing else. Locally the pull request is a branch and a file with its text; in GitHub
Actions it is opened through the REST API with the workflow's token.
"""

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.atomic_file import write_text_atomic
from pipelines.delivery.github_api import FileChange
from pipelines.delivery.pr_comment import trim
from pipelines.monitoring.retrain import Decision
from pipelines.pinned_model import PIN_FILE, REPOSITORY_ROOT, PinnedModel

BODY_LIMIT = 60_000  # under GitHub's 65,536 characters for a pull request or issue body
PULL_REQUEST_FILE, FAILED_FILE = "pull-request.md", "failed-gates.md"
PIN_PATH = str(PIN_FILE.relative_to(REPOSITORY_ROOT))
# commit-tree needs an author; a machine without a git identity still gets its branch.
_AUTHOR = {"GIT_AUTHOR_NAME": "retraining", "GIT_AUTHOR_EMAIL": "retraining@localhost"}


@dataclass(frozen=True)
class Proposal:
    """The pull request a passing candidate becomes."""

    environment: str
    pin: PinnedModel
    decision: Decision
    model_card: str
    monitoring: str

    @property
    def branch(self) -> str:
        return f"retrain/{self.environment}-{self.pin.version}-{self.pin.sha256[:8]}"

    @property
    def title(self) -> str:
        triggers = ", ".join(self.decision.triggers)
        return f"Retrained model {self.pin.version} for {self.environment} ({triggers})"

    def body(self) -> str:
        text = "\n".join([
            f"Monitoring of **{self.environment}** raised "
            f"{', '.join(f'`{t}`' for t in self.decision.triggers)}, so the model was retrained on "
            f"the newest labelled traffic and passed every offline gate against the champion.",
            "",
            f"This pull request pins `{self.pin.version}` (`{self.pin.sha256[:12]}`, "
            f"{self.pin.uri}) in `{PIN_PATH}`. Merging it ships the model like any change: the "
            "image is built with the pinned artifact, verified, and rolled out through the shadow "
            "phase and the canary steps, with the same rollback. Nothing has been deployed yet.",
            "",
            "<details><summary>Model card and gate verdict</summary>",
            "",
            self.model_card,
            "</details>",
            "",
            "<details><summary>Monitoring report that started it</summary>",
            "",
            self.monitoring,
            "</details>",
        ])  # fmt: skip
        return trim(text, BODY_LIMIT)[0]

    def change(self, base: str) -> FileChange:
        return FileChange(
            base=base, branch=self.branch, path=PIN_PATH,
            content=self.pin.model_dump_json(indent=2) + "\n",
            message=f"Pin retrained model {self.pin.version}: {self.decision.reason}",
            title=self.title, body=self.body(),
        )  # fmt: skip


def failure_report(environment: str, decision: Decision, model_card: str, monitoring: str) -> str:
    """What a person reads when a retrained candidate failed its gates: nothing ships."""
    return trim("\n".join([
        f"# Retrained model failed its gates in {environment}",
        "",
        f"Monitoring raised {', '.join(f'`{t}`' for t in decision.triggers)} and a model was "
        "retrained on the newest labelled traffic, but it failed at least one offline gate "
        "against the champion. It was not published and nothing ships; the champion keeps "
        "serving. Someone should look: the world may have changed in a way the gates' "
        "assumptions (behavioural expectations, quality floors) no longer describe, or there is "
        "not yet enough new labelled data to learn it.",
        "",
        model_card,
        "",
        "## The monitoring report",
        "",
        monitoring,
    ]), BODY_LIMIT)[0]  # fmt: skip


def write_local(proposal: Proposal, folder: Path, repository: Path = REPOSITORY_ROOT) -> str:
    """The pull request's text and the proposed pin in `folder`, and a branch with the pin
    change in `repository` (the working tree is not touched); says what it made."""
    folder.mkdir(parents=True, exist_ok=True)
    change = proposal.change(base="HEAD")
    write_text_atomic(folder / PULL_REQUEST_FILE, f"# {change.title}\n\n{change.body}\n")
    write_text_atomic(folder / PIN_FILE.name, change.content)
    made = f"{folder / PULL_REQUEST_FILE}"
    branch = commit_on_branch(repository, change)
    return made + (f" and branch {branch}" if branch else " (not a git checkout: no branch)")


def commit_on_branch(repository: Path, change: FileChange) -> str | None:
    """Commit `change.content` at `change.path` on top of HEAD as branch `change.branch`, through
    a scratch index, so the checkout's files and index stay as they are. None outside git."""
    git = shutil.which("git")
    if git is None or not (repository / ".git").exists():
        return None

    def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(  # noqa: S603 - fixed git subcommands
            [git, "-C", str(repository), *args], input=stdin, capture_output=True, text=True,
            check=True, env=env, timeout=30,
        )  # fmt: skip
        return done.stdout.strip()

    with tempfile.TemporaryDirectory(prefix="retrain-index-") as scratch:
        env = _AUTHOR | os.environ | {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        env.setdefault("GIT_COMMITTER_NAME", _AUTHOR["GIT_AUTHOR_NAME"])
        env.setdefault("GIT_COMMITTER_EMAIL", _AUTHOR["GIT_AUTHOR_EMAIL"])
        blob = run("hash-object", "-w", "--stdin", stdin=change.content)
        run("read-tree", "HEAD", env=env)
        run("update-index", "--add", "--cacheinfo", f"100644,{blob},{change.path}", env=env)
        tree = run("write-tree", env=env)
        commit = run("commit-tree", tree, "-p", "HEAD", "-m", change.message, env=env)
    run("update-ref", f"refs/heads/{change.branch}", commit)
    return change.branch
