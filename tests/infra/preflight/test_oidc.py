import base64
import json
from collections.abc import Callable

import httpx

from infra.preflight.expectation import Expectation
from infra.preflight.oidc import check_from_github

PROVIDER = "projects/1/locations/global/workloadIdentityPools/github-prod/providers/github-oidc"
EXPECTED = Expectation(
    environment="prod",
    repository="my-org/cloudrun-ml-rollouts",
    prod_ref="refs/heads/main",
    provider=PROVIDER,
    service_account="deploy-prod@my-ml-shared.iam.gserviceaccount.com",
    project="my-ml-prod",
)
GITHUB = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.actions.example/oidc",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t",
}
GOOD_CLAIMS = {
    "repository": "my-org/cloudrun-ml-rollouts",
    "ref": "refs/heads/main",
    "environment": "prod",
}


def encode(part: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def jwt(claims: dict[str, str]) -> str:
    return f"{encode({'alg': 'RS256'})}.{encode(claims)}.signature"


def google(
    claims: dict[str, str] | None = None,
    sts: httpx.Response | None = None,
    impersonation: httpx.Response | None = None,
    permissions: list[str] | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    """GitHub's token endpoint and Google's three APIs, answering as they document."""

    claims = claims or GOOD_CLAIMS

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "token.actions.example":
            assert request.url.params["audience"] == f"//iam.googleapis.com/{PROVIDER}"
            return httpx.Response(200, json={"value": jwt(claims)})
        if request.url.host == "sts.googleapis.com":
            assert json.loads(request.content)["subjectToken"] == jwt(claims)
            return sts or httpx.Response(200, json={"access_token": "federated"})
        if request.url.host == "iamcredentials.googleapis.com":
            assert request.headers["Authorization"] == "Bearer federated"
            return impersonation or httpx.Response(200, json={"accessToken": "deployer"})
        assert request.headers["Authorization"] == "Bearer deployer"
        asked = json.loads(request.content)["permissions"]
        return httpx.Response(
            200, json={"permissions": asked if permissions is None else permissions}
        )

    return handle


def preflight(
    handler: Callable[[httpx.Request], httpx.Response], environ: dict[str, str] | None = None
) -> dict[str, str]:
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        findings = check_from_github(EXPECTED, GITHUB if environ is None else environ, client)
    return {f.check: ("ok" if f.ok else f.detail) for f in findings}


def test_a_correctly_bootstrapped_prod_job_passes_every_check() -> None:
    assert set(preflight(google()).values()) == {"ok"}


def test_a_job_without_id_token_permission_is_told_so() -> None:
    assert "permissions: id-token: write" in preflight(google(), environ={})["GitHub OIDC token"]


def test_a_prod_job_outside_the_prod_environment_is_explained() -> None:
    refusal = httpx.Response(
        400,
        json={
            "error": "unauthorized_client",
            "error_description": "The given credential is rejected by the attribute condition.",
        },
    )
    results = preflight(google(claims={**GOOD_CLAIMS, "environment": ""}, sts=refusal))
    assert "must declare `environment: prod`" in results["token environment"]
    assert "attribute condition refused this token" in results["token exchange"]
    assert "impersonation" not in results, "it stops at the first broken link"


def test_a_wrong_provider_name_points_at_the_variable() -> None:
    missing = httpx.Response(
        400,
        json={
            "error": "invalid_target",
            "error_description": "The audience parameter is invalid.",
        },
    )
    assert "GCP_WORKLOAD_IDENTITY_PROVIDER_PROD" in preflight(google(sts=missing))["token exchange"]


def test_a_missing_workload_identity_binding_is_explained() -> None:
    denied = httpx.Response(
        403,
        json={
            "error": {
                "code": 403,
                "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource",
            }
        },
    )
    detail = preflight(google(impersonation=denied))["impersonation"]
    assert "roles/iam.workloadIdentityUser" in detail
    assert "getAccessToken' denied" in detail


def test_missing_project_permissions_are_listed() -> None:
    detail = preflight(google(permissions=["run.services.update"]))["permissions"]
    assert "run.services.setIamPolicy" in detail
    assert "run.services.update," not in detail
