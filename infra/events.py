"""Prediction and feedback events into BigQuery: a dataset per environment and a log sink.

The service writes events as JSON lines on stdout (service/events.py); a project sink routes
only those lines of this service into the dataset, one table partitioned by day, where the
experiment analysis and drift monitoring query them (pipelines/experiments/events.py). Partitions
expire after `eventsRetentionDays`, so no event outlives the retention people agreed to.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import bigquery, logging

from environments.stack_settings import StackSettings
from infra.identity import member

DAY_MS = 24 * 60 * 60 * 1000


def sink_filter(settings: StackSettings) -> str:
    """This service's event lines, and nothing else of the project's logs: its Cloud Run
    revisions, or the app containers of its namespace on GKE."""
    if settings.platform == "cloudrun":
        source = (
            'resource.type="cloud_run_revision" '
            f'AND resource.labels.service_name="{settings.service_name}"'
        )
    else:
        source = (
            'resource.type="k8s_container" '
            f'AND resource.labels.namespace_name="{settings.namespace}" '
            'AND resource.labels.container_name="app"'
        )
    return (
        f"{source} "
        'AND (jsonPayload.event="prediction" OR jsonPayload.event="feedback" '
        'OR jsonPayload.event="shadow")'
    )


@dataclass(frozen=True)
class EventsArgs:
    """The environment whose events are kept, and the identity that monitors them."""

    settings: StackSettings
    reader: pulumi.Input[str]


class Events(pulumi.ComponentResource):
    """The dataset, the sink into it, and the sink's own writer identity's grant on it alone."""

    def __init__(
        self, name: str, args: EventsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:Events", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.dataset = bigquery.Dataset(
            f"{name}-dataset",
            dataset_id=settings.events_dataset,
            project=settings.project,
            location=settings.region,
            description=f"Prediction and feedback events of {settings.service_name}.",
            default_partition_expiration_ms=settings.events_retention_days * DAY_MS,
            delete_contents_on_destroy=not settings.deletion_protection,
            labels=settings.label_map,
            opts=pulumi.ResourceOptions(parent=self, protect=settings.deletion_protection),
        )
        self.sink = logging.ProjectSink(
            f"{name}-sink",
            name=f"{settings.service_name}-{settings.environment}-events",
            project=settings.project,
            destination=pulumi.Output.concat(
                f"bigquery.googleapis.com/projects/{settings.project}/datasets/",
                self.dataset.dataset_id,
            ),
            filter=sink_filter(settings),
            unique_writer_identity=True,
            # One table partitioned by day, not a table per day: expiry and queries stay simple.
            bigquery_options=logging.ProjectSinkBigqueryOptionsArgs(use_partitioned_tables=True),
            opts=child,
        )
        bigquery.DatasetIamMember(
            f"{name}-sink-writes",
            project=settings.project,
            dataset_id=self.dataset.dataset_id,
            role="roles/bigquery.dataEditor",
            member=self.sink.writer_identity,
            opts=child,
        )
        # The monitoring job reads this dataset and no other.
        bigquery.DatasetIamMember(
            f"{name}-job-reads",
            project=settings.project,
            dataset_id=self.dataset.dataset_id,
            role="roles/bigquery.dataViewer",
            member=member(args.reader),
            opts=child,
        )
        self.register_outputs({"dataset": self.dataset.dataset_id})
