"""An experiment's report: Markdown for people, JSON for tools, a plot of the evidence over time."""

from pathlib import Path

from matplotlib.figure import Figure

from pipelines.atomic_file import write_json_atomic, write_text_atomic
from pipelines.experiments.analysis import Analysis, planned_size


def plot_evidence(analysis: Analysis, path: Path) -> None:
    """Each arm's correct-decision rate with its interval, and the always-valid p-value."""
    looks = analysis.looks
    t0 = looks[0].at if looks else 0.0
    span = looks[-1].at - t0 if looks else 0.0
    unit, scale = ("hours", 3600.0) if span > 7200 else ("seconds", 1.0)
    hours = [(look.at - t0) / scale for look in looks]
    fig = Figure(figsize=(8, 6))
    rates, evidence = fig.subplots(2, 1, sharex=True)
    for arm, colour in (("champion", "tab:blue"), ("challenger", "tab:orange")):
        series = [getattr(look, arm) for look in looks]
        bounds = [s.interval(analysis.plan.alpha) for s in series]
        rates.plot(hours, [s.rate for s in series], color=colour, label=arm)
        rates.fill_between(hours, [b[0] for b in bounds], [b[1] for b in bounds],
                           color=colour, alpha=0.2)  # fmt: skip
    rates.set_ylabel(analysis.plan.metric.replace("_", " "))
    rates.legend(loc="lower right")
    evidence.plot(hours, [look.p_value for look in looks], color="tab:purple")
    evidence.axhline(analysis.plan.alpha, color="grey", linestyle=":", label="alpha")
    evidence.set_yscale("log")
    evidence.set_ylabel("always-valid p")
    evidence.set_xlabel(f"{unit} since the first look")
    evidence.legend(loc="lower left")
    fig.suptitle(f"{analysis.plan.name}: {analysis.decision}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def markdown(analysis: Analysis, png_name: str) -> str:
    plan, comparison = analysis.plan, analysis.comparison
    low, high = comparison.interval
    lines = [
        f"# Experiment {plan.name}: {analysis.decision}",
        "",
        analysis.reason,
        "",
        f"| arm | users assigned | counted predictions | {plan.metric.replace('_', ' ')} | "
        f"{1 - plan.alpha:.0%} interval |",
        "|---|---|---|---|---|",
    ]
    for name in ("champion", "challenger"):
        arm = getattr(analysis, name)
        lo, hi = arm.interval(plan.alpha)
        lines.append(
            f"| {name} | {analysis.assigned_users.get(name, 0):,} | {arm.labelled:,} | "
            f"{arm.rate:.2%} | {lo:.2%} to {hi:.2%} |"
        )
    srm = analysis.sample_ratio
    feedback = analysis.feedback
    lines += [
        "",
        f"- difference (challenger minus champion): {comparison.difference:+.2%}, "
        f"{1 - plan.alpha:.0%} interval {low:+.2%} to {high:+.2%}",
        f"- always-valid p-value (the decision; safe to read at every look): "
        f"{analysis.always_valid_p:.3g}",
        f"- fixed-horizon p-value: {comparison.p_value:.3g} (valid only at the planned "
        f"{planned_size(plan):,} counted predictions: "
        f"{analysis.champion.labelled + analysis.challenger.labelled:,} so far)",
        f"- sample ratio: {srm.observed_share:.2%} of users on the challenger, "
        f"{srm.expected_share:.0%} planned, p={srm.p_value:.3g}"
        f"{' — MISMATCH' if srm.mismatch else ''}",
        f"- feedback: {feedback['received']:,} received, {feedback['repeated']:,} repeats "
        f"ignored, {feedback['unmatched']:,} naming no prediction",
        f"- plan: alpha {plan.alpha}, power {plan.power}, minimum effect "
        f"{plan.minimum_effect:+.2%} on a baseline of {plan.baseline:.0%}, "
        f"{plan.allocation:.0%} of users on the challenger",
        "",
        f"![evidence over time]({png_name})",
        "",
    ]
    return "\n".join(lines)


def write_report(analysis: Analysis, folder: Path) -> Path:
    """`<folder>/<name>.{md,json,png}`; returns the Markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / analysis.plan.name
    png = stem.with_suffix(".png")
    plot_evidence(analysis, png)
    write_json_atomic(stem.with_suffix(".json"), analysis.as_json())
    write_text_atomic(stem.with_suffix(".md"), markdown(analysis, png.name))
    return stem.with_suffix(".md")
