"""The controller's state machine against a scripted platform and a fake clock (no processes)."""

import itertools
import math
from pathlib import Path

import httpx
import pytest

from environments.rollout_policy import RolloutPolicy, ShadowPhase
from environments.traffic import CANDIDATE_TAG, TrafficSplit, stable_only
from pipelines.rollout.controller import Controller
from pipelines.rollout.platform import Candidate, DeployError, Mark, Move
from pipelines.rollout.state import RolloutState, StateFile
from pipelines.rollout.window import ShadowCounts, Snapshot

POLICY = RolloutPolicy(
    steps=[10, 50], bake_seconds=10, check_interval_seconds=2, min_requests=30,
    max_extension_seconds=6,
)  # fmt: skip
CANDIDATE = Candidate("v2", Path("unused"))
SHADOW = POLICY.model_copy(update={"shadow": ShadowPhase(requests=200, max_seconds=30)})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakePlatform:  # pylint: disable=too-many-instance-attributes  # its knobs
    """Counts grow with time and traffic share; the candidate's error rate is configurable."""

    min_check_interval_seconds = 0.0
    shadow_settle_seconds = 7.0

    def __init__(
        self,
        clock: FakeClock,
        candidate_error_rate: float = 0.0,
        rps: float = 100.0,
        candidate_shift_rate: float = 0.0,
    ) -> None:
        self.clock = clock
        # Shadow traffic: v1 mirrors while the switch is on, if it can; shifted: scores that move.
        self.can_mirror = True
        self.switch: tuple[str, str, float, float] | None = None
        self.candidate_shift_rate = candidate_shift_rate
        self.shadow = [0.0, 0.0, 0.0]  # mirrored, failed, shifted
        self.split = stable_only("v1")
        self.candidate_error_rate = candidate_error_rate
        self.rps = rps
        self.deploy_fails = False
        self.metrics_lag_until = 0.0
        self.deployed: list[str] = []
        self.applied: list[Move] = []
        self.totals = {"v1": [0.0, 0.0], "v2": [0.0, 0.0]}
        self.last = clock()

    def _advance(self) -> None:
        elapsed, self.last = self.clock() - self.last, self.clock()
        if self.switch and self.switch[3] > self.clock():
            mirrored = self.rps * elapsed * self.switch[2]
            self.shadow[0] += mirrored
            self.shadow[1] += mirrored * self.candidate_error_rate
            self.shadow[2] += mirrored * self.candidate_shift_rate
            self.totals["v2"][0] += mirrored
        for target in self.split.targets:
            served = self.rps * elapsed * target.percent / 100
            rate = self.candidate_error_rate if target.revision == "v2" else 0.0
            self.totals[target.revision][0] += served
            self.totals[target.revision][1] += served * rate

    def deploy(self, revision: Candidate) -> None:
        if self.deploy_fails:
            raise DeployError("never became ready")
        self.deployed.append(revision.name)

    def apply(self, move: Move) -> None:
        self._advance()
        self.split = move.split
        self.applied.append(move)

    @property
    def history(self) -> list[TrafficSplit]:
        return [move.split for move in self.applied]

    @property
    def moves(self) -> list[str]:
        return [move.action for move in self.applied]

    def read_traffic(self) -> TrafficSplit:
        return self.split

    def _snapshot(self, revision: str) -> Snapshot:
        self._advance()
        requests, errors = self.totals[revision]
        latency = {0.01: requests, math.inf: requests}
        scores = {0.05: requests, 1.0: requests, math.inf: requests}
        mirrored, failed, shifted = (round(x) for x in self.shadow)
        compared = mirrored - failed
        shadow = ShadowCounts(
            ok=compared, failed=failed, differences={0.01: compared, math.inf: compared},
            shifted=shifted, flips=0,
        )  # fmt: skip
        mirrors = revision == "v1" and self.can_mirror
        return Snapshot(requests, round(errors), latency, scores, shadow if mirrors else None)

    def mark(self, revision: str) -> Mark:
        return self._snapshot(revision)

    def window(self, revision: str, since: Mark) -> Snapshot | None:
        assert isinstance(since, Snapshot)
        if self.clock() < self.metrics_lag_until:
            return None  # a backend that has not caught up yet
        return self._snapshot(revision).minus(since)

    def is_ready(self, revision: str) -> bool:
        return revision in self.totals

    def mirror(self, source: str, candidate: str, phase: ShadowPhase, until: float) -> None:
        self._advance()
        self.switch = (source, candidate, phase.sample_rate, until)

    def stop_mirror(self) -> None:
        self._advance()
        self.switch = None

    def tagged_client(self, tag: str) -> httpx.Client:
        assert tag == CANDIDATE_TAG
        return httpx.Client()

    def events(self) -> None:
        return None

    def links(self) -> dict[str, str]:
        return {}


def controller(
    platform: FakePlatform,
    clock: FakeClock,
    tmp_path: Path,
    smoke: list[str] | None = None,
    policy: RolloutPolicy = POLICY,
) -> Controller:
    return Controller(
        platform, policy, StateFile(tmp_path / "state.json"), "local",
        clock=clock, sleep=clock.sleep, smoke=lambda client, model_dir: smoke or [],
    )  # fmt: skip


def stop_at_check(
    target: Controller, error: BaseException, platform: FakePlatform, at_percent: int | None = None
) -> None:
    """Make `target` raise `error` at its first gate check (at `at_percent`, if given)."""

    def listener(kind: str, _state: object) -> None:
        if kind == "check" and at_percent in (None, platform.split.percent("v2")):
            raise error

    target.listeners.append(listener)


def test_a_healthy_candidate_walks_every_step_and_is_promoted(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "promoted"
    assert [s.percent("v2") for s in platform.history] == [0, 10, 50, 100]
    assert [d.action for d in state.decisions] == [
        "start", "dark_launch", "smoke_passed", "set_traffic", "set_traffic", "promote"
    ]  # fmt: skip
    assert StateFile(tmp_path / "state.json").load() == state
    assert platform.moves == ["deploy", "canary", "canary", "promote"]
    assert [d.release for d in state.decisions if d.traffic] == platform.moves


def test_an_erroring_candidate_is_rolled_back_and_kept_tagged(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock, candidate_error_rate=0.2)
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "rolled_back"
    assert "error_rate" in state.reason
    final = platform.split
    assert (final.percent("v1"), final.percent("v2"), final.tagged(CANDIDATE_TAG)) == (100, 0, "v2")
    assert state.back_on_stable_at is not None
    assert state.first_canary_at is not None
    assert state.back_on_stable_at - state.first_canary_at <= POLICY.bake_seconds


def test_a_candidate_that_fails_to_deploy_never_gets_traffic(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.deploy_fails = True
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "rolled_back"
    assert "failed to deploy" in state.reason
    assert all(split.percent("v2") == 0 for split in platform.history)
    assert platform.split == stable_only("v1")


def test_failed_smoke_checks_roll_back_before_any_user_traffic(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    state = controller(platform, clock, tmp_path, smoke=["golden predictions differ"]).rollout(
        CANDIDATE
    )
    assert state.phase == "rolled_back"
    assert "golden predictions differ" in state.reason
    assert max(split.percent("v2") for split in platform.history) == 0


def test_insufficient_data_fails_closed_after_the_extension(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock, rps=1.0)
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "rolled_back"
    assert "not enough data" in state.reason
    assert state.first_canary_at is not None
    baked = state.checks[-1].at - state.first_canary_at
    assert baked >= POLICY.bake_seconds + POLICY.max_extension_seconds


def test_a_lagging_metrics_backend_makes_the_step_wait_never_pass(tmp_path: Path) -> None:
    """A window the backend has not caught up with is INSUFFICIENT_DATA: the bake extends."""
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.metrics_lag_until = clock() + 14  # longer than a bake, shorter than the extension
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "promoted"
    lagging = [c for c in state.checks if c.verdict == "INSUFFICIENT_DATA"]
    assert lagging, "the first checks waited for the backend"
    assert all(c.at < platform.metrics_lag_until + POLICY.check_interval_seconds for c in lagging)
    assert any("lags behind" in str(g) for c in lagging for g in c.gates)
    stepped = [d.at for d in state.decisions if d.action == "set_traffic"]
    assert stepped[1] - stepped[0] > POLICY.bake_seconds, "the first step baked past its time"


def test_a_backend_that_never_catches_up_rolls_back_fail_closed(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.metrics_lag_until = math.inf
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "rolled_back"
    assert "lags behind" in state.reason


def test_insufficient_data_can_pass_when_the_policy_says_so(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock, rps=1.0)
    lenient = controller(platform, clock, tmp_path)
    lenient.policy = POLICY.model_copy(update={"on_insufficient_data": "pass"})
    assert lenient.rollout(CANDIDATE).phase == "promoted"


def test_an_interrupted_rollout_resumes_from_its_recorded_step(tmp_path: Path) -> None:
    """Killed while baking 50%: the next run re-bakes 50% and promotes, with the gap recorded."""
    clock = FakeClock()
    platform = FakePlatform(clock)
    first = controller(platform, clock, tmp_path)
    stop_at_check(first, KeyboardInterrupt(), platform, at_percent=50)
    with pytest.raises(KeyboardInterrupt):
        first.rollout(CANDIDATE)
    interrupted = StateFile(tmp_path / "state.json").load()
    assert interrupted is not None
    assert (interrupted.phase, interrupted.step_index) == ("canary", 1)

    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    assert state.phase == "promoted"
    assert "resume" in [d.action for d in state.decisions]
    assert platform.deployed == ["v2"]  # not deployed twice


def test_an_unexpected_error_rolls_back_then_surfaces(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    broken = controller(platform, clock, tmp_path)
    stop_at_check(broken, RuntimeError("metrics backend exploded"), platform)
    with pytest.raises(RuntimeError, match="exploded"):
        broken.rollout(CANDIDATE)
    assert platform.split.percent("v2") == 0
    state = StateFile(tmp_path / "state.json").load()
    assert state is not None
    assert state.phase == "rolled_back"


def test_a_split_traffic_state_is_refused_at_start(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.split = TrafficSplit.from_dict(
        [{"revision": "v1", "percent": 50}, {"revision": "v0", "percent": 50}]
    )
    with pytest.raises(DeployError, match="finish or roll back"):
        controller(platform, clock, tmp_path).rollout(CANDIDATE)


def test_manual_rollback_of_an_unfinished_rollout(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    first = controller(platform, clock, tmp_path)
    stop_at_check(first, KeyboardInterrupt(), platform)
    with pytest.raises(KeyboardInterrupt):
        first.rollout(CANDIDATE)
    assert platform.split.percent("v2") == 10
    state = controller(platform, clock, tmp_path).rollback("operator said so")
    assert state is not None
    assert (state.phase, state.reason) == ("rolled_back", "operator said so")
    assert platform.split.percent("v2") == 0


def test_a_rollback_recorded_but_not_applied_is_applied_by_the_next_run(tmp_path: Path) -> None:
    """Rolled back right after the dark launch, the split is the same as before: the re-run
    still hands the platform the rollback, so a platform that records phases can move on."""
    clock = FakeClock()
    platform = FakePlatform(clock)
    failing = controller(platform, clock, tmp_path, smoke=["golden predictions differ"])

    def crash_before_applying(kind: str, state: RolloutState) -> None:
        if kind == "decision" and state.decisions[-1].action == "roll_back":
            raise KeyboardInterrupt

    failing.listeners.append(crash_before_applying)
    with pytest.raises(KeyboardInterrupt):
        failing.rollout(CANDIDATE)
    assert platform.moves == ["deploy"]

    state = controller(platform, clock, tmp_path).rollback()
    assert state is not None
    assert state.phase == "rolled_back"
    assert platform.moves == ["deploy", "rollback"]
    assert [d.action for d in state.decisions][-1] == "roll_back", "applied, not decided again"


def test_gates_are_checked_no_faster_than_the_platform_can_show_new_data(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.min_check_interval_seconds = 5.0  # > POLICY.check_interval_seconds
    state = controller(platform, clock, tmp_path).rollout(CANDIDATE)
    gaps = {round(b.at - a.at, 6) for a, b in itertools.pairwise(state.checks)
            if a.step_percent == b.step_percent}  # fmt: skip
    assert gaps == {5.0}


def test_a_finished_record_does_not_undo_what_happened_since(tmp_path: Path) -> None:
    """Promoted, then someone released v3 by hand: the next rollout starts from v3 and does not
    re-apply the old promotion."""
    clock = FakeClock()
    platform = FakePlatform(clock)
    assert controller(platform, clock, tmp_path).rollout(CANDIDATE).phase == "promoted"
    platform.split = stable_only("v3")
    platform.totals |= {"v3": [0.0, 0.0], "v4": [0.0, 0.0]}
    applied = len(platform.applied)
    state = controller(platform, clock, tmp_path).rollout(Candidate("v4", Path("unused")))
    assert state.stable == "v3"
    assert platform.applied[applied].action == "deploy", "nothing re-applied first"


def test_the_shadow_phase_comes_between_smoke_and_the_first_step(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    state = controller(platform, clock, tmp_path, policy=SHADOW).rollout(CANDIDATE)
    assert state.phase == "promoted"
    assert [d.action for d in state.decisions][:5] == [
        "start", "dark_launch", "smoke_passed", "shadow_start", "shadow_passed"
    ]  # fmt: skip
    shadow_checks = [c for c in state.checks if c.step_percent == 0]
    assert shadow_checks[-1].verdict == "PASS"
    assert platform.shadow[0] >= SHADOW.shadow.requests
    assert platform.switch is None, "the switch is cleared when the phase ends"
    first_step = next(d.at for d in state.decisions if d.action == "set_traffic")
    assert first_step - shadow_checks[-1].at >= platform.shadow_settle_seconds, (
        "the first canary window opens after the last mirrored request could land"
    )


@pytest.mark.parametrize(
    ("errors", "shifted", "gate"),
    [(0.2, 0.0, "failed"), (0.0, 0.5, "shifted")],
    ids=["erroring", "silently wrong"],
)
def test_a_candidate_failing_on_mirrored_traffic_never_meets_a_user(
    tmp_path: Path, errors: float, shifted: float, gate: str
) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock, candidate_error_rate=errors, candidate_shift_rate=shifted)
    state = controller(platform, clock, tmp_path, policy=SHADOW).rollout(CANDIDATE)
    assert state.phase == "rolled_back"
    assert "in the shadow phase" in state.reason
    assert gate in state.reason
    assert max(split.percent("v2") for split in platform.history) == 0
    assert state.first_canary_at is None
    assert platform.switch is None


def test_a_stable_revision_that_cannot_mirror_skips_to_the_canary(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.can_mirror = False
    state = controller(platform, clock, tmp_path, policy=SHADOW).rollout(CANDIDATE)
    assert state.phase == "promoted"
    assert "shadow_skipped" in [d.action for d in state.decisions]
    assert len([c for c in state.checks if c.step_percent == 0]) == 1, "it did not wait"


def test_a_manual_rollback_turns_mirroring_off(tmp_path: Path) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    target = controller(platform, clock, tmp_path, policy=SHADOW)
    stop_at_check(target, KeyboardInterrupt(), platform)
    with pytest.raises(KeyboardInterrupt):
        target.rollout(CANDIDATE)
    platform.switch = ("v1", "v2", 1.0, clock() + 100)  # as if the process died mid-phase
    target.listeners.clear()
    target.rollback("manual")
    assert platform.switch is None
