import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest

from environments.stack_settings import ENVIRONMENTS, load_file
from infra.stack import deploy
from service.settings import Settings
from tests.infra.mock_stack import RecordingMocks, Run, run_program, stack_config

SERVICE = "gcp:cloudrunv2/service:Service"
REGISTRY = "europe-west1-docker.pkg.dev/my-ml-shared/services"


def release_env(
    action: str, n: int = 0, percent: int | None = None, force: bool = False
) -> dict[str, str]:
    environ = {"RELEASE_ACTION": action} | ({"RELEASE_FORCE": "true"} if force else {})
    if action == "deploy":
        environ |= {
            "RELEASE_IMAGE": f"{REGISTRY}/fraud-scorer@sha256:{n:064x}",
            "RELEASE_GIT_SHA": f"{n:040x}",
        }
    if percent is not None:
        environ["RELEASE_PERCENT"] = str(percent)
    return environ


def run(
    environment: str,
    environ: Mapping[str, str] | None = None,
    previous: Mapping[str, Any] | None = None,
    config: Mapping[str, str] | None = None,
) -> Run:
    config = config or stack_config(Path(f"environments/Pulumi.{environment}.yaml"))
    return run_program(lambda: deploy(environ or {}), environment, config, previous)


@functools.cache
def state_after(environment: str, state: str) -> Run:
    """The requests of `state` applied run after run, as successive CI jobs would apply them."""
    last: Run | None = None
    for request in STATES[state]:
        last = run(environment, request, last.outputs if last else None)
    assert last is not None
    return last


STATES = {
    "stable": [release_env("deploy", 1)],
    "dark_launched": [release_env("deploy", 1), release_env("deploy", 2)],
    "canary": [
        release_env("deploy", 1),
        release_env("deploy", 2),
        release_env("canary", percent=25, force=True),  # one percent for all environments
    ],
    "promoted": [
        release_env("deploy", 1),
        release_env("deploy", 2),
        release_env("canary", percent=50, force=True),
        release_env("promote"),
    ],
    "rolled_back": [
        release_env("deploy", 1),
        release_env("deploy", 2),
        release_env("canary", percent=5, force=True),
        release_env("rollback"),
    ],
}
REV1, REV2 = "fraud-scorer-0000000-001", "fraud-scorer-0000000-002"
EXPECTED_TRAFFIC = {
    "stable": [(REV1, 100, None)],
    "dark_launched": [(REV1, 100, None), (REV2, 0, "candidate")],
    "canary": [(REV1, 75, None), (REV2, 25, "candidate")],
    "promoted": [(REV2, 100, None)],
    "rolled_back": [(REV1, 100, None), (REV2, 0, "candidate")],
}


def traffic_of(mocks: RecordingMocks) -> list[tuple[str, int, str | None]]:
    return [
        (target["revision"], int(target["percent"]), target.get("tag"))
        for target in mocks.one(SERVICE).inputs["traffics"]
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("state", list(STATES))
def test_every_release_state_declares_its_traffic(environment: str, state: str) -> None:
    last = state_after(environment, state)
    traffic = traffic_of(last.mocks)
    assert traffic == EXPECTED_TRAFFIC[state]
    assert sum(percent for _, percent, _ in traffic) == 100
    assert all(
        target["type"] == "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
        for target in last.mocks.one(SERVICE).inputs["traffics"]
    ), "never LATEST: a new template alone must not move traffic"
    template = last.mocks.one(SERVICE).inputs["template"]
    assert template["revision"] == (REV1 if state == "stable" else REV2)
    assert last.outputs["release"]["phase"] == state
    has_candidate = state in {"dark_launched", "canary", "rolled_back"}
    assert (last.outputs["candidate_url"] is not None) == has_candidate
    assert last.outputs["candidate_revision"] == (REV2 if has_candidate else None)


@pytest.mark.parametrize("state", list(STATES))
def test_a_plain_up_reproduces_the_service_exactly(state: str) -> None:
    """No release inputs: no diff, no traffic moved, whatever state the last run left."""
    last = state_after("staging", state)
    plain = run("staging", None, last.outputs)
    assert plain.mocks.one(SERVICE).inputs == last.mocks.one(SERVICE).inputs
    assert plain.outputs["release"] == last.outputs["release"]


def test_settings_changed_without_a_release_wait_for_the_next_revision() -> None:
    first = run("staging", release_env("deploy", 1))
    config = stack_config(Path("environments/Pulumi.staging.yaml"))
    config["cloudrun-ml-rollouts:memory"] = "4Gi"
    plain = run("staging", None, first.outputs, config)
    limits = plain.mocks.one(SERVICE).inputs["template"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "1Gi", "the running revision is not rebuilt by a plain up"
    released = run("staging", release_env("deploy", 2), first.outputs, config)
    limits = released.mocks.one(SERVICE).inputs["template"]["containers"][0]["resources"]["limits"]
    assert limits["memory"] == "4Gi"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_revision_is_probed_pinned_and_runs_as_its_own_identity(environment: str) -> None:
    mocks = run(environment, release_env("deploy", 7)).mocks
    template = mocks.one(SERVICE).inputs["template"]
    container = template["containers"][0]
    assert "@sha256:" in container["image"]
    assert container["image"].startswith(REGISTRY)
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    env = {item["name"]: item.get("value") for item in container["envs"]}
    assert env["ENVIRONMENT"] == environment
    assert env["GIT_SHA"] == f"{7:040x}"
    project = stack_config(Path(f"environments/Pulumi.{environment}.yaml"))["gcp:project"]
    assert template["serviceAccount"] == (
        f"fraud-scorer-{environment[:4]}-run@{project}.iam.gserviceaccount.com"
    )
    assert not mocks.of_type("gcp:serviceaccount/account:Account"), "the bootstrap creates them"


@pytest.mark.parametrize("state", list(STATES))
def test_every_revision_carries_the_metrics_collector(state: str) -> None:
    """The gates read per-revision metrics the sidecar sends: it runs beside the app in every
    revision, scrapes its port (the default RunMonitoring config: 8080, /metrics), starts
    after it, and keeps CPU between requests so its scrapes are not throttled."""
    template = state_after("prod", state).mocks.one(SERVICE).inputs["template"]
    app, collector = template["containers"]
    assert app["name"] == "app"
    assert int(app["ports"]["containerPort"]) == 8080
    assert collector["name"] == "collector"
    assert collector["image"] == load_file("prod").metrics_collector_image
    assert collector["image"].startswith(
        "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/"
    )
    assert collector["dependsOns"] == ["app"]
    assert "ports" not in collector, "only the app takes requests"
    assert collector["livenessProbe"]["httpGet"]["path"] == "/liveness"
    assert set(collector["resources"]["limits"]) == {"cpu", "memory"}
    assert app["resources"]["cpuIdle"] is False


def test_a_revision_recorded_before_the_collector_keeps_its_template() -> None:
    """Re-sending a recorded revision must not add a container to it (Cloud Run would refuse
    the changed template under the same name); the next deploy brings the collector."""
    first = run("staging", release_env("deploy", 1))
    recorded = json.loads(json.dumps(first.outputs["release"]))
    for field in ("collector", "cpu_idle"):
        del recorded["stable"]["spec"][field]
    plain = run("staging", None, {**first.outputs, "release": recorded})
    containers = plain.mocks.one(SERVICE).inputs["template"]["containers"]
    assert len(containers) == 1
    assert "name" not in containers[0]
    assert containers[0]["resources"]["cpuIdle"] is True
    released = run("staging", release_env("deploy", 2), plain.outputs)
    assert len(released.mocks.one(SERVICE).inputs["template"]["containers"]) == 2


@pytest.mark.parametrize(
    ("environment", "public"), [("dev", True), ("staging", False), ("prod", False)]
)
def test_only_a_public_environment_lets_all_users_invoke(environment: str, public: bool) -> None:
    mocks = run(environment, release_env("deploy", 1)).mocks
    members = [
        m.inputs["member"]
        for m in mocks.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    ]
    assert ("allUsers" in members) == public
    uptime = mocks.one("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig").inputs
    assert uptime["httpCheck"]["path"] == "/healthz"
    assert ("serviceAgentAuthentication" in uptime["httpCheck"]) == (not public)


def grants_to(mocks: RecordingMocks, email: str) -> set[tuple[str, str]]:
    return {
        (resource.typ.split(":")[-1], resource.inputs["role"])
        for resource in mocks.resources
        if resource.inputs.get("member") == f"serviceAccount:{email}"
    }


def secret_config(environment: str, *entries: str) -> dict[str, str]:
    config = stack_config(Path(f"environments/Pulumi.{environment}.yaml"))
    config["cloudrun-ml-rollouts:secretEnv"] = json.dumps(list(entries))
    return config


def test_runtime_identities_hold_only_what_they_use() -> None:
    config = secret_config("prod", "API_TOKEN=fraud-scorer-partner-token:3")
    config["cloudrun-ml-rollouts:jobImage"] = f"{REGISTRY}/pipelines@sha256:{'c' * 64}"
    mocks = run("prod", release_env("deploy", 1), config=config).mocks
    assert grants_to(mocks, "fraud-scorer-prod-run@my-ml-prod.iam.gserviceaccount.com") == {
        ("BucketIAMMember", "roles/storage.objectViewer"),
        ("IAMMember", "roles/logging.logWriter"),
        ("IAMMember", "roles/monitoring.metricWriter"),
        ("SecretIamMember", "roles/secretmanager.secretAccessor"),
        # Its own private service: the stable revision mirrors shadow traffic to the candidate.
        ("ServiceIamMember", "roles/run.invoker"),
    }
    invokers = mocks.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    runtime = next(r.inputs for r in invokers if r.name == "app-runtime-invoker")
    assert (runtime["name"], runtime["role"]) == ("fraud-scorer", "roles/run.invoker")
    assert grants_to(mocks, "fraud-scorer-prod-job@my-ml-prod.iam.gserviceaccount.com") == {
        ("BucketIAMMember", "roles/storage.objectViewer"),
        ("BucketIAMMember", "roles/storage.objectCreator"),
        ("DatasetIamMember", "roles/bigquery.dataViewer"),
        ("IAMMember", "roles/bigquery.jobUser"),
        ("IAMMember", "roles/logging.logWriter"),
        ("IAMMember", "roles/monitoring.metricWriter"),
        ("JobIamMember", "roles/run.invoker"),
    }
    secret = mocks.one("gcp:secretmanager/secretIamMember:SecretIamMember").inputs
    assert secret["secretId"] == "fraud-scorer-partner-token"
    env = mocks.one(SERVICE).inputs["template"]["containers"][0]["envs"]
    switch = {
        "name": "SHADOW_CONTROL",
        "value": "gs://my-ml-prod-prod-models/shadow/fraud-scorer.json",
    }
    assert switch in env, "the runtime reads the switch from the bucket it may read"
    assert {
        "name": "API_TOKEN",
        "valueSource": {"secretKeyRef": {"secret": "fraud-scorer-partner-token", "version": "3"}},
    } in env
    bucket = mocks.one("gcp:storage/bucket:Bucket").inputs
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["versioning"] == {"enabled": True}


def secrets_granted(last: Run) -> set[str]:
    return {
        grant.inputs["secretId"]
        for grant in last.mocks.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    }


def test_secret_grants_follow_the_revisions_that_serve_not_the_config() -> None:
    """A secret dropped from the file stays readable until no revision with a route reads it."""
    old = secret_config("staging", "API_TOKEN=fraud-scorer-old-token")
    new = secret_config("staging", "API_TOKEN=fraud-scorer-new-token")
    first = run("staging", release_env("deploy", 1), config=old)
    assert secrets_granted(first) == {"fraud-scorer-old-token"}
    plain = run("staging", None, first.outputs, config=new)
    assert secrets_granted(plain) == {"fraud-scorer-old-token"}, "stable still reads it"
    dark = run("staging", release_env("deploy", 2), plain.outputs, config=new)
    assert secrets_granted(dark) == {"fraud-scorer-old-token", "fraud-scorer-new-token"}
    rolled_back = run("staging", release_env("rollback"), dark.outputs, config=new)
    assert secrets_granted(rolled_back) == {"fraud-scorer-old-token", "fraud-scorer-new-token"}, (
        "a rolled-back candidate keeps its tagged route, and may still start instances"
    )
    redeployed = run("staging", release_env("deploy", 3), rolled_back.outputs, config=new)
    canary = run("staging", release_env("canary", percent=50), redeployed.outputs, config=new)
    promoted = run("staging", release_env("promote"), canary.outputs, config=new)
    assert secrets_granted(promoted) == {"fraud-scorer-new-token"}, "revoked once nothing reads it"


def test_a_labels_edit_never_changes_a_pinned_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cloud Run answers 409 to a revision name re-sent with another template; so every run
    after a labels edit, rollback included, re-sends the template exactly as deployed."""
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_, **__: warnings.append(message))
    dark = state_after("staging", "dark_launched")
    deployed = dark.mocks.one(SERVICE).inputs["template"]
    edited = stack_config(Path("environments/Pulumi.staging.yaml"))
    edited["cloudrun-ml-rollouts:labels"] = '["team=payments", "cost-center=ml-staging"]'
    last = dark
    for request in (None, release_env("canary", percent=5), release_env("rollback")):
        last = run("staging", request, last.outputs, config=edited)
        assert last.mocks.one(SERVICE).inputs["template"] == deployed
        assert last.mocks.one(SERVICE).inputs["labels"]["team"] == "payments", "service labels move"
    assert any(w.startswith("labels in environments/Pulumi.staging.yaml") for w in warnings)
    released = run("staging", release_env("deploy", 3), last.outputs, config=edited)
    assert released.mocks.one(SERVICE).inputs["template"]["labels"]["team"] == "payments"


def test_a_recorded_image_outside_the_registry_is_refused() -> None:
    """Whoever could write the state must not choose what the next `up` or rollback deploys."""
    first = run("staging", release_env("deploy", 1))
    tampered = json.loads(json.dumps(first.outputs))
    tampered["release"]["stable"]["image"] = f"us-docker.pkg.dev/attacker/x/app@sha256:{'e' * 64}"
    with pytest.raises(ValueError, match="recorded image of fraud-scorer-0000000-001"):
        run("staging", None, tampered)
    with pytest.raises(ValueError, match="recorded image of fraud-scorer-0000000-001"):
        run("staging", release_env("rollback"), tampered)


def test_the_monitoring_job_exists_only_when_an_image_is_configured() -> None:
    """It runs the monitor for its environment, as its own identity, which may run BigQuery
    queries, read the events dataset (and no other) and write metrics; two alert policies
    watch what it writes."""
    plain = run("dev", release_env("deploy", 1)).mocks
    assert not plain.of_type("gcp:cloudrunv2/job:Job")
    assert len(plain.of_type("gcp:monitoring/alertPolicy:AlertPolicy")) == 2
    config = stack_config(Path("environments/Pulumi.dev.yaml"))
    config["cloudrun-ml-rollouts:jobImage"] = f"{REGISTRY}/pipelines@sha256:{'c' * 64}"
    mocks = run("dev", release_env("deploy", 1), config=config).mocks
    job = mocks.one("gcp:cloudrunv2/job:Job").inputs
    container = job["template"]["template"]["containers"][0]
    assert [*container["commands"], *container["args"]] == [
        "python", "-m", "pipelines", "monitor", "--publish"
    ]  # fmt: skip
    assert {e["name"]: e["value"] for e in container["envs"]} == {"MONITOR_ENVIRONMENT": "dev"}
    job_account = load_file("dev").job_account_email
    assert job["template"]["template"]["serviceAccount"] == job_account
    roles = {
        m.inputs["role"]
        for m in mocks.of_type("gcp:projects/iAMMember:IAMMember")
        if m.inputs["member"] == f"serviceAccount:{job_account}"
    }
    assert roles == {
        "roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/bigquery.jobUser"
    }  # fmt: skip
    (reads,) = [
        m.inputs for m in mocks.of_type("gcp:bigquery/datasetIamMember:DatasetIamMember")
        if m.inputs["member"] == f"serviceAccount:{job_account}"
    ]  # fmt: skip
    assert (reads["role"], reads["datasetId"]) == (
        "roles/bigquery.dataViewer",
        "fraud_scorer_events",
    )
    schedule = mocks.one("gcp:cloudscheduler/job:Job").inputs
    assert schedule["schedule"] == "0 5 * * *"
    assert schedule["httpTarget"]["uri"].endswith("/jobs/fraud-scorer-monitor:run")
    queries = {
        p.name: p.inputs["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
        for p in mocks.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
    }
    assert queries["monitoring-model"].startswith(
        "max by (signal) (last_over_time(custom_googleapis_com:ml_monitoring_signal{"
    )
    assert 'environment="dev",service="fraud-scorer"' in queries["monitoring-model"]
    assert queries["monitoring-model-silent"].startswith(
        "absent_over_time(custom_googleapis_com:ml_monitoring_predictions{"
    )


def test_alerts_use_the_environment_slos() -> None:
    mocks = run("prod", release_env("deploy", 1)).mocks
    queries = {
        policy.name: policy.inputs["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
        for policy in mocks.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
    }
    assert queries["monitoring-errors"].endswith("> 0.01")
    assert 'response_code_class="5xx"' in queries["monitoring-errors"]
    assert queries["monitoring-latency"].startswith("histogram_quantile(0.99")
    assert queries["monitoring-latency"].endswith("> 500.0")
    assert len(mocks.of_type("gcp:monitoring/notificationChannel:NotificationChannel")) == 1


def test_an_impossible_request_fails_the_run_and_changes_nothing() -> None:
    first = run("staging", release_env("deploy", 1))
    # Pulumi reports the program's exception with the resource it was computing.
    with pytest.raises(ValueError, match="cannot promote: there is no candidate revision"):
        run("staging", release_env("promote"), first.outputs)
    elsewhere = release_env("deploy", 2) | {
        "RELEASE_IMAGE": f"us-docker.pkg.dev/someone-else/images/app@sha256:{'e' * 64}"
    }
    with pytest.raises(
        ValueError, match=r"not an image by digest in europe-west1-docker\.pkg\.dev"
    ):
        run("staging", elsewhere, first.outputs)
    with pytest.raises(ValueError, match="no release yet: the first `pulumi up` needs"):
        run("staging", None)


def test_the_dashboard_spells_out_what_the_api_fills_in() -> None:
    """Left out, each field comes back from the API and every preview shows a change, so
    `pulumi preview --expect-no-changes` could not watch for drift."""
    dashboard = run("prod", release_env("deploy", 1)).mocks.one(
        "gcp:monitoring/dashboard:Dashboard"
    )
    tiles = json.loads(dashboard.inputs["dashboardJson"])["mosaicLayout"]["tiles"]
    assert len(tiles) == 4
    for tile in tiles:
        chart = tile["widget"]["xyChart"]
        assert chart["chartOptions"] == {"mode": "COLOR"}
        assert chart["yAxis"] == {"label": "y1Axis", "scale": "LINEAR"}
        assert (chart["thresholds"], chart["timeshiftDuration"]) == ([], "0s")
        (data,) = chart["dataSets"]
        assert (data["targetAxis"], data["minAlignmentPeriod"]) == ("Y1", "60s")
        assert data["breakdowns"] == data["dimensions"] == data["measures"] == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_canary_steps_come_from_the_environment_unless_forced(environment: str) -> None:
    dark = state_after(environment, "dark_launched")
    steps = load_file(environment).rollout.steps
    for percent in steps:
        moved = run(environment, release_env("canary", percent=percent), dark.outputs)
        assert moved.outputs["release"]["candidate_percent"] == percent
    off_policy = release_env("canary", percent=37)
    with pytest.raises(ValueError, match=rf"RELEASE_PERCENT=37 is not one of .*{steps}.*FORCE"):
        run(environment, off_policy, dark.outputs)
    forced = run(environment, off_policy | {"RELEASE_FORCE": "true"}, dark.outputs)
    assert forced.outputs["release"]["candidate_percent"] == 37


GOLDEN_NAMES = Path(__file__).parent / "resource_names.json"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_resource_types_and_names_never_change(environment: str) -> None:
    """URNs are made of types and names: a change here would replace live resources (a rename
    of a module must not touch them). Update the golden file only for a deliberate change."""
    config = stack_config(Path(f"environments/Pulumi.{environment}.yaml"))
    config["cloudrun-ml-rollouts:jobImage"] = f"{REGISTRY}/pipelines@sha256:{'c' * 64}"
    config["cloudrun-ml-rollouts:secretEnv"] = '["API_TOKEN=fraud-scorer-token"]'
    mocks = run(environment, release_env("deploy", 1), config=config).mocks
    names = sorted(f"{r.typ}::{r.name}" for r in mocks.resources)
    assert names == json.loads(GOLDEN_NAMES.read_text(encoding="utf-8"))[environment]


def test_the_outputs_link_the_dashboard_of_the_environment() -> None:
    outputs = run("staging", release_env("deploy", 1)).outputs
    url = outputs["dashboard_url"]
    assert url.startswith("https://console.cloud.google.com/monitoring/dashboards/custom/")
    assert url.endswith(f"?project={load_file('staging').project}")


def candidate_env(run_result: Run) -> dict[str, str]:
    template = run_result.mocks.one(SERVICE).inputs["template"]
    return {e["name"]: e.get("value") for e in template["containers"][0]["envs"]}


def test_a_drill_releases_its_faults_in_dev_only() -> None:
    """The weekly drill's candidate carries the injected faults, recorded with the revision;
    staging and prod refuse them before anything changes."""
    drill = release_env("deploy", 2) | {"RELEASE_DRILL_FAULTS": "FAULT_ERROR_RATE=0.2"}
    first = run("dev", release_env("deploy", 1))
    faulty = run("dev", drill, first.outputs)
    recorded = faulty.outputs["release"]["candidate"]["spec"]["env"]
    assert (recorded["FAULT_ERROR_RATE"], recorded["DRILL"]) == ("0.2", "true")
    assert "FAULT_ERROR_RATE" not in faulty.outputs["release"]["stable"]["spec"]["env"]
    for environment in ("staging", "prod"):
        stable = run(environment, release_env("deploy", 1))
        with pytest.raises(ValueError, match="allowDrills: true"):
            run(environment, drill, stable.outputs)
    with pytest.raises(ValueError, match="keys among FAULT_ERROR_RATE"):
        run("dev", release_env("deploy", 2) | {"RELEASE_DRILL_FAULTS": "LOG_LEVEL=DEBUG"})
    with pytest.raises(ValueError, match="RELEASE_ACTION=deploy only"):
        run("dev", release_env("rollback") | {"RELEASE_DRILL_FAULTS": "FAULT_ERROR_RATE=1"})


def test_drills_are_refused_in_the_prod_file() -> None:
    config = stack_config(Path("environments/Pulumi.prod.yaml"))
    config["cloudrun-ml-rollouts:allowDrills"] = "true"
    with pytest.raises(ValueError, match="allowDrills is true in prod"):
        run("prod", release_env("deploy", 1), config=config)


def test_events_reach_a_partitioned_dataset_through_a_sink_of_this_service_alone() -> None:
    mocks = run("prod", release_env("deploy", 1)).mocks
    dataset = mocks.one("gcp:bigquery/dataset:Dataset").inputs
    assert dataset["datasetId"] == "fraud_scorer_events"
    assert dataset["location"] == "europe-west1"
    assert dataset["defaultPartitionExpirationMs"] == 395 * 24 * 3600 * 1000
    assert dataset["deleteContentsOnDestroy"] is False, "prod keeps its events on destroy"
    sink = mocks.one("gcp:logging/projectSink:ProjectSink").inputs
    assert (
        sink["destination"]
        == "bigquery.googleapis.com/projects/my-ml-prod/datasets/fraud_scorer_events"
    )
    assert sink["bigqueryOptions"] == {"usePartitionedTables": True}
    assert 'resource.labels.service_name="fraud-scorer"' in sink["filter"]
    for kind in ("prediction", "feedback", "shadow"):  # what analysis and monitoring read
        assert f'jsonPayload.event="{kind}"' in sink["filter"]
    grant = next(
        r.inputs
        for r in mocks.of_type("gcp:bigquery/datasetIamMember:DatasetIamMember")
        if r.name == "events-sink-writes"
    )
    assert grant["role"] == "roles/bigquery.dataEditor"
    assert grant["member"].endswith("@gcp-sa-logging.iam.gserviceaccount.com")


EXPERIMENT = {
    "cloudrun-ml-rollouts:experimentName": "threshold-test",
    "cloudrun-ml-rollouts:experimentSalt": "2026-12-threshold",
    "cloudrun-ml-rollouts:experimentAllocation": "0.2",
    "cloudrun-ml-rollouts:secretEnv": '["USER_HASH_KEY=fraud-scorer-user-hash-key"]',
}


def test_an_experiment_is_a_setting_of_the_next_revision() -> None:
    config = stack_config(Path("environments/Pulumi.prod.yaml")) | EXPERIMENT
    first = run("prod", release_env("deploy", 1))
    second = run("prod", release_env("deploy", 2), first.outputs, config=config)
    env = second.outputs["release"]["candidate"]["spec"]["env"]
    assert {k: env[k] for k in env if k.startswith("EXPERIMENT_")} == {
        "EXPERIMENT_NAME": "threshold-test",
        "EXPERIMENT_KIND": "ab",
        "EXPERIMENT_SALT": "2026-12-threshold",
        "EXPERIMENT_ALLOCATION": "0.2",
        "EXPERIMENT_CHALLENGER_DIR": "/app/challenger",
    }
    assert "EXPERIMENT_NAME" not in second.outputs["release"]["stable"]["spec"]["env"]
    assert set(env) <= set(Settings.model_fields), "every variable is one the service reads"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cloudrun-ml-rollouts:experimentSalt": "short"}, "at least 8 characters"),
        ({"cloudrun-ml-rollouts:secretEnv": "[]"}, "add USER_HASH_KEY=fraud-scorer-user-hash-key"),
        ({"cloudrun-ml-rollouts:experimentAllocation": "1.5"}, "allocation: Input should be less"),
        ({"cloudrun-ml-rollouts:experimentMetric": "clicks"}, "metric: Input should be"),
    ],
)
def test_an_incomplete_experiment_is_refused_before_any_resource(
    change: dict[str, str], message: str
) -> None:
    config = stack_config(Path("environments/Pulumi.prod.yaml")) | EXPERIMENT | change
    with pytest.raises(ValueError, match=message):
        run("prod", release_env("deploy", 1), config=config)
