"""Real rollouts on the local platform: service processes, the router, user traffic on 127.0.0.1."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from environments.rollout_policy import RolloutPolicy, ShadowPhase
from environments.traffic import CANDIDATE_TAG
from pipelines.rollout.platform import Candidate
from pipelines.rollout.platforms.local.platform import LocalPlatform
from pipelines.rollout.platforms.local.traffic_generator import TrafficGenerator
from pipelines.rollout.run import STATE_FILE, execute
from pipelines.rollout.state import RolloutState, StateFile
from service.artifact import MODEL_FILE
from tests.pipelines.rollout.conftest import USERS_PER_SECOND

pytestmark = pytest.mark.integration


@pytest.fixture
def users(platform: LocalPlatform) -> Iterator[TrafficGenerator]:
    traffic = TrafficGenerator(platform.router_url, USERS_PER_SECOND, max_seconds=120).start()
    yield traffic
    traffic.stop()


def roll_out(
    platform: LocalPlatform,
    policy: RolloutPolicy,
    candidate: Candidate,
    users: TrafficGenerator,
    tmp_path: Path,
) -> RolloutState:
    state, _ = execute(
        platform, policy, candidate, StateFile(platform.workdir / STATE_FILE),
        tmp_path / "reports", Console(quiet=True), outcomes=lambda: list(users.outcomes),
    )  # fmt: skip
    assert (tmp_path / "reports" / f"{candidate.name}.png").stat().st_size > 10_000
    return state


def assert_back_on_stable(platform: LocalPlatform) -> None:
    split = platform.read_traffic()
    assert (split.percent("v1"), split.percent("v2"), split.tagged(CANDIDATE_TAG)) == (100, 0, "v2")


def test_a_healthy_candidate_is_promoted(
    platform: LocalPlatform,
    policy: RolloutPolicy,
    models: dict[str, Path],
    users: TrafficGenerator,
    tmp_path: Path,
) -> None:
    state = roll_out(platform, policy, Candidate("v2", models["v2"]), users, tmp_path)
    assert state.phase == "promoted", state.reason
    assert platform.read_traffic().percent("v2") == 100
    served_by_v2 = [o for o in users.outcomes if o.revision == "v2"]
    assert served_by_v2, "users reached the candidate through the router"
    assert not [o for o in users.outcomes if o.failed]


@pytest.mark.parametrize(
    ("model_name", "faults", "expected_reason"),
    [
        ("v2", {"FAULT_ERROR_RATE": "0.3"}, "at 10%: error_rate"),
        ("v2", {"FAULT_LATENCY_MS": "400"}, "latency"),
        # Healthy, fast and passing its golden checks: only the score comparison catches it.
        ("wrong", {}, "scores: prediction scores shifted"),
    ],
    ids=["error-rate regression", "latency regression", "silently wrong model"],
)
def test_a_regression_is_rolled_back(
    platform: LocalPlatform,
    policy: RolloutPolicy,
    models: dict[str, Path],
    users: TrafficGenerator,
    tmp_path: Path,
    model_name: str,
    faults: dict[str, str],
    expected_reason: str,
) -> None:
    state = roll_out(platform, policy, Candidate("v2", models[model_name], faults), users, tmp_path)
    assert state.phase == "rolled_back"
    assert expected_reason in state.reason
    assert_back_on_stable(platform)


@pytest.mark.parametrize(
    ("model_name", "faults", "expected_reason"),
    [
        ("v2", {}, None),
        ("v2", {"FAULT_ERROR_RATE": "0.3"}, "failed"),
        ("v2", {"FAULT_LATENCY_MS": "400"}, "latency"),
        ("wrong", {}, "shifted"),
    ],
    ids=["healthy", "error-rate regression", "latency regression", "silently wrong model"],
)
def test_the_shadow_phase_rolls_back_before_any_user_meets_the_candidate(
    platform: LocalPlatform,
    policy: RolloutPolicy,
    models: dict[str, Path],
    users: TrafficGenerator,
    tmp_path: Path,
    model_name: str,
    faults: dict[str, str],
    expected_reason: str | None,
) -> None:
    """The stable revision mirrors every prediction; users get every answer from stable until
    the paired gate has passed 150 mirrored requests. (These small models differ more than the
    default ones: a shuffled-label one shifts ~34% of the log-odds by more than 2, an honest
    retrain ~6%, hence a bound of 15%.)"""
    phase = ShadowPhase(requests=150, max_seconds=20, max_shifted_rate=0.15)
    shadowed = policy.model_copy(update={"shadow": phase})
    candidate = Candidate("v2", models[model_name], faults)
    state = roll_out(platform, shadowed, candidate, users, tmp_path)
    assert "shadow_start" in [d.action for d in state.decisions]
    assert not [o for o in users.outcomes if o.failed and o.revision != "v2"]
    if expected_reason is None:
        assert state.phase == "promoted", state.reason
        assert "shadow_passed" in [d.action for d in state.decisions]
        return
    assert state.phase == "rolled_back"
    assert "in the shadow phase" in state.reason
    assert expected_reason in state.reason
    assert state.first_canary_at is None
    assert not [o for o in users.outcomes if o.revision == "v2"], "no user met the candidate"
    assert not [o for o in users.outcomes if o.failed], "no user request failed"
    assert_back_on_stable(platform)


def test_a_candidate_that_never_gets_ready_never_gets_traffic(
    platform: LocalPlatform,
    policy: RolloutPolicy,
    models: dict[str, Path],
    users: TrafficGenerator,
    tmp_path: Path,
) -> None:
    broken = Path(shutil.copytree(models["v2"], tmp_path / "broken"))
    (broken / MODEL_FILE).write_bytes(b"not the model that was tested")
    state = roll_out(platform, policy, Candidate("v2", broken), users, tmp_path)
    assert state.phase == "rolled_back"
    assert "failed to deploy" in state.reason
    assert platform.read_traffic().as_dict() == [{"revision": "v1", "percent": 100, "tag": None}]
    assert not [o for o in users.outcomes if o.revision == "v2"]


def test_a_controller_killed_mid_step_is_finished_safely_by_a_rerun(
    platform: LocalPlatform, models: dict[str, Path], policy_dir: Path, tmp_path: Path
) -> None:
    """SIGKILL while the candidate is at 50%: the re-run resumes, bakes and promotes."""
    command = [
        sys.executable, "-m", "pipelines", "rollout",
        "--model", str(models["v2"]), "--revision", "v2",
        "--workdir", str(platform.workdir), "--environments-dir", str(policy_dir),
        "--reports", str(tmp_path / "reports"), "--traffic-rps", "60",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    quiet = subprocess.DEVNULL
    with subprocess.Popen(command, env=env, stdout=quiet, stderr=quiet) as first:
        store = StateFile(platform.workdir / STATE_FILE)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            state = store.load() if store.path.exists() else None
            if state and state.checks and state.checks[-1].step_percent == 50:
                break
            time.sleep(0.1)
        else:
            first.kill()
            pytest.fail("the rollout never reached its 50% step")
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert platform.read_traffic().percent("v2") == 50  # left mid-step, and recorded as such
        assert store.load().decisions[-1].reason.endswith("candidate at 50%")  # type: ignore[union-attr]

    rerun = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    final = store.load()
    assert final is not None
    assert final.phase == "promoted"
    assert "resume" in [d.action for d in final.decisions]
    assert platform.read_traffic().percent("v2") == 100
