"""`pr-comment` and `drift-issue`: what the workflows post to GitHub, built and posted by commands
that run the same on a laptop (without `--post`, they only write their Markdown)."""

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from environments.stack_settings import ENVIRONMENTS
from pipelines.atomic_file import write_text_atomic
from pipelines.delivery.github_api import GitHubError, Repository, client, run_url
from pipelines.delivery.pr_comment import MARKER, Preview, build_comment, full_diffs, trim
from pipelines.delivery.preview_text import parse_preview
from pipelines.rollout.plan import cloud_plan
from pipelines.terminal import console, fail

DRIFT_LABEL = "drift"
ISSUE_LIMIT = 60_000  # under GitHub's 65,536 characters for an issue body


def workflow_repository() -> Repository:
    """The repository this workflow runs in, with its token (both set in GitHub Actions)."""
    token, name = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not name:
        fail("posting needs GITHUB_TOKEN and GITHUB_REPOSITORY (GitHub Actions sets both)")
    return Repository(client(token), name)


def _append_step_summary(text: str) -> None:
    if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(step_summary).open("a", encoding="utf-8") as handle:
            handle.write(text)


def _read_verdict(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        fail(f"{path} is not a verdict: {error}")


def pr_comment_command(
    previews: Annotated[
        Path, typer.Option(help="Folder of <environment>.txt previews (one missing: not run).")
    ] = Path("reports/previews"),
    verdict: Annotated[Path, typer.Option(help="The offline gates' verdict.")] = Path(
        "reports/model/verdict.json"
    ),
    out: Annotated[Path, typer.Option(help="Where the comment's Markdown goes.")] = Path(
        "reports/pr-comment.md"
    ),
    pull_request: Annotated[
        int | None, typer.Option(help="Post to this pull request (GITHUB_TOKEN).")
    ] = None,
) -> None:
    """The pull request's one comment: infra diff per environment, model verdict, rollout plan."""
    found = [
        Preview(env, (previews / f"{env}.txt").read_text(encoding="utf-8"))
        if (previews / f"{env}.txt").is_file()
        else Preview(env, None)
        for env in ENVIRONMENTS
    ]
    body = build_comment(found, _read_verdict(verdict), [cloud_plan(env) for env in ENVIRONMENTS])
    write_text_atomic(out, body)
    _append_step_summary(full_diffs(found))
    console.print(f"comment: {out} ({len(body):,} characters)")
    if pull_request is not None:
        try:
            url = workflow_repository().upsert_comment(pull_request, MARKER, body)
        except GitHubError as error:
            fail(str(error))
        console.print(f"posted: {url}")


def drift_issue_command(
    environment: Annotated[str, typer.Option(help="dev, staging or prod.")],
    report: Annotated[Path, typer.Option(help="The output of `make drift ENV=…`.")],
    post: Annotated[bool, typer.Option(help="Open, update or close the GitHub issue.")] = False,
) -> None:
    """Drift in ENV (the live cloud differs from the stack): keep one issue open while it lasts.
    Exit 0 no drift, 1 drift, 2 the check itself failed."""
    if not report.is_file():
        fail(f"no {report}: run `make drift ENV={environment}` first")
    text = report.read_text(encoding="utf-8")
    summary = parse_preview(text)
    drifted = summary.total_changes > 0
    if summary.failed and not drifted:
        fail(f"the drift check of {environment} failed: {summary.headline()}")
    title = f"Infrastructure drift in {environment}"
    where = run_url(dict(os.environ)) or "a local run"
    console.print(f"{environment}: {summary.headline()}")
    if post:
        repository = workflow_repository()
        try:
            if drifted:
                diff, _ = trim(text.strip(), ISSUE_LIMIT)
                body = (
                    f"The live resources of **{environment}** differ from its stack "
                    f"({summary.headline()}), found by {where}.\n\nSomething changed them outside "
                    "Pulumi. Either make the change in code and deploy it, or run "
                    f"`pulumi up --stack {environment}` to put the stack's state back.\n\n"
                    f"````diff\n{diff}\n````\n"
                )
                console.print(repository.upsert_issue(title, DRIFT_LABEL, body))
            elif closed := repository.close_issue(
                title, DRIFT_LABEL, f"No drift any more, as of {where}."
            ):
                console.print(f"closed {closed}")
        except GitHubError as error:
            fail(str(error))
    raise typer.Exit(1 if drifted else 0)
