"""One deployer service account per environment, holding only what `pulumi up` of that
environment needs, granted on that environment's project alone.

Project IAM is the dangerous one: the deployer may grant only the two roles the runtime account
needs (an IAM condition on modifiedGrantsByRole), so it cannot make itself owner.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import artifactregistry, projects, serviceaccount, storage

from infra.identity import member

# Roles on the environment's project, each for resources the environment stack manages.
DEPLOYER_ROLES = (
    "roles/run.admin",  # services, revisions, traffic, jobs and their invoker policies
    "roles/iam.serviceAccountAdmin",  # the runtime and job service accounts
    "roles/iam.serviceAccountUser",  # deploy revisions and jobs that run as those accounts
    "roles/storage.admin",  # the model bucket and its IAM
    "roles/monitoring.editor",  # alert policies, uptime checks, dashboards, channels
    "roles/cloudscheduler.admin",  # the retraining schedule
    "roles/secretmanager.admin",  # accessor grants on the service's secrets (never their values)
)
GRANTABLE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")


def grant_condition() -> str:
    roles = ", ".join(f"'{role}'" for role in GRANTABLE_ROLES)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{roles}])"


@dataclass(frozen=True)
class DeployerArgs:
    """Which environment, where its project is, and who may impersonate its deployer."""

    environment: str
    home_project: str
    environment_project: str
    region: str
    principal_set: pulumi.Input[str]
    state_bucket: pulumi.Input[str]
    registry: artifactregistry.Repository


class Deployer(pulumi.ComponentResource):
    """The account a GitHub job of one environment impersonates (no key is ever created)."""

    def __init__(
        self, name: str, args: DeployerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:bootstrap:Deployer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = serviceaccount.Account(
            f"{name}-account",
            project=args.home_project,
            account_id=f"deploy-{args.environment}",
            display_name=f"Deployer for {args.environment}",
            description=f"Impersonated by GitHub Actions to deploy {args.environment}; no keys.",
            opts=child,
        )
        deployer = member(self.account.email)
        serviceaccount.IAMMember(
            f"{name}-github-impersonates",
            service_account_id=self.account.name,
            role="roles/iam.workloadIdentityUser",
            member=args.principal_set,
            opts=child,
        )
        for role in DEPLOYER_ROLES:
            projects.IAMMember(
                f"{name}-{role.split('/')[1]}",
                project=args.environment_project,
                role=role,
                member=deployer,
                opts=child,
            )
        projects.IAMMember(
            f"{name}-grants-runtime-roles",
            project=args.environment_project,
            role="roles/resourcemanager.projectIamAdmin",
            member=deployer,
            condition=projects.IAMMemberConditionArgs(
                title="runtime-roles-only",
                description="May grant only the runtime service account's project roles.",
                expression=grant_condition(),
            ),
            opts=child,
        )
        # Pulumi state objects for this environment's stack; the bucket itself stays read-only.
        storage.BucketIAMMember(
            f"{name}-state",
            bucket=args.state_bucket,
            role="roles/storage.objectUser",
            member=deployer,
            opts=child,
        )
        artifactregistry.RepositoryIamMember(
            f"{name}-pushes-images",
            project=args.home_project,
            location=args.region,
            repository=args.registry.repository_id,
            role="roles/artifactregistry.writer",
            member=deployer,
            opts=child,
        )
        self.register_outputs({"email": self.account.email})
