import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx

from infra.preflight.bindings import check_from_workstation, expected_condition, expected_roles
from infra.preflight.expectation import Expectation

POOL = "projects/1/locations/global/workloadIdentityPools/github-prod"
EXPECTED = Expectation(
    environment="prod",
    repository="my-org/cloudrun-ml-rollouts",
    prod_ref="refs/heads/main",
    provider=f"{POOL}/providers/github-oidc",
    service_account="deploy-prod@my-ml-shared.iam.gserviceaccount.com",
    project="my-ml-prod",
)
PRINCIPAL = (
    f"principalSet://iam.googleapis.com/{POOL}/attribute.repository/my-org/cloudrun-ml-rollouts"
)
DEPLOYER = f"serviceAccount:{EXPECTED.service_account}"


def iam_api(
    provider: dict[str, Any] | None = None,
    impersonators: list[str] | None = None,
    roles: tuple[str, ...] = expected_roles(EXPECTED),
) -> Callable[[httpx.Request], httpx.Response]:
    """IAM and Resource Manager answering for a correctly bootstrapped project, unless told."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.path == f"/v1/{EXPECTED.provider}"
            default = {"state": "ACTIVE", "attributeCondition": expected_condition(EXPECTED)}
            return httpx.Response(200, json=default if provider is None else provider)
        if request.url.host == "iam.googleapis.com":
            members = [PRINCIPAL] if impersonators is None else impersonators
            bindings = [{"role": "roles/iam.workloadIdentityUser", "members": members}]
            return httpx.Response(200, json={"bindings": bindings})
        assert json.loads(request.content)["options"]["requestedPolicyVersion"] == 3
        bindings = [
            {"role": role, "members": [DEPLOYER, "user:someone@example.com"]} for role in roles
        ]
        return httpx.Response(200, json={"bindings": bindings})

    return handle


def check(handler: Callable[[httpx.Request], httpx.Response]) -> dict[str, str]:
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        return {
            f.check: "ok" if f.ok else f.detail for f in check_from_workstation(EXPECTED, client)
        }


def test_a_correct_bootstrap_passes() -> None:
    assert check(iam_api()) == {"provider": "ok", "impersonation": "ok", "roles": "ok"}


def test_a_hand_edited_condition_is_shown_next_to_the_expected_one() -> None:
    loosened = {
        "state": "ACTIVE",
        "attributeCondition": "assertion.repository == 'my-org/cloudrun-ml-rollouts'",
    }
    detail = check(iam_api(provider=loosened))["provider"]
    assert "assertion.environment == 'prod'" in detail
    assert "re-run `make bootstrap`" in detail


def test_a_disabled_or_missing_provider_is_named() -> None:
    assert "DELETED" in check(iam_api(provider={"state": "DELETED"}))["provider"]

    def missing(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                404, json={"error": {"code": 404, "message": "Requested entity was not found."}}
            )
        return iam_api()(request)

    assert "not found" in check(missing)["provider"]


def test_a_deployer_trusting_the_wrong_pool_is_explained() -> None:
    other_pool = PRINCIPAL.replace("github-prod", "github")
    detail = check(iam_api(impersonators=[other_pool]))["impersonation"]
    assert other_pool in detail
    assert PRINCIPAL in detail


def test_missing_expected_roles_are_listed() -> None:
    detail = check(iam_api(roles=("roles/run.admin",)))["roles"]
    assert "roles/storage.admin" in detail
    assert "roles/resourcemanager.projectIamAdmin" in detail
    assert "projects/my-ml-prod/roles/fraud_scorer_prod_secret_iam" in detail
    assert "roles/run.admin," not in detail


def test_a_kubernetes_deployer_is_also_expected_to_hold_its_cluster_role() -> None:
    on_kubernetes = replace(EXPECTED, platform="kubernetes")
    assert "roles/container.developer" in expected_roles(on_kubernetes)
    assert "roles/container.developer" not in expected_roles(EXPECTED)
    previewer = replace(on_kubernetes, role="previewer")
    assert "roles/container.developer" not in expected_roles(previewer), "viewer reads clusters"
