"""A controller SIGKILLed at any point and run again finishes its rollout and leaves no orphan."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from environments.traffic import TrafficSplit
from pipelines.rollout.crash_points import CRASH_VARIABLE
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.rollout.platforms.local.processes import MARKER, marked
from pipelines.rollout.run import STATE_FILE
from pipelines.rollout.state import StateFile
from tests.pipelines.rollout.conftest import FAST_POLICY

pytestmark = pytest.mark.integration

# One canary step, so each of the twelve runs is short; the gates are the shared fast policy's.
ONE_STEP_POLICY = FAST_POLICY.replace("steps: [10, 50]", "steps: [50]")
# (where the first run dies, how the re-run must end); the faulty candidate fails half its
# predictions, so its rollout rolls back.
POINTS = [
    ("intent:v2", "promoted"),  # recorded, not yet spawned
    ("spawned:v2", "promoted"),  # spawned, its pid not yet recorded
    ("decided:set_traffic", "promoted"),  # a canary step recorded, not yet applied
    ("baking", "promoted"),  # mid-bake
    ("decided:promote", "promoted"),  # the promotion recorded, not yet applied
    ("decided:roll_back", "rolled_back"),  # the rollback recorded, not yet applied
]


def rollout(  # pylint: disable=too-many-arguments
    platform: LocalPlatform,
    model: Path,
    policy_dir: Path,
    tmp: Path,
    crash_at: str | None,
    faulty: bool,
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "pipelines", "rollout", "--model", str(model), "--revision", "v2",
        "--workdir", str(platform.workdir), "--environments-dir", str(policy_dir),
        "--reports", str(tmp / "reports"), "--traffic-rps", "60",
    ]  # fmt: skip
    if faulty:  # the same candidate in both runs: its rollout rolls back
        command += ["--fault-error-rate", "0.5"]
    env = {k: v for k, v in os.environ.items() if k != CRASH_VARIABLE}
    env |= {"OMP_NUM_THREADS": "1"} | ({CRASH_VARIABLE: crash_at} if crash_at else {})
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def one_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("one-step")
    (folder / "local.yaml").write_text(ONE_STEP_POLICY)
    return folder


@pytest.mark.parametrize(("point", "outcome"), POINTS, ids=[p for p, _ in POINTS])
def test_a_rerun_finishes_and_nothing_runs_unrecorded(
    platform: LocalPlatform,
    models: dict[str, Path],
    one_step: Path,
    tmp_path: Path,
    point: str,
    outcome: str,
) -> None:
    faulty = outcome == "rolled_back"
    first = rollout(platform, models["v2"], one_step, tmp_path, point, faulty)
    assert first.returncode == -signal.SIGKILL, first.stdout + first.stderr
    rerun = rollout(platform, models["v2"], one_step, tmp_path, None, faulty)
    assert rerun.returncode == (0 if outcome == "promoted" else 1), rerun.stdout + rerun.stderr

    state = StateFile(platform.workdir / STATE_FILE).load()
    assert state is not None
    assert state.phase == outcome
    last_split = next(d.traffic for d in reversed(state.decisions) if d.traffic)
    assert platform.read_traffic() == TrafficSplit.from_dict(last_split or [])

    record = json.loads(platform.record_path.read_text())
    recorded = {record["router"]["pid"]} | {r["pid"] for r in record["revisions"].values()}
    assert {t.revision for t in platform.read_traffic().targets} <= set(record["revisions"])
    running = {found.pid for found in marked(f"{record['id']}:", MARKER)}
    assert running == recorded, f"unrecorded: {running - recorded}, gone: {recorded - running}"
