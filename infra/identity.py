"""What the runtime identities may do: the service's and the retraining job's grants.

The bootstrap creates the two service accounts (infra/bootstrap/runtime.py), so a deployer can act
as exactly those two and create none; this stack grants them only what they use. The service
reads its model bucket and the secrets of the revisions that serve, and writes logs and metrics;
the monitoring job reads the model bucket and the events (infra/events.py grants the dataset),
runs BigQuery queries and writes its metrics. Neither can deploy or change IAM.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import projects, secretmanager, storage

from environments.stack_settings import StackSettings
from infra.release import ReleaseState

# Project-wide roles the service needs; everything else is granted on one resource at a time.
SERVICE_PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
JOB_PROJECT_ROLES = (
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",  # the monitoring figures the alert policies watch
    "roles/bigquery.jobUser",  # to run queries; what they may read is granted per dataset
)


def member(email: pulumi.Input[str]) -> pulumi.Output[str]:
    """The IAM member string of a service account."""
    return pulumi.Output.from_input(email).apply(lambda address: f"serviceAccount:{address}")


def secrets_in_traffic(state: ReleaseState) -> dict[str, list[str]]:
    """Secret id -> the environment variables that read it, over every revision with a route.

    A revision reads its secrets whenever an instance starts (scale-out, restart), so a grant
    must outlive the config that introduced it for as long as any such revision can serve.
    """
    readers: dict[str, set[str]] = {}
    for revision in state.serving:
        for env_name, (secret, _version) in revision.spec.secret_env.items():
            readers.setdefault(secret, set()).add(env_name)
    return {secret: sorted(names) for secret, names in sorted(readers.items())}


@dataclass(frozen=True)
class IdentityArgs:
    """The environment, the bucket the identities use, and the release whose secrets are read."""

    settings: StackSettings
    model_bucket: pulumi.Input[str]
    release: pulumi.Output[ReleaseState]


class Identities(pulumi.ComponentResource):
    """Least-privilege grants for the runtime and job accounts."""

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:Identities", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.service_account = settings.runtime_account_email
        self.job_account = settings.job_account_email
        service_member = member(self.service_account)
        job_member = member(self.job_account)

        # Grants on the bucket itself, not the project: other buckets stay out of reach.
        storage.BucketIAMMember(
            f"{name}-runtime-reads-models",
            bucket=args.model_bucket,
            role="roles/storage.objectViewer",
            member=service_member,
            opts=child,
        )
        # Read and create, never delete: without storage.objects.delete an object cannot be
        # overwritten either, so a published model version is immutable to the job by IAM too.
        for verb, role in (("reads", "objectViewer"), ("writes", "objectCreator")):
            storage.BucketIAMMember(
                f"{name}-job-{verb}-models",
                bucket=args.model_bucket,
                role=f"roles/storage.{role}",
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

        def grant_secrets(state: ReleaseState) -> list[str]:
            # Inside apply: which secrets serve is known only from the recorded release. It is
            # read from state, so it is known during preview too, and the grants show there.
            readers = secrets_in_traffic(state)
            for secret_id, env_names in readers.items():
                secretmanager.SecretIamMember(
                    f"{name}-runtime-reads-{secret_id}",
                    project=settings.project,
                    secret_id=secret_id,
                    role="roles/secretmanager.secretAccessor",
                    member=service_member,
                    # Earlier versions named the grant after the environment variable.
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        aliases=[
                            pulumi.Alias(name=f"{name}-runtime-reads-{env.lower()}")
                            for env in env_names
                        ],
                    ),
                )
            return sorted(readers)

        self.secrets = args.release.apply(grant_secrets)
        self.register_outputs(
            {
                "service_account": self.service_account,
                "job_account": self.job_account,
                "secrets": self.secrets,
            }
        )
