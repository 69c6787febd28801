"""One JSON read from a platform's REST API, with the failures a rollout must explain."""

from typing import Any

import httpx

from pipelines.rollout.platform import DeployError


def read_json(http: httpx.Client, url: str, api: str) -> dict[str, Any]:
    """GET `url`; a DeployError naming `api` and its own answer when it is not a 200."""
    try:
        response = http.get(url)
    except httpx.HTTPError as error:
        raise DeployError(f"{api} did not answer: {error!r}") from error
    if response.status_code != 200:
        raise DeployError(f"{api} answered {response.status_code} for {url}: {response.text[:300]}")
    return response.json()
