"""The HTTP endpoints: predictions, ranking, feedback, probes, version and metrics."""

from typing import Any, NamedTuple

import orjson
from fastapi import APIRouter, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.body_limits import LimitedJsonRoute
from service.events import RankedEntry, Served
from service.experiments import user_pseudonym
from service.faults import InjectedFaultError
from service.headers import SHADOW_OF, USER_ID, documented
from service.interleaving import team_draft
from service.mirrored import Mirrored
from service.runtime import Arm, Runtime
from service.schemas import (
    BatchPrediction,
    BatchRequest,
    Feedback,
    FeedbackReceipt,
    Prediction,
    RankedItem,
    Ranking,
    RankRequest,
    Transaction,
    Version,
)

router = APIRouter(route_class=LimitedJsonRoute)


def _runtime(request: Request) -> Runtime:
    """The app's runtime, read from the request rather than through `Depends`: FastAPI solves
    every dependency with its own machinery per request, which cost more than the model call
    on the compiled path."""
    return request.app.state.runtime


def _context(request: Request) -> tuple[Runtime, str]:
    """The runtime and this request's id (the middleware sets it)."""
    return _runtime(request), request.state.request_id


def _about(served: Served) -> dict[str, Any]:
    """What every prediction answer says about who answered it."""
    return {
        "request_id": served.request_id,
        "model_version": served.model_version,
        "threshold": served.threshold,
        "experiment": served.experiment,
        "variant": served.variant,
    }


def _served(runtime: Runtime, request_id: str, route: str, user_id: str | None) -> Served:
    """Which arm serves this request, and how the events will name it."""
    experiment = runtime.experiment
    variant = experiment.variant(user_id) if experiment else None
    model = runtime.arm(variant).model
    key = runtime.settings.user_hash_key
    return Served(
        request_id=request_id,
        route=route,
        model_version=model.version,
        threshold=model.threshold,
        experiment=experiment.name if experiment else None,
        variant=variant if user_id else None,
        user_hash=user_pseudonym(key, user_id) if user_id and key else None,
    )


class Scored(NamedTuple):
    """One arm's answer for the rows of a request, as the plain lists the events and the answer
    are written from (one conversion per request, not one numpy operation per list)."""

    probabilities: list[float]
    decisions: list[bool]
    unsure: list[bool]


async def _scored(
    runtime: Runtime, arm: Arm, transactions: list[Transaction], single: bool
) -> Scored:
    """One arm's scores, decisions and low-confidence flags (service/app.py: `assessor`), after
    the drill's injected latency and errors."""
    try:
        await runtime.faults.before_prediction(single)
    except InjectedFaultError as error:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error)) from error
    assessed = await arm.batcher.score(transactions)
    rows: list[list[float]] = assessed.tolist()
    return Scored([p for p, _, _ in rows], [d == 1 for _, d, _ in rows], [u == 1 for *_, u in rows])


async def _score(
    runtime: Runtime,
    served: Served,
    transactions: list[Transaction],
    single: bool,
    shadow_of: str | None,
) -> list[dict[str, Any]]:
    """Score with the arm `served` names, record the metrics and one event per transaction;
    a live request the champion answered is offered to the shadow mirror, if one is on. A
    mirrored copy (its header carries the switch's token) records no event and is not mirrored."""
    scored = await _scored(runtime, runtime.arm(served.variant), transactions, single)
    if served.experiment:
        runtime.metrics.observe_variant(served.experiment, served.variant, len(transactions))
    scores, decisions = scored.probabilities, scored.decisions
    if runtime.shadow is None or not runtime.shadow.is_mirrored(shadow_of):
        runtime.events.predictions(served, transactions, scores, decisions)
        if runtime.shadow is not None and served.variant != "challenger":
            runtime.shadow.offer(
                Mirrored(served.route, served.request_id, transactions, scores, decisions)
            )
    return [
        {"fraud_probability": p, "is_fraud": d, "low_confidence": u}
        for p, d, u in zip(scores, decisions, scored.unsure, strict=True)
    ]


def _answer(body: dict[str, Any]) -> Response:
    """A prediction route's answer, in the shape of its `response_model` (the OpenAPI document
    says so, and the API tests check answers against it). Built as dicts and written by orjson:
    a pydantic object per row, which FastAPI then validated again, cost a tenth of a batch."""
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/v1/predict",
    tags=["predictions"],
    response_model=Prediction,
    openapi_extra=documented(USER_ID, SHADOW_OF),
)
async def predict(transaction: Transaction, request: Request) -> Response:
    """Score one transaction (with an experiment on, by the model the user is assigned)."""
    runtime, request_id = _context(request)
    served = _served(runtime, request_id, "predict", USER_ID.read(request))
    (score,) = await _score(runtime, served, [transaction], True, SHADOW_OF.read(request))
    return _answer(score | _about(served))


@router.post(
    "/v1/predict/batch",
    tags=["predictions"],
    response_model=BatchPrediction,
    responses={413: {"description": "More instances than BATCH_MAX_INSTANCES, or body too large."}},
    openapi_extra=documented(USER_ID, SHADOW_OF),
)
async def predict_batch(batch: BatchRequest, request: Request) -> Response:
    """Score up to BATCH_MAX_INSTANCES transactions in one call, answered in request order.

    The instance count is checked before any instance is validated, and validation stops at the
    first invalid instance, whose errors the 422 lists. Feedback names an instance by its
    position (`item`).
    """
    runtime, request_id = _context(request)
    served = _served(runtime, request_id, "batch", USER_ID.read(request))
    predictions = await _score(runtime, served, batch.instances, False, SHADOW_OF.read(request))
    return _answer(_about(served) | {"predictions": predictions})


@router.post(
    "/v1/rank",
    tags=["ranking"],
    responses={413: {"description": "More transactions than BATCH_MAX_INSTANCES."}},
    openapi_extra=documented(USER_ID),
)
async def rank(body: RankRequest, request: Request) -> Ranking:
    """Order transactions for manual review, riskiest first.

    With an interleaving experiment on, both models rank and the list shown is their team-draft
    interleaving; feedback on a reviewed item credits the model that placed it. Otherwise the
    user's model (champion, or the A/B arm) ranks alone.
    """
    runtime, request_id = _context(request)
    served = _served(runtime, request_id, "rank", USER_ID.read(request))
    experiment = runtime.experiment
    if experiment and experiment.kind == "interleaving" and runtime.challenger:
        arms = {"champion": runtime.arm(None), "challenger": runtime.challenger}
        scores = {
            team: (await _scored(runtime, arm, body.transactions, single=False)).probabilities
            for team, arm in arms.items()
        }
        order = {
            team: sorted(range(len(s)), key=lambda i, s=s: -s[i]) for team, s in scores.items()
        }
        placed = team_draft(order["champion"], order["challenger"], seed=request_id)
        entries = [
            RankedEntry(position, item, team, scores[team][item],
                        scores[team][item] >= arms[team].model.threshold)
            for position, (item, team) in enumerate(placed)
        ]  # fmt: skip
    else:
        alone = (await _scored(
            runtime, runtime.arm(served.variant), body.transactions, single=False
        )).probabilities  # fmt: skip
        ranked_items = sorted(range(len(alone)), key=lambda i: -alone[i])
        entries = [
            RankedEntry(position, item, None, alone[item], alone[item] >= served.threshold)
            for position, item in enumerate(ranked_items)
        ]
    runtime.events.ranking(served, entries)
    return Ranking(
        request_id=request_id,
        experiment=served.experiment,
        ranked=[RankedItem(item=e.item, fraud_probability=e.score) for e in entries],
    )


@router.post("/v1/feedback", tags=["feedback"], status_code=status.HTTP_202_ACCEPTED)
async def feedback(body: Feedback, request: Request) -> FeedbackReceipt:
    """Record the true outcome of a scored transaction (a confirmed fraud or a cleared one).

    Accepted, not checked against the predictions: the service keeps no state, so a request id
    it never answered is recorded and left out by the analysis, which also counts only the first
    outcome per request id and item. Sending the same outcome again is therefore harmless.
    """
    runtime = _runtime(request)
    runtime.events.feedback(body.request_id, body.item, body.is_fraud)
    return FeedbackReceipt(request_id=body.request_id, item=body.item)


@router.get("/healthz", tags=["probes"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers; a restart cannot fix more than this could check."""
    return {"status": "ok"}


@router.get("/readyz", tags=["probes"], responses={503: {"description": "Not ready."}})
async def readyz(request: Request, response: Response) -> dict[str, str]:
    """Readiness: the model is loaded and passed its self-test, and the instance is not draining."""
    runtime = _runtime(request)
    if not runtime.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "not ready"}
    return {"status": "ready", "model_version": runtime.model.version}


@router.get("/version", tags=["meta"])
async def version(request: Request) -> Version:
    """What is running, down to the commit and the model's offline metrics."""
    runtime = _runtime(request)
    settings, metadata = runtime.settings, runtime.model.metadata
    return Version(
        service=settings.SERVICE_NAME,
        service_version=settings.SERVICE_VERSION,
        git_sha=settings.GIT_SHA,
        revision=settings.K_REVISION,
        environment=settings.ENVIRONMENT,
        model_version=metadata.version,
        model_sha256=metadata.sha256,
        model_created_at=metadata.created_at.isoformat(),
        model_metrics=metadata.metrics,
    )


@router.get("/metrics", tags=["meta"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition of this instance's metrics."""
    runtime = _runtime(request)
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
