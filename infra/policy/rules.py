"""The guardrails, as plain validate functions so they are unit-tested without the analyzer.

Each reads a resource's engine-shaped properties (camelCase keys) and reports what is wrong and
how to fix it. Whether an environment may be public comes from its own stack file, the same
source the program reads, so the pack and the program cannot disagree.
"""

from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from environments.stack_settings import (
    IMAGE_BY_DIGEST,
    ConfigError,
    StackSettings,
    collector_image_allowed,
    load_file,
)
from infra.revision import COLLECTOR_CONTAINER

ENVIRONMENTS_DIR = Path(__file__).resolve().parents[2] / "environments"
SERVICE = "gcp:cloudrunv2/service:Service"
JOB = "gcp:cloudrunv2/job:Job"
BUCKET = "gcp:storage/bucket:Bucket"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
# Google's Gateway classes whose load balancer has an address on the internet.
EXTERNAL_GATEWAY_CLASSES = {
    "gke-l7-global-external-managed",
    "gke-l7-regional-external-managed",
    "gke-l7-gxlb",
}
PROBES = ("readinessProbe", "livenessProbe")
INVOKER_GRANTS = {
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
    "gcp:cloudrun/iamMember:IamMember",
    "gcp:cloudrun/iamBinding:IamBinding",
}
BUCKET_GRANTS = {
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
    "gcp:storage/bucketAccessControl:BucketAccessControl",
    "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
}
PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
REQUIRED_LABELS = ("environment", "service", "managed-by")


def stack_of(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> <stack>."""
    return urn.split(":")[2] if urn.startswith("urn:pulumi:") else ""


@cache
def stack_settings(stack: str) -> StackSettings | None:
    try:
        return load_file(stack, ENVIRONMENTS_DIR)
    except ConfigError:
        return None


def _members(props: Mapping[str, Any]) -> list[str]:
    return [
        str(m) for m in [props.get("member"), props.get("entity"), *props.get("members", [])] if m
    ]


def _pod(args: ResourceValidationArgs) -> Mapping[str, Any]:
    """The part that holds the containers: a Cloud Run template, or a Deployment's pod spec."""
    if args.resource_type == DEPLOYMENT:
        return ((args.props.get("spec") or {}).get("template") or {}).get("spec") or {}
    template = args.props.get("template") or {}
    if args.resource_type == JOB:
        template = template.get("template") or {}
    return template


def _containers(args: ResourceValidationArgs) -> Iterator[Mapping[str, Any]]:
    yield from _pod(args).get("containers") or []


def no_public_invoker(args: ResourceValidationArgs, report: ReportViolation) -> None:
    public = [m for m in _members(args.props) if m in PUBLIC_MEMBERS]
    opened = (args.resource_type == SERVICE and args.props.get("invokerIamDisabled") is True) or (
        args.resource_type == GATEWAY
        and (args.props.get("spec") or {}).get("gatewayClassName") in EXTERNAL_GATEWAY_CLASSES
    )
    if not (public and args.resource_type in INVOKER_GRANTS) and not opened:
        return
    settings = stack_settings(stack_of(args.urn))
    if settings is None or not settings.public:
        report(
            f"{args.name} lets anyone invoke the service, but environments/Pulumi."
            f"{stack_of(args.urn)}.yaml does not say `public: true`; remove the grant, or make "
            "the environment public on purpose in its stack file.",
            None,
        )


def images_by_digest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """By digest, and from the environment's own registry: any other project's registry could
    serve an image nobody here built. The one exception is the metrics collector beside the
    service: Google's own release of it, pinned by version."""
    stack = stack_of(args.urn)
    settings = stack_settings(stack)
    for container in _containers(args):
        image = str(container.get("image", ""))
        if (
            settings is not None
            and container.get("name") == COLLECTOR_CONTAINER
            and collector_image_allowed(image, settings.registry)
        ):
            continue
        if settings is None:
            report(
                f"cannot tell where {args.name} may pull images from: environments/Pulumi."
                f"{stack}.yaml is missing or invalid.",
                None,
            )
        elif not (IMAGE_BY_DIGEST.match(image) and image.startswith(f"{settings.registry}/")):
            report(
                f"image {image!r} of {args.name} must come from {settings.registry} (the "
                f"`registry` of environments/Pulumi.{stack}.yaml) by digest "
                "(...@sha256:<64 hex>): a tag can change, another registry is not ours.",
                None,
            )


def labels_present(args: ResourceValidationArgs, report: ReportViolation) -> None:
    labels = args.props.get("labels") or {}
    if args.resource_type == DEPLOYMENT:
        labels = (args.props.get("metadata") or {}).get("labels") or {}
    missing = [label for label in REQUIRED_LABELS if not labels.get(label)]
    if missing:
        report(
            f"{args.name} lacks the labels {missing}; cost reports and ownership need them.", None
        )


def prod_stays_warm(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if stack_of(args.urn) != "prod":
        return
    scaling = args.props.get("scaling") or {}
    if int(scaling.get("minInstanceCount") or 0) < 1:
        report(
            f"{args.name} may scale to zero in prod (seconds of cold start): minInstances >= 1.",
            None,
        )


def limits_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in _containers(args):
        limits = (container.get("resources") or {}).get("limits") or {}
        missing = [key for key in ("cpu", "memory") if not limits.get(key)]
        if missing:
            report(f"{args.name} sets no {' or '.join(missing)} limit; size it explicitly.", None)


def runs_as_non_root(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Pods refuse to start as root, and no process may gain privileges."""
    pod = _pod(args)
    if (pod.get("securityContext") or {}).get("runAsNonRoot") is not True:
        report(f"{args.name} must set securityContext.runAsNonRoot: true on its pods.", None)
    for container in _containers(args):
        if (container.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False:
            report(
                f"container {container.get('name')!r} of {args.name} must set "
                "allowPrivilegeEscalation: false.",
                None,
            )


def probes_present(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Without a readiness probe a pod gets traffic before its model loads; without a liveness
    probe a hung one keeps its share."""
    for container in _containers(args):
        missing = [probe for probe in PROBES if not container.get(probe)]
        if missing:
            report(
                f"container {container.get('name')!r} of {args.name} has no "
                f"{' or '.join(missing)}; probe the service's /readyz and /healthz.",
                None,
            )


def buckets_private(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == BUCKET:
        if args.props.get("publicAccessPrevention") != "enforced":
            report(f"bucket {args.name} must set publicAccessPrevention: enforced.", None)
        if args.props.get("uniformBucketLevelAccess") is not True:
            report(
                f"bucket {args.name} must use uniform bucket-level access (no object ACLs).", None
            )
    elif any(m in PUBLIC_MEMBERS for m in _members(args.props)):
        report(f"{args.name} makes a bucket public; grant a specific principal instead.", None)


def _policy(
    name: str,
    description: str,
    validate: Callable[[ResourceValidationArgs, ReportViolation], None],
    types: set[str],
) -> ResourceValidationPolicy:
    def scoped(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in types:
            validate(args, report)

    return ResourceValidationPolicy(name=name, description=description, validate=scoped)


POLICIES: list[ResourceValidationPolicy] = [
    _policy(
        "no-public-invoker",
        "Only an environment declared public lets allUsers invoke it or has an external gateway.",
        no_public_invoker,
        INVOKER_GRANTS | {SERVICE, GATEWAY},
    ),
    _policy(
        "images-by-digest",
        "Images come from the environment's own Artifact Registry, by digest.",
        images_by_digest,
        {SERVICE, JOB, DEPLOYMENT},
    ),
    _policy(
        "labels-present",
        "Services, jobs, deployments and buckets carry ownership labels.",
        labels_present,
        {SERVICE, JOB, BUCKET, DEPLOYMENT},
    ),
    _policy(
        "prod-min-instances", "Prod keeps at least one instance warm.", prod_stays_warm, {SERVICE}
    ),
    _policy(
        "cpu-memory-limits",
        "Every container sets CPU and memory limits.",
        limits_set,
        {SERVICE, JOB, DEPLOYMENT},
    ),
    _policy(
        "non-root",
        "Pods run as a non-root user and cannot gain privileges.",
        runs_as_non_root,
        {DEPLOYMENT},
    ),
    _policy(
        "probes-present",
        "Every Kubernetes container has readiness and liveness probes.",
        probes_present,
        {DEPLOYMENT},
    ),
    _policy(
        "buckets-not-public",
        "Buckets are private: enforced prevention, uniform access, no public grants.",
        buckets_private,
        {BUCKET} | BUCKET_GRANTS,
    ),
]
