"""The baseline: how a FastAPI + scikit-learn service is usually first written.

A sync handler (run in the threadpool), one `predict_proba` per request, a plain pydantic model,
default uvicorn settings with the access log on. Same model file, same feature encoding, same
JSON in and out as the real service, so the benchmark compares serving, not models.
"""

import os
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel

from service.artifact import load_verified
from service.features import encode_transactions
from service.schemas import Transaction

metadata, model = load_verified(Path(os.environ["MODEL_DIR"]))
app = FastAPI()


class Batch(BaseModel):
    """The batch body, validated the usual way."""

    instances: list[Transaction]


@app.get("/readyz")
def readyz() -> dict[str, str]:
    return {"status": "ready"}


@app.post("/v1/predict")
def predict(transaction: Transaction) -> dict[str, object]:
    probability = float(model.predict_proba(encode_transactions([transaction]))[0, 1])
    return {"fraud_probability": probability, "is_fraud": probability >= metadata.threshold}


@app.post("/v1/predict/batch")
def predict_batch(batch: Batch) -> dict[str, object]:
    scores = model.predict_proba(encode_transactions(batch.instances))[:, 1].tolist()
    return {"predictions": [{"fraud_probability": s} for s in scores]}
