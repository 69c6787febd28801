"""The framework's ceiling: a FastAPI endpoint that answers a constant, on the service's own stack.

Same server as the service (`service.server.serve`: uvloop, httptools, no access log), same route
and request bodies, but no parsing, no model and no middleware: what the service reaches against
this is the share of its framework's pace that its own work leaves.
"""

import os

from fastapi import FastAPI

from service.server import serve

app = FastAPI()


@app.post("/v1/predict")
@app.post("/v1/predict/batch")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    serve(app, "127.0.0.1", int(os.environ["PORT"]), head_timeout_s=10.0, log_config=None)
