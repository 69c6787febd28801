"""The local demo: train a model, serve it on 127.0.0.1, and show what it answers."""

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from pipelines.data import DataSpec, generate, records
from pipelines.server_process import free_port, service_process
from pipelines.train import TrainConfig, train_and_publish


def _examples(count: int = 4) -> list[dict[str, Any]]:
    """Typical legitimate transactions and the riskiest-looking fraudulent ones of fresh data."""
    data = generate(DataSpec(n_rows=2_000, seed=99))
    fraud = np.flatnonzero(data.labels)
    legit = np.flatnonzero(~data.labels)
    riskiest = fraud[np.argsort(-data.columns["amount"][fraud].astype(float))]
    return records(data, np.concatenate([legit[:count], riskiest[:count]]))


def run_demo(registry: Path, reports: Path, console: Console) -> dict[str, Any]:
    """Run the demo end to end; returns (and writes) a summary of what happened."""
    shutil.rmtree(registry, ignore_errors=True)
    reports.mkdir(parents=True, exist_ok=True)
    with console.status("training a model on synthetic transactions"):
        folder = train_and_publish(TrainConfig(), registry)
    console.print(f"model artifact: [bold]{folder}[/]")

    log_path = reports / "service.log"
    log_path.unlink(missing_ok=True)
    with service_process(folder, free_port(), log_path) as server:
        with console.status(f"starting the service on {server.url}"):
            waited = server.wait_ready()
        console.print(f"service ready on {server.url} after {waited:.1f}s")
        examples = _examples()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            answers = [client.post("/v1/predict", json=body).json() for body in examples]
            batch = client.post("/v1/predict/batch", json={"instances": examples}).json()
            bad = client.post("/v1/predict", json={**examples[0], "hour": 31})
            version = client.get("/version").json()

    table = Table(title=f"predictions of model {version['model_version']}")
    for column in ("amount", "category", "channel", "cross-border", "fraud prob.", "verdict"):
        table.add_column(column)
    for body, answer in zip(examples, answers, strict=True):
        verdict = "[red]FRAUD[/]" if answer["is_fraud"] else "legit"
        verdict += " (low confidence)" if answer["low_confidence"] else ""
        table.add_row(
            f"{body['amount']:.2f}", body["merchant_category"], body["channel"],
            "yes" if body["country"] != body["card_country"] else "no",
            f"{answer['fraud_probability']:.4f}", verdict,
        )  # fmt: skip
    console.print(table)
    console.print(f"batch of {len(batch['predictions'])} scored in one call")
    console.print(f"invalid input answered {bad.status_code}: {bad.json()['detail'][0]['msg']}")
    summary = {
        "model_artifact": str(folder),
        "service_log": str(log_path),
        "model_version": version["model_version"],
        "model_metrics": version["model_metrics"],
        "predictions": answers,
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(
        f"service log: [bold]{log_path}[/]   summary: [bold]{reports / 'summary.json'}[/]"
    )
    return summary
