"""Shadow traffic: a sampled copy of live predictions, sent to a candidate off the hot path.

The serving revision mirrors, on every platform: Cloud Run has no mirroring and a mesh is not
everywhere, while the stable revision is always there and already holds the one thing a paired
comparison needs, its own answer to the very same request. So the comparison happens here, as
counters in /metrics that the rollout gates read like any other window.

A request is offered to the mirror after its answer is computed: `offer` never awaits and never
raises, so the user's response neither waits for, changes with, nor fails because of the shadow.
A bounded queue and a few workers with a per-request time budget keep a hanging candidate from
taking more than that; what does not fit is dropped and counted.

The switch is a small JSON document (a file locally, an object in the model bucket on Cloud Run)
that every instance polls, so mirroring turns on and off without a new revision. It names the
revision that mirrors (a candidate reading the same switch stays quiet) and expires on its own, so
a controller killed mid-phase leaves no mirroring behind.
"""

import asyncio
import contextlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.events import EventLog, ShadowRow
from service.metrics import ShadowMetrics, log_odds
from service.mirrored import Mirrored
from service.settings import Settings

logger = logging.getLogger("service.shadow")

# The header a mirrored request carries, with the switch's token as its value: the candidate
# (which reads the same switch) answers it like any other request but records no events, so
# experiments and monitoring never count a shadow prediction. A client cannot forge it.
SHADOW_HEADER = "x-shadow-of"
METADATA = "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default"
ROUTES = {"predict": "/v1/predict", "batch": "/v1/predict/batch"}


class ShadowSwitch(BaseModel):
    """What the rollout controller writes to turn mirroring on for one revision, for a while."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Annotated[str, Field(min_length=1, description="The revision that mirrors.")]
    candidate: Annotated[str, Field(min_length=1)]
    url: Annotated[str, Field(pattern=r"^https?://")]
    sample_rate: Annotated[float, Field(gt=0, le=1)]
    expires_at: float
    # A prediction counts as shifted when its log-odds differ from stable's by more than this.
    max_logit_difference: Annotated[float, Field(gt=0, le=20)]
    headers: dict[str, str] = {}
    # The ID token audience when the candidate is private (Cloud Run: the service's URL).
    audience: str | None = None
    # What marks a mirrored request; readable only by whoever may read the switch.
    token: Annotated[str, Field(min_length=16)] = Field(
        default_factory=lambda: secrets.token_urlsafe(24)
    )


def candidate_answers(route: str, document: Any) -> list[tuple[float, bool]]:
    """(score, decision) per row of a candidate's prediction answer."""
    rows = [document] if route == "predict" else document["predictions"]
    return [(float(row["fraud_probability"]), bool(row["is_fraud"])) for row in rows]


@dataclass
class MetadataTokens:
    """Access and ID tokens of the instance's own identity, from the metadata server, cached.

    An access token reads the switch from Cloud Storage; an ID token for the service's URL lets
    the runtime identity call a private candidate (infra grants it run.invoker on its service).
    """

    http: httpx.AsyncClient
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict[str, tuple[str, float]])

    async def _get(self, key: str, path: str, lifetime: Callable[[httpx.Response], float]) -> str:
        cached = self._cache.get(key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        response = await self.http.get(f"{METADATA}/{path}", headers={"Metadata-Flavor": "Google"})
        response.raise_for_status()
        token = response.json()["access_token"] if key == "access" else response.text
        self._cache[key] = (token, time.monotonic() + lifetime(response))
        return token

    async def access_token(self) -> str:
        return await self._get("access", "token", lambda r: float(r.json()["expires_in"]) - 60)

    async def id_token(self, audience: str) -> str:
        # Google ID tokens live an hour; half of that leaves room for clock skew.
        path = f"identity?audience={quote(audience, safe='')}&format=full"
        return await self._get(f"id:{audience}", path, lambda _: 1800.0)


async def read_switch(location: str, tokens: MetadataTokens) -> bytes | None:
    """The switch document at `location` (a path, or gs://bucket/object); None when absent."""
    if not location.startswith("gs://"):
        try:
            return await asyncio.to_thread(Path(location).read_bytes)
        except FileNotFoundError:
            return None
    bucket, _, name = location.removeprefix("gs://").partition("/")
    response = await tokens.http.get(
        f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
        params={"alt": "media"},
        headers={"Authorization": f"Bearer {await tokens.access_token()}"},
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.content


class ShadowMirror:
    """Polls the switch, samples live requests into a bounded queue, and compares answers.

    SHADOW_QUEUE_SIZE requests wait at most, SHADOW_WORKERS are in flight, each for at most
    SHADOW_TIMEOUT_MS: all a hanging candidate can cost the serving revision.
    """

    def __init__(self, settings: Settings, metrics: ShadowMetrics, events: EventLog) -> None:
        if settings.SHADOW_CONTROL is None:
            raise ValueError("a shadow mirror needs SHADOW_CONTROL, the switch's location")
        self.settings = settings
        self.location = settings.SHADOW_CONTROL
        self.metrics = metrics
        self.events = events
        self.switch: ShadowSwitch | None = None
        self._rng = random.Random()  # noqa: S311  # sampling, not secrets
        self._queue: asyncio.Queue[Mirrored] = asyncio.Queue(maxsize=settings.SHADOW_QUEUE_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        workers = settings.SHADOW_WORKERS
        self._tokens = MetadataTokens(
            httpx.AsyncClient(
                timeout=settings.SHADOW_TIMEOUT_MS / 1000,
                limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
            )
        )

    @property
    def active(self) -> ShadowSwitch | None:
        switch = self.switch
        revision = self.settings.K_REVISION
        if switch is None or switch.source != revision or switch.expires_at <= time.time():
            return None
        return switch

    def is_mirrored(self, header: str | None) -> bool:
        """Whether a request's `X-Shadow-Of` is the current switch's token (then it is a copy)."""
        switch = self.switch
        return (
            header is not None
            and switch is not None
            and switch.expires_at > time.time()
            and hmac.compare_digest(header.encode(), switch.token.encode())
        )

    def offer(self, mirrored: Mirrored) -> None:
        """Queue a sampled copy; never waits, never raises (a full queue drops and counts)."""
        switch = self.active
        if switch is None or self._rng.random() >= switch.sample_rate:
            return
        try:
            self._queue.put_nowait(mirrored)
        except asyncio.QueueFull:
            self.metrics.request("dropped")

    async def start(self) -> None:
        await self.refresh()
        self._tasks = [asyncio.create_task(self._poll())]
        self._tasks += [
            asyncio.create_task(self._work()) for _ in range(self.settings.SHADOW_WORKERS)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._tokens.http.aclose()

    async def refresh(self) -> None:
        """Read the switch once; an unreadable or invalid one turns mirroring off, loudly."""
        try:
            document = await read_switch(self.location, self._tokens)
            switch = None if document is None else ShadowSwitch.model_validate_json(document)
        except (httpx.HTTPError, OSError, ValidationError, ValueError, KeyError) as error:
            logger.warning("shadow switch %s unreadable, mirroring off: %r", self.location, error)
            switch = None
        if switch != self.switch and (switch is None or switch.source == self.settings.K_REVISION):
            logger.info("shadow mirroring %s", f"to {switch.candidate}" if switch else "off")
        self.switch = switch

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.SHADOW_POLL_S)
            await self.refresh()

    async def _work(self) -> None:
        while True:
            mirrored = await self._queue.get()
            try:
                await self._mirror(mirrored)
            except Exception:  # pylint: disable=broad-exception-caught  # outlive any request
                logger.exception("shadow request %s failed in the mirror", mirrored.request_id)
                self.metrics.request("failed")
            finally:
                self._queue.task_done()

    async def _mirror(self, mirrored: Mirrored) -> None:
        switch = self.active
        if switch is None:  # switched off while it waited: never sent
            self.metrics.request("dropped")
            return
        headers = {"content-type": "application/json", SHADOW_HEADER: switch.token}
        headers |= switch.headers | {"x-request-id": mirrored.request_id}
        if switch.audience:
            headers["authorization"] = f"Bearer {await self._tokens.id_token(switch.audience)}"
        try:
            # The budget is the whole exchange: httpx's timeout bounds each read, not the sum.
            async with asyncio.timeout(self.settings.SHADOW_TIMEOUT_MS / 1000):
                response = await self._tokens.http.post(
                    switch.url + ROUTES[mirrored.route], content=mirrored.body(), headers=headers
                )
        except (TimeoutError, httpx.TimeoutException):
            self.metrics.request("timeout")
            return
        except httpx.TransportError:
            self.metrics.request("failed")
            return
        try:
            answers = candidate_answers(mirrored.route, response.json())
        except (ValueError, KeyError, TypeError):  # an answer that is not a prediction
            answers = []
        if response.status_code != 200 or len(answers) != len(mirrored.scores):
            self.metrics.request("failed")
            return
        self.metrics.request("ok")
        candidate = np.array([score for score, _ in answers])
        differences = np.abs(log_odds(candidate) - log_odds(np.array(mirrored.scores))).tolist()
        flips = sum(d != c for d, (_, c) in zip(mirrored.decisions, answers, strict=True))
        self.metrics.pairs(differences, flips, switch.max_logit_difference)
        self.events.shadow(mirrored.request_id, switch.candidate, [
            ShadowRow(item, mirrored.scores[item], mirrored.decisions[item], score, decision,
                      differences[item], mirrored.transactions[item].model_dump_json())
            for item, (score, decision) in enumerate(answers)
            if differences[item] > switch.max_logit_difference
            or decision != mirrored.decisions[item]
        ])  # fmt: skip
