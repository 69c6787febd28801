"""The few GitHub REST calls delivery makes, with the workflow's own token: keep one comment per
pull request up to date, one open issue per finding, and propose a one-file change as a pull
request (a retrained model's pin).
https://docs.github.com/en/rest/issues/comments
https://docs.github.com/en/rest/repos/contents
"""

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

API = "https://api.github.com"
PAGE_SIZE = 100


class GitHubError(RuntimeError):
    """GitHub refused or did not answer; the message says which call and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def client(token: str) -> httpx.Client:
    return httpx.Client(
        base_url=API,
        timeout=30,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )


@dataclass(frozen=True)
class Repository:
    """`owner/name`, reached through an authorized client."""

    http: httpx.Client
    name: str

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            raise GitHubError(f"GitHub did not answer {method} {url}: {error!r}") from error
        if response.status_code >= 400:
            hint = (
                ": the job needs `permissions: pull-requests: write` (issues: write for issues, "
                "contents: write for a branch)"
                if response.status_code in (401, 403, 404)
                else ""
            )
            raise GitHubError(
                f"GitHub answered {response.status_code} to {method} {url}{hint}: "
                f"{response.text[:300]}",
                response.status_code,
            )
        return response

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, f"/repos/{self.name}{path}", **kwargs)
        return response.json() if response.content else None

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a listing, following the `Link: rel="next"` pages GitHub sends."""
        response = self._send(
            "GET", f"/repos/{self.name}{path}", params={**params, "per_page": PAGE_SIZE}
        )
        while True:
            yield from response.json()
            following = response.links.get("next", {}).get("url")
            if not following:
                return
            response = self._send("GET", following)

    def upsert_comment(self, number: int, marker: str, body: str) -> str:
        """Edit the bot's comment that carries `marker`, or post it; returns its URL."""
        for comment in self._pages(f"/issues/{number}/comments", {}):
            if marker in comment.get("body", "") and comment["user"]["type"] == "Bot":
                edited = self._call(
                    "PATCH", f"/issues/comments/{comment['id']}", json={"body": body}
                )
                return str(edited["html_url"])
        posted = self._call("POST", f"/issues/{number}/comments", json={"body": body})
        return str(posted["html_url"])

    def _open_issue(self, title: str, label: str) -> dict[str, Any] | None:
        issues = self._pages("/issues", {"state": "open", "labels": label})
        return next((i for i in issues if i["title"] == title and "pull_request" not in i), None)

    def upsert_issue(self, title: str, label: str, body: str) -> str:
        """Update the open issue with this title and label, or open one; returns its URL."""
        found = self._open_issue(title, label)
        if found:
            edited = self._call("PATCH", f"/issues/{found['number']}", json={"body": body})
            return str(edited["html_url"])
        opened = self._call(
            "POST", "/issues", json={"title": title, "body": body, "labels": [label]}
        )
        return str(opened["html_url"])

    def close_issue(self, title: str, label: str, comment: str) -> str | None:
        """Close the open issue with this title and label, saying why; None when there is none."""
        found = self._open_issue(title, label)
        if not found:
            return None
        self._call("POST", f"/issues/{found['number']}/comments", json={"body": comment})
        closed = self._call("PATCH", f"/issues/{found['number']}", json={"state": "closed"})
        return str(closed["html_url"])

    def propose_file(self, change: "FileChange") -> str:
        """Commit `change` on a new branch from its base and open a pull request; its URL."""
        base = self._call("GET", f"/git/ref/heads/{change.base}")
        self._call(
            "POST", "/git/refs",
            json={"ref": f"refs/heads/{change.branch}", "sha": base["object"]["sha"]},
        )  # fmt: skip
        put: dict[str, Any] = {
            "message": change.message,
            "content": base64.b64encode(change.content.encode()).decode(),
            "branch": change.branch,
        }
        try:
            current = self._call("GET", f"/contents/{change.path}", params={"ref": change.branch})
            put["sha"] = current["sha"]  # replacing a file names the version it replaces
        except GitHubError as error:
            if error.status != 404:  # a new file: nothing to replace
                raise
        self._call("PUT", f"/contents/{change.path}", json=put)
        pull = self._call(
            "POST", "/pulls",
            json={"title": change.title, "body": change.body, "head": change.branch,
                  "base": change.base},
        )  # fmt: skip
        return str(pull["html_url"])


@dataclass(frozen=True)
class FileChange:
    """One file's new content, proposed on `branch` from `base` as a pull request."""

    base: str
    branch: str
    path: str
    content: str
    message: str
    title: str
    body: str


def run_url(environ: dict[str, str]) -> str | None:
    """This workflow run's page, when running in GitHub Actions."""
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(environ.get(key) for key in keys):
        return None
    server, repository, run = (environ[key] for key in keys)
    return f"{server}/{repository}/actions/runs/{run}"
