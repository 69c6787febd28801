"""The verdict on constructed event logs with a known effect, and the local run end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from environments.experiment import ExperimentPlan
from pipelines.experiments.analysis import analyze
from pipelines.experiments.demo import run_experiment_demo
from pipelines.experiments.events import LogFiles
from pipelines.experiments.interleaved import analyze_interleaving, write_interleaving_report
from pipelines.experiments.report import write_report
from pipelines.terminal import console
from service.events import EventLog, RankedEntry, Served
from service.experiments import Experiment
from tests.conftest import sent

PLAN = ExperimentPlan(name="exp", minimum_effect=0.05)


def write_log(path: Path, caught: dict[str, float], users: int, seed: int) -> Path:
    """Users assigned as the service assigns them; each sends two frauds, which their arm
    catches with the given probability."""
    rng = np.random.default_rng(seed)
    experiment = Experiment("exp", "salt-salt", 0.5)
    with path.open("wb") as handle:
        events = EventLog("rev", write=handle.write)
        for n in range(users):
            user = f"u{n}"
            variant = experiment.variant(user)
            flags = [rng.random() < caught[variant] for _ in range(2)]
            events.predictions(
                Served(f"r{n}", "batch", "v1", 0.3, "exp", variant, user),
                sent(2),
                [0.5, 0.5],
                flags,
            )
            events.feedback(f"r{n}", 0, is_fraud=True)
            events.feedback(f"r{n}", 1, is_fraud=True)
    return path


def test_a_better_challenger_wins_and_the_report_says_so(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", {"champion": 0.5, "challenger": 0.62}, 1500, seed=1)
    analysis = analyze(LogFiles([log]), PLAN)
    assert analysis.decision == "win", analysis.reason
    assert analysis.exit_code == 0
    low, high = analysis.comparison.interval
    assert low < 0.12 < high, "the interval covers the true effect"
    assert not analysis.sample_ratio.mismatch
    report = write_report(analysis, tmp_path / "reports")
    assert "# Experiment exp: win" in report.read_text()
    document = json.loads(report.with_suffix(".json").read_text())
    assert document["decision"] == "win"
    assert document["plan"]["planned_size"] > 0
    assert report.with_suffix(".png").stat().st_size > 10_000


def test_a_worse_challenger_loses(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", {"champion": 0.6, "challenger": 0.45}, 1500, seed=2)
    analysis = analyze(LogFiles([log]), PLAN)
    assert (analysis.decision, analysis.exit_code) == ("loss", 1)


def test_equal_arms_give_no_decision(tmp_path: Path) -> None:
    log = write_log(tmp_path / "a.log", {"champion": 0.55, "challenger": 0.55}, 1500, seed=3)
    analysis = analyze(LogFiles([log]), PLAN)
    assert (analysis.decision, analysis.exit_code) == ("no decision", 3)


def test_a_skewed_split_voids_even_a_large_difference(tmp_path: Path) -> None:
    """The analysis is told the challenger has 20% of users; the service gave it half."""
    log = write_log(tmp_path / "a.log", {"champion": 0.5, "challenger": 0.7}, 1500, seed=4)
    analysis = analyze(LogFiles([log]), PLAN.model_copy(update={"allocation": 0.2}))
    assert analysis.decision == "no decision"
    assert analysis.reason.startswith("sample ratio mismatch")


@pytest.mark.integration
def test_the_local_run_finds_the_wins_and_no_difference_in_the_aa_run(tmp_path: Path) -> None:
    """Half the demo's users (its 300 rankings are what interleaving needs here): the same
    decisions, in less time."""
    decisions = run_experiment_demo(tmp_path / "work", tmp_path / "reports", console, users=250)
    assert decisions == {"challenger-wins": "win", "a-a": "no decision", "ranking": "win"}
    assert (tmp_path / "reports" / "a-a.md").is_file()


def write_rankings(path: Path, challenger_better: float, queues: int, seed: int) -> Path:
    """Each ranking's top two placements, one per team, reviewed; the challenger's is a
    confirmed fraud with probability `challenger_better`, the champion's with 0.5."""
    rng = np.random.default_rng(seed)
    with path.open("wb") as handle:
        events = EventLog("rev", write=handle.write)
        for n in range(queues):
            served = Served(f"q{n}", "rank", "v1", 0.3, "ranker")
            entries = [RankedEntry(0, 0, "challenger", 0.9, True),
                       RankedEntry(1, 1, "champion", 0.8, True)]  # fmt: skip
            events.ranking(served, entries)
            events.feedback(f"q{n}", 0, is_fraud=bool(rng.random() < challenger_better))
            events.feedback(f"q{n}", 1, is_fraud=bool(rng.random() < 0.5))
    return path


def test_interleaving_names_a_winner_only_when_significant(tmp_path: Path) -> None:
    plan = ExperimentPlan(name="ranker", kind="interleaving")
    better = analyze_interleaving(LogFiles([write_rankings(tmp_path / "a.log", 0.8, 300, 1)]), plan)
    assert (better.decision, better.exit_code) == ("win", 0)
    assert better.queries == 300
    assert better.challenger_wins > better.champion_wins
    assert better.challenger_wins + better.champion_wins + better.ties == 300
    same = analyze_interleaving(LogFiles([write_rankings(tmp_path / "b.log", 0.5, 300, 2)]), plan)
    assert same.decision == "no decision"
    worse = analyze_interleaving(LogFiles([write_rankings(tmp_path / "c.log", 0.2, 300, 3)]), plan)
    assert worse.decision == "loss"
    report = write_interleaving_report(better, tmp_path / "reports")
    assert "# Interleaving ranker: win" in report.read_text()
