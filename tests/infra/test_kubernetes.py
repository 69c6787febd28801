"""The Kubernetes program under Pulumi's mocks: every release state, every object validated
against the schema a cluster would hold it to."""

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from environments import __main__ as environments_cli
from environments.__main__ import main as environments_main
from environments.http_route import TAG_HEADER, split_of
from environments.stack_settings import ConfigError, load_file, parse
from environments.traffic import CANDIDATE_TAG
from infra.events import sink_filter
from infra.kubernetes.cluster import context_cluster, kubeconfig_path
from infra.stack import deploy
from tests.infra.mock_stack import (
    ACCESS_TOKEN,
    CLUSTER_ADDRESS,
    CLUSTER_CA,
    Run,
    run_program,
    stack_config,
)
from tests.infra.test_stack import REV1, REV2, STATES, release_env

# The oldest Kubernetes minor version GKE's regular channel still runs.
KUBERNETES_VERSION = "1.30"
# The custom resources' own schemas, from their projects' CRDs at a release (each file names it).
CRD_SCHEMAS = {
    kind: schema
    for path in sorted((Path(__file__).parent / "schemas").glob("*.json"))
    for kind, schema in json.loads(path.read_text(encoding="utf-8"))["schemas"].items()
}
PREFIX = "cloudrun-ml-rollouts"
SHARED = "gke_my-ml-shared_europe-west1_shared"  # an existing cluster's context
CORE = ("Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget")
PER_REVISION = {
    "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "PodMonitoring",
    "HealthCheckPolicy",
}  # fmt: skip


def kube_config(environment: str = "dev", **values: str) -> dict[str, str]:
    config = stack_config(Path(f"environments/Pulumi.{environment}.yaml"))
    config[f"{PREFIX}:platform"] = "kubernetes"
    return config | {f"{PREFIX}:{key}": value for key, value in values.items()}


@functools.cache
def kube_state_after(state: str, environment: str = "dev") -> Run:
    last: Run | None = None
    for request in STATES[state]:
        previous = last.outputs if last else None
        last = run_program(
            lambda r=request: deploy(r), environment, kube_config(environment), previous
        )
    assert last is not None
    return last


def engine_to_manifest(value: Any) -> Any:
    """Mock inputs carry numbers as floats; the engine sends the API whole numbers as integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {key: engine_to_manifest(item) for key, item in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [engine_to_manifest(item) for item in value]  # pyright: ignore[reportUnknownVariableType]
    return value


def unsecret(value: Any) -> Any:
    """A secret input reaches the mocks wrapped in Pulumi's secret envelope."""
    return value["value"] if isinstance(value, dict) and "value" in value else value


def manifests(run: Run) -> list[dict[str, Any]]:
    return [
        engine_to_manifest(r.inputs)
        for r in run.mocks.resources
        if r.typ.startswith("kubernetes:") and "kind" in r.inputs
    ]


def of_kind(run: Run, kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests(run) if m["kind"] == kind]


def named(run: Run, kind: str, name: str) -> dict[str, Any]:
    found = [m for m in of_kind(run, kind) if m["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, found)
    return found[0]


@pytest.mark.parametrize("state", list(STATES))
def test_the_route_implements_every_release_state(state: str) -> None:
    run = kube_state_after(state)
    (route,) = of_kind(run, "HTTPRoute")
    split = split_of(route["spec"]["rules"])
    assert split.as_dict() == run.outputs["traffic"], "the route is the recorded split"
    weighted = route["spec"]["rules"][-1]["backendRefs"]
    assert sum(ref["weight"] for ref in weighted) == 100
    tagged = [r for r in route["spec"]["rules"] if r["matches"][0].get("headers")]
    if run.outputs["candidate_revision"]:
        (rule,) = tagged
        assert rule["matches"][0]["headers"] == [
            {"type": "Exact", "name": TAG_HEADER, "value": CANDIDATE_TAG}
        ]
        assert [ref["name"] for ref in rule["backendRefs"]] == [REV2], "the candidate only"
    else:
        assert not tagged
    assert route["spec"]["parentRefs"] == [{"name": "fraud-scorer"}]
    assert all(m["metadata"].get("namespace") == "fraud-scorer" for m in manifests(run)
               if m["kind"] != "Namespace")  # fmt: skip


EXPECTED_REVISIONS = {
    "stable": {REV1: "serving"},
    "dark_launched": {REV1: "serving", REV2: "serving"},
    "canary": {REV1: "serving", REV2: "serving"},
    "promoted": {REV2: "serving"},
    "rolled_back": {REV1: "serving", REV2: "retired"},
}


@pytest.mark.parametrize("state", list(STATES))
def test_each_revision_runs_on_its_own_objects(state: str) -> None:
    run = kube_state_after(state)
    expected = EXPECTED_REVISIONS[state]
    assert {m["metadata"]["name"] for m in of_kind(run, "Deployment")} == set(expected)
    deployments = of_kind(run, "Deployment")
    for revision, fate in expected.items():
        selector = named(run, "Service", revision)["spec"]["selector"]
        matching = [
            d["metadata"]["name"]
            for d in deployments
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert matching == [revision], "a revision's Service selects its own pods only"
        deployment = named(run, "Deployment", revision)
        assert deployment["spec"]["selector"]["matchLabels"] == selector
        budget = named(run, "PodDisruptionBudget", revision)
        assert budget["spec"]["selector"]["matchLabels"] == selector
        assert named(run, "PodMonitoring", revision)["spec"]["selector"]["matchLabels"] == selector
        scalers = [h for h in of_kind(run, "HorizontalPodAutoscaler")
                   if h["spec"]["scaleTargetRef"]["name"] == revision]  # fmt: skip
        if fate == "retired":
            assert deployment["spec"]["replicas"] == 0, "a rolled-back candidate costs nothing"
            assert not scalers
        else:
            assert "replicas" not in deployment["spec"], "the autoscaler owns the count"
            (scaler,) = scalers
            assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert 1 <= scaler["spec"]["minReplicas"] <= scaler["spec"]["maxReplicas"]


@pytest.mark.parametrize("state", list(STATES))
def test_pods_are_probed_sized_pinned_and_unprivileged(state: str) -> None:
    run = kube_state_after(state)
    settings = load_file("dev")
    for deployment in of_kind(run, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"),
                            ("livenessProbe", "/healthz")):  # fmt: skip
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}
        assert ports == {"http": 8080}
        assert container["image"].startswith(f"{settings.registry}/")
        assert "@sha256:" in container["image"]
        assert container["resources"]["limits"] == container["resources"]["requests"]
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert pod["serviceAccountName"] == "fraud-scorer"
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["SERVICE_NAME"] == "fraud-scorer"
        assert env["K_REVISION"] == deployment["metadata"]["name"], "metrics carry the revision"
        assert env["GIT_SHA"] == deployment["spec"]["template"]["metadata"]["labels"]["git-sha"]


def validate(manifest: dict[str, Any]) -> None:
    kind = manifest["kind"]
    if kind in CRD_SCHEMAS:
        jsonschema.validate(manifest, CRD_SCHEMAS[kind])
    else:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("state", list(STATES))
def test_every_object_is_valid_for_the_cluster(state: str) -> None:
    """Core kinds against Kubernetes' own OpenAPI schema (strict: no unknown field); the Gateway
    and the route against the Gateway API's CRD schema, PodMonitoring against Managed Service
    for Prometheus's. HealthCheckPolicy is GKE's own CRD, whose schema is not published with
    source: checked by shape in the tests above."""
    run = kube_state_after(state)
    validated = set()
    for manifest in manifests(run):
        if manifest["kind"] != "HealthCheckPolicy":
            validate(manifest)
            validated.add(manifest["kind"])
    assert validated >= {*CORE, "HorizontalPodAutoscaler", "Gateway", "HTTPRoute", "PodMonitoring"}


def test_the_validation_would_catch_a_broken_object() -> None:
    run = kube_state_after("canary")
    (route,) = of_kind(run, "HTTPRoute")
    route["spec"]["rules"][-1]["backendRefs"][0]["weight"] = 1_000_001  # over the CRD's maximum
    with pytest.raises(jsonschema.ValidationError, match="1000001"):
        validate(route)
    (monitoring, *_) = of_kind(run, "PodMonitoring")
    monitoring["spec"]["endpoints"][0]["port"] = ["http"]  # a name or a number, never a list
    with pytest.raises(jsonschema.ValidationError, match="http"):
        validate(monitoring)
    deployment = of_kind(run, "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        validate(deployment)


def test_the_bootstraps_cluster_is_reached_with_the_deployers_token() -> None:
    run = kube_state_after("stable")
    assert not run.mocks.of_type("gcp:container/cluster:Cluster"), "the bootstrap creates it"
    provider = run.mocks.one("pulumi:providers:kubernetes").inputs
    assert isinstance(provider["kubeconfig"], dict), "a secret: the token is encrypted in state"
    kubeconfig = json.loads(unsecret(provider["kubeconfig"]))
    assert kubeconfig["users"][0]["user"] == {"token": ACCESS_TOKEN}
    assert kubeconfig["clusters"][0]["cluster"] == {
        "server": f"https://{CLUSTER_ADDRESS}",
        "certificate-authority-data": CLUSTER_CA,
    }
    assert run.outputs["cluster_endpoint"] == f"https://{CLUSTER_ADDRESS}"
    assert run.outputs["cluster_ca_certificate"] == CLUSTER_CA
    assert run.outputs["platform"] == "kubernetes"
    assert "service_url" not in run.outputs
    assert not run.mocks.of_type("gcp:cloudrunv2/service:Service")


def test_alerts_and_the_dashboard_read_the_pods_own_metrics() -> None:
    run = kube_state_after("stable")
    queries = {
        r.name: r.inputs["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
        for r in run.mocks.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
    }
    where = 'namespace="fraud-scorer",cluster="fraud-scorer-dev"'
    selector = f'{where},route!~"/readyz|/healthz|/metrics"'
    assert queries["monitoring-errors"] == (
        f'sum(rate(http_requests_total{{{selector},status=~"5.."}}[5m])) / '
        f"sum(rate(http_requests_total{{{selector}}}[5m])) > 0.02"
    )
    assert queries["monitoring-latency"] == (
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket"
        f"{{{selector}}}[5m]))) * 1000 > 800.0"
    ), "seconds to milliseconds, against the SLO in ms"
    dashboard = json.loads(
        run.mocks.one("gcp:monitoring/dashboard:Dashboard").inputs["dashboardJson"]
    )
    tiles = [t["widget"]["xyChart"]["dataSets"][0]["timeSeriesQuery"]["prometheusQuery"]
             for t in dashboard["mosaicLayout"]["tiles"]]  # fmt: skip
    assert tiles[0] == f"sum by (revision) (rate(http_requests_total{{{selector}}}[5m]))"
    assert tiles[3] == f"count by (revision) (up{{{where}}})"
    assert not run.mocks.of_type("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"), (
        "the gateway's address is the cluster's to give, after the program ran"
    )
    assert run.outputs["dashboard_url"].startswith("https://console.cloud.google.com/monitoring/")


def test_the_pods_run_as_the_kubernetes_account_bound_to_the_runtime_account() -> None:
    run = kube_state_after("stable")
    (account,) = of_kind(run, "ServiceAccount")
    email = "fraud-scorer-dev-run@my-ml-dev.iam.gserviceaccount.com"
    assert account["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": email}
    assert account["metadata"]["name"] == "fraud-scorer"
    assert not run.mocks.of_type("gcp:serviceaccount/iAMMember:IAMMember"), (
        "the binding is the bootstrap's: no deployer may set a service account's IAM policy"
    )


def test_an_existing_cluster_comes_from_the_kubeconfig_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cluster(name: str, ca: str) -> dict[str, Any]:
        return {
            "name": name,
            "cluster": {"server": f"https://{name}", "certificate-authority-data": ca},
        }

    kubeconfig = {
        "current-context": "other",
        "contexts": [{"name": "other", "context": {"cluster": "a"}},
                     {"name": SHARED, "context": {"cluster": "b"}}],
        "clusters": [cluster("a", "QQ=="), cluster("b", "Qg==")],
    }  # fmt: skip
    path = tmp_path / "config"
    path.write_text(json.dumps(kubeconfig), encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", f"{path}:/nowhere")
    assert kubeconfig_path() == path
    config = kube_config(kubernetesCluster="kubeconfig", kubernetesContext=SHARED)
    run = run_program(lambda: deploy(release_env("deploy", 1)), "dev", config)
    assert not run.mocks.of_type("gcp:container/cluster:Cluster")
    provider = run.mocks.one("pulumi:providers:kubernetes").inputs
    assert provider["context"] == SHARED
    assert json.loads(unsecret(provider["kubeconfig"])) == kubeconfig
    assert (run.outputs["cluster_endpoint"], run.outputs["cluster_ca_certificate"]) == (
        "https://b",
        "Qg==",
    )
    assert context_cluster(kubeconfig, "") == ("https://a", "QQ==")
    with pytest.raises(
        ConfigError, match=rf"no context 'missing' \(it has \['{SHARED}', 'other'\]\)"
    ):
        context_cluster(kubeconfig, "missing")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="get-credentials"):
        run_program(lambda: deploy(release_env("deploy", 1)), "dev", config)


def environment_values() -> dict[str, Any]:
    """The dev stack file's values on Kubernetes, as `parse` takes them."""
    values = {k[len(PREFIX) + 1 :]: v for k, v in kube_config().items() if k.startswith(PREFIX)}
    return {
        key: json.loads(value)
        if value.startswith(("[", "{")) or value in {"true", "false"}
        else value
        for key, value in values.items()
    }


def test_the_gateway_class_and_the_events_follow_the_platform() -> None:
    parsed = environment_values()
    settings = parse("dev", "my-ml-dev", "europe-west1", parsed)
    assert settings.gateway_class_name == "gke-l7-global-external-managed", "dev is public"
    assert settings.model_copy(update={"public": False}).gateway_class_name == "gke-l7-rilb"
    assert 'resource.type="k8s_container"' in sink_filter(settings)
    assert 'resource.labels.namespace_name="fraud-scorer"' in sink_filter(settings)
    assert 'resource.type="cloud_run_revision"' in sink_filter(load_file("dev"))


def test_the_workflows_learn_the_existing_cluster_from_the_environment_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {"platform": "kubernetes", "kubernetes_cluster": "kubeconfig"}
    settings = load_file("dev").model_copy(update=values | {"kubernetes_context": SHARED})
    assert settings.existing_cluster == {
        "project": "my-ml-shared", "location": "europe-west1", "name": "shared"
    }  # fmt: skip
    assert load_file("dev").existing_cluster is None
    wrong = {"kubernetesCluster": "kubeconfig", "kubernetesContext": "kind-x"}
    with pytest.raises(ConfigError, match="must name an existing GKE cluster's context"):
        parse("dev", "my-ml-dev", "europe-west1", environment_values() | wrong)
    assert environments_main(["gke-cluster", "dev"]) == 0
    assert capsys.readouterr().out == "", "a Cloud Run environment fetches no cluster"
    monkeypatch.setattr(environments_cli, "load_file", lambda _: settings)
    assert environments_main(["gke-cluster", "dev"]) == 0
    assert (
        capsys.readouterr().out == "project=my-ml-shared\nlocation=europe-west1\ncluster=shared\n"
    )


def test_a_teams_own_prometheus_and_a_private_gateway_change_only_what_they_should() -> None:
    config = kube_config("prod", kubernetesPrometheusUrl="https://prometheus.example.internal")
    run = run_program(lambda: deploy(release_env("deploy", 1)), "prod", config)
    assert not of_kind(run, "PodMonitoring"), "that Prometheus discovers the pods itself"
    (deployment,) = of_kind(run, "Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    (gateway,) = of_kind(run, "Gateway")
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-rilb", "prod is not public"
    (scaler,) = of_kind(run, "HorizontalPodAutoscaler")
    settings = load_file("prod")
    assert (scaler["spec"]["minReplicas"], scaler["spec"]["maxReplicas"]) == (
        settings.min_instances,
        settings.max_instances,
    )
    custom = kube_config("prod", kubernetesGatewayClass="istio", kubernetesNamespace="scoring")
    run = run_program(lambda: deploy(release_env("deploy", 1)), "prod", custom)
    (gateway,) = of_kind(run, "Gateway")
    assert gateway["spec"]["gatewayClassName"] == "istio"
    assert not of_kind(run, "HealthCheckPolicy"), "a GKE policy only for GKE's own gateways"
    assert {m["metadata"].get("namespace") for m in manifests(run)} == {"scoring", None}


def test_secrets_are_mounted_from_secret_manager_as_files_the_service_reads() -> None:
    config = kube_config(secretEnv='["USER_HASH_KEY=fraud-scorer-user-hash-key:3"]')
    run = run_program(lambda: deploy(release_env("deploy", 1)), "dev", config)
    (provider,) = of_kind(run, "SecretProviderClass")
    assert provider["spec"]["provider"] == "gke"
    assert yaml.safe_load(provider["spec"]["parameters"]["secrets"]) == [
        {
            "resourceName": "projects/my-ml-dev/secrets/fraud-scorer-user-hash-key/versions/3",
            "path": "USER_HASH_KEY",
        }
    ]
    (deployment,) = of_kind(run, "Deployment")
    validate(deployment)
    pod = deployment["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    assert volume["csi"] == {
        "driver": "secrets-store-gke.csi.k8s.io",
        "readOnly": True,
        "volumeAttributes": {"secretProviderClass": deployment["metadata"]["name"]},
    }
    (container,) = pod["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SECRETS_DIR"] == "/var/secrets"
    assert "USER_HASH_KEY" not in env, "the value never passes through the program"
    assert {"name": "secrets", "mountPath": "/var/secrets", "readOnly": True} in container[
        "volumeMounts"
    ]
    grants = [
        r.inputs for r in run.mocks.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    ]
    assert [(g["secretId"], g["role"]) for g in grants] == [
        ("fraud-scorer-user-hash-key", "roles/secretmanager.secretAccessor")
    ], "the runtime account, which the pods act as, may read it"
    assert not of_kind(kube_state_after("stable"), "SecretProviderClass"), "none without secrets"


def test_metrics_are_told_apart_by_cluster_only_where_managed_prometheus_labels_them() -> None:
    dev = load_file("dev")
    assert dev.cluster_matcher == "", "Cloud Run revisions carry their service's name"
    on_gke = dev.model_copy(update={"platform": "kubernetes"})
    assert on_gke.cluster_matcher == ',cluster="fraud-scorer-dev"'
    existing = on_gke.model_copy(
        update={"kubernetes_cluster": "kubeconfig", "kubernetes_context": SHARED}
    )
    assert existing.cluster_matcher == ',cluster="shared"'
    own = on_gke.model_copy(update={"kubernetes_prometheus_url": "https://prometheus.example"})
    assert own.cluster_matcher == "", "a team's own Prometheus labels as it likes"
