"""A monitoring run's report: Markdown for people (what was raised and why, the figures with
their intervals), one plot per feature of reference against current shares, and JSON for tools
(the alerting metrics and the retraining policy read the same object)."""

import dataclasses
import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as Plot

from pipelines.atomic_file import write_json_atomic, write_text_atomic
from pipelines.monitoring.drift import Drift
from pipelines.monitoring.monitor import Monitoring

REPORT_NAME = "monitoring"


def as_json(result: Monitoring) -> dict[str, Any]:
    return dataclasses.asdict(result) | {"raised": result.raised}


def plot_drift(drifts: list[Drift], path: Path) -> None:
    """Reference and current share per bin, one panel per feature and one for the score."""
    columns = 3
    rows = math.ceil(len(drifts) / columns)
    fig = Plot(figsize=(15, 3.4 * rows))
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for axis, drift in zip(axes, drifts, strict=False):
        where = range(len(drift.bins))
        axis.bar([x - 0.2 for x in where], drift.reference, width=0.4, label="training reference")
        axis.bar([x + 0.2 for x in where], drift.current, width=0.4, label="this window",
                 color="tab:red" if drift.drifted else "tab:orange")  # fmt: skip
        axis.set_xticks(list(where), drift.bins, rotation=60, fontsize="x-small", ha="right")
        verdict = "DRIFTED" if drift.drifted else "stable"
        axis.set_title(f"{drift.name}: PSI {drift.psi:.3f} ({verdict})", fontsize="small")
        axis.set_ylabel("share of rows", fontsize="small")
    for axis in axes[len(drifts) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=70)


def markdown(result: Monitoring, png_name: str | None, window: str) -> str:
    raised = result.raised
    headline = f"**{', '.join(raised)}**" if raised else "nothing raised"
    lines = [
        f"# Monitoring: model {result.model_version}",
        "",
        f"{window}: {result.predictions:,} predictions, {result.labelled:,} of them labelled. "
        f"Signals: {headline}.",
        "",
        "| signal | raised | why |",
        "|---|---|---|",
        *(f"| {f.signal} | {'**yes**' if f.raised else 'no'} | {f.reason} |"
          for f in result.findings),
    ]  # fmt: skip
    figures = [result.low_confidence, *result.estimated, *result.measured]
    if any(figures):
        lines += ["", "| figure | value | interval | reference |", "|---|---|---|---|"]
        lines += [
            f"| {f.name} | {f.value:.4f} | [{f.low:.4f}, {f.high:.4f}] | {f.reference:.4f} |"
            for f in figures
            if f is not None
        ]
    drifts = [*result.features, *([result.score] if result.score else [])]
    if drifts:
        lines += ["", "| feature | PSI | p-value | drifted |", "|---|---|---|---|"]
        lines += [
            f"| {d.name} | {d.psi:.3f} | {d.p_value:.2e} | {'**yes**' if d.drifted else 'no'} |"
            for d in drifts
        ]
    if png_name:
        lines += ["", f"![reference against this window]({png_name})"]
    return "\n".join(lines) + "\n"


def write_report(result: Monitoring, folder: Path, window: str) -> Path:
    """`<folder>/monitoring.{md,json,png}`; returns the Markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / REPORT_NAME
    drifts = [*result.features, *([result.score] if result.score else [])]
    png = stem.with_suffix(".png") if drifts else None
    if png is not None:
        plot_drift(drifts, png)
    write_json_atomic(stem.with_suffix(".json"), as_json(result) | {"window": window})
    write_text_atomic(stem.with_suffix(".md"), markdown(result, png.name if png else None, window))
    return stem.with_suffix(".md")
