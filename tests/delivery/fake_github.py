"""GitHub's issues and comments REST API, in memory, answering as its documentation shows:
enough to check that delivery edits one comment in place and keeps one issue per drift."""

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
