"""Keyless GitHub Actions authentication: Workload Identity Federation pools for this repository.

Two pools, because a principalSet is pool-wide: a prod-only pool whose provider accepts only
tokens from the prod GitHub environment on the protected ref, and a pool for everything else.
Both refuse every other repository in the provider's attribute condition, before any IAM check.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import iam

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
ATTRIBUTE_MAPPING = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.ref": "assertion.ref",
    "attribute.environment": "assertion.environment",
    "attribute.workflow_ref": "assertion.job_workflow_ref",
}


def attribute_condition(
    repository: str, ref: str | None = None, environment: str | None = None
) -> str:
    """CEL the provider checks on every token (a missing claim fails the check, as it should)."""
    clauses = [f"assertion.repository == '{repository}'"]
    if ref:
        clauses.append(f"assertion.ref == '{ref}'")
    if environment:
        clauses.append(f"assertion.environment == '{environment}'")
    return " && ".join(clauses)


def principal_set(pool: str, repository: str) -> str:
    """Every identity of `pool` whose token came from `repository`."""
    return f"principalSet://iam.googleapis.com/{pool}/attribute.repository/{repository}"


@dataclass(frozen=True)
class GitHubTrustArgs:
    """The home project, the one repository trusted, and the only ref that may deploy prod."""

    project: str
    repository: str
    prod_ref: str


class GitHubTrust(pulumi.ComponentResource):
    """Pools and OIDC providers; `principal_set(prod)` names who may impersonate a deployer."""

    def __init__(
        self, name: str, args: GitHubTrustArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:bootstrap:GitHubTrust", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.pools: dict[bool, iam.WorkloadIdentityPool] = {}
        self.providers: dict[bool, iam.WorkloadIdentityPoolProvider] = {}
        for prod, suffix in ((False, ""), (True, "-prod")):
            pool = iam.WorkloadIdentityPool(
                f"{name}-pool{suffix}",
                project=args.project,
                workload_identity_pool_id=f"github{suffix}",
                display_name=f"GitHub Actions{' (prod)' if prod else ''}",
                description=f"Deployments from {args.repository}",
                opts=child,
            )
            self.pools[prod] = pool
            self.providers[prod] = iam.WorkloadIdentityPoolProvider(
                f"{name}-provider{suffix}",
                project=args.project,
                workload_identity_pool_id=pool.workload_identity_pool_id,
                workload_identity_pool_provider_id="github-oidc",
                display_name="GitHub OIDC",
                attribute_mapping=ATTRIBUTE_MAPPING,
                attribute_condition=attribute_condition(
                    args.repository,
                    ref=args.prod_ref if prod else None,
                    environment="prod" if prod else None,
                ),
                oidc=iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ISSUER),
                opts=child,
            )
        self.repository = args.repository
        self.register_outputs(
            {"provider": self.providers[False].name, "prod_provider": self.providers[True].name}
        )

    def principal_set(self, prod: bool) -> pulumi.Output[str]:
        return self.pools[prod].name.apply(
            lambda pool: (
                f"principalSet://iam.googleapis.com/{pool}/attribute.repository/{self.repository}"
            )
        )
