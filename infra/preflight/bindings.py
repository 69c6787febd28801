"""From a workstation: read the trust and grants the bootstrap should have made, with your own
credentials, and explain each one that is missing or different.

This sees the configuration, not a real token: it cannot tell whether a given workflow's claims
pass. The GitHub-side check (`oidc.py`) does that from inside the job.
"""

import httpx

from infra.bootstrap.deployers import (
    DEPLOYER_ROLES,
    KUBERNETES_DEPLOYER_ROLES,
    PREVIEWER_ROLES,
    secret_role_id,
)
from infra.bootstrap.trust import attribute_condition, principal_set
from infra.preflight.expectation import Expectation, Finding, error_text

IAM = "https://iam.googleapis.com/v1"
RESOURCE_MANAGER = "https://cloudresourcemanager.googleapis.com/v1/projects"
CONDITIONAL_ROLE = "roles/resourcemanager.projectIamAdmin"


def expected_condition(expected: Expectation) -> str:
    prod = expected.prod_pool
    return attribute_condition(
        expected.repository,
        ref=expected.prod_ref if prod else None,
        environment="prod" if prod else None,
    )


def check_provider(client: httpx.Client, expected: Expectation) -> Finding:
    response = client.get(f"{IAM}/{expected.provider}")
    if response.status_code != 200:
        return Finding(
            False,
            "provider",
            f"cannot read {expected.provider} ({error_text(response)}): check the variable "
            "against the bootstrap's `github_variables` output",
        )
    provider = response.json()
    if provider.get("state") != "ACTIVE" or provider.get("disabled"):
        return Finding(False, "provider", f"{expected.provider} is {provider.get('state')}")
    actual, wanted = provider.get("attributeCondition", ""), expected_condition(expected)
    if actual != wanted:
        return Finding(
            False,
            "provider",
            f"the provider accepts `{actual}` but the bootstrap expects `{wanted}`: "
            "re-run `make bootstrap` (someone changed it by hand, or the repository moved)",
        )
    return Finding(True, "provider", f"accepts only `{wanted}`")


def check_impersonation(client: httpx.Client, expected: Expectation) -> Finding:
    response = client.post(
        f"{IAM}/projects/-/serviceAccounts/{expected.service_account}:getIamPolicy"
    )
    if response.status_code != 200:
        return Finding(
            False, "impersonation", f"cannot read the {expected.role}: {error_text(response)}"
        )
    wanted = principal_set(expected.pool, expected.repository)
    holders = [
        member
        for binding in response.json().get("bindings", [])
        if binding.get("role") == "roles/iam.workloadIdentityUser"
        for member in binding.get("members", [])
    ]
    if wanted not in holders:
        return Finding(
            False,
            "impersonation",
            f"{expected.service_account} lets {holders or 'nobody'} impersonate it, not {wanted}: "
            "re-run `make bootstrap`",
        )
    return Finding(True, "impersonation", f"{wanted} may impersonate {expected.service_account}")


def expected_roles(expected: Expectation) -> tuple[str, ...]:
    """Every project-level role the bootstrap grants this environment's deployer or previewer."""
    if expected.role == "previewer":
        return PREVIEWER_ROLES
    secret_role = secret_role_id(expected.service_name, expected.environment)
    kubernetes = KUBERNETES_DEPLOYER_ROLES if expected.platform == "kubernetes" else ()
    return (
        *DEPLOYER_ROLES,
        *kubernetes,
        CONDITIONAL_ROLE,
        f"projects/{expected.project}/roles/{secret_role}",
    )


def check_roles(client: httpx.Client, expected: Expectation) -> Finding:
    response = client.post(
        f"{RESOURCE_MANAGER}/{expected.project}:getIamPolicy",
        json={"options": {"requestedPolicyVersion": 3}},  # conditional bindings included
    )
    if response.status_code != 200:
        return Finding(False, "roles", f"cannot read {expected.project}: {error_text(response)}")
    member = f"serviceAccount:{expected.service_account}"
    held = {
        binding.get("role")
        for binding in response.json().get("bindings", [])
        if member in binding.get("members", [])
    }
    missing = [role for role in expected_roles(expected) if role not in held]
    if missing:
        return Finding(
            False,
            "roles",
            f"{expected.service_account} lacks {', '.join(missing)} on {expected.project}: "
            "re-run `make bootstrap`",
        )
    return Finding(True, "roles", f"every {expected.role} role on {expected.project}")


def check_from_workstation(expected: Expectation, client: httpx.Client) -> list[Finding]:
    """Each check reads one resource; all run, since they do not depend on one another."""
    return [
        check_provider(client, expected),
        check_impersonation(client, expected),
        check_roles(client, expected),
    ]
