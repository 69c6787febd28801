from pathlib import Path

import pytest

from infra.bootstrap.deployers import DEPLOYER_ROLES, GRANTABLE_ROLES
from infra.bootstrap.program import REQUIRED_APIS, bootstrap
from infra.bootstrap.trust import attribute_condition
from tests.infra.mock_stack import RecordingMocks, Run, run_program, stack_config

PROJECT = "cloudrun-ml-rollouts-bootstrap"
CONFIG = stack_config(Path("infra/bootstrap/Pulumi.main.yaml"))


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


def test_deployers_hold_their_roles_on_their_own_project_only(shipped: Run) -> None:
    grants = {
        (r.inputs["project"], r.inputs["role"], r.inputs["member"].split("@")[0])
        for r in shipped.mocks.of_type("gcp:projects/iAMMember:IAMMember")
    }
    for environment in ("dev", "staging", "prod"):
        mine = {
            (p, role) for p, role, who in grants if who == f"serviceAccount:deploy-{environment}"
        }
        assert {p for p, _ in mine} == {f"my-ml-{environment}"}
        assert {role for _, role in mine} == {
            *DEPLOYER_ROLES,
            "roles/resourcemanager.projectIamAdmin",
        }
    assert not any(role in {"roles/owner", "roles/editor"} for _, role, _ in grants)
    conditional = [
        r.inputs
        for r in shipped.mocks.of_type("gcp:projects/iAMMember:IAMMember")
        if r.inputs["role"] == "roles/resourcemanager.projectIamAdmin"
    ]
    assert len(conditional) == 3
    assert all(
        all(role in c["condition"]["expression"] for role in GRANTABLE_ROLES) for c in conditional
    )
    assert not shipped.mocks.of_type("gcp:serviceaccount/key:Key"), (
        "keyless: no service-account keys"
    )


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
    state = shipped.mocks.one("gcp:storage/bucket:Bucket").inputs
    assert state["versioning"] == {"enabled": True}
    assert state["publicAccessPrevention"] == "enforced"
    variables = shipped.outputs["github_variables"]
    assert variables["GCP_REGISTRY"] == "europe-west1-docker.pkg.dev/my-ml-shared/services"
    assert variables["GCP_DEPLOYER_PROD"] == "deploy-prod@my-ml-shared.iam.gserviceaccount.com"
    assert variables["GCP_WORKLOAD_IDENTITY_PROVIDER_PROD"].endswith(
        "/workloadIdentityPools/github-prod/providers/github-oidc"
    )
    assert (
        "gh variable set PULUMI_BACKEND_URL --body 'gs://my-ml-shared-pulumi-state'"
        in shipped.outputs["gh_commands"]
    )


def test_a_bad_environment_list_is_explained() -> None:
    with pytest.raises(Exception, match=r"exactly dev=\.\.\., staging=\.\.\. and prod=\.\.\."):
        run(environmentProjects='["dev=my-ml-dev"]')


def test_the_condition_names_every_required_claim() -> None:
    assert attribute_condition("o/r") == "assertion.repository == 'o/r'"
    assert attribute_condition("o/r", ref="refs/heads/main", environment="prod").count("&&") == 2
