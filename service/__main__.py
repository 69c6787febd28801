"""Run the service: `python -m service` (the container's command and `make serve`'s)."""

import logging
import os
import sys

from pydantic import ValidationError

from service.app import create_app, load_models
from service.artifact import ArtifactError
from service.logs import configure_logging
from service.model import SelfTestError
from service.server import serve
from service.settings import Settings


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
        models = load_models(settings)
    except (ArtifactError, SelfTestError) as error:
        logging.getLogger("service").critical("refusing to start: %s", error)
        return 2
    serve(
        create_app(settings, models),
        settings.HOST,
        settings.PORT,
        settings.HEADER_READ_TIMEOUT_S,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
