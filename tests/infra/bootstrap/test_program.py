import json
from pathlib import Path

import pytest

from environments.stack_settings import ENVIRONMENTS, StackSettings, secrets_provider
from infra.bootstrap import program
from infra.bootstrap.deployers import DEPLOYER_ROLES, GRANTABLE_ROLES, PREVIEWER_ROLES
from infra.bootstrap.program import REQUIRED_APIS, bootstrap
from infra.bootstrap.settings import BootstrapSettings, environment_stacks
from infra.bootstrap.trust import attribute_condition
from infra.identity import JOB_PROJECT_ROLES, SERVICE_PROJECT_ROLES
from tests.infra.mock_stack import (
    PROJECT_NUMBER,
    RecordingMocks,
    Resource,
    Run,
    run_program,
    stack_config,
)

PROJECT = "cloudrun-ml-rollouts-bootstrap"
CONFIG = stack_config(Path("infra/bootstrap/Pulumi.main.yaml"))
PREDEFINED = json.loads((Path(__file__).parent / "predefined_roles.json").read_text("utf-8"))


def run(**changes: str) -> Run:
    config = CONFIG | {f"{PROJECT}:{key}": value for key, value in changes.items()}
    return run_program(bootstrap, "main", config, project=PROJECT)


@pytest.fixture(scope="module")
def shipped() -> Run:
    return run()


def members_of(mocks: RecordingMocks, typ: str, role: str) -> list[str]:
    return [r.inputs["member"] for r in mocks.of_type(typ) if r.inputs["role"] == role]


def test_every_api_is_enabled_in_every_project(shipped: Run) -> None:
    enabled = {
        (r.inputs["project"], r.inputs["service"])
        for r in shipped.mocks.of_type("gcp:projects/service:Service")
    }
    projects = {"my-ml-shared", "my-ml-dev", "my-ml-staging", "my-ml-prod"}
    assert enabled == {(project, api) for project in projects for api in REQUIRED_APIS}


def test_only_this_repository_and_prods_protected_ref_can_authenticate(shipped: Run) -> None:
    providers = {
        r.inputs["workloadIdentityPoolId"]: r.inputs
        for r in shipped.mocks.of_type(
            "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider"
        )
    }
    assert (
        providers["github"]["attributeCondition"]
        == "assertion.repository == 'my-org/cloudrun-ml-rollouts'"
    )
    assert providers["github-prod"]["attributeCondition"] == (
        "assertion.repository == 'my-org/cloudrun-ml-rollouts' && "
        "assertion.ref == 'refs/heads/main' && assertion.environment == 'prod'"
    )
    assert all(
        p["oidc"]["issuerUri"] == "https://token.actions.githubusercontent.com"
        for p in providers.values()
    )


def test_prod_is_impersonated_only_through_the_prod_pool(shipped: Run) -> None:
    bindings = {
        r.name: r.inputs["member"]
        for r in shipped.mocks.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
    }
    assert "/workloadIdentityPools/github-prod/" in bindings["deployer-prod-github-impersonates"]
    for environment in ("dev", "staging"):
        member = bindings[f"deployer-{environment}-github-impersonates"]
        assert (
            "/workloadIdentityPools/github/attribute.repository/my-org/cloudrun-ml-rollouts"
            in member
        )


def deployer_grants(mocks: RecordingMocks, environment: str) -> list[Resource]:
    """Every IAM grant whose member is that environment's deployer."""
    who = f"serviceAccount:deploy-{environment}@my-ml-shared.iam.gserviceaccount.com"
    return [r for r in mocks.resources if r.inputs.get("member") == who]


def custom_role_permissions(mocks: RecordingMocks) -> dict[str, list[str]]:
    return {
        f"projects/{r.inputs['project']}/roles/{r.inputs['roleId']}": r.inputs["permissions"]
        for r in mocks.of_type("gcp:projects/iAMCustomRole:IAMCustomRole")
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_deployers_hold_their_roles_on_their_own_project_only(
    shipped: Run, environment: str
) -> None:
    grants = deployer_grants(shipped.mocks, environment)
    project_grants = [g for g in grants if g.typ == "gcp:projects/iAMMember:IAMMember"]
    assert {g.inputs["project"] for g in project_grants} == {f"my-ml-{environment}"}
    assert {g.inputs["role"] for g in project_grants} == {
        *DEPLOYER_ROLES,
        "roles/resourcemanager.projectIamAdmin",
        f"projects/my-ml-{environment}/roles/fraud_scorer_{environment}_secret_iam",
    }
    conditions = {g.inputs["role"]: g.inputs.get("condition") or {} for g in project_grants}
    iam_admin = conditions["roles/resourcemanager.projectIamAdmin"]
    assert all(role in iam_admin["expression"] for role in GRANTABLE_ROLES)
    # ... and exactly the project roles the environment stack grants its runtime accounts.
    assert set(GRANTABLE_ROLES) == {*SERVICE_PROJECT_ROLES, *JOB_PROJECT_ROLES}
    secret_role = f"projects/my-ml-{environment}/roles/fraud_scorer_{environment}_secret_iam"
    assert conditions[secret_role]["expression"] == (
        f"resource.name.startsWith('projects/{PROJECT_NUMBER}/secrets/fraud-scorer-')"
    )
    assert not shipped.mocks.of_type("gcp:serviceaccount/key:Key"), "keyless"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_a_deployer_acts_only_as_its_own_two_runtime_accounts(
    shipped: Run, environment: str
) -> None:
    acts_as = [
        g for g in deployer_grants(shipped.mocks, environment)
        if g.inputs["role"] == "roles/iam.serviceAccountUser"
    ]  # fmt: skip
    assert all(g.typ == "gcp:serviceaccount/iAMMember:IAMMember" for g in acts_as), (
        "actAs on single accounts, never on a project"
    )
    accounts = {
        r.inputs["accountId"]: r
        for r in shipped.mocks.of_type("gcp:serviceaccount/account:Account")
        if r.inputs["project"] == f"my-ml-{environment}"
    }
    short = environment[:4]
    assert set(accounts) == {f"fraud-scorer-{short}-run", f"fraud-scorer-{short}-job"}
    project = f"my-ml-{environment}"
    assert sorted(g.inputs["serviceAccountId"] for g in acts_as) == sorted(
        f"projects/{project}/serviceAccounts/{account_id}@{project}.iam.gserviceaccount.com"
        for account_id in accounts
    )


def permissions(role: str, mocks: RecordingMocks) -> list[str]:
    custom = custom_role_permissions(mocks)
    if role in custom:
        return custom[role]
    recorded = PREDEFINED["roles"]
    assert role in recorded, f"{role} is granted but its permissions are not recorded"
    return recorded[role]["permissions"]


# Permissions that would let a deployer read secrets or become another identity.
FORBIDDEN = (
    "secretmanager.versions.access",
    "iam.serviceAccounts.getAccessToken",
    "iam.serviceAccounts.signJwt",
    "iam.serviceAccounts.implicitDelegation",
    "iam.serviceAccounts.setIamPolicy",
    "iam.serviceAccountKeys.create",
    "iam.roles.update",
)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_deployer_role_reads_secrets_or_acts_project_wide(
    shipped: Run, environment: str
) -> None:
    """Checked against the roles' recorded permission lists (predefined_roles.json)."""
    for grant in deployer_grants(shipped.mocks, environment):
        held = set(permissions(grant.inputs["role"], shipped.mocks))
        assert not held & set(FORBIDDEN), (grant.name, held & set(FORBIDDEN))
        if grant.typ != "gcp:serviceaccount/iAMMember:IAMMember":
            assert "iam.serviceAccounts.actAs" not in held, f"{grant.name}: actAs project-wide"
        if "resourcemanager.projects.setIamPolicy" in held:
            assert grant.inputs.get("condition"), f"{grant.name}: unconditioned IAM admin"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environments_state_lives_apart(shipped: Run, environment: str) -> None:
    """No deployer holds any grant in another environment's project, where its state lives."""
    buckets = {
        r.inputs["name"]: r.inputs for r in shipped.mocks.of_type("gcp:storage/bucket:Bucket")
    }
    state = buckets[f"my-ml-{environment}-{environment}-pulumi-state"]
    assert state["project"] == f"my-ml-{environment}"
    assert state["versioning"] == {"enabled": True}
    assert state["publicAccessPrevention"] == "enforced"
    for other in ENVIRONMENTS:
        if other == environment:
            continue
        for grant in deployer_grants(shipped.mocks, other):
            assert grant.inputs.get("project") != f"my-ml-{environment}"
            assert grant.inputs.get("bucket") is None, "no bucket-level grant on any state"
    assert shipped.outputs["github_variables"][f"PULUMI_BACKEND_URL_{environment.upper()}"] == (
        f"gs://my-ml-{environment}-{environment}-pulumi-state"
    )


def test_prod_may_not_share_a_project() -> None:
    with pytest.raises(Exception, match="prod shares project my-ml-dev with dev"):
        run(environmentProjects='["dev=my-ml-dev", "staging=my-ml-staging", "prod=my-ml-dev"]')


def test_the_bootstrap_and_the_environment_files_must_agree() -> None:
    with pytest.raises(Exception, match=r"Pulumi\.staging\.yaml says gcp:project my-ml-staging"):
        run(environmentProjects='["dev=my-ml-dev", "staging=my-ml-other", "prod=my-ml-prod"]')


def test_each_environment_gets_its_monitoring_agent(shipped: Run) -> None:
    agents = shipped.mocks.of_type("gcp:projects/serviceIdentity:ServiceIdentity")
    assert {(a.inputs["project"], a.inputs["service"]) for a in agents} == {
        (f"my-ml-{env}", "monitoring.googleapis.com") for env in ENVIRONMENTS
    }


def test_registry_state_and_variables_are_ready_for_github(shipped: Run) -> None:
    repository = shipped.mocks.one("gcp:artifactregistry/repository:Repository").inputs
    assert repository["dockerConfig"] == {"immutableTags": True}
    assert {p["action"] for p in repository["cleanupPolicies"]} == {"KEEP", "DELETE"}
    pullers = members_of(
        shipped.mocks,
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
        "roles/artifactregistry.reader",
    )
    assert len(pullers) == 3
    assert all("serverless-robot-prod" in m for m in pullers)
    variables = shipped.outputs["github_variables"]
    assert variables["GCP_REGISTRY"] == "europe-west1-docker.pkg.dev/my-ml-shared/services"
    assert variables["GCP_DEPLOYER_PROD"] == "deploy-prod@my-ml-shared.iam.gserviceaccount.com"
    assert variables["GCP_WORKLOAD_IDENTITY_PROVIDER_PROD"].endswith(
        "/workloadIdentityPools/github-prod/providers/github-oidc"
    )
    assert (
        "gh variable set PULUMI_BACKEND_URL_PROD --body 'gs://my-ml-prod-prod-pulumi-state'"
        in shipped.outputs["gh_commands"]
    )
    assert shipped.outputs["state_bucket"] == "gs://my-ml-shared-pulumi-state"


def test_a_bad_environment_list_is_explained() -> None:
    with pytest.raises(Exception, match=r"exactly dev=\.\.\., staging=\.\.\. and prod=\.\.\."):
        run(environmentProjects='["dev=my-ml-dev"]')


def test_the_condition_names_every_required_claim() -> None:
    assert attribute_condition("o/r") == "assertion.repository == 'o/r'"
    assert attribute_condition("o/r", ref="refs/heads/main", environment="prod").count("&&") == 2


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_previewers_only_read_their_own_project(shipped: Run, environment: str) -> None:
    """Pull requests preview every environment, prod included, through the non-prod pool: the
    identity they get can read, never write, and only its own environment's project."""
    who = f"serviceAccount:preview-{environment}@my-ml-shared.iam.gserviceaccount.com"
    grants = [r for r in shipped.mocks.resources if r.inputs.get("member") == who]
    on_project = [g for g in grants if g.typ == "gcp:projects/iAMMember:IAMMember"]
    assert {(g.inputs["project"], g.inputs["role"]) for g in on_project} == {
        (f"my-ml-{environment}", role) for role in PREVIEWER_ROLES
    }
    on_key = [g for g in grants if g.typ == "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"]
    assert [(g.inputs["cryptoKeyId"], g.inputs["role"]) for g in on_key] == [
        (state_key(environment), "roles/cloudkms.cryptoKeyDecrypter")
    ]
    assert len(grants) == len(on_project) + len(on_key)
    trusted = next(
        r.inputs["member"]
        for r in shipped.mocks.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.name == f"previewer-{environment}-github-impersonates"
    )
    assert "/workloadIdentityPools/github/attribute.repository/my-org/" in trusted
    assert shipped.outputs["github_variables"][f"GCP_PREVIEWER_{environment.upper()}"] == (
        f"preview-{environment}@my-ml-shared.iam.gserviceaccount.com"
    )


def state_key(environment: str) -> str:
    return secrets_provider(f"my-ml-{environment}", "europe-west1", environment).removeprefix(
        "gcpkms://"
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_stacks_secrets_are_encrypted_with_its_own_key(shipped: Run, environment: str) -> None:
    """The stack's secrets provider is a KMS key in its own project, protected; only that
    environment's deployer may encrypt with it (no passphrase is shared with CI)."""
    keys = [
        r.inputs for r in shipped.mocks.of_type("gcp:kms/cryptoKey:CryptoKey")
        if r.inputs["keyRing"].startswith(f"projects/my-ml-{environment}/")
        and f"/keyRings/pulumi-{environment}" in r.inputs["keyRing"]
    ]  # fmt: skip
    assert len(keys) == 1
    assert keys[0]["rotationPeriod"] == "7776000s"
    users = {
        (g.inputs["member"], g.inputs["role"])
        for g in shipped.mocks.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
        if g.inputs["cryptoKeyId"] == state_key(environment)
    }
    assert users == {
        (f"serviceAccount:deploy-{environment}@my-ml-shared.iam.gserviceaccount.com",
         "roles/cloudkms.cryptoKeyEncrypterDecrypter"),
        (f"serviceAccount:preview-{environment}@my-ml-shared.iam.gserviceaccount.com",
         "roles/cloudkms.cryptoKeyDecrypter"),
    }  # fmt: skip


@pytest.mark.parametrize("cluster", ["autopilot", "kubeconfig"])
def test_a_kubernetes_environment_gets_its_cluster_identity_binding_and_deployer_role(
    monkeypatch: pytest.MonkeyPatch, cluster: str
) -> None:
    def with_dev_on_kubernetes(settings: BootstrapSettings) -> dict[str, StackSettings]:
        stacks = environment_stacks(settings)
        update = {"platform": "kubernetes", "kubernetes_cluster": cluster}
        return stacks | {"dev": stacks["dev"].model_copy(update=update)}

    monkeypatch.setattr(program.bootstrap_settings, "environment_stacks", with_dev_on_kubernetes)
    mocks = run().mocks
    clusters = mocks.of_type("gcp:container/cluster:Cluster")
    if cluster == "autopilot":
        (made,) = clusters
        assert (made.inputs["name"], made.inputs["project"]) == ("fraud-scorer-dev", "my-ml-dev")
        assert made.inputs["enableAutopilot"] is True
        assert made.inputs["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}
        assert made.inputs["secretManagerConfig"] == {"enabled": True}, "secretEnv mounts"
    else:
        assert not clusters, "an existing cluster is the team's own"
    (binding,) = [
        r for r in mocks.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/iam.workloadIdentityUser"
        and "svc.id.goog" in r.inputs["member"]
    ]  # fmt: skip
    assert binding.inputs["member"] == (
        "serviceAccount:my-ml-dev.svc.id.goog[fraud-scorer/fraud-scorer]"
    )
    assert binding.inputs["serviceAccountId"].endswith(
        "/serviceAccounts/fraud-scorer-dev-run@my-ml-dev.iam.gserviceaccount.com"
    )
    apis = {(r.inputs["project"], r.inputs["service"])
            for r in mocks.of_type("gcp:projects/service:Service")}  # fmt: skip
    assert ("my-ml-dev", "container.googleapis.com") in apis
    assert ("my-ml-prod", "container.googleapis.com") not in apis, "prod stays on Cloud Run"
    roles = {g.inputs["role"] for g in deployer_grants(mocks, "dev")}
    assert "roles/container.developer" in roles
    assert "roles/container.developer" not in {
        g.inputs["role"] for g in deployer_grants(mocks, "prod")
    }
    pullers = {r.name: r.inputs["member"] for r in mocks.of_type(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember"
    ) if r.inputs["role"] == "roles/artifactregistry.reader"}  # fmt: skip
    assert pullers["nodes-dev-pulls-images"] == (
        f"serviceAccount:{PROJECT_NUMBER}-compute@developer.gserviceaccount.com"
    )
    assert "run-agent-prod-pulls-images" in pullers
    for grant in deployer_grants(mocks, "dev"):
        held = set(permissions(grant.inputs["role"], mocks))
        assert not held & set(FORBIDDEN), (grant.name, held & set(FORBIDDEN))
        assert "container.clusters.create" not in held, "clusters are the bootstrap's"
