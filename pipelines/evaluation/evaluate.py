"""Judge a candidate model before it may ship: every offline gate on one held-out data set.

The candidate and the champion (the production model, when there is one) score the same rows,
drawn from a seed no model trains on. Each gate returns its figures next to its thresholds; the
candidate passes only if every gate passes.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from environments.model_gates import ModelGates
from pipelines.data import Dataset, DataSpec, generate, records
from pipelines.evaluation.behaviour import behaviour_gate, robustness_gate
from pipelines.evaluation.fairness import by_group, fairness_gate
from pipelines.evaluation.latency import latency_gate
from pipelines.evaluation.quality import quality_figures, quality_gate
from pipelines.evaluation.regression import regression_gate
from pipelines.evaluation.verdict import GateResult, verdict
from pipelines.frame_schema import validate_columns
from pipelines.model_location import LocalModel
from service.features import FEATURES, encode_columns
from service.model import ScoringModel

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Evaluation:
    """The verdict, and what the model card draws."""

    verdict: dict[str, Any]
    candidate: ScoringModel
    champion: ScoringModel | None
    data: Dataset
    candidate_scores: npt.NDArray[np.float64]
    champion_scores: npt.NDArray[np.float64] | None
    # Recall, false-positive rate and flagged share per group, on the evaluation set.
    by_group: dict[str, dict[str, float]]


def _model(where: LocalModel, model: ScoringModel) -> dict[str, Any]:
    return {"location": where.location, "version": model.version, "sha256": model.metadata.sha256}


def data_gate(data: Dataset, candidate: ScoringModel, gates: ModelGates) -> GateResult:
    """Metrics are trusted only on valid data that the candidate never trained on."""
    report = validate_columns(data.columns, FEATURES)
    problems = [] if report.ok else [report.summary()]
    if candidate.metadata.seed == gates.evaluation.seed:
        problems.append(
            f"the candidate was trained on seed {candidate.metadata.seed}, the evaluation seed: "
            "retrain with another seed or change evaluation.seed"
        )
    figures = {"rows": float(len(data)), "fraud_rate": float(data.labels.mean())}
    reason = "; ".join(problems) or f"{len(data)} valid rows the candidate never saw"
    return GateResult("data", not problems, reason, figures, {})


def evaluate_model(
    candidate_at: LocalModel,
    champion_at: LocalModel | None,
    gates: ModelGates,
    progress: Progress = lambda _: None,
    recent: Dataset | None = None,
) -> Evaluation:
    """Every gate on the candidate (loaded and verified like the service loads it).

    With `recent` (labelled traffic a retrained candidate never saw), quality and the
    comparison with the champion are judged on it: the world the model will serve. Fairness
    stays on the evaluation set, whose rows carry the group that traffic does not.
    """
    progress("loading and verifying the models")
    candidate = ScoringModel.load(candidate_at.folder)
    champion = ScoringModel.load(champion_at.folder) if champion_at else None
    progress(f"drawing {gates.evaluation.rows} evaluation rows")
    evaluation_set = generate(DataSpec(n_rows=gates.evaluation.rows, seed=gates.evaluation.seed))
    data = recent if recent is not None else evaluation_set
    results = [data_gate(data, candidate, gates)]
    progress("scoring")
    matrix = encode_columns(data.columns)
    scores = candidate.score_rows(matrix)
    champion_scores = champion.score_rows(matrix) if champion else None
    threshold = candidate.threshold
    grouped = evaluation_set.labels, evaluation_set.groups
    group_scores = (
        scores if data is evaluation_set
        else candidate.score_rows(encode_columns(evaluation_set.columns))
    )  # fmt: skip
    progress("quality, regression and fairness")
    results += [
        quality_gate(data.labels, scores, threshold, gates.quality),
        regression_gate(data.labels, scores, champion_scores, gates.regression),
        fairness_gate(grouped[0], group_scores, threshold, grouped[1], gates.fairness),
    ]
    progress("behaviour, robustness and latency")
    rows = records(data, range(min(gates.behaviour.rows, len(data))))
    results += [
        behaviour_gate(candidate.score_rows, rows, threshold, gates.behaviour),
        robustness_gate(candidate.score_rows, rows, gates.behaviour),
        latency_gate(candidate.score_rows, rows, gates.latency),
    ]
    document = verdict(
        _model(candidate_at, candidate),
        _model(champion_at, champion) if champion_at and champion else None,
        results,
        quality_figures(data.labels, champion_scores, champion.threshold)
        if champion and champion_scores is not None
        else None,
    )
    by_groups = by_group(grouped[0], group_scores >= threshold, grouped[1])
    return Evaluation(document, candidate, champion, data, scores, champion_scores, by_groups)
