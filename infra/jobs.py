"""The scheduled monitoring job: a Cloud Run Job and the Cloud Scheduler trigger for it.

The job runs the pipelines image (not the service image, which carries only what serving needs)
as its own service account: `python -m pipelines monitor --publish` reads the window's
events from BigQuery, judges drift and performance against the served model's training
reference, writes the figures to Cloud Monitoring, where the alert policies watch them
(infra/monitoring.py), and keeps its report in the model bucket. Retraining, which opens a pull
request, runs in GitHub Actions (.github/workflows/retrain.yml) with the workflow's token, so no
GitHub credential lives here.
(The components keep their first names, `retraining-*`, so existing stacks update in place.)
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import cloudrunv2, cloudscheduler

from environments.stack_settings import StackSettings
from infra.identity import member

RUN_API = "https://run.googleapis.com/v2"


@dataclass(frozen=True)
class RetrainingJobArgs:
    """The environment (whose events and models the job reads) and the identity it runs as."""

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
            name=f"{settings.service_name}-monitor",
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
                                # `monitor` reads this environment's stack file in the image.
                                cloudrunv2.JobTemplateTemplateContainerEnvArgs(
                                    name="MONITOR_ENVIRONMENT", value=settings.environment
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
            name=f"{settings.service_name}-monitor",
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
