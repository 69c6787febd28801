"""GitHub's issues, comments, refs, contents and pulls REST API, in memory, answering as its
documentation shows: enough to check that delivery edits one comment in place, keeps one issue
per finding, and proposes a file change on its own branch."""

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

BOT = {"login": "github-actions[bot]", "type": "Bot"}
PERSON = {"login": "octocat", "type": "User"}


@dataclass
class FakeGitHub:
    """Comments per issue number, and issues; `calls` records every request as `METHOD path`."""

    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    page_size: int = 100
    status: int | None = None  # answer every request with this status instead
    # branch -> commit sha; files per branch: path -> (content, blob sha); pull requests
    refs: dict[str, str] = field(default_factory=lambda: {"main": "a" * 40})
    files: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if self.status:
            return httpx.Response(self.status, json={"message": "Resource not accessible"})
        routes = (
            ("GET", r"/repos/o/r/issues/(\d+)/comments", self._list_comments),
            ("POST", r"/repos/o/r/issues/(\d+)/comments", self._post_comment),
            ("PATCH", r"/repos/o/r/issues/comments/(\d+)", self._edit_comment),
            ("GET", r"/repos/o/r/issues", self._list_issues),
            ("POST", r"/repos/o/r/issues", self._open_issue),
            ("PATCH", r"/repos/o/r/issues/(\d+)", self._edit_issue),
            ("GET", r"/repos/o/r/git/ref/heads/(.+)", self._get_ref),
            ("POST", r"/repos/o/r/git/refs", self._create_ref),
            ("GET", r"/repos/o/r/contents/(.+)", self._get_file),
            ("PUT", r"/repos/o/r/contents/(.+)", self._put_file),
            ("POST", r"/repos/o/r/pulls", self._open_pull),
        )
        for method, pattern, answer in routes:
            if request.method == method and (match := re.fullmatch(pattern, request.url.path)):
                return answer(request, *match.groups())
        return httpx.Response(404, json={"message": "Not Found"})

    @staticmethod
    def _body(request: httpx.Request) -> dict[str, Any]:
        return json.loads(request.content) if request.content else {}

    def _list_comments(self, request: httpx.Request, number: str) -> httpx.Response:
        return self._page(self.comments.setdefault(int(number), []), request)

    def _post_comment(self, request: httpx.Request, number: str) -> httpx.Response:
        identifier = 1000 + sum(map(len, self.comments.values()))
        comment = {"id": identifier, "user": BOT, **self._body(request)}
        comment["html_url"] = f"https://github.com/o/r/issues/{number}#{identifier}"
        self.comments.setdefault(int(number), []).append(comment)
        return httpx.Response(201, json=comment)

    def _edit_comment(self, request: httpx.Request, identifier: str) -> httpx.Response:
        thread = [c for t in self.comments.values() for c in t]
        comment = next(c for c in thread if c["id"] == int(identifier))
        comment.update(self._body(request))
        return httpx.Response(200, json=comment)

    def _list_issues(self, request: httpx.Request) -> httpx.Response:
        label = request.url.params["labels"]
        found = [i for i in self.issues if i["state"] == "open" and label in i["labels"]]
        return self._page(found, request)

    def _open_issue(self, request: httpx.Request) -> httpx.Response:
        number = 1 + len(self.issues)
        url = f"https://github.com/o/r/issues/{number}"
        issue = {"number": number, "state": "open", "html_url": url, **self._body(request)}
        self.issues.append(issue)
        return httpx.Response(201, json=issue)

    def _edit_issue(self, request: httpx.Request, number: str) -> httpx.Response:
        issue = next(i for i in self.issues if i["number"] == int(number))
        issue.update(self._body(request))
        return httpx.Response(200, json=issue)

    def _get_ref(self, _request: httpx.Request, branch: str) -> httpx.Response:
        if branch not in self.refs:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"object": {"sha": self.refs[branch]}})

    def _create_ref(self, request: httpx.Request) -> httpx.Response:
        body = self._body(request)
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return httpx.Response(422, json={"message": "Reference already exists"})
        self.refs[branch] = body["sha"]
        source = next(b for b, sha in self.refs.items() if sha == body["sha"] and b != branch)
        self.files[branch] = dict(self.files.get(source, {}))
        return httpx.Response(201, json={"ref": body["ref"]})

    def _get_file(self, request: httpx.Request, path: str) -> httpx.Response:
        found = self.files.get(request.url.params.get("ref", "main"), {}).get(path)
        if found is None:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"path": path, "sha": found[1]})

    def _put_file(self, request: httpx.Request, path: str) -> httpx.Response:
        body = self._body(request)
        branch = self.files.setdefault(body["branch"], {})
        if path in branch and body.get("sha") != branch[path][1]:
            return httpx.Response(409, json={"message": f"{path} does not match"})
        content = base64.b64decode(body["content"]).decode()
        branch[path] = (content, f"{len(self.calls):040x}")
        return httpx.Response(200 if "sha" in body else 201, json={"content": {"path": path}})

    def _open_pull(self, request: httpx.Request) -> httpx.Response:
        number = 100 + len(self.pulls)
        pull = {"number": number, "html_url": f"https://github.com/o/r/pull/{number}",
                **self._body(request)}  # fmt: skip
        self.pulls.append(pull)
        return httpx.Response(201, json=pull)

    def _page(self, items: list[dict[str, Any]], request: httpx.Request) -> httpx.Response:
        """One page, with a `Link` header to the next one as GitHub sends it."""
        size = min(int(request.url.params.get("per_page", 30)), self.page_size)
        page = int(request.url.params.get("page", 1))
        headers = {}
        if page * size < len(items):
            following = request.url.copy_set_param("page", str(page + 1))
            headers["Link"] = f'<{following}>; rel="next"'
        return httpx.Response(200, json=items[(page - 1) * size : page * size], headers=headers)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url="https://api.github.com", transport=httpx.MockTransport(self.handle)
        )
