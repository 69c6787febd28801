"""The model bucket: where the registry keeps model versions for this environment.

Versioned (an overwritten artifact can be recovered), uniform access (IAM only, no object ACLs)
and public access prevention enforced, so a wrong grant cannot publish a model.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import storage

from environments.stack_settings import StackSettings

NONCURRENT_VERSIONS_KEPT = 5


@dataclass(frozen=True)
class ModelBucketArgs:
    """The environment the bucket belongs to."""

    settings: StackSettings


class ModelBucket(pulumi.ComponentResource):
    """A private, versioned bucket named after the project and environment."""

    def __init__(
        self, name: str, args: ModelBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:ModelBucket", name, None, opts)
        settings = args.settings
        self.bucket = storage.Bucket(
            f"{name}-bucket",
            name=settings.model_bucket_name,
            project=settings.project,
            location=settings.region.upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=storage.BucketVersioningArgs(enabled=True),
            # Old versions are kept for rollback forensics, but not forever.
            lifecycle_rules=[
                storage.BucketLifecycleRuleArgs(
                    action=storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=storage.BucketLifecycleRuleConditionArgs(
                        num_newer_versions=NONCURRENT_VERSIONS_KEPT, with_state="ARCHIVED"
                    ),
                )
            ],
            force_destroy=not settings.deletion_protection,
            labels=settings.label_map,
            opts=pulumi.ResourceOptions(parent=self, protect=settings.deletion_protection),
        )
        self.register_outputs({"name": self.bucket.name, "url": self.bucket.url})
