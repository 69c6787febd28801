"""The app factory: the model is loaded, verified and self-tested before the first request."""

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from service.batcher import MicroBatcher
from service.errors import InvalidBodyError, validation_error_response
from service.faults import Faults
from service.metrics import ServiceMetrics
from service.middleware import RequestMiddleware
from service.model import ScoringModel
from service.routes import router
from service.runtime import Runtime
from service.settings import Settings

logger = logging.getLogger("service")


def create_app(settings: Settings | None = None, model: ScoringModel | None = None) -> FastAPI:
    """Build the app; settings default to the environment, the model to MODEL_DIR at start-up.

    `python -m service` passes a model it already verified, so a bad artifact stops the process
    with one clear line before uvicorn starts.
    """
    settings = settings if settings is not None else Settings()
    metrics = ServiceMetrics(revision=settings.K_REVISION)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None]:
        scoring = model if model is not None else ScoringModel.load(settings.MODEL_DIR)
        batcher = MicroBatcher(
            scoring.score_rows,
            max_rows=settings.MICROBATCH_MAX_ROWS,
            max_wait_s=settings.MICROBATCH_MAX_WAIT_MS / 1000,
            on_batch=metrics.batch_rows.observe,
        )
        runtime = Runtime(settings, scoring, batcher, metrics, Faults.from_settings(settings))
        app.state.runtime = runtime
        metrics.model_info.labels(
            scoring.version, scoring.metadata.sha256, settings.GIT_SHA, settings.K_REVISION
        ).set(1)
        score = scoring.self_test()
        await batcher.start()
        runtime.ready = True
        logger.info(
            "serving model %s (self-test score %.4f)", scoring.version, score,
            extra={"model_version": scoring.version, "revision": settings.K_REVISION},
        )  # fmt: skip
        try:
            yield
        finally:
            runtime.ready = False
            await batcher.stop()

    app = FastAPI(
        title="Fraud scoring service",
        version=settings.SERVICE_VERSION,
        description="Scores card transactions for fraud with a verified scikit-learn model.",
        lifespan=lifespan,
    )
    app.add_middleware(RequestMiddleware, settings=settings, metrics=metrics)
    app.add_exception_handler(RequestValidationError, validation_error_response)
    app.add_exception_handler(InvalidBodyError, validation_error_response)
    app.include_router(router)
    return app
