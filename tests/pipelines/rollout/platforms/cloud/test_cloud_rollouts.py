"""The local scenario table, run by the same controller against both cloud platforms: Cloud Run,
and Kubernetes (GKE).

Every boundary is fake (fake_cloud.py): the Pulumi CLI as a subprocess applying the program's
own release logic, Cloud Run's Admin API or the cluster's API server and gateway, Cloud
Monitoring's PromQL API and Cloud Storage. The dev
environment's own policy decides (steps, bake, gates); time is a fake clock, so a rollout of
several simulated minutes takes about a second.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from environments.rollout_policy import load_policy
from environments.traffic import CANDIDATE_TAG, TrafficSplit, canary, stable_only
from pipelines.rollout.controller import Controller, Listener
from pipelines.rollout.drill import drill_candidate, drill_verdict
from pipelines.rollout.plan import cloud_plan
from pipelines.rollout.platform import DeployError
from pipelines.rollout.report import write_report
from pipelines.rollout.state import Decision, RolloutState
from pipelines.server_process import ServerProcess, free_port, service_process
from tests.pipelines.rollout.platforms.cloud import fake_pulumi
from tests.pipelines.rollout.platforms.cloud.fake_cloud import (
    NEVER_READY,
    PLATFORMS,
    SETTINGS,
    STABLE_SHA,
    WRONG_SCORES,
    FakeCloud,
    Profile,
    image,
)

pytestmark = pytest.mark.integration
POLICY = load_policy("dev")
STABLE = "fraud-scorer-1111111-001"
CANDIDATE = "fraud-scorer-2222222-002"
HEALTHY, WRONG_MODEL = image(2), image(3)  # what the candidate's tagged URL serves


@pytest.fixture(scope="module")
def servers(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Real service processes: the candidate's model, and a model that is not the candidate's."""
    logs = tmp_path_factory.mktemp("cloudrun-logs")
    processes: list[ServerProcess] = []
    try:
        for name in ("v2", "wrong"):
            processes.append(service_process(models[name], free_port(), logs / f"{name}.log"))
            processes[-1].start()
        for process in processes:
            process.wait_ready(timeout_s=90)
        yield {HEALTHY: processes[0].url, WRONG_MODEL: processes[1].url}
    finally:
        for process in processes:
            process.stop()


@pytest.fixture(params=PLATFORMS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def cloud(tmp_path: Path, servers: dict[str, str], kind: str, **behaviour: Profile) -> FakeCloud:
    profiles = {HEALTHY: behaviour.get("candidate", Profile())}
    return FakeCloud(tmp_path, profiles, {**servers, image(4): servers[HEALTHY]}, kind)


def roll_out(
    fake: FakeCloud,
    models: dict[str, Path],
    candidate_image: str = HEALTHY,
    listener: Listener | None = None,
) -> RolloutState:
    """One run of the controller, as one CI job: new platform objects, the record in storage."""
    platform = fake.platform()
    controller = Controller(
        platform, POLICY, fake.store(), "dev", clock=fake.clock, sleep=fake.sleep,
        listeners=[listener] if listener else [],
    )  # fmt: skip
    sha = candidate_image.rsplit(":", 1)[1][:40]
    return controller.rollout(platform.candidate(candidate_image, sha, models["v2"]))


def live(fake: FakeCloud) -> TrafficSplit:
    return fake.platform().read_traffic()


def recorded_phase(fake: FakeCloud) -> str:
    return fake.world["outputs"]["release"]["phase"]


def test_a_healthy_candidate_is_promoted_one_transition_per_step(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)
    switches: list[dict[str, object]] = []

    def read_switch(event: str, state: RolloutState) -> None:
        if event == "check" and state.checks[-1].step_percent == 0:
            switches.append(json.loads(fake.objects[SETTINGS.shadow_switch_name]))

    state = roll_out(fake, models, listener=read_switch)
    assert (state.phase, state.stable, state.candidate) == ("promoted", STABLE, CANDIDATE)
    assert fake.transitions() == ["deploy", "canary:10", "canary:50", "promote"]
    # The shadow phase: the switch names the stable revision and where its instances reach the
    # candidate: its tagged URL with the ID-token audience of a private service on Cloud Run,
    # its Service's cluster DNS name on Kubernetes. These stable instances cannot mirror.
    assert switches[0]["source"] == STABLE
    if kind == "cloudrun":
        assert switches[0]["url"] == fake_pulumi.tag_url(CANDIDATE_TAG)
        assert switches[0]["audience"] == (None if SETTINGS.public else fake_pulumi.SERVICE_URL)
    else:
        assert switches[0]["url"] == f"http://{CANDIDATE}.fraud-scorer.svc.cluster.local:80"
        assert switches[0]["audience"] is None
    assert "shadow_skipped" in [d.action for d in state.decisions]
    assert SETTINGS.shadow_switch_name not in fake.objects, "deleted when the phase ended"
    assert live(fake) == stable_only(CANDIDATE)
    assert recorded_phase(fake) == "promoted"
    calls = fake.world["calls"]
    assert all(call["cwd"] == str(Path(__file__).resolve().parents[5]) for call in calls)
    assert all("--policy-pack" in call["argv"] for call in calls if call["argv"][0] == "up")
    steps = [c for c in state.checks if c.verdict == "PASS"]
    assert {c.step_percent for c in steps} == {10, 50}
    first = [c.at for c in state.checks if c.step_percent == 10]
    assert first[1] - first[0] >= 30, "no faster than the collector scrapes"
    assert fake.store().load() == state, "the record lives in Cloud Storage"


@pytest.mark.parametrize(
    ("behaviour", "failed_gate"),
    [
        (Profile(error_rate=0.25), "error_rate"),
        (Profile(latency_s=0.6), "latency"),
        (WRONG_SCORES, "scores"),
    ],
    ids=["errors", "latency", "scores"],
)
def test_a_regression_is_rolled_back_to_stable_with_the_candidate_kept_tagged(
    tmp_path: Path,
    servers: dict[str, str],
    models: dict[str, Path],
    kind: str,
    behaviour: Profile,
    failed_gate: str,
) -> None:
    fake = cloud(tmp_path, servers, kind, candidate=behaviour)
    state = roll_out(fake, models)
    assert state.phase == "rolled_back"
    assert f"{failed_gate}:" in state.reason
    assert fake.transitions()[-1] == "rollback"
    assert "promote" not in fake.transitions()
    assert live(fake) == canary(STABLE, CANDIDATE, 0)
    assert recorded_phase(fake) == "rolled_back"


def test_a_candidate_that_never_becomes_ready_gets_no_traffic(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    """Cloud Run refuses the revision, `pulumi up` fails, the record never names it: putting
    the recorded release back (a plain up) is the rollback."""
    fake = cloud(tmp_path, servers, kind)
    fake.fail("deploy", NEVER_READY[kind])
    state = roll_out(fake, models)
    assert state.phase == "rolled_back"
    assert "failed to deploy" in state.reason
    words = {"cloudrun": "is not ready and cannot serve traffic", "kubernetes": "was not attained"}
    assert words[kind] in state.reason, "the platform's own words"
    assert fake.transitions() == ["deploy", "reconcile"]
    assert live(fake) == stable_only(STABLE)
    assert recorded_phase(fake) == "stable", "the next deploy is not refused as in progress"


def test_a_candidate_serving_another_model_is_rolled_back_before_any_user_traffic(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    """The golden checks fail on the tagged URL; the split is that of the dark launch, yet the
    stack's phase moves to rolled_back, so the next deploy is not refused."""
    fake = cloud(tmp_path, servers, kind)
    state = roll_out(fake, models, WRONG_MODEL)
    assert state.phase == "rolled_back"
    assert "golden predictions differ" in state.reason or "model sha256" in state.reason
    assert fake.transitions() == ["deploy", "rollback"]
    assert recorded_phase(fake) == "rolled_back"
    assert not state.checks, "no canary step was ever baked"


def test_a_killed_rollout_resumes_from_its_record_in_cloud_storage(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)

    def killed_at_fifty(event: str, state: RolloutState) -> None:
        if event == "check" and state.candidate_percent == 50:
            raise KeyboardInterrupt  # the CI job was cancelled

    with pytest.raises(KeyboardInterrupt):
        roll_out(fake, models, listener=killed_at_fifty)
    assert live(fake) == canary(STABLE, CANDIDATE, 50)

    state = roll_out(fake, models)  # a new job: new platform objects, the same record
    assert state.phase == "promoted"
    assert "resume" in [d.action for d in state.decisions]
    assert fake.transitions().count("deploy") == 1, "the candidate is not deployed twice"
    assert fake.transitions()[-1] == "promote"


def test_a_metrics_backend_that_lags_makes_steps_wait(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)
    fake.metrics_lag_s = 100.0  # more than the window reader tolerates (90 s)
    state = roll_out(fake, models)
    lagging = [c for c in state.checks if c.verdict == "INSUFFICIENT_DATA"]
    assert any("lags behind" in json.dumps(c.gates) for c in lagging)
    assert state.phase == "promoted", "dev passes on insufficient data once the bake is over"
    stepped = [d.at for d in state.decisions if d.action == "set_traffic"]
    assert stepped[1] - stepped[0] > POLICY.bake_seconds


@pytest.mark.parametrize("status", [429, 500, 403])
def test_a_failing_metrics_api_rolls_back_with_its_reason(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str, status: int
) -> None:
    fake = cloud(tmp_path, servers, kind)
    fake.monitoring_status = status
    state = roll_out(fake, models)
    assert state.phase == "rolled_back"
    assert f"answered {status}" in state.reason
    assert "Quota exceeded" in state.reason
    assert live(fake) == canary(STABLE, CANDIDATE, 0)


def test_expired_credentials_mid_bake_roll_back_with_how_to_fix_them(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)

    def the_token_expires(event: str, _state: RolloutState) -> None:
        fake.credentials_expired = event == "check" or fake.credentials_expired

    state = roll_out(fake, models, listener=the_token_expires)
    assert state.phase == "rolled_back"
    assert "expired or revoked" in state.reason
    assert live(fake) == canary(STABLE, CANDIDATE, 0), "Pulumi's own credentials still work"


def test_a_failed_transition_mid_rollout_rolls_back_and_keeps_the_report(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)
    fake.fail("canary", "error: googleapi: Error 503: The service is currently unavailable.\n")
    state = roll_out(fake, models)
    assert state.phase == "rolled_back"
    assert "Error 503" in state.reason
    assert live(fake) == canary(STABLE, CANDIDATE, 0)
    write_report(state, [], tmp_path / "reports", fake.platform().links())
    text = (tmp_path / "reports" / f"{CANDIDATE}.md").read_text(encoding="utf-8")
    if kind == "cloudrun":
        assert "[dashboard](https://console.cloud.google.com/monitoring/dashboards/" in text
        assert "[service](https://fraud-scorer-xyz-ew.a.run.app)" in text


def test_traffic_changed_by_hand_stops_the_rollout_and_restores_stable(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)

    def someone_moves_traffic(event: str, state: RolloutState) -> None:
        at_ten = [c for c in state.checks if c.step_percent == 10]
        if event == "check" and state.candidate_percent == 10 and len(at_ten) == 1:
            world = fake.world
            world["live"] = canary(STABLE, CANDIDATE, 30).as_dict()  # `gcloud run ...` by hand
            fake.save(world)

    state = roll_out(fake, models, listener=someone_moves_traffic)
    assert state.phase == "rolled_back"
    assert "changed outside Pulumi" in state.reason
    assert {"cloudrun": "Cloud Run serves", "kubernetes": "the cluster serves"}[
        kind
    ] in state.reason
    assert "30" in state.reason, "both splits are named"
    assert fake.transitions()[-2:] == ["canary:10", "rollback"], "no step built on the drift"
    assert live(fake) == canary(STABLE, CANDIDATE, 0)
    assert fake.store().load() == state


def test_the_next_candidate_gets_the_next_name_and_a_rerun_of_a_finished_one_changes_nothing(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = cloud(tmp_path, servers, kind)
    assert roll_out(fake, models).phase == "promoted"
    again = roll_out(fake, models, image(4))
    assert (again.stable, again.candidate) == (CANDIDATE, "fraud-scorer-4444444-003")
    assert again.phase == "promoted"
    assert live(fake).tagged(CANDIDATE_TAG) is None
    assert fake.platform().candidate(image(1), STABLE_SHA, models["v1"]).name.endswith("-004")


def test_what_was_rolled_back_is_not_released_again_by_a_rerun(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    """A re-run of the deploy workflow for the same commit must not undo the rollback; a new
    image, or an explicit `--release-again`, may go out."""
    fake = cloud(tmp_path, servers, kind, candidate=Profile(error_rate=0.25))
    assert roll_out(fake, models).phase == "rolled_back"
    sha = HEALTHY.rsplit(":", 1)[1][:40]
    with pytest.raises(
        DeployError, match="was rolled back in dev: push a fix, or release it again"
    ):
        fake.platform().candidate(HEALTHY, sha, models["v2"])
    again = fake.platform().candidate(HEALTHY, sha, models["v2"], release_again=True)
    assert again.name.endswith("-003")
    assert fake.platform().candidate(image(4), "4" * 40, models["v2"]).name.endswith("-003")


def test_a_drill_releases_the_stable_image_with_errors_and_passes_when_rolled_back(
    tmp_path: Path, servers: dict[str, str], models: dict[str, Path], kind: str
) -> None:
    fake = FakeCloud(tmp_path, {}, {**servers, image(1): servers[HEALTHY]}, kind)  # v2 as v1
    platform = fake.platform()
    controller = Controller(
        platform, POLICY, fake.store(), "dev", clock=fake.clock, sleep=fake.sleep
    )
    state = controller.rollout(drill_candidate(platform, models["v2"], error_rate=0.2))
    passed, why = drill_verdict(state, cloud_plan("dev"))
    assert passed, why
    assert state.first_canary_at is not None, "the errors were caught by the canary's gates"
    assert "error_rate: candidate error rate 20.00%" in state.reason, state.reason
    release = fake.world["outputs"]["release"]
    assert release["phase"] == "rolled_back"
    assert release["candidate"]["image"] == release["stable"]["image"] == image(1)
    assert release["candidate"]["spec"]["env"]["FAULT_ERROR_RATE"] == "0.2"
    assert release["candidate"]["spec"]["env"]["DRILL"] == "true"
    assert live(fake) == canary(STABLE, release["candidate"]["name"], 0)
    assert fake.platform().candidate(image(1), STABLE_SHA, models["v2"]).name.endswith("-003"), (
        "a drill's rollback does not block releasing that image again"
    )


def test_a_drill_passes_only_if_rolled_back_within_the_plans_worst_case() -> None:
    plan = cloud_plan("dev")
    limit = plan.worst_case_to_rollback_seconds
    state = RolloutState(
        rollout_id="r", environment="dev", stable="a", candidate="b", candidate_model_dir="m",
        phase="rolled_back", started_at=0, reason="error_rate: 20% over 1%", first_canary_at=10,
    )  # fmt: skip
    on_time = state.model_copy(update={"back_on_stable_at": 70.0})
    assert drill_verdict(on_time, plan) == (
        True, f"rolled back 60 s after its first user request (limit {limit:.0f} s)"
    )  # fmt: skip
    late = state.model_copy(update={"back_on_stable_at": 10 + limit + 1})
    assert drill_verdict(late, plan)[0] is False
    before_users = state.model_copy(update={"first_canary_at": None, "back_on_stable_at": 5.0})
    assert drill_verdict(before_users, plan)[0] is True
    shadow = Decision(at=2.0, action="shadow_start", reason="mirror")
    in_shadow = before_users.model_copy(update={"decisions": [shadow]})
    assert drill_verdict(in_shadow, plan) == (
        True, "rolled back in the shadow phase, 3 s after mirroring began, before any user "
        "request (error_rate: 20% over 1%)",
    )  # fmt: skip
    promoted = on_time.model_copy(update={"phase": "promoted"})
    assert "did not catch it" in drill_verdict(promoted, plan)[1]
