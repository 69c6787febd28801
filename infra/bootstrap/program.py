"""The bootstrap program: APIs, state bucket, registry, GitHub trust and the deployers."""

from typing import Any

import pulumi
from pulumi_gcp import artifactregistry, projects

from infra.artifact_registry import Registry, RegistryArgs
from infra.bootstrap import settings as bootstrap_settings
from infra.bootstrap.deployers import (
    Deployer,
    DeployerArgs,
    Previewer,
    PreviewerArgs,
    projects_number,
)
from infra.bootstrap.environment import EnvironmentArgs, EnvironmentFoundation, state_bucket
from infra.bootstrap.trust import GitHubTrust, GitHubTrustArgs

REQUIRED_APIS = (
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudkms.googleapis.com",
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
# What a project running an environment on GKE needs besides.
KUBERNETES_APIS = ("container.googleapis.com",)
LABELS = {"managed-by": "pulumi", "stack": "bootstrap"}


def bootstrap() -> dict[str, Any]:
    """Everything the environment stacks and the workflows need before their first run."""
    settings = bootstrap_settings.load()
    stacks = bootstrap_settings.environment_stacks(settings)
    on_kubernetes = {s.project for s in stacks.values() if s.platform == "kubernetes"}
    apis = [
        projects.Service(
            f"api-{project}-{api.split('.', maxsplit=1)[0]}",
            project=project,
            service=api,
            disable_on_destroy=False,  # other workloads in the project may rely on it
        )
        for project in settings.all_projects
        for api in REQUIRED_APIS + (KUBERNETES_APIS if project in on_kubernetes else ())
    ]
    after_apis = pulumi.ResourceOptions(depends_on=apis)

    # The bootstrap's own state, once moved from the local backend; no deployer can read it.
    state = state_bucket(
        "pulumi-state",
        f"{settings.project}-pulumi-state",
        settings.project,
        settings.region,
        LABELS,
        after_apis,
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
    foundations = {
        environment: EnvironmentFoundation(
            f"environment-{environment}", EnvironmentArgs(stack, LABELS), opts=after_apis
        )
        for environment, stack in sorted(stacks.items())
    }
    deployers = {
        environment: Deployer(
            f"deployer-{environment}",
            DeployerArgs(
                environment=environment,
                service_name=stack.service_name,
                platform=stack.platform,
                home_project=settings.project,
                environment_project=stack.project,
                region=settings.region,
                principal_set=trust.principal_set(prod=environment == "prod"),
                registry=registry.repository,
                runtime_accounts=foundations[environment].accounts,
                state_key=foundations[environment].state_key.id,
            ),
            opts=after_apis,
        )
        for environment, stack in sorted(stacks.items())
    }
    previewers = {
        environment: Previewer(
            f"previewer-{environment}",
            PreviewerArgs(
                environment=environment,
                home_project=settings.project,
                environment_project=stack.project,
                principal_set=trust.principal_set(prod=False),
                state_key=foundations[environment].state_key.id,
            ),
            opts=after_apis,
        )
        for environment, stack in sorted(stacks.items())
    }
    # Cloud Run pulls images as each environment project's service agent; GKE Autopilot nodes
    # as the project's default compute account.
    for environment, project in sorted(settings.environment_projects.items()):
        number = projects_number(project)
        puller, account = (
            ("nodes", "{n}-compute@developer.gserviceaccount.com")
            if stacks[environment].platform == "kubernetes"
            else ("run-agent", "service-{n}@serverless-robot-prod.iam.gserviceaccount.com")
        )
        artifactregistry.RepositoryIamMember(
            f"{puller}-{environment}-pulls-images",
            project=settings.project,
            location=settings.region,
            repository=registry.repository.repository_id,
            role="roles/artifactregistry.reader",
            member=number.apply(lambda n, account=account: f"serviceAccount:{account.format(n=n)}"),
            opts=after_apis,
        )

    github_variables: dict[str, Any] = {
        "GCP_WORKLOAD_IDENTITY_PROVIDER": trust.providers[False].name,
        "GCP_WORKLOAD_IDENTITY_PROVIDER_PROD": trust.providers[True].name,
        "GCP_REGISTRY": registry.path,
    }
    for environment, deployer in deployers.items():
        github_variables[f"GCP_DEPLOYER_{environment.upper()}"] = deployer.account.email
        github_variables[f"GCP_PREVIEWER_{environment.upper()}"] = previewers[
            environment
        ].account.email
        github_variables[f"PULUMI_BACKEND_URL_{environment.upper()}"] = foundations[
            environment
        ].state_bucket.url
    outputs = {
        "github_variables": github_variables,
        "gh_commands": pulumi.Output.all(**github_variables).apply(
            lambda values: "\n".join(
                f"gh variable set {key} --body '{value}'" for key, value in sorted(values.items())
            )
        ),
        "registry": registry.path,
        "state_bucket": state.url,
        "environment_state_buckets": {
            environment: foundation.state_bucket.url
            for environment, foundation in foundations.items()
        },
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs
