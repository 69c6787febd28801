"""The HTTP endpoints: predictions, probes, version and metrics."""

from typing import Annotated

import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.body_limits import LimitedJsonRoute
from service.faults import InjectedFaultError
from service.features import encode_transactions
from service.metrics import low_confidence
from service.runtime import Runtime
from service.schemas import BatchPrediction, BatchRequest, Prediction, Score, Transaction, Version

router = APIRouter(route_class=LimitedJsonRoute)


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _request_id(request: Request) -> str:
    return request.state.request_id


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
RequestIdDep = Annotated[str, Depends(_request_id)]


async def _score(
    runtime: Runtime, transactions: list[Transaction], single: bool
) -> npt.NDArray[np.float64]:
    try:
        await runtime.faults.before_prediction(single)
    except InjectedFaultError as error:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(error)) from error
    scores = await runtime.batcher.score(encode_transactions(transactions))
    return runtime.faults.scores(scores)


def _scores(runtime: Runtime, probabilities: npt.NDArray[np.float64]) -> list[Score]:
    threshold = runtime.model.threshold
    margin = runtime.settings.LOW_CONFIDENCE_LOGIT_MARGIN
    runtime.metrics.observe_scores(probabilities, threshold, margin)
    unsure = low_confidence(probabilities, threshold, margin).tolist()
    return [
        Score(fraud_probability=p, is_fraud=p >= threshold, low_confidence=u)
        for p, u in zip(probabilities.tolist(), unsure, strict=True)
    ]


@router.post("/v1/predict", tags=["predictions"])
async def predict(
    transaction: Transaction, runtime: RuntimeDep, request_id: RequestIdDep
) -> Prediction:
    """Score one transaction."""
    probabilities = await _score(runtime, [transaction], single=True)
    (score,) = _scores(runtime, probabilities)
    return Prediction(
        **score.model_dump(),
        request_id=request_id,
        model_version=runtime.model.version,
        threshold=runtime.model.threshold,
    )


@router.post(
    "/v1/predict/batch",
    tags=["predictions"],
    responses={413: {"description": "More instances than BATCH_MAX_INSTANCES, or body too large."}},
)
async def predict_batch(
    batch: BatchRequest, runtime: RuntimeDep, request_id: RequestIdDep
) -> BatchPrediction:
    """Score up to BATCH_MAX_INSTANCES transactions in one call, answered in request order.

    The instance count is checked before any instance is validated, and validation stops at the
    first invalid instance, whose errors the 422 lists.
    """
    probabilities = await _score(runtime, batch.instances, single=False)
    return BatchPrediction(
        request_id=request_id,
        model_version=runtime.model.version,
        threshold=runtime.model.threshold,
        predictions=_scores(runtime, probabilities),
    )


@router.get("/healthz", tags=["probes"])
async def healthz() -> dict[str, str]:
    """Liveness: the process answers; a restart cannot fix more than this could check."""
    return {"status": "ok"}


@router.get("/readyz", tags=["probes"], responses={503: {"description": "Not ready."}})
async def readyz(runtime: RuntimeDep, response: Response) -> dict[str, str]:
    """Readiness: the model is loaded and passed its self-test, and the instance is not draining."""
    if not runtime.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return {"status": "not ready"}
    return {"status": "ready", "model_version": runtime.model.version}


@router.get("/version", tags=["meta"])
async def version(runtime: RuntimeDep) -> Version:
    """What is running, down to the commit and the model's offline metrics."""
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
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus exposition of this instance's metrics."""
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
