"""The Artifact Registry repository: one for every environment, so an image is built once and the
same digest is promoted from dev to prod.

Tags are immutable (a digest never silently changes under a tag) and a cleanup policy keeps the
recent images while deleting old untagged layers, so storage does not grow with every build.
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import artifactregistry

KEEP_RECENT_VERSIONS = 30
KeepMostRecent = artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs
DELETE_UNTAGGED_AFTER = f"{14 * 24 * 3600}s"


@dataclass(frozen=True)
class RegistryArgs:
    """Where the repository lives and what it is called."""

    project: str
    region: str
    repository_id: str
    labels: dict[str, str]


class Registry(pulumi.ComponentResource):
    """A Docker repository with immutable tags and a cleanup policy."""

    def __init__(
        self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:Registry", name, None, opts)
        self.repository = artifactregistry.Repository(
            f"{name}-repository",
            project=args.project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            description="Service and pipeline images, promoted by digest through the environments.",
            labels=args.labels,
            docker_config=artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=KeepMostRecent(keep_count=KEEP_RECENT_VERSIONS),
                ),
                artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old-untagged",
                    action="DELETE",
                    condition=artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than=DELETE_UNTAGGED_AFTER
                    ),
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.path = pulumi.Output.concat(
            args.region, "-docker.pkg.dev/", args.project, "/", self.repository.repository_id
        )
        self.register_outputs({"path": self.path})
