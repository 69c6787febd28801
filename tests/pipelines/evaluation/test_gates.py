"""Each offline gate passes a sound model and fails a model built to break it."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import numpy.typing as npt
import pytest
from typer.testing import CliRunner

from environments.model_gates import GatesConfigError, ModelGates, load_gates
from pipelines.cli import app
from pipelines.evaluation.behaviour import behaviour_gate, robustness_gate
from pipelines.evaluation.evaluate import Evaluation, evaluate_model
from pipelines.evaluation.fairness import fairness_gate
from pipelines.evaluation.latency import latency_gate
from pipelines.evaluation.model_card import write_reports
from pipelines.evaluation.verdict import schema
from pipelines.model_location import LocalModel
from service.model import ScoringModel

GATES = load_gates()  # the shipped thresholds, on the shipped evaluation data
Matrix = npt.NDArray[np.object_]


pytestmark = pytest.mark.integration  # trains a full-size model once (seconds)


@pytest.fixture(scope="module")
def evaluation(default_model_dir: Path) -> Evaluation:
    return evaluate_model(LocalModel.of(default_model_dir), LocalModel.of(default_model_dir), GATES)


@pytest.fixture(scope="module")
def model(default_model_dir: Path) -> ScoringModel:
    return ScoringModel.load(default_model_dir)


def rows(evaluation: Evaluation) -> list[dict[str, object]]:
    from pipelines.data import records  # pylint: disable=import-outside-toplevel

    return records(evaluation.data, range(GATES.behaviour.rows))


def test_the_default_model_passes_every_gate_and_the_verdict_follows_the_schema(
    evaluation: Evaluation, tmp_path: Path
) -> None:
    path = write_reports(evaluation, tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema())
    assert document["passed"], document["failed_gates"]
    assert [g["gate"] for g in document["gates"]] == [
        "data", "quality", "regression", "fairness", "behaviour", "robustness", "latency"
    ]  # fmt: skip
    assert document["passed"] == (document["failed_gates"] == [])
    quality = next(g for g in document["gates"] if g["gate"] == "quality")
    assert document["champion_quality"] == quality["figures"], "the champion is the same model"
    card = (tmp_path / "model_card.md").read_text(encoding="utf-8")
    assert "| fairness |" in card
    assert (tmp_path / "model_card.png").stat().st_size > 20_000


def test_a_model_compared_with_itself_does_not_regress(evaluation: Evaluation) -> None:
    regression = next(g for g in evaluation.verdict["gates"] if g["gate"] == "regression")
    assert regression["passed"]
    assert regression["figures"]["auc_difference"] == 0.0


def test_the_fairness_gate_stops_a_model_that_misses_one_groups_fraud(
    evaluation: Evaluation,
) -> None:
    labels, groups = evaluation.data.labels, evaluation.data.groups
    scores, threshold = evaluation.candidate_scores, evaluation.candidate.threshold
    sound = fairness_gate(labels, scores, threshold, groups, GATES.fairness)
    biased = np.where(groups == "61+", scores * 0.05, scores)  # the old go unflagged
    unfair = fairness_gate(labels, biased, threshold, groups, GATES.fairness)
    assert not unfair.passed
    assert "recall of group 61+" in unfair.reason
    assert unfair.figures["equalized_odds_difference"] > sound.figures["equalized_odds_difference"]


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda score, m: 1 - score(m), "lowered the score"),  # learned the pattern backwards
        (
            lambda score, m: np.where(m[:, 1] == "US", 0.9, score(m)),  # keyed on a country
            "another country shifts scores",
        ),
        (lambda score, m: np.full(len(m), 0.5), "obviously legitimate purchase scores"),
    ],
    ids=["backwards", "country", "constant"],
)
def test_each_behavioural_test_fails_a_model_built_to_break_it(
    model: ScoringModel, evaluation: Evaluation, break_it: object, expected: str
) -> None:
    threshold = evaluation.candidate.threshold
    assert behaviour_gate(model.score_rows, rows(evaluation), threshold, GATES.behaviour).passed

    def broken(matrix: Matrix) -> npt.NDArray[np.float64]:
        return np.asarray(break_it(model.score_rows, matrix), dtype=np.float64)  # type: ignore[operator]

    result = behaviour_gate(broken, rows(evaluation), threshold, GATES.behaviour)
    assert not result.passed
    assert expected in result.reason


def test_robustness_passes_the_model_and_fails_a_jumpy_or_broken_one(
    model: ScoringModel, evaluation: Evaluation
) -> None:
    assert robustness_gate(model.score_rows, rows(evaluation), GATES.behaviour).passed
    rng = np.random.default_rng(1)

    def jumpy(matrix: Matrix) -> npt.NDArray[np.float64]:
        return np.clip(model.score_rows(matrix) + rng.normal(0, 0.05, len(matrix)), 0, 1)

    assert "1% changes" in robustness_gate(jumpy, rows(evaluation), GATES.behaviour).reason

    def out_of_range(matrix: Matrix) -> npt.NDArray[np.float64]:
        return model.score_rows(matrix) * 2 - 0.5

    assert (
        "outside [0, 1]" in robustness_gate(out_of_range, rows(evaluation), GATES.behaviour).reason
    )


def test_latency_is_measured_against_its_budget(
    model: ScoringModel, evaluation: Evaluation
) -> None:
    tight = GATES.latency.model_copy(update={"max_ms_one_row": 1e-6})
    result = latency_gate(model.score_rows, rows(evaluation), tight)
    assert not result.passed
    assert result.figures["ms_one_row"] > 0
    # A budget no machine misses, however busy: the shipped budget is the benchmark's business.
    loose = GATES.latency.model_copy(update={"max_ms_one_row": 1e4, "max_ms_hundred_rows": 1e4})
    assert latency_gate(model.score_rows, rows(evaluation), loose).passed


def test_the_evaluation_seed_may_not_be_a_training_seed(model_dir: Path) -> None:
    """(The small shared model: this gate does not need a good one.)"""
    seed = ScoringModel.load(model_dir).metadata.seed
    same = GATES.model_copy(
        update={"evaluation": GATES.evaluation.model_copy(update={"seed": seed})}
    )
    data = next(
        g
        for g in evaluate_model(LocalModel.of(model_dir), None, same).verdict["gates"]
        if g["gate"] == "data"
    )
    assert not data["passed"]
    assert "evaluation seed" in data["reason"]


def test_a_bad_gates_file_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "gates.yaml"
    document = GATES.model_dump()
    document["fairness"]["max_equalized_odds_difference"] = 1.5
    document["quality"]["min_auc"] = 0.9
    bad.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(GatesConfigError) as raised:
        load_gates(bad)
    assert "fairness.max_equalized_odds_difference" in str(raised.value)
    assert "quality.min_auc" in str(raised.value)


def test_the_command_exits_0_1_or_2(default_model_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    gates = tmp_path / "gates.yaml"
    gates.write_text(json.dumps(GATES.model_dump()), encoding="utf-8")
    args = ["evaluate", "--candidate", str(default_model_dir), "--gates-file", str(gates),
            "--reports", str(tmp_path / "reports")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    strict = GATES.model_dump()
    strict["quality"]["min_roc_auc"] = 0.999
    gates.write_text(json.dumps(strict), encoding="utf-8")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "roc_auc" in " ".join(result.output.split())
    assert runner.invoke(app, [*args[:1], "--candidate", str(tmp_path)]).exit_code == 2


def test_the_shipped_thresholds_load() -> None:
    assert isinstance(load_gates(), ModelGates)
