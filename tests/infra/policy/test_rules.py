import copy
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import ResourceValidationArgs

from environments.stack_settings import ENVIRONMENTS
from infra.policy.rules import POLICIES
from infra.stack import deploy
from tests.infra.mock_stack import PULUMI_PROJECT, Resource, run_program, stack_config

DEPLOY = {
    "RELEASE_ACTION": "deploy",
    "RELEASE_IMAGE": f"europe-west1-docker.pkg.dev/my-ml-shared/services/app@sha256:{'a' * 64}",
    "RELEASE_GIT_SHA": "a" * 40,
}


def stack_resources(environment: str, **changes: str) -> list[Resource]:
    config = stack_config(Path(f"environments/Pulumi.{environment}.yaml"))
    config |= {f"{PULUMI_PROJECT}:{key}": value for key, value in changes.items()}
    return run_program(lambda: deploy(DEPLOY), environment, config).mocks.resources


def violations(environment: str, resource: Resource) -> dict[str, list[str]]:
    """Each policy's messages for one resource, as the analyzer would report them."""
    urn = f"urn:pulumi:{environment}::{PULUMI_PROJECT}::{resource.typ}::{resource.name}"
    args = ResourceValidationArgs(
        resource.typ,
        resource.inputs,
        urn,
        resource.name,
        None,  # pyright: ignore[reportArgumentType]  # no policy reads resource options
        None,
    )
    found: dict[str, list[str]] = {}
    for policy in POLICIES:
        messages: list[str] = []
        policy.validate(args, lambda message, _urn, into=messages: into.append(message))
        if messages:
            found[policy.name] = messages
    return found


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_shipped_stacks_pass_every_policy(environment: str) -> None:
    resources = stack_resources(environment, jobImage=DEPLOY["RELEASE_IMAGE"])
    assert {r.typ for r in resources} >= {
        "gcp:cloudrunv2/service:Service",
        "gcp:cloudrunv2/job:Job",
        "gcp:storage/bucket:Bucket",
    }
    assert {
        r.name: violations(environment, r) for r in resources if violations(environment, r)
    } == {}


def service(environment: str = "prod") -> Resource:
    return next(
        r for r in stack_resources(environment) if r.typ == "gcp:cloudrunv2/service:Service"
    )


def changed(resource: Resource, edit: Any) -> Resource:
    copied = Resource(resource.typ, resource.name, copy.deepcopy(resource.inputs))
    edit(copied.inputs)
    return copied


def test_a_public_invoker_is_refused_unless_the_environment_is_public() -> None:
    grant = Resource(
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "open",
        {"role": "roles/run.invoker", "member": "allUsers"},
    )
    assert not violations("dev", grant), "dev says public: true"
    assert "does not say `public: true`" in violations("prod", grant)["no-public-invoker"][0]
    opened = changed(service(), lambda p: p.update(invokerIamDisabled=True))
    assert "no-public-invoker" in violations("prod", opened)


@pytest.mark.parametrize(
    ("edit", "policy"),
    [
        (
            lambda p: p["template"]["containers"][0].update(
                image="europe-west1-docker.pkg.dev/p-x/r/app:latest"
            ),
            "images-by-digest",
        ),
        (
            lambda p: p["template"]["containers"][0].update(
                image=f"docker.io/library/app@sha256:{'a' * 64}"
            ),
            "images-by-digest",
        ),
        (
            lambda p: p["template"]["containers"][0].update(
                image=f"europe-west1-docker.pkg.dev/someone-else/services/app@sha256:{'a' * 64}"
            ),
            "images-by-digest",
        ),
        (  # the collector's exception covers Google's release of it, pinned, nothing else
            lambda p: p["template"]["containers"][1].update(image="docker.io/otel/collector:1.0"),
            "images-by-digest",
        ),
        (
            lambda p: p["template"]["containers"][1].update(
                image="us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/"
                "cloud-run-gmp-sidecar:latest"
            ),
            "images-by-digest",
        ),
        (  # the app cannot borrow the collector's exception
            lambda p: p["template"]["containers"][0].update(
                image=p["template"]["containers"][1]["image"]
            ),
            "images-by-digest",
        ),
        (lambda p: p["labels"].pop("environment"), "labels-present"),
        (lambda p: p["scaling"].update(minInstanceCount=0), "prod-min-instances"),
        (
            lambda p: p["template"]["containers"][0]["resources"]["limits"].pop("memory"),
            "cpu-memory-limits",
        ),
    ],
)
def test_each_service_violation_is_caught_by_its_policy(edit: Any, policy: str) -> None:
    assert set(violations("prod", changed(service(), edit))) == {policy}


def test_dev_may_scale_to_zero() -> None:
    assert "prod-min-instances" not in violations(
        "dev", changed(service("dev"), lambda p: p["scaling"].update(minInstanceCount=0))
    )


def test_public_buckets_are_refused() -> None:
    bucket = next(r for r in stack_resources("staging") if r.typ == "gcp:storage/bucket:Bucket")
    assert violations(
        "staging", changed(bucket, lambda p: p.update(publicAccessPrevention="inherited"))
    ) == {"buckets-not-public": ["bucket models-bucket must set publicAccessPrevention: enforced."]}
    assert "buckets-not-public" in violations(
        "staging", changed(bucket, lambda p: p.pop("uniformBucketLevelAccess"))
    )
    grant = Resource(
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "leak",
        {"role": "roles/storage.objectViewer", "member": "allUsers"},
    )
    assert "buckets-not-public" in violations("dev", grant), "even in a public environment"


def test_an_unknown_stack_is_never_public() -> None:
    grant = Resource(
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "open",
        {"role": "roles/run.invoker", "member": "allUsers"},
    )
    assert "no-public-invoker" in violations("sandbox", grant)


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_shipped_stacks_on_kubernetes_pass_every_policy(environment: str) -> None:
    resources = stack_resources(environment, platform="kubernetes")
    assert {r.typ for r in resources} >= {
        DEPLOYMENT,
        "kubernetes:gateway.networking.k8s.io/v1:Gateway",
    }
    assert {
        r.name: violations(environment, r) for r in resources if violations(environment, r)
    } == {}


def deployment() -> Resource:
    return next(r for r in stack_resources("prod", platform="kubernetes") if r.typ == DEPLOYMENT)


def _pod(props: dict[str, Any]) -> dict[str, Any]:
    return props["spec"]["template"]["spec"]


@pytest.mark.parametrize(
    ("edit", "policy"),
    [
        (lambda p: _pod(p)["containers"][0].update(image="europe-west1-docker.pkg.dev/my-ml-shared/"
                                                   "services/app:latest"), "images-by-digest"),
        (lambda p: _pod(p)["containers"][0]["resources"]["limits"].pop("cpu"), "cpu-memory-limits"),
        (lambda p: _pod(p)["securityContext"].pop("runAsNonRoot"), "non-root"),
        (lambda p: _pod(p)["containers"][0]["securityContext"].update(
            allowPrivilegeEscalation=True), "non-root"),
        (lambda p: _pod(p)["containers"][0].pop("readinessProbe"), "probes-present"),
        (lambda p: _pod(p)["containers"][0].pop("livenessProbe"), "probes-present"),
        (lambda p: p["metadata"]["labels"].pop("service"), "labels-present"),
    ],
    ids=["latest", "limits", "root", "escalation", "readiness", "liveness", "labels"],
)  # fmt: skip
def test_each_deployment_violation_is_caught_by_its_policy(edit: Any, policy: str) -> None:
    assert set(violations("prod", changed(deployment(), edit))) == {policy}


def test_an_external_gateway_needs_a_public_environment() -> None:
    gateway = Resource(
        "kubernetes:gateway.networking.k8s.io/v1:Gateway",
        "app-gateway",
        {"spec": {"gatewayClassName": "gke-l7-global-external-managed"}},
    )
    assert not violations("dev", gateway), "dev says public: true"
    assert "no-public-invoker" in violations("prod", gateway)
    internal = changed(gateway, lambda p: p["spec"].update(gatewayClassName="gke-l7-rilb"))
    assert not violations("prod", internal)
