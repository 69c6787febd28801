"""One monitoring run: a window of traffic against the served model's training reference, and
which signals it raises. Pure: the events come in, a result object goes out."""

from dataclasses import dataclass, field

from environments.monitoring_policy import SIGNALS, MonitoringPolicy, Signal
from pipelines.monitoring.drift import Drift, feature_drift, score_drift
from pipelines.monitoring.observed import Observed
from pipelines.monitoring.performance import Figure, estimated, low_confidence_rate, measured
from pipelines.monitoring.profile import expected_fraud
from service.artifact import ModelMetadata


class MonitorError(ValueError):
    """The run cannot judge this model; the message says why and what to do."""


@dataclass(frozen=True)
class Finding:
    """One signal: raised or not, and why, in words an on-call engineer can act on."""

    signal: Signal
    raised: bool
    reason: str


@dataclass(frozen=True)
class Monitoring:
    """Everything a run measured, and the findings the alerts and the retraining policy read."""

    model_version: str
    predictions: int
    labelled: int
    findings: list[Finding]
    features: list[Drift] = field(default_factory=list)
    score: Drift | None = None
    low_confidence: Figure | None = None
    estimated: list[Figure] = field(default_factory=list)
    measured: list[Figure] = field(default_factory=list)

    @property
    def raised(self) -> list[Signal]:
        return [f.signal for f in self.findings if f.raised]


def _finding(signal: Signal, figures: list[Figure]) -> Finding:
    bad = [f for f in figures if f.degraded]
    return Finding(signal, bool(bad), "; ".join(f.why for f in (bad or figures)))


def monitor(
    metadata: ModelMetadata, served: Observed, labelled: Observed, policy: MonitoringPolicy
) -> Monitoring:
    """Drift, confidence and performance of `metadata`'s model on a window of its traffic."""
    reference = metadata.reference
    if reference is None:
        raise MonitorError(
            f"model {metadata.version} has no training reference in its metadata (trained "
            "before monitoring existed): retrain it with this version of the code"
        )
    if len(served) < policy.min_predictions:
        why = f"only {len(served)} predictions in the window (need {policy.min_predictions})"
        return Monitoring(metadata.version, len(served), len(labelled),
                          [Finding(s, False, why) for s in SIGNALS])  # fmt: skip
    features = feature_drift(reference, served.columns, policy)
    score = score_drift(reference, served.scores, policy)
    unsure = low_confidence_rate(served.scores, metadata.threshold, reference, policy)
    guessed = estimated(served.scores, served.decisions, reference, metadata.metrics, policy)
    drifted = [d for d in features if d.drifted]
    findings = [
        Finding("feature_drift", bool(drifted), ", ".join(
            f"{d.name} (PSI {d.psi:.2f}, p {d.p_value:.1e})" for d in drifted
        ) or f"no feature drifted (largest PSI {max(d.psi for d in features):.3f})"),
        Finding("score_drift", score.drifted, f"score PSI {score.psi:.3f}, p {score.p_value:.1e}"),
        Finding("low_confidence", unsure.degraded, unsure.why),
        _finding("estimated_performance", guessed),
    ]  # fmt: skip
    found: list[Figure] = []
    if labelled.labels is not None and len(labelled) >= policy.min_labelled:
        found = measured(labelled.labels, labelled.decisions,
                         expected_fraud(reference.calibration, labelled.scores),
                         metadata.metrics, policy)  # fmt: skip
        findings.append(_finding("performance", found))
    else:
        findings.append(Finding("performance", False, (
            f"{len(labelled)} labelled predictions so far (need {policy.min_labelled})"
        )))  # fmt: skip
    return Monitoring(metadata.version, len(served), len(labelled), findings,
                      features, score, unsure, guessed, found)  # fmt: skip
