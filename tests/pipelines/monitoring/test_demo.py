"""The drift demo end to end, over real HTTP to a real service process, at a smaller volume."""

from pathlib import Path

import pytest
from rich.console import Console

from environments.model_gates import load_gates
from environments.monitoring_policy import load_monitoring
from environments.stack_file import ENVIRONMENTS_DIR
from pipelines.monitoring.demo import Volume, run_drift_demo


@pytest.mark.integration
def test_the_three_scenarios_behave_as_the_demo_says(tmp_path: Path) -> None:
    """No drift: nothing raised, no retrain. Covariate drift: feature drift before any label,
    a retrain gated against the champion. Concept drift: nothing before the labels, lost
    performance after, a retrain. (At this volume a retrain is too small to pass the
    behavioural gates, so both end in a report and nothing ships; the full demo proposes the
    covariate one.)"""
    outcomes = run_drift_demo(
        tmp_path / "work", tmp_path / "reports", load_monitoring("local"),
        load_gates(ENVIRONMENTS_DIR / "model_gates.yaml"), Console(quiet=True),
        Volume(history=4_000, now=4_000), checkout=tmp_path,
    )  # fmt: skip
    by_name = {o.scenario.name: o for o in outcomes}
    assert all(o.as_designed for o in outcomes), {
        name: (o.before.result.raised, o.after.result.raised, o.retraining.detail)
        for name, o in by_name.items()
    }
    covariate = by_name["covariate-drift"]
    assert "amount" in next(
        f.reason for f in covariate.before.result.findings if f.signal == "feature_drift"
    )
    for name in ("covariate-drift", "concept-drift"):
        retrain = tmp_path / "reports" / name / "retrain"
        assert (retrain / "model_card.md").is_file(), name
        made = by_name[name].retraining.outcome
        assert (
            retrain / ("pull-request.md" if made == "proposed" else "failed-gates.md")
        ).is_file()
    assert (tmp_path / "reports" / "no-drift" / "monitoring.png").is_file()
    assert not (tmp_path / "reports" / "no-drift" / "retrain").exists()
