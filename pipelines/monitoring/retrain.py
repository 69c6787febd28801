"""Retraining when the monitor says so, under the environment's policy: which signals start it,
how much new labelled data it needs, the cool-down and the weekly limit. A retrained model is a
candidate like any other: the offline gates judge it against the champion on the newest labelled
traffic it never saw, and only then is it published and proposed; it is never deployed from here.
"""

import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from environments.model_gates import ModelGates
from environments.monitoring_policy import RetrainingPolicy
from pipelines.evaluation.evaluate import Evaluation, evaluate_model
from pipelines.model_location import LocalModel
from pipelines.model_registry import stage
from pipelines.monitoring.attempts import Attempt
from pipelines.monitoring.monitor import Monitoring
from pipelines.monitoring.observed import Observed
from pipelines.train import TrainConfig, TrainResult, compiled_bytes, metadata_for, train
from service.artifact import ModelMetadata

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Decision:
    """Whether to retrain now, which raised signals ask for it, and why (or why not)."""

    retrain: bool
    triggers: list[str]
    reason: str


def decide(
    result: Monitoring,
    labelled: Observed,
    policy: RetrainingPolicy,
    history: list[Attempt],
    now: datetime,
) -> Decision:
    """The policy's answer to this monitoring run."""
    triggers = [signal for signal in result.raised if signal in policy.triggers]
    if not triggers:
        raised = ", ".join(result.raised) or "none"
        return Decision(False, [], f"no signal that starts a retrain (raised: {raised})")
    rows = len(labelled)
    frauds = int(labelled.labels.sum()) if labelled.labels is not None else 0
    if rows < policy.min_labelled_rows or frauds < policy.min_labelled_frauds:
        return Decision(False, triggers, (
            f"{rows} labelled predictions with {frauds} frauds; a retrain needs "
            f"{policy.min_labelled_rows} labelled predictions and {policy.min_labelled_frauds} "
            "frauds: wait for feedback"
        ))  # fmt: skip
    if history and now - history[-1].at < timedelta(hours=policy.cooldown_hours):
        until = history[-1].at + timedelta(hours=policy.cooldown_hours)
        return Decision(False, triggers, (
            f"cooling down after the attempt of {history[-1].at:%Y-%m-%d %H:%M} UTC until "
            f"{until:%Y-%m-%d %H:%M} UTC"
        ))  # fmt: skip
    this_week = [a for a in history if now - a.at < WEEK]
    if len(this_week) >= policy.max_per_week:
        return Decision(False, triggers, (
            f"{len(this_week)} attempts in the last 7 days, the most the policy allows"
        ))  # fmt: skip
    return Decision(True, triggers, f"{', '.join(triggers)} raised; {rows} labelled predictions")


@dataclass(frozen=True)
class Retrained:
    """A candidate trained on the newest labelled traffic, and its gates' evaluation."""

    result: TrainResult
    metadata: ModelMetadata
    evaluation: Evaluation


def retrain(
    labelled: Observed,
    champion: LocalModel,
    gates: ModelGates,
    policy: RetrainingPolicy,
    seed: int,
) -> Retrained:
    """Train on the older labelled rows, gate on the newest `evaluation_share` of them."""
    held_out = max(int(len(labelled) * policy.evaluation_share), 1)
    training = labelled.older_than(held_out).as_dataset()
    recent = labelled.newest(held_out).as_dataset()
    config = TrainConfig(data=replace(training.spec, seed=seed))
    result = train(config, training)
    metadata = metadata_for(result)
    with tempfile.TemporaryDirectory(prefix="candidate-") as scratch:
        folder = Path(scratch)
        stage(result.model_bytes, metadata, "candidate", folder, compiled_bytes(result))
        evaluation = evaluate_model(LocalModel(folder, "retrained candidate"), champion, gates,
                                    recent=recent)  # fmt: skip
    return Retrained(result, metadata, evaluation)
