"""What a Cloud Run service serves, and how to reach one of its revisions: through its tag's
own URL (`candidate---…`), with an ID token for the service's URL when it is private."""

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from environments.traffic import CANDIDATE_TAG, TrafficSplit
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloudrun.service_api import ServiceApi


@dataclass(frozen=True)
class CloudRunServing:
    """`client_for(url, audience)` gives an HTTP client for one of the service's URLs, with an
    ID token for `audience` when the service is private."""

    service: ServiceApi
    client_for: Callable[[str, str], httpx.Client]
    public: bool
    where: str = "Cloud Run"

    def split(self) -> TrafficSplit:
        return self.service.live().split

    def is_ready(self, revision: str) -> bool:
        """Asked of the revision's own tagged URL: only a tagged revision can be reached alone."""
        live = self.service.live()
        tag = next((t.tag for t in live.split.targets if t.revision == revision and t.tag), None)
        url = live.tag_urls.get(tag or "")
        if not url:
            return False
        try:
            with self.client_for(url, live.url) as client:
                return client.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def tagged_client(self, tag: str) -> httpx.Client:
        live = self.service.live()
        if tag not in live.tag_urls:
            raise DeployError(f"Cloud Run reports no URL for the tag {tag!r}: {live.tag_urls}")
        return self.client_for(live.tag_urls[tag], live.url)

    def mirror_target(self) -> tuple[str, str | None]:
        """The candidate's tagged URL; a private service's revisions present an ID token of
        their own identity, which infra grants run.invoker."""
        live = self.service.live()
        url = live.tag_urls.get(CANDIDATE_TAG)
        if not url:
            raise DeployError(
                f"Cloud Run reports no URL for the tag {CANDIDATE_TAG!r}: cannot mirror"
            )
        return url, None if self.public else live.url
