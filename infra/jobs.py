"""The scheduled retraining and drift job: a Cloud Run Job and the Cloud Scheduler trigger for it.

The job runs the pipelines image (not the service image, which carries only what serving needs)
as its own service account, and writes new model versions to the environment's model bucket.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import cloudrunv2, cloudscheduler

from environments.stack_settings import StackSettings
from infra.identity import member

RUN_API = "https://run.googleapis.com/v2"


@dataclass(frozen=True)
class RetrainingJobArgs:
    """The environment (whose model registry the job publishes to) and the identity it runs as."""

    settings: StackSettings
    service_account: pulumi.Input[str]


class RetrainingJob(pulumi.ComponentResource):
    """Job + schedule; the scheduler may run this one job and nothing else."""

    def __init__(
        self, name: str, args: RetrainingJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:RetrainingJob", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        command = list(settings.job_command)
        self.job = cloudrunv2.Job(
            f"{name}-job",
            name=f"{settings.service_name}-retrain",
            project=settings.project,
            location=settings.region,
            labels=settings.label_map,
            deletion_protection=settings.deletion_protection,
            template=cloudrunv2.JobTemplateArgs(
                task_count=1,
                template=cloudrunv2.JobTemplateTemplateArgs(
                    service_account=args.service_account,
                    max_retries=1,
                    timeout="3600s",
                    containers=[
                        cloudrunv2.JobTemplateTemplateContainerArgs(
                            image=settings.job_image,
                            commands=command[:1],
                            args=command[1:],
                            envs=[
                                # `train` publishes to it (its --registry default).
                                cloudrunv2.JobTemplateTemplateContainerEnvArgs(
                                    name="MODEL_REGISTRY",
                                    value=settings.model_registry,
                                ),
                                cloudrunv2.JobTemplateTemplateContainerEnvArgs(
                                    name="ENVIRONMENT", value=settings.environment
                                ),
                            ],
                            resources=cloudrunv2.JobTemplateTemplateContainerResourcesArgs(
                                limits={"cpu": "2", "memory": "4Gi"}
                            ),
                        )
                    ],
                ),
            ),
            opts=child,
        )
        # The job's identity triggers it: a run needs run.jobs.run on this job only.
        cloudrunv2.JobIamMember(
            f"{name}-scheduler-runs-job",
            project=settings.project,
            location=settings.region,
            name=self.job.name,
            role="roles/run.invoker",
            member=member(args.service_account),
            opts=child,
        )
        self.schedule = cloudscheduler.Job(
            f"{name}-schedule",
            name=f"{settings.service_name}-retrain",
            project=settings.project,
            region=settings.region,
            schedule=settings.job_schedule,
            time_zone="Etc/UTC",
            attempt_deadline="320s",
            http_target=cloudscheduler.JobHttpTargetArgs(
                http_method="POST",
                uri=self.job.name.apply(
                    lambda job: (
                        f"{RUN_API}/projects/{settings.project}/locations/"
                        f"{settings.region}/jobs/{job}:run"
                    )
                ),
                oauth_token=cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=args.service_account,
                    scope="https://www.googleapis.com/auth/cloud-platform",
                ),
            ),
            opts=child,
        )
        self.register_outputs({"job": self.job.name, "schedule": self.schedule.name})
