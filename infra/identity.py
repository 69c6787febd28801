"""The runtime identities: one service account for the service, one for the retraining job.

Each gets only what it uses. The service reads its model bucket and its own secrets, and writes
logs and metrics. The job reads and writes the model bucket. Neither can deploy or change IAM.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import projects, secretmanager, serviceaccount, storage

from infra.config import StackSettings

# Project-wide roles the service needs; everything else is granted on one resource at a time.
SERVICE_PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
JOB_PROJECT_ROLES = ("roles/logging.logWriter",)


def member(email: pulumi.Input[str]) -> pulumi.Output[str]:
    """The IAM member string of a service account."""
    return pulumi.Output.from_input(email).apply(lambda address: f"serviceAccount:{address}")


def _account_id(settings: StackSettings, role: str) -> str:
    """Unique per environment even when environments share a project (6-30 characters)."""
    return f"{settings.service_name[:17]}-{settings.environment[:4]}-{role}"


@dataclass(frozen=True)
class IdentityArgs:
    """The environment, and the bucket the identities read and write."""

    settings: StackSettings
    model_bucket: pulumi.Input[str]


class Identities(pulumi.ComponentResource):
    """Runtime service accounts and their least-privilege grants."""

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:Identities", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)

        def account(suffix: str, role: str, purpose: str) -> serviceaccount.Account:
            return serviceaccount.Account(
                f"{name}-{suffix}",
                account_id=_account_id(settings, role),
                display_name=f"{settings.service_name} ({settings.environment}) {suffix}",
                description=purpose,
                project=settings.project,
                opts=child,
            )

        self.service_account = account(
            "runtime", "run", "Cloud Run runtime identity: reads its model bucket and secrets only."
        )
        self.job_account = account(
            "job", "job", "Retraining job identity: reads and writes the model bucket only."
        )
        service_member = member(self.service_account.email)
        job_member = member(self.job_account.email)

        # Grants on the bucket itself, not the project: other buckets stay out of reach.
        storage.BucketIAMMember(
            f"{name}-runtime-reads-models",
            bucket=args.model_bucket,
            role="roles/storage.objectViewer",
            member=service_member,
            opts=child,
        )
        storage.BucketIAMMember(
            f"{name}-job-writes-models",
            bucket=args.model_bucket,
            role="roles/storage.objectUser",
            member=job_member,
            opts=child,
        )
        for who, grantee, roles in (
            ("runtime", service_member, SERVICE_PROJECT_ROLES),
            ("job", job_member, JOB_PROJECT_ROLES),
        ):
            for role in roles:
                projects.IAMMember(
                    f"{name}-{who}-{role.split('/')[1]}",
                    project=settings.project,
                    role=role,
                    member=grantee,
                    opts=child,
                )
        # One accessor grant per secret the service declares, on that secret alone.
        for env_name, (secret_id, _version) in sorted(settings.secret_refs.items()):
            secretmanager.SecretIamMember(
                f"{name}-runtime-reads-{env_name.lower()}",
                project=settings.project,
                secret_id=secret_id,
                role="roles/secretmanager.secretAccessor",
                member=service_member,
                opts=child,
            )
        self.register_outputs(
            {
                "service_account": self.service_account.email,
                "job_account": self.job_account.email,
            }
        )
