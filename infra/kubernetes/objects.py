"""The Kubernetes objects of one environment, as manifests: plain dicts in the API's own shape.

Pure functions of the settings and the release state, so the tests validate each manifest
against the Kubernetes and Gateway API schemas without a cluster, and the component
(infra/kubernetes/service.py) only hands them to Pulumi.

Per revision: a Deployment and a Service named after it, a PodDisruptionBudget, a
HorizontalPodAutoscaler, and where Google's Managed Service for Prometheus is the metrics backend
a PodMonitoring. A candidate that was rolled back keeps its Deployment at zero replicas (it
keeps its name and its tag rule, as on Cloud Run, and costs nothing) until the next deploy
replaces it. Once for the service: its namespace, its Kubernetes service account (Workload
Identity: it acts as the runtime service account), a Gateway and the HTTPRoute that splits
traffic (environments/http_route.py).
"""

from typing import Any

import yaml

from environments.http_route import SERVICE_PORT, rules
from environments.stack_settings import StackSettings
from infra.release import ReleaseState, Revision
from infra.revision import CONTAINER_PORT, METRICS_PATH, Probe

Manifest = dict[str, Any]
RUN_AS = 10001  # the image's own user (service/Dockerfile)
INSTANCE = "app.kubernetes.io/instance"
# A revision's pods may lose one at a time to a node drain or upgrade, never more.
MAX_UNAVAILABLE = 1
TARGET_CPU_PERCENT = 70
READINESS_PERIOD_S = 5
SCRAPE_INTERVAL = "30s"
GKE_GATEWAY_CLASSES = ("gke-l7-",)
# Where GKE's Secret Manager add-on mounts a revision's secrets, one file per setting; the
# service reads them from there (service/settings.py, SECRETS_DIR).
SECRETS_DIR = "/var/secrets"
SECRETS_DRIVER = "secrets-store-gke.csi.k8s.io"


def _meta(settings: StackSettings, name: str, **labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": settings.namespace,
        "labels": settings.label_map | {"app.kubernetes.io/name": settings.service_name} | labels,
    }


def namespace(settings: StackSettings) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": settings.namespace, "labels": settings.label_map},
    }


def service_account(settings: StackSettings) -> Manifest:
    """Workload Identity: pods of this account act as the runtime service account, keyless."""
    metadata = _meta(settings, settings.service_name)
    metadata["annotations"] = {"iam.gke.io/gcp-service-account": settings.runtime_account_email}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def workload_identity_member(settings: StackSettings) -> str:
    """The principal of that Kubernetes account in the project's workload pool."""
    return (
        f"serviceAccount:{settings.project}.svc.id.goog"
        f"[{settings.namespace}/{settings.service_name}]"
    )


def _probe(probe: Probe) -> dict[str, Any]:
    return {
        "httpGet": {"path": probe.path, "port": "http"},
        "periodSeconds": probe.period_seconds,
        "timeoutSeconds": probe.timeout_seconds,
        "failureThreshold": probe.failure_threshold,
    }


def _container(revision: Revision) -> dict[str, Any]:
    spec = revision.spec
    resources = {"cpu": spec.cpu, "memory": spec.memory}
    env = {**spec.env, "K_REVISION": revision.name}
    # /tmp is an emptyDir: the root filesystem is read-only.
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    if spec.secret_env:
        env["SECRETS_DIR"] = SECRETS_DIR
        mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    readiness = spec.startup_probe.model_copy(
        update={"period_seconds": READINESS_PERIOD_S, "failure_threshold": 3}
    )
    return {
        "name": "app",
        "image": revision.image,
        "ports": [{"name": "http", "containerPort": spec.port or CONTAINER_PORT}],
        # Cloud Run tells a revision its name in K_REVISION; here the Deployment does. The
        # service labels its metrics and events with it, which the rollout gates select on.
        "env": [{"name": name, "value": value} for name, value in sorted(env.items())],
        # Requests equal to limits: Autopilot bills requests, and a pod gets what it may use.
        "resources": {"requests": resources, "limits": resources},
        "startupProbe": _probe(spec.startup_probe),
        "readinessProbe": _probe(readiness),
        "livenessProbe": _probe(spec.liveness_probe),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }


def _volumes(revision: Revision) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    if revision.spec.secret_env:
        attributes = {"secretProviderClass": revision.name}
        volumes.append(
            {
                "name": "secrets",
                "csi": {"driver": SECRETS_DRIVER, "readOnly": True, "volumeAttributes": attributes},
            }
        )
    return volumes


def secret_provider(settings: StackSettings, revision: Revision) -> Manifest:
    """The Secret Manager versions the revision reads (recorded with it, as on Cloud Run), each
    mounted as a file named after its setting (https://cloud.google.com/secret-manager/docs/
    secret-manager-managed-csi-component)."""
    secrets = [
        {
            "resourceName": f"projects/{settings.project}/secrets/{secret}/versions/{version}",
            "path": name,
        }
        for name, (secret, version) in sorted(revision.spec.secret_env.items())
    ]
    return {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": _meta(settings, revision.name, **{INSTANCE: revision.name}),
        "spec": {"provider": "gke", "parameters": {"secrets": yaml.safe_dump(secrets)}},
    }


def deployment(settings: StackSettings, revision: Revision, retired: bool) -> Manifest:
    """The revision's pods; `retired` (a rolled-back candidate) scales it to zero. Otherwise the
    autoscaler owns the replica count, so the manifest leaves it out."""
    selector = {INSTANCE: revision.name}
    pod_labels = settings.label_map | {"app.kubernetes.io/name": settings.service_name} | selector
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector},
        "template": {
            "metadata": {
                "labels": pod_labels | {"git-sha": revision.git_sha[:63]},
                # For a Prometheus that discovers pods by annotation (kubernetesPrometheusUrl).
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(revision.spec.port),
                    "prometheus.io/path": METRICS_PATH,
                },
            },
            "spec": {
                "serviceAccountName": settings.service_name,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": RUN_AS,
                    "runAsGroup": RUN_AS,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [_container(revision)],
                "volumes": _volumes(revision),
                "terminationGracePeriodSeconds": revision.spec.timeout_seconds + 5,
            },
        },
    }
    if retired:
        spec["replicas"] = 0
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(settings, revision.name, **selector),
        "spec": spec,
    }


def service(settings: StackSettings, revision: Revision) -> Manifest:
    selector = {INSTANCE: revision.name}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(settings, revision.name, **selector),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}],
        },
    }


def disruption_budget(settings: StackSettings, revision: Revision) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(settings, revision.name, **{INSTANCE: revision.name}),
        "spec": {
            "maxUnavailable": MAX_UNAVAILABLE,
            "selector": {"matchLabels": {INSTANCE: revision.name}},
        },
    }


def autoscaler(settings: StackSettings, revision: Revision) -> Manifest:
    """minInstances and maxInstances, as on Cloud Run (a Deployment never scales to zero)."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(settings, revision.name, **{INSTANCE: revision.name}),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": revision.name,
            },
            "minReplicas": max(1, settings.min_instances),
            "maxReplicas": settings.max_instances,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": TARGET_CPU_PERCENT},
                    },
                }
            ],
        },
    }


def pod_monitoring(settings: StackSettings, revision: Revision) -> Manifest:
    """Managed Service for Prometheus scrapes the revision's /metrics into Cloud Monitoring,
    where the rollout gates query them with PromQL, as on Cloud Run."""
    return {
        "apiVersion": "monitoring.googleapis.com/v1",
        "kind": "PodMonitoring",
        "metadata": _meta(settings, revision.name, **{INSTANCE: revision.name}),
        "spec": {
            "selector": {"matchLabels": {INSTANCE: revision.name}},
            "endpoints": [{"port": "http", "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}],
        },
    }


def health_check_policy(settings: StackSettings, revision: Revision) -> Manifest:
    """GKE's load balancer checks `/` unless told otherwise; the service answers its readiness
    path (https://cloud.google.com/kubernetes-engine/docs/how-to/configure-gateway-resources)."""
    probe = revision.spec.startup_probe
    return {
        "apiVersion": "networking.gke.io/v1",
        "kind": "HealthCheckPolicy",
        "metadata": _meta(settings, revision.name, **{INSTANCE: revision.name}),
        "spec": {
            "default": {
                "config": {
                    "type": "HTTP",
                    "httpHealthCheck": {"requestPath": probe.path, "port": revision.spec.port},
                }
            },
            "targetRef": {"group": "", "kind": "Service", "name": revision.name},
        },
    }


def gateway(settings: StackSettings) -> Manifest:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": _meta(settings, settings.service_name),
        "spec": {
            "gatewayClassName": settings.gateway_class_name,
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": 80,
                    "allowedRoutes": {"namespaces": {"from": "Same"}},
                }
            ],
        },
    }


def http_route(settings: StackSettings, state: ReleaseState) -> Manifest:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta(settings, settings.service_name),
        "spec": {
            "parentRefs": [{"name": settings.service_name}],
            "rules": rules(state.split()),
        },
    }


def revision_objects(settings: StackSettings, state: ReleaseState) -> dict[str, list[Manifest]]:
    """Every revision with a route, by name: what each one runs on."""
    objects: dict[str, list[Manifest]] = {}
    for revision in state.serving:
        retired = state.phase == "rolled_back" and revision is state.candidate
        made = [
            deployment(settings, revision, retired),
            service(settings, revision),
            disruption_budget(settings, revision),
        ]
        if revision.spec.secret_env:
            made.append(secret_provider(settings, revision))
        if not retired:
            made.append(autoscaler(settings, revision))
        if not settings.kubernetes_prometheus_url:
            made.append(pod_monitoring(settings, revision))
        if settings.gateway_class_name.startswith(GKE_GATEWAY_CLASSES):
            made.append(health_check_policy(settings, revision))
        objects[revision.name] = made
    return objects
