"""What an environment needs before its stack's first `pulumi up`, made with the bootstrap's own
(administrator) credentials, so its deployer needs no power to make them.

- The runtime and job service accounts: the deployer may act as these two and create none.
- The Pulumi state bucket, in the environment's own project: no other environment's deployer has
  any role there, so no dev job can rewrite prod's recorded release. One bucket per environment
  rather than IAM conditions on object prefixes in a shared bucket, because listing objects
  (which Pulumi's backend does) is checked on the bucket, where a prefix condition cannot apply,
  and a misspelt prefix would fail open without a sound.
- The Cloud KMS key that encrypts the secrets in that state (the stack's secrets provider): no
  passphrase to share with CI, and only this environment's deployer and previewer may use it.
- The Monitoring notification agent, which the environment's private uptime check invokes as;
  Google creates it lazily, so it is created here rather than assumed.
- On Kubernetes (platform: kubernetes): the GKE Autopilot cluster (kubernetesCluster: autopilot),
  and the Workload Identity binding that lets the service's Kubernetes account act as the runtime
  account. The binding needs the cluster's identity pool to exist and `setIamPolicy` on that
  account, which no deployer holds (infra/kubernetes/cluster.py).
"""

from dataclasses import dataclass

import pulumi
from pulumi_gcp import kms, projects, serviceaccount, storage

from environments.stack_settings import (
    STATE_KEY,
    StackSettings,
    account_id,
    state_bucket_name,
    state_key_ring_name,
)
from infra.kubernetes.cluster import autopilot_cluster
from infra.kubernetes.objects import workload_identity_member

KEY_ROTATION = f"{90 * 24 * 3600}s"
ACCOUNTS = {
    "runtime": ("run", "Cloud Run runtime identity: reads its model bucket and secrets only."),
    "job": ("job", "Retraining job identity: reads and writes the model bucket only."),
}


def state_bucket(  # pylint: disable=too-many-arguments,too-many-positional-arguments
    name: str,
    bucket_name: str,
    project: str,
    region: str,
    labels: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> storage.Bucket:
    """A private, versioned bucket for Pulumi state: every checkpoint recoverable, never deleted
    by accident."""
    return storage.Bucket(
        name,
        name=bucket_name,
        project=project,
        location=region.upper(),
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=storage.BucketVersioningArgs(enabled=True),
        labels=labels,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True)),
    )


@dataclass(frozen=True)
class EnvironmentArgs:
    """The environment's stack settings (project, region, service name) and the bootstrap labels."""

    stack: StackSettings
    labels: dict[str, str]


class EnvironmentFoundation(pulumi.ComponentResource):
    """Runtime accounts, state bucket and monitoring agent of one environment."""

    def __init__(
        self, name: str, args: EnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:bootstrap:EnvironmentFoundation", name, None, opts)
        stack = args.stack
        child = pulumi.ResourceOptions(parent=self)
        self.accounts = {
            purpose: serviceaccount.Account(
                f"{name}-{purpose}",
                project=stack.project,
                account_id=account_id(stack.service_name, stack.environment, suffix),
                display_name=f"{stack.service_name} ({stack.environment}) {purpose}",
                description=description,
                opts=child,
            )
            for purpose, (suffix, description) in ACCOUNTS.items()
        }
        self.state_bucket = state_bucket(
            f"{name}-pulumi-state",
            state_bucket_name(stack.project, stack.environment),
            stack.project,
            stack.region,
            args.labels | {"environment": stack.environment},
            pulumi.ResourceOptions(parent=self),
        )
        # Key rings cannot be deleted, and a destroyed key loses the state's secrets: protected.
        key_ring = kms.KeyRing(
            f"{name}-state-key-ring",
            name=state_key_ring_name(stack.environment),
            project=stack.project,
            location=stack.region,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.state_key = kms.CryptoKey(
            f"{name}-state-key",
            name=STATE_KEY,
            key_ring=key_ring.id,
            rotation_period=KEY_ROTATION,
            labels=args.labels | {"environment": stack.environment},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.monitoring_agent = projects.ServiceIdentity(
            f"{name}-monitoring-agent",
            project=stack.project,
            service="monitoring.googleapis.com",
            opts=child,
        )
        if stack.platform == "kubernetes":
            self._kubernetes(name, stack)
        self.register_outputs(
            {
                "state_bucket": self.state_bucket.url,
                "accounts": {purpose: a.email for purpose, a in self.accounts.items()},
            }
        )

    def _kubernetes(self, name: str, stack: StackSettings) -> None:
        """The cluster (unless an existing one is used) and the runtime's Workload Identity."""
        child = pulumi.ResourceOptions(parent=self)
        cluster = (
            [autopilot_cluster(f"{name}-cluster", stack, child)]
            if stack.kubernetes_cluster == "autopilot"
            else []
        )
        serviceaccount.IAMMember(
            f"{name}-runtime-workload-identity",
            service_account_id=self.accounts["runtime"].name,
            role="roles/iam.workloadIdentityUser",
            member=workload_identity_member(stack),
            opts=pulumi.ResourceOptions(parent=self, depends_on=cluster),
        )
