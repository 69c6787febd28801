"""Run the service: `python -m service` (the container's command and `make serve`'s)."""

import logging
import os
import sys

import uvicorn
from pydantic import ValidationError

from service.app import create_app
from service.artifact import ArtifactError
from service.logs import configure_logging
from service.model import ScoringModel, SelfTestError
from service.settings import Settings

KEEP_ALIVE_SECONDS = 75


def main() -> int:
    """Start uvicorn with uvloop and httptools; exit 2 with the reason on bad settings or model."""
    # HistGradientBoosting spawns a thread per core per call otherwise, which wrecks tail latency.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"invalid service settings:\n{error}", file=sys.stderr)
        return 2
    configure_logging(settings.LOG_LEVEL)
    try:
        model = ScoringModel.load(settings.MODEL_DIR)
        model.self_test()
    except (ArtifactError, SelfTestError) as error:
        logging.getLogger("service").critical("refusing to start: %s", error)
        return 2
    uvicorn.run(
        create_app(settings, model),
        host=settings.HOST,
        port=settings.PORT,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
        # Outlive the keep-alive of whatever sits in front (router, load balancer): a server that
        # closes an idle connection just as the client reuses it fails that request.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
