"""The model card: what the model is, how it did on every gate, and the plots behind the figures
(ROC and precision-recall curves, calibration, scores by group), written with the verdict."""

from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from pipelines.atomic_file import write_json_atomic
from pipelines.evaluation.evaluate import Evaluation

VERDICT_FILE, CARD_FILE, PLOTS_FILE = "verdict.json", "model_card.md", "model_card.png"


def _curves(evaluation: Evaluation, path: Path) -> None:
    labels = evaluation.data.labels
    named: list[tuple[str, npt.NDArray[np.float64]]] = [
        (f"candidate {evaluation.candidate.version}", evaluation.candidate_scores)
    ]
    if evaluation.champion is not None and evaluation.champion_scores is not None:
        named.append((f"champion {evaluation.champion.version}", evaluation.champion_scores))
    fig = Figure(figsize=(11, 9))
    (roc, pr), (calibration, histogram) = fig.subplots(2, 2)
    for name, scores in named:
        fpr, tpr, _ = roc_curve(labels, scores)
        roc.plot(fpr, tpr, label=name)
        precision, recall, _ = precision_recall_curve(labels, scores)
        pr.plot(recall, precision, label=name)
        index = np.minimum((scores * 10).astype(int), 9)
        filled = [b for b in range(10) if np.any(index == b)]
        calibration.plot(
            [scores[index == b].mean() for b in filled],
            [labels[index == b].mean() for b in filled],
            marker="o",
            label=name,
        )
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc.set(xlabel="false-positive rate", ylabel="recall", title="ROC")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    calibration.plot([0, 1], [0, 1], color="grey", linestyle=":")
    calibration.set(xlabel="mean score", ylabel="fraud rate", title="calibration (10 bins)")
    groups = evaluation.data.groups
    for group in np.unique(groups):
        inside = evaluation.candidate_scores[groups == group]
        histogram.hist(
            np.clip(inside, 1e-5, 1), bins=np.geomspace(1e-5, 1, 41), histtype="step",
            weights=np.full(len(inside), 1 / len(inside)), label=str(group),
        )  # fmt: skip
    histogram.set(xscale="log", xlabel="candidate score", ylabel="share of the group",
                  title="scores by group")  # fmt: skip
    for axis in (roc, pr, calibration, histogram):
        axis.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def markdown(evaluation: Evaluation) -> str:
    document, metadata = evaluation.verdict, evaluation.candidate.metadata
    outcome = (
        "**passed**" if document["passed"] else f"**failed**: {', '.join(document['failed_gates'])}"
    )
    champion = document["champion"]
    lines = [
        f"# Model card: fraud scorer {metadata.version}",
        "",
        f"Offline gates {outcome}. Champion: "
        + (f"`{champion['version']}` ({champion['sha256'][:12]})" if champion else "none yet"),
        "",
        "## The model",
        f"- artifact sha256 `{metadata.sha256}`, trained {metadata.created_at:%Y-%m-%d %H:%M} UTC "
        f"from commit `{metadata.git_sha[:12]}`, seed {metadata.seed}",
        f"- training data fingerprint `{metadata.data_fingerprint[:16]}`, "
        f"settings {metadata.training}",
        f"- decision threshold {metadata.threshold:.4f} (best F1 on validation data)",
        "- intended use: ranking card transactions for fraud review; the score is a probability, "
        "calibrated on synthetic data like the evaluation set's",
        "- limits: trained and judged on synthetic data; group attribute: age band, which the "
        "model does not see but which correlates with account age",
        "",
        "## Gates",
        "| gate | verdict | why |",
        "|---|---|---|",
    ]
    for gate in document["gates"]:
        lines.append(
            f"| {gate['gate']} | {'pass' if gate['passed'] else 'FAIL'} | {gate['reason']} |"
        )
    lines += ["", f"![curves]({PLOTS_FILE})", "", "## By group (at the decision threshold)", ""]
    lines += ["| group | recall | false-positive rate | flagged share |", "|---|---|---|---|"]
    for group, m in evaluation.by_group.items():
        rates = f"{m['recall']:.3f} | {m['false_positive_rate']:.4f} | {m['flagged_share']:.4f}"
        lines.append(f"| {group} | {rates} |")
    lines += ["", "## Figures", ""]
    for gate in document["gates"]:
        for name, value in gate["figures"].items():
            lines.append(f"- {gate['gate']}: {name} = {value:.4g}")
    return "\n".join(lines) + "\n"


def write_reports(evaluation: Evaluation, folder: Path) -> Path:
    """`verdict.json`, `model_card.md` and its plots in `folder`; returns the verdict's path."""
    folder.mkdir(parents=True, exist_ok=True)
    _curves(evaluation, folder / PLOTS_FILE)
    (folder / CARD_FILE).write_text(markdown(evaluation), encoding="utf-8")
    write_json_atomic(folder / VERDICT_FILE, evaluation.verdict)
    return folder / VERDICT_FILE
