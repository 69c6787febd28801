"""The rollout controller: dark launch, smoke, canary steps behind gates, promote or roll back.

It moves through the release state machine the Pulumi program uses (environments/release.py):
each move is checked by `transition` (a canary percent must be one of the policy's steps) and
recorded in the state file before the platform acts, so a killed controller can be re-run: it
resumes the step it was baking (re-baking it from the start) and never leaves traffic on a split
without a recorded decision. Any failed gate, smoke check or unexpected error rolls back: stable
at 100%, the candidate kept at 0% with its tag for debugging.

With a shadow phase in the policy, the candidate first meets a mirrored copy of live traffic at
0% user exposure (service/shadow.py), between the smoke checks and the first canary step: a
candidate that fails on mirrored requests is rolled back before any user request reached it.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from environments.release import IN_FLIGHT, Action, transition
from environments.rollout_policy import RolloutPolicy
from environments.traffic import CANDIDATE_TAG, TrafficSplit, canary, promoted, stable_only
from pipelines.rollout.crash_points import crash_point
from pipelines.rollout.gates import (
    GateResult,
    Verdict,
    cannot_mirror,
    combined,
    evaluate,
    evaluate_shadow,
    readiness_gate,
)
from pipelines.rollout.platform import Candidate, DeployError, Mark, MetricsError, Move, Platform
from pipelines.rollout.smoke import smoke_problems
from pipelines.rollout.state import Check, Decision, RolloutState, StateStore
from pipelines.rollout.window import Snapshot

Listener = Callable[[str, RolloutState], None]
# Gates of one window: (candidate, stable, candidate ready) -> results.
Judge = Callable[[Snapshot, Snapshot, bool], list[GateResult]]
# How long a shadow switch outlives the phase it was written for, should nobody clear it.
SHADOW_LEASE_MARGIN_S = 60.0


class RolloutAbortedError(Exception):
    """Internal: a step failed; carries the reason to the rollback."""


@dataclass
class Controller:
    """Moves one platform between release states for one candidate, per the policy."""

    platform: Platform
    policy: RolloutPolicy
    store: StateStore
    environment: str
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    listeners: list[Listener] = field(default_factory=list)
    smoke: Callable[[httpx.Client, Path], list[str]] = smoke_problems

    def _emit(self, kind: str, state: RolloutState) -> None:
        self.store.save(state)
        for listener in self.listeners:
            listener(kind, state)

    def _decide(
        self, state: RolloutState, action: str, reason: str, move: Move | None = None
    ) -> None:
        """Record first, then act: the record always covers the split that is in force."""
        state.decisions.append(
            Decision(
                at=self.clock(), action=action, reason=reason,
                traffic=move.split.as_dict() if move else None,
                release=move.action if move else None,
            )
        )  # fmt: skip
        self._emit("decision", state)
        crash_point(f"decided:{action}")
        if move is not None:
            self.platform.apply(move)

    def _reconcile(self, state: RolloutState) -> bool:
        """Apply the last recorded split if the platform is not on it (a controller killed
        between recording a decision and applying it left that decision undone); True if so.

        Only while the live split is one of this rollout's own: a revision the record does not
        name means traffic moved on since (by hand, or another release), and re-applying an old
        decision would undo that.
        """
        last = next((d for d in reversed(state.decisions) if d.traffic and d.release), None)
        if last is None or last.traffic is None or last.release is None:
            return False
        move = Move(last.release, TrafficSplit.from_dict(last.traffic))
        live = self.platform.read_traffic()
        if not {t.revision for t in live.targets} <= {state.stable, state.candidate}:
            return False
        if live != move.split:
            self._decide(state, "reconcile", f"apply the last recorded {last.action}", move)
            return True
        if move.action == "rollback":
            # Same split as the dark launch it may follow: only the platform can tell whether
            # the rollback itself was applied (on Cloud Run, the stack's recorded phase).
            self.platform.apply(move)
        return False

    def _move(self, state: RolloutState, action: Action, percent: int | None = None) -> None:
        """The next phase, by the state machine's rules; recorded by the next decision."""
        position = transition(
            state.position, action, percent=percent, steps=self.policy.steps,
            candidate=state.candidate,
        )  # fmt: skip
        state.phase, state.candidate_percent = position.phase, position.candidate_percent

    def _in_traffic(self, revision: str) -> bool:
        return revision in {t.revision for t in self.platform.read_traffic().targets}

    def _current_stable(self) -> str:
        split = self.platform.read_traffic()
        serving = [t for t in split.targets if t.percent > 0]
        if len(serving) != 1:
            raise DeployError(
                f"traffic is split {split.as_dict()}: finish or roll back that rollout first"
            )
        return serving[0].revision

    def rollout(self, candidate: Candidate) -> RolloutState:
        """Run (or resume) the rollout of `candidate`; returns the final state."""
        state = self.store.load()
        reconciled = state is not None and self._reconcile(state)
        if (
            reconciled
            and state is not None
            and state.finished
            and state.candidate == candidate.name
        ):
            return state  # a re-run completed this rollout's last decision, left undone
        if state is not None and not state.finished and state.candidate != candidate.name:
            self.rollback(f"a rollout of {candidate.name} replaces this unfinished one")
            state = None
        if state is not None and not state.finished:
            self._decide(state, "resume", f"controller restarted in phase {state.phase}")
        else:
            stable = self._current_stable()
            if stable == candidate.name:
                raise DeployError(
                    f"{candidate.name} already serves all traffic: nothing to roll out"
                )
            state = RolloutState(
                rollout_id=uuid.uuid4().hex[:12],
                environment=self.environment,
                stable=stable,
                candidate=candidate.name,
                candidate_model_dir=str(candidate.model_dir),
                candidate_env=candidate.env,
                started_at=self.clock(),
            )
            self._decide(
                state, "start", f"roll out {candidate.name} over {state.stable}: deploy it at 0%"
            )
        try:
            self._advance(state, candidate)
        except RolloutAbortedError as abort:
            self._roll_back(state, str(abort))
        except DeployError as error:  # the platform failed a move (a `pulumi up`, drift)
            self._roll_back(state, f"the platform failed: {error}")
        except Exception as error:
            self._roll_back(state, f"controller error: {error!r}")
            raise
        return state

    def _advance(self, state: RolloutState, candidate: Candidate) -> None:
        if state.phase == "dark_launched":
            if not self._in_traffic(state.candidate):  # deploy recorded, not yet done
                try:
                    self.platform.deploy(candidate)
                except DeployError as error:
                    raise RolloutAbortedError(f"candidate failed to deploy: {error}") from error
                dark = Move("deploy", canary(state.stable, state.candidate, 0))
                self._decide(state, "dark_launch", "candidate ready; 0% with its tag", dark)
            with self.platform.tagged_client(CANDIDATE_TAG) as client:
                problems = self.smoke(client, Path(state.candidate_model_dir))
            if problems:
                raise RolloutAbortedError("smoke checks failed: " + "; ".join(problems))
            state.step_index = 0
            self._decide(state, "smoke_passed", "health, version and golden predictions match")
            self._shadow(state)
        steps = self.policy.steps
        while state.phase in IN_FLIGHT and state.step_index < len(steps):
            percent = steps[state.step_index]
            self._move(state, "canary", percent)
            step = Move("canary", canary(state.stable, state.candidate, percent))
            label = f"step {state.step_index + 1}/{len(steps)}"
            self._decide(state, "set_traffic", f"{label}: candidate at {percent}%", step)
            state.first_canary_at = state.first_canary_at or self.clock()
            bake = self.policy.bake_seconds
            limit = bake + self.policy.max_extension_seconds
            results = self._bake(state, percent, self._canary_judge(state), bake, limit)
            state.evidence += _step_evidence(results)
            state.step_index += 1
            self._emit("step_passed", state)
        self._move(state, "promote")
        state.finished_at = self.clock()
        state.reason = "every gate passed at every step"
        self._decide(state, "promote", state.reason, Move("promote", promoted(state.candidate)))

    def _shadow(self, state: RolloutState) -> None:
        """Mirrored traffic at 0% of users until the paired gate passes; the switch is cleared
        whatever happens, and expires by itself should this process die."""
        phase = self.policy.shadow
        if phase.requests == 0 or state.shadow_done:
            return
        until = self.clock() + phase.max_seconds + SHADOW_LEASE_MARGIN_S
        self._decide(
            state, "shadow_start",
            f"mirror {phase.sample_rate:.0%} of {state.stable}'s predictions to the candidate "
            f"until {phase.requests} pass the paired gate",
        )  # fmt: skip
        self.platform.mirror(state.stable, state.candidate, phase, until)
        try:
            # No bake: it passes once the paired gate has its requests, or runs out of time.
            results = self._bake(state, 0, self._shadow_gates, 0, phase.max_seconds)
        finally:
            self.platform.stop_mirror()
        self.sleep(self.platform.shadow_settle_seconds)  # the last mirrored requests land
        shadow = next((r for r in results if r.gate == "shadow"), None)
        if shadow is None:  # on_insufficient_data: pass, with no window read at all
            self._decide(state, "shadow_inconclusive", "; ".join(r.reason for r in results))
        elif cannot_mirror(results):
            self._decide(state, "shadow_skipped", f"{state.stable} cannot mirror: canary only")
        elif shadow.verdict is Verdict.PASS:
            self._decide(state, "shadow_passed", shadow.reason)
        else:  # on_insufficient_data: pass
            self._decide(state, "shadow_inconclusive", shadow.reason)
        state.shadow_done = True
        self._emit("step_passed", state)

    def _canary_judge(self, state: RolloutState) -> Judge:
        def judge(candidate: Snapshot, stable: Snapshot, ready: bool) -> list[GateResult]:
            return evaluate(candidate, stable, ready, self.policy, state.evidence)

        return judge

    def _shadow_gates(self, candidate: Snapshot, stable: Snapshot, ready: bool) -> list[GateResult]:
        return evaluate_shadow(candidate, stable, ready, self.policy)

    def _window(
        self, state: RolloutState, base: tuple[Mark, Mark], judge: Judge
    ) -> list[GateResult]:
        try:
            candidate = self.platform.window(state.candidate, base[0])
            stable = self.platform.window(state.stable, base[1])
        except (httpx.HTTPError, OSError, MetricsError) as error:
            return [readiness_gate(False), GateResult("metrics", Verdict.FAIL, repr(error))]
        ready = self.platform.is_ready(state.candidate)
        if candidate is None or stable is None:
            lagging = GateResult(
                "metrics", Verdict.INSUFFICIENT_DATA, "the metrics backend lags behind this window"
            )
            return [readiness_gate(ready), lagging]
        return judge(candidate, stable, ready)

    def _bake(  # pylint: disable=too-many-arguments,too-many-positional-arguments
        self, state: RolloutState, percent: int, judge: Judge, bake: float, limit: float
    ) -> list[GateResult]:
        """Evaluate gates every interval until every gate passes after `bake` seconds, or
        `limit` seconds have passed with some lacking data; returns the last results."""
        policy = self.policy
        base = (self.platform.mark(state.candidate), self.platform.mark(state.stable))
        started = self.clock()
        interval = max(policy.check_interval_seconds, self.platform.min_check_interval_seconds)
        where = "in the shadow phase" if percent == 0 else f"at {percent}%"
        while True:
            self.sleep(interval)
            results = self._window(state, base, judge)
            verdict = combined(results)
            state.checks.append(
                Check(at=self.clock(), step_percent=percent, verdict=verdict.value,
                      gates=[asdict(r) for r in results])
            )  # fmt: skip
            self._emit("check", state)
            crash_point("baking")
            elapsed = self.clock() - started
            if verdict is Verdict.FAIL:
                failed = [f"{r.gate}: {r.reason}" for r in results if r.verdict is Verdict.FAIL]
                raise RolloutAbortedError(f"{where}: " + "; ".join(failed))
            if cannot_mirror(results):
                return results  # a stable revision from before shadow traffic: nothing to wait for
            if elapsed < bake:
                continue
            if verdict is Verdict.PASS:
                return results
            if elapsed >= limit:
                lacking = [r.reason for r in results if r.verdict is Verdict.INSUFFICIENT_DATA]
                if policy.on_insufficient_data == "pass":
                    return results
                raise RolloutAbortedError(
                    f"{where}: not enough data after {elapsed:.0f}s: " + "; ".join(lacking)
                )

    def _roll_back(self, state: RolloutState, reason: str) -> None:
        in_traffic = self._in_traffic(state.candidate)
        split = (
            canary(state.stable, state.candidate, 0) if in_traffic else stable_only(state.stable)
        )
        self._move(state, "rollback")
        state.reason = reason
        state.finished_at = self.clock()
        self._decide(state, "roll_back", reason, Move("rollback", split))
        state.back_on_stable_at = self.clock()
        self._emit("finished", state)

    def rollback(self, reason: str = "manual rollback") -> RolloutState | None:
        """Roll back the unfinished rollout in the state file, if any."""
        state = self.store.load()
        if state is None:
            return state
        self.platform.stop_mirror()
        self._reconcile(state)
        if not state.finished:
            self._roll_back(state, reason)
        return state


def _step_evidence(results: list[GateResult]) -> float:
    """The error comparison's log evidence of one step, carried into the next."""
    return next(
        (r.values.get("step_log_evidence", 0.0) for r in results if r.gate == "error_rate"), 0.0
    )
