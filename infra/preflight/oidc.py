"""Inside a GitHub job: walk OIDC token -> claims -> STS -> deployer -> project permissions.

Each step uses only what the previous one produced, so the first failure is the cause; the fix
names the workflow line or the bootstrap setting to change.
"""

import base64
import json
from collections.abc import Mapping
from typing import Any

import httpx

from infra.preflight.expectation import Expectation, Finding, Role, error_text

STS_URL = "https://sts.googleapis.com/v1/token"
IAM_CREDENTIALS = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts"
RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com/v1/projects"
# A sample of what each identity's job does: for a deployer, `pulumi up` (each permission maps to
# one deployer role); for a previewer, `pulumi preview --refresh` (reads, IAM policies included).
REQUIRED_PERMISSIONS: dict[Role, tuple[str, ...]] = {
    "deployer": (
        "run.services.update",
        "run.services.setIamPolicy",
        "iam.serviceAccounts.actAs",
        "iam.serviceAccounts.create",
        "storage.buckets.update",
        "monitoring.alertPolicies.update",
        "cloudscheduler.jobs.update",
    ),
    "previewer": (
        "resourcemanager.projects.get",
        "run.services.get",
        "run.services.getIamPolicy",
        "storage.objects.get",
        "storage.objects.list",
        "monitoring.alertPolicies.get",
    ),
}


def decode_claims(token: str) -> dict[str, Any]:
    """The JWT's payload, unverified: STS verifies it; here it only explains a refusal."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def check_claims(claims: Mapping[str, Any], expected: Expectation) -> list[Finding]:
    findings = [
        Finding(
            claims.get("repository") == expected.repository,
            "token repository",
            f"token is from {claims.get('repository')!r}; the provider trusts only "
            f"{expected.repository!r} (bootstrap `githubRepository`)",
        )
    ]
    if expected.prod_pool:
        findings += [
            Finding(
                claims.get("environment") == "prod",
                "token environment",
                f"token environment is {claims.get('environment')!r}: the job must declare "
                "`environment: prod` so GitHub's approval rules apply and the claim is present",
            ),
            Finding(
                claims.get("ref") == expected.prod_ref,
                "token ref",
                f"token ref is {claims.get('ref')!r}; prod deploys only from {expected.prod_ref}",
            ),
        ]
    return findings


def exchange(client: httpx.Client, token: str, expected: Expectation) -> tuple[str | None, Finding]:
    response = client.post(
        STS_URL,
        json={
            "grantType": "urn:ietf:params:oauth:grant-type:token-exchange",
            "audience": f"//iam.googleapis.com/{expected.provider}",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "requestedTokenType": "urn:ietf:params:oauth:token-type:access_token",
            "subjectTokenType": "urn:ietf:params:oauth:token-type:jwt",
            "subjectToken": token,
        },
    )
    if response.status_code == 200:
        return response.json()["access_token"], Finding(True, "token exchange", "STS accepted")
    text = error_text(response)
    if "attribute condition" in text:
        advice = "the provider's attribute condition refused this token (see the claim checks)"
    elif "audience" in text or "does not exist" in text or "not found" in text.lower():
        advice = (
            f"no provider {expected.provider!r}: set GCP_WORKLOAD_IDENTITY_PROVIDER"
            f"{'_PROD' if expected.prod_pool else ''} to the bootstrap output"
        )
    else:
        advice = "STS refused the token"
    return None, Finding(False, "token exchange", f"{advice}: {text}")


def impersonate(
    client: httpx.Client, federated: str, expected: Expectation
) -> tuple[str | None, Finding]:
    response = client.post(
        f"{IAM_CREDENTIALS}/{expected.service_account}:generateAccessToken",
        headers={"Authorization": f"Bearer {federated}"},
        json={"scope": ["https://www.googleapis.com/auth/cloud-platform"]},
    )
    if response.status_code == 200:
        return response.json()["accessToken"], Finding(
            True, "impersonation", expected.service_account
        )
    if response.status_code == 404:
        advice = f"{expected.service_account} does not exist: run the bootstrap stack"
    else:
        advice = (
            f"{expected.service_account} does not trust this workflow: it needs "
            "roles/iam.workloadIdentityUser for principalSet://.../attribute.repository/"
            f"{expected.repository} (the bootstrap stack grants it), and prod only via the "
            "github-prod pool"
        )
    return None, Finding(False, "impersonation", f"{advice} ({error_text(response)})")


def check_permissions(client: httpx.Client, access: str, expected: Expectation) -> Finding:
    response = client.post(
        f"{RESOURCE_MANAGER}/{expected.project}:testIamPermissions",
        headers={"Authorization": f"Bearer {access}"},
        json={"permissions": list(REQUIRED_PERMISSIONS[expected.role])},
    )
    if response.status_code != 200:
        return Finding(
            False, "permissions", f"cannot read {expected.project}: {error_text(response)}"
        )
    granted = set(response.json().get("permissions", []))
    missing = [p for p in REQUIRED_PERMISSIONS[expected.role] if p not in granted]
    detail = f"missing on {expected.project}: {', '.join(missing)} (re-run the bootstrap stack)"
    return Finding(not missing, "permissions", detail if missing else "all present")


def github_token(environ: Mapping[str, str], client: httpx.Client, audience: str) -> str | None:
    url, bearer = (
        environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
        environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    )
    if not url or not bearer:
        return None
    response = client.get(
        url, params={"audience": audience}, headers={"Authorization": f"Bearer {bearer}"}
    )
    response.raise_for_status()
    return str(response.json()["value"])


def check_from_github(
    expected: Expectation, environ: Mapping[str, str], client: httpx.Client
) -> list[Finding]:
    """Every link checked in order; it stops at the first one that cannot be crossed."""
    token = github_token(environ, client, f"//iam.googleapis.com/{expected.provider}")
    if token is None:
        return [
            Finding(
                False,
                "GitHub OIDC token",
                "no OIDC token: run in GitHub Actions with `permissions: id-token: write`",
            )
        ]
    findings = [
        Finding(True, "GitHub OIDC token", "issued"),
        *check_claims(decode_claims(token), expected),
    ]
    federated, finding = exchange(client, token, expected)
    findings.append(finding)
    if federated is None:
        return findings
    access, finding = impersonate(client, federated, expected)
    findings.append(finding)
    if access is not None:
        findings.append(check_permissions(client, access, expected))
    return findings
