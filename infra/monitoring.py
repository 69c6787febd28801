"""Alerts, an uptime check and a dashboard for the service, with thresholds from the stack's SLOs.

The alert thresholds are the rollout gates' SLOs (`sloMaxErrorRate`, `sloMaxP99Ms`), so a canary
and an alert judge the service by the same numbers. Queries are PromQL: on Cloud Run over its
built-in metrics (run.googleapis.com/request_count and request_latencies), which need no
exporter; on Kubernetes over the service's own, which Managed Service for Prometheus scrapes
from the pods (the PodMonitoring of infra/kubernetes/objects.py), probes left out.
With the monitoring job on, two more: a signal it raised (drift, low confidence, lost
performance, judged by the `monitor*` thresholds of the environment file), and the job falling
silent; both reach the same channels.
"""

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_gcp import cloudrunv2, monitoring, organizations

from environments.monitoring_policy import PREDICTIONS_METRIC, SIGNAL_METRIC, promql_name
from environments.stack_settings import StackSettings
from infra.revision import LIVENESS_PATH

WINDOW = "5m"
# What the kubelet and the collector ask the pods, which users never do.
PROBE_ROUTES = "/readyz|/healthz|/metrics"
# The monitoring job writes once a run (daily by default): a point stands until the next one.
MODEL_LOOKBACK = "2d"
MONITORING_AGENT_DOMAIN = "gcp-sa-monitoring-notification.iam.gserviceaccount.com"
PromQLCondition = monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs


@dataclass(frozen=True)
class MonitoringArgs:
    """The environment (its SLOs and alert e-mails) and the service to watch; a Cloud Run
    service also gets an uptime check on its URL."""

    settings: StackSettings
    service_name: pulumi.Input[str]
    service_url: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class RequestMetrics:
    """Where one platform counts the service's requests, in PromQL."""

    requests: str  # a counter of requests
    latency: str  # its latency histogram's buckets
    five_xx: str  # the label matcher of a 5xx answer
    to_ms: str  # what turns a latency quantile into milliseconds
    revision: str  # the label that names a revision
    instances: str  # instances serving, per revision


def request_metrics(settings: StackSettings) -> RequestMetrics:
    if settings.platform == "cloudrun":
        labels = f'monitored_resource="cloud_run_revision",service_name="{settings.service_name}"'
        return RequestMetrics(
            requests=f"run_googleapis_com:request_count{{{labels}}}",
            latency=f"run_googleapis_com:request_latencies_bucket{{{labels}}}",
            five_xx=',response_code_class="5xx"',
            to_ms="",
            revision="revision_name",
            instances="sum by (revision_name) "
            f"(run_googleapis_com:container_instance_count{{{labels}}})",
        )
    where = f'namespace="{settings.namespace}"{settings.cluster_matcher}'
    labels = f'{where},route!~"{PROBE_ROUTES}"'
    return RequestMetrics(
        requests=f"http_requests_total{{{labels}}}",
        latency=f"http_request_duration_seconds_bucket{{{labels}}}",
        five_xx=',status=~"5.."',
        to_ms=" * 1000",
        revision="revision",
        instances=f"count by (revision) (up{{{where}}})",
    )


def _with(series: str, extra: str) -> str:
    """`metric{labels}` with more label matchers."""
    return series[:-1] + extra + "}"


def error_ratio_query(settings: StackSettings) -> str:
    """Share of requests answered 5xx over the window, across all revisions."""
    metrics = request_metrics(settings)
    errors = _with(metrics.requests, metrics.five_xx)
    return f"sum(rate({errors}[{WINDOW}])) / sum(rate({metrics.requests}[{WINDOW}]))"


def p99_query(settings: StackSettings, by: str = "") -> str:
    """p99 request latency in milliseconds over the window."""
    metrics = request_metrics(settings)
    quantile = f"sum by (le{by}) (rate({metrics.latency}[{WINDOW}]))"
    return f"histogram_quantile(0.99, {quantile}){metrics.to_ms}"


def model_signal_query(settings: StackSettings) -> str:
    """1 while the monitoring job's latest run raised a signal, per signal."""
    labels = (f'{{monitored_resource="global",environment="{settings.environment}",'
              f'service="{settings.service_name}"}}')  # fmt: skip
    series = f"{promql_name(SIGNAL_METRIC)}{labels}"
    return f"max by (signal) (last_over_time({series}[{MODEL_LOOKBACK}])) > 0"


def monitoring_silent_query(settings: StackSettings) -> str:
    """True when the monitoring job has reported nothing for the lookback."""
    labels = (f'{{monitored_resource="global",environment="{settings.environment}",'
              f'service="{settings.service_name}"}}')  # fmt: skip
    return f"absent_over_time({promql_name(PREDICTIONS_METRIC)}{labels}[{MODEL_LOOKBACK}])"


def alert_queries(settings: StackSettings) -> dict[str, tuple[str, str, str]]:
    """Each alert policy: its title, its PromQL condition, and what to do when it fires."""
    slo = settings.rollout.gates
    rollback = (
        f"The {settings.environment} SLO is breached over {WINDOW}. See the dashboard for the "
        "revision at fault. If a canary holds traffic, roll it back: `RELEASE_ACTION=rollback "
        f"make up ENV={settings.environment}` (idempotent, safe to re-run)."
    )
    alerts = {
        "errors": (
            f"5xx ratio above {slo.error_rate.max_error_rate:g}",
            f"{error_ratio_query(settings)} > {slo.error_rate.max_error_rate}",
            rollback,
        ),
        "latency": (
            f"p99 latency above {slo.latency.max_p99_ms:g} ms",
            f"{p99_query(settings)} > {slo.latency.max_p99_ms}",
            rollback,
        ),
    }
    if settings.job_image:
        watched = settings.monitoring
        alerts["model"] = (
            "model monitoring raised a signal",
            model_signal_query(settings),
            f"The monitoring job found drift or lost performance in {settings.environment} "
            f"(thresholds: PSI >= {watched.min_psi:g} at false-alarm rate "
            f"{watched.false_alarm_rate:g}, recall or precision more than "
            f"{watched.max_recall_drop:g} below the model card, low confidence above "
            f"{watched.max_low_confidence_ratio:g} times the reference). The `signal` label says "
            f"which. Each run's report is in gs://{settings.model_bucket_name}/monitoring/"
            f"{settings.service_name}/ (newest last); `python -m pipelines monitor "
            f"--environment {settings.environment}` runs one now. The retrain workflow proposes "
            "a new model by pull request when the retraining policy allows; nothing is deployed "
            "without review.",
        )
        alerts["model-silent"] = (
            f"model monitoring silent for {MODEL_LOOKBACK}",
            monitoring_silent_query(settings),
            f"The monitoring job of {settings.environment} has written no figures for "
            f"{MODEL_LOOKBACK}: look at its executions in Cloud Run (jobs), and at its logs.",
        )
    return alerts


def xy_chart(query: str) -> dict[str, Any]:
    """One line chart, with every field the API fills in when it is left out written out as the
    API writes it back: otherwise each `pulumi preview` shows the dashboard as changed
    (https://github.com/hashicorp/terraform-provider-google/issues/16173)."""
    return {
        "chartOptions": {"mode": "COLOR"},
        "dataSets": [
            {
                "breakdowns": [],
                "dimensions": [],
                "measures": [],
                "minAlignmentPeriod": "60s",
                "plotType": "LINE",
                "targetAxis": "Y1",
                "timeSeriesQuery": {"prometheusQuery": query},
            }
        ],
        "thresholds": [],
        "timeshiftDuration": "0s",
        "yAxis": {"label": "y1Axis", "scale": "LINEAR"},
    }


def dashboard_json(settings: StackSettings) -> str:
    """Traffic, errors and latency per revision: a canary is visible next to stable at a glance."""
    metrics = request_metrics(settings)
    per_revision = f"sum by ({metrics.revision}) (rate({metrics.requests}[{WINDOW}]))"
    tiles = [
        ("Requests/s by revision", per_revision),
        ("5xx ratio", error_ratio_query(settings)),
        ("p99 latency (ms) by revision", p99_query(settings, f", {metrics.revision}")),
        ("Instances by revision", metrics.instances),
    ]
    return json.dumps(
        {
            "displayName": f"{settings.service_name} ({settings.environment})",
            "mosaicLayout": {
                "columns": 12,
                "tiles": [
                    {
                        "xPos": (index % 2) * 6,
                        "yPos": (index // 2) * 4,
                        "width": 6,
                        "height": 4,
                        "widget": {"title": title, "xyChart": xy_chart(query)},
                    }
                    for index, (title, query) in enumerate(tiles)
                ],
            },
        },
        sort_keys=True,
    )


class Monitoring(pulumi.ComponentResource):
    """Notification channels, two alert policies, an uptime check on /healthz and a dashboard."""

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-ml-rollouts:infra:Monitoring", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        channels = [
            monitoring.NotificationChannel(
                f"{name}-email-{index}",
                project=settings.project,
                type="email",
                display_name=f"{settings.service_name} {settings.environment}: {email}",
                labels={"email_address": email},
                opts=child,
            ).name
            for index, email in enumerate(settings.alert_emails)
        ]
        for key, (title, query, advice) in alert_queries(settings).items():
            monitoring.AlertPolicy(
                f"{name}-{key}",
                project=settings.project,
                display_name=f"{settings.service_name} ({settings.environment}): {title}",
                combiner="OR",
                severity="CRITICAL" if settings.environment == "prod" else "WARNING",
                notification_channels=channels,
                user_labels=settings.label_map,
                documentation=monitoring.AlertPolicyDocumentationArgs(
                    mime_type="text/markdown", content=advice
                ),
                conditions=[
                    monitoring.AlertPolicyConditionArgs(
                        display_name=title,
                        condition_prometheus_query_language=PromQLCondition(
                            query=query, duration="300s", evaluation_interval="60s"
                        ),
                    )
                ],
                opts=child,
            )

        if args.service_url is not None:
            self._uptime_check(name, settings, args.service_name, args.service_url)
        dashboard = monitoring.Dashboard(
            f"{name}-dashboard",
            project=settings.project,
            dashboard_json=dashboard_json(settings),
            opts=child,
        )
        # Linked from every rollout report. The resource id is projects/<p>/dashboards/<id>.
        self.dashboard_url = dashboard.id.apply(
            lambda resource_id: (
                "https://console.cloud.google.com/monitoring/dashboards/custom/"
                f"{resource_id.rsplit('/', 1)[-1]}?project={settings.project}"
            )
        )
        self.register_outputs(
            {"notification_channels": channels, "dashboard_url": self.dashboard_url}
        )

    def _uptime_check(
        self,
        name: str,
        settings: StackSettings,
        service_name: pulumi.Input[str],
        service_url: pulumi.Input[str],
    ) -> None:
        """/healthz from outside, every minute (Cloud Run: its URL is known at deploy time)."""
        child = pulumi.ResourceOptions(parent=self)
        project_number = organizations.get_project_output(project_id=settings.project).number
        host = pulumi.Output.from_input(service_url).apply(
            lambda url: url.removeprefix("https://").rstrip("/")
        )
        if not settings.public:
            # An authenticated service answers the checker only with an OIDC token from the
            # Monitoring notification agent, which therefore needs to be an invoker. The
            # bootstrap creates that agent (infra/bootstrap/environment.py): Google makes it
            # lazily, and a grant to an agent that does not exist yet fails.
            cloudrunv2.ServiceIamMember(
                f"{name}-uptime-invoker",
                project=settings.project,
                location=settings.region,
                name=service_name,
                role="roles/run.invoker",
                member=project_number.apply(
                    lambda number: f"serviceAccount:service-{number}@{MONITORING_AGENT_DOMAIN}"
                ),
                opts=child,
            )
        monitoring.UptimeCheckConfig(
            f"{name}-uptime",
            project=settings.project,
            display_name=f"{settings.service_name} ({settings.environment}) {LIVENESS_PATH}",
            timeout="10s",
            period="60s",
            monitored_resource=monitoring.UptimeCheckConfigMonitoredResourceArgs(
                type="uptime_url", labels={"project_id": settings.project, "host": host}
            ),
            http_check=monitoring.UptimeCheckConfigHttpCheckArgs(
                path=LIVENESS_PATH,
                port=443,
                use_ssl=True,
                validate_ssl=True,
                service_agent_authentication=None
                if settings.public
                else monitoring.UptimeCheckConfigHttpCheckServiceAgentAuthenticationArgs(
                    type="OIDC_TOKEN"
                ),
            ),
            user_labels=settings.label_map,
            opts=child,
        )
