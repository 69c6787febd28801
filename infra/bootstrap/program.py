"""The bootstrap program: APIs, state bucket, registry, GitHub trust and the deployers."""

from typing import Any

import pulumi
from pulumi_gcp import artifactregistry, organizations, projects, storage

from infra.bootstrap import settings as bootstrap_settings
from infra.bootstrap.deployers import Deployer, DeployerArgs
from infra.bootstrap.trust import GitHubTrust, GitHubTrustArgs
from infra.registry import Registry, RegistryArgs

REQUIRED_APIS = (
    "artifactregistry.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
)
LABELS = {"managed-by": "pulumi", "stack": "bootstrap"}


def bootstrap() -> dict[str, Any]:
    """Everything the environment stacks and the workflows need before their first run."""
    settings = bootstrap_settings.load()
    apis = [
        projects.Service(
            f"api-{project}-{api.split('.', maxsplit=1)[0]}",
            project=project,
            service=api,
            disable_on_destroy=False,  # other workloads in the project may rely on it
        )
        for project in settings.all_projects
        for api in REQUIRED_APIS
    ]
    after_apis = pulumi.ResourceOptions(depends_on=apis)

    state = storage.Bucket(
        "pulumi-state",
        name=f"{settings.project}-pulumi-state",
        project=settings.project,
        location=settings.region.upper(),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=storage.BucketVersioningArgs(enabled=True),  # every checkpoint recoverable
        labels=LABELS,
        opts=pulumi.ResourceOptions(depends_on=apis, protect=True),
    )
    registry = Registry(
        "images",
        RegistryArgs(settings.project, settings.region, settings.registry_name, LABELS),
        opts=after_apis,
    )
    trust = GitHubTrust(
        "github",
        GitHubTrustArgs(settings.project, settings.github_repository, settings.prod_ref),
        opts=after_apis,
    )
    deployers = {
        environment: Deployer(
            f"deployer-{environment}",
            DeployerArgs(
                environment=environment,
                home_project=settings.project,
                environment_project=project,
                region=settings.region,
                principal_set=trust.principal_set(prod=environment == "prod"),
                state_bucket=state.name,
                registry=registry.repository,
            ),
            opts=after_apis,
        )
        for environment, project in sorted(settings.environment_projects.items())
    }
    # Cloud Run pulls images as each environment project's service agent.
    for environment, project in sorted(settings.environment_projects.items()):
        number = organizations.get_project_output(project_id=project).number
        artifactregistry.RepositoryIamMember(
            f"run-agent-{environment}-pulls-images",
            project=settings.project,
            location=settings.region,
            repository=registry.repository.repository_id,
            role="roles/artifactregistry.reader",
            member=number.apply(
                lambda n: (
                    f"serviceAccount:service-{n}@serverless-robot-prod.iam.gserviceaccount.com"
                )
            ),
            opts=after_apis,
        )

    github_variables: dict[str, Any] = {
        "GCP_WORKLOAD_IDENTITY_PROVIDER": trust.providers[False].name,
        "GCP_WORKLOAD_IDENTITY_PROVIDER_PROD": trust.providers[True].name,
        "PULUMI_BACKEND_URL": state.url,
        "GCP_REGISTRY": registry.path,
    } | {
        f"GCP_DEPLOYER_{environment.upper()}": deployer.account.email
        for environment, deployer in deployers.items()
    }
    outputs = {
        "github_variables": github_variables,
        "gh_commands": pulumi.Output.all(**github_variables).apply(
            lambda values: "\n".join(
                f"gh variable set {key} --body '{value}'" for key, value in sorted(values.items())
            )
        ),
        "registry": registry.path,
        "state_bucket": state.url,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
