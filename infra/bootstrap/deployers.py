"""Per environment, the accounts GitHub jobs impersonate: a deployer, holding only what `pulumi up`
of that environment needs, and a previewer that can only read, for pull requests and drift checks.
Both are granted on that environment's project alone.

What a deployer cannot do, and why:
- act as any service account but the two runtime accounts the bootstrap made for its environment
  (`actAs` on those accounts only; a project-wide grant would let it run code as the default
  compute account, which often holds Editor), nor create, key or re-permission accounts;
- read a secret's value: secret IAM comes from a custom role without `versions.access`, limited
  by an IAM condition to the secrets named after its service;
- grant project roles beyond the runtime account's two (a condition on `modifiedGrantsByRole`);
- touch another environment's project, hence its Pulumi state (each environment's state bucket
  lives in that environment's project).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_gcp import artifactregistry, kms, organizations, projects, serviceaccount

from infra.identity import member

# Roles on the environment's project, each for resources the environment stack manages.
DEPLOYER_ROLES = (
    "roles/run.admin",  # services, revisions, traffic, jobs and their invoker policies
    "roles/storage.admin",  # the model bucket and its IAM; this environment's Pulumi state
    "roles/monitoring.editor",  # alert policies, uptime checks, dashboards, channels
    "roles/cloudscheduler.admin",  # the monitoring job's schedule
    "roles/bigquery.dataOwner",  # the events dataset and its grant to the log sink
    # Queries on those events: the rollout's shadow report and the retrain workflow's monitor.
    "roles/bigquery.jobUser",
    "roles/logging.configWriter",  # the log sink that routes events into that dataset
)
# On Kubernetes, besides: the objects in the environment's cluster (namespace, deployments,
# services, route), and reading the cluster's endpoint. Creating or deleting clusters is the
# bootstrap's (infra/bootstrap/environment.py).
KUBERNETES_DEPLOYER_ROLES = ("roles/container.developer",)
# Read-only: `pulumi preview` (state, the program's lookups) and `--refresh` (every resource and
# its IAM policy). No role here can change anything or read a secret's value.
PREVIEWER_ROLES = (
    "roles/viewer",  # every resource's configuration
    "roles/iam.securityReviewer",  # IAM policies, which refresh reads for each grant
    "roles/storage.objectViewer",  # the Pulumi state and the model registry (object contents)
)
# The project roles the environment stack grants its runtime accounts (infra/identity.py).
GRANTABLE_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/bigquery.jobUser",  # the monitoring job's queries; what they read is per dataset
)
# Accessor grants on the service's secrets: read and set a secret's IAM policy, never its value.
SECRET_IAM_PERMISSIONS = (
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.setIamPolicy",
)


def grant_condition() -> str:
    roles = ", ".join(f"'{role}'" for role in GRANTABLE_ROLES)
    return f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{roles}])"


def secret_condition(project_number: str, service_name: str) -> str:
    """Only secrets whose id starts with the service's name (config.py refuses any other)."""
    return f"resource.name.startsWith('projects/{project_number}/secrets/{service_name}-')"


def secret_role_id(service_name: str, environment: str) -> str:
    """Per service and environment, so environments may share a project."""
    return f"{service_name.replace('-', '_')}_{environment}_secret_iam"


def github_account(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    name: str,
    project: str,
    verb: str,
    environment: str,
    principal_set: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> serviceaccount.Account:
    """An account `<verb>-<environment>` that GitHub jobs of `principal_set` may impersonate,
    keyless: the only way to act as it is a federated token from this repository."""
    account = serviceaccount.Account(
        f"{name}-account",
        project=project,
        account_id=f"{verb}-{environment}",
        display_name=f"{verb.capitalize()} {environment} (GitHub Actions)",
        description=f"Impersonated by GitHub Actions to {verb} {environment}; no keys.",
        opts=opts,
    )
    serviceaccount.IAMMember(
        f"{name}-github-impersonates",
        service_account_id=account.name,
        role="roles/iam.workloadIdentityUser",
        member=principal_set,
        opts=opts,
    )
    return account


@dataclass(frozen=True)
class DeployerArgs:
    """Which environment, where its project is, who may impersonate its deployer, and the two
    runtime accounts it may act as."""

    environment: str
    service_name: str
    platform: str
    home_project: str
    environment_project: str
    region: str
    principal_set: pulumi.Input[str]
    registry: artifactregistry.Repository
    runtime_accounts: Mapping[str, serviceaccount.Account]
    state_key: pulumi.Input[str]  # the KMS key of the stack's secrets


class Deployer(pulumi.ComponentResource):
    """The account a GitHub job of one environment impersonates (no key is ever created)."""

    def __init__(
        self, name: str, args: DeployerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:bootstrap:Deployer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = github_account(
            name, args.home_project, "deploy", args.environment, args.principal_set, child
        )
        deployer = member(self.account.email)
        kubernetes = KUBERNETES_DEPLOYER_ROLES if args.platform == "kubernetes" else ()
        for role in DEPLOYER_ROLES + kubernetes:
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
        secret_role = projects.IAMCustomRole(
            f"{name}-secret-iam-role",
            project=args.environment_project,
            role_id=secret_role_id(args.service_name, args.environment),
            title=f"{args.service_name} {args.environment}: secret access grants",
            description="Read and set secrets' IAM policies; never read a secret's value.",
            permissions=list(SECRET_IAM_PERMISSIONS),
            opts=child,
        )
        number = projects_number(args.environment_project)
        projects.IAMMember(
            f"{name}-grants-secret-access",
            project=args.environment_project,
            role=secret_role.name,
            member=deployer,
            condition=projects.IAMMemberConditionArgs(
                title="own-service-secrets-only",
                description=f"Secrets whose id starts with {args.service_name}-.",
                expression=number.apply(lambda n: secret_condition(n, args.service_name)),
            ),
            opts=child,
        )
        # Deploying a revision or job that runs as an account needs actAs on that account.
        for purpose, account in sorted(args.runtime_accounts.items()):
            serviceaccount.IAMMember(
                f"{name}-acts-as-{purpose}",
                service_account_id=account.name,
                role="roles/iam.serviceAccountUser",
                member=deployer,
                opts=child,
            )
        kms.CryptoKeyIAMMember(
            f"{name}-uses-state-key",
            crypto_key_id=args.state_key,
            role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
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


@dataclass(frozen=True)
class PreviewerArgs:
    """Which environment, where its project is, and who may impersonate its previewer."""

    environment: str
    home_project: str
    environment_project: str
    principal_set: pulumi.Input[str]
    state_key: pulumi.Input[str]  # the KMS key of the stack's secrets: decrypt only


class Previewer(pulumi.ComponentResource):
    """The read-only account of pull-request previews and drift checks. Trusted through the
    non-prod pool, so a pull request's job can show prod's diff before anyone may deploy it."""

    def __init__(
        self, name: str, args: PreviewerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:bootstrap:Previewer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.account = github_account(
            name, args.home_project, "preview", args.environment, args.principal_set, child
        )
        for role in PREVIEWER_ROLES:
            projects.IAMMember(
                f"{name}-{role.split('/')[1]}",
                project=args.environment_project,
                role=role,
                member=member(self.account.email),
                opts=child,
            )
        kms.CryptoKeyIAMMember(
            f"{name}-reads-state-key",
            crypto_key_id=args.state_key,
            role="roles/cloudkms.cryptoKeyDecrypter",
            member=member(self.account.email),
            opts=child,
        )
        self.register_outputs({"email": self.account.email})


def projects_number(project: str) -> pulumi.Output[str]:
    """A project's number: IAM conditions and service agents name projects by number."""
    return organizations.get_project_output(project_id=project).number
