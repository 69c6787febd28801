"""The one pull-request comment: per environment the infra diff, the model's verdict with its
deltas against production, and the rollout plan. One comment built here, not one per stack: the
Pulumi action's comments from several stacks overwrite each other (pulumi/actions#563, #715).

GitHub refuses a comment body over 65,536 characters, so each environment's diff gets an equal
share of what the fixed parts leave, cut at a line, with a note saying where the whole diff is.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.delivery.preview_text import PreviewSummary, parse_preview
from pipelines.rollout.plan import RolloutPlan, plan_table

MARKER = "<!-- cloudrun-ml-rollouts: pull-request summary -->"
COMMENT_LIMIT = 65_536
_RESERVE = 1_000  # for the notes that trimming adds
QUALITY_ROWS = (
    ("roc_auc", "ROC-AUC"),
    ("average_precision", "average precision"),
    ("recall_at_threshold", "recall at threshold"),
    ("precision_at_threshold", "precision at threshold"),
    ("calibration_error", "calibration error (lower is better)"),
)


@dataclass(frozen=True)
class Preview:
    """One environment's preview: its text, or None when it did not run (a fork's pull request)."""

    environment: str
    text: str | None

    @property
    def summary(self) -> PreviewSummary | None:
        return parse_preview(self.text) if self.text is not None else None


def trim(text: str, budget: int) -> tuple[str, bool]:
    """At most `budget` characters of `text`, cut after a whole line; True when cut."""
    if len(text) <= budget:
        return text, False
    cut = text.rfind("\n", 0, max(budget, 0))
    return text[: cut if cut > 0 else 0], True


def _fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text`, so the diff cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def infra_section(previews: list[Preview], budget: int, details_link: str) -> str:
    """Headlines for every environment, then each diff within an equal share of `budget`."""
    lines = ["### Infrastructure", "", "| environment | preview |", "|---|---|"]
    for preview in previews:
        summary = preview.summary
        if summary is None:
            headline = "not run (no cloud credentials for this pull request)"
        else:
            headline = ("❌ " if summary.failed else "") + summary.headline()
        lines.append(f"| {preview.environment} | {headline} |")
    ran = [(p.environment, p.text) for p in previews if p.text is not None]
    share = (budget - sum(len(line) + 1 for line in lines)) // max(len(ran), 1)
    for environment, whole in ran:
        summary = parse_preview(whole)
        if summary.policy_lines:
            lines += ["", f"**Policy violations in {environment}:**", "```"]
            lines += [*summary.policy_lines, "```"]
        text, cut = trim(whole.strip(), share - 200)
        fence = _fence(text)
        note = (
            f"\n\n_Trimmed to {len(text):,} of {len(whole):,} characters: the whole diff "
            f"is in {details_link}._"
            if cut
            else ""
        )
        lines += [
            "",
            f"<details><summary>{environment}: the diff</summary>",
            "",
            f"{fence}diff\n{text}\n{fence}{note}",
            "",
            "</details>",
        ]
    return "\n".join(lines)


def _delta(candidate: float, champion: float) -> str:
    return f"{candidate - champion:+.4f}"


def model_section(verdict: Mapping[str, Any] | None) -> str:
    """The verdict, gate by gate, and the candidate's quality next to production's."""
    if verdict is None:
        return "### Model\n\nThe offline gates did not run: see the `model` job."
    candidate = verdict["candidate"]
    champion = verdict.get("champion")
    mark = "✅ passed" if verdict["passed"] else "❌ failed: " + ", ".join(verdict["failed_gates"])
    lines = [
        "### Model",
        "",
        f"Offline gates for `{candidate['version']}` (`{candidate['sha256'][:12]}`): **{mark}**",
        "",
        "| gate | verdict | why |",
        "|---|---|---|",
    ]
    for gate in verdict["gates"]:
        reason = str(gate["reason"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {gate['gate']} | {'pass' if gate['passed'] else '**FAIL**'} | {reason} |")
    quality = next(g["figures"] for g in verdict["gates"] if g["gate"] == "quality")
    production = verdict.get("champion_quality")
    if champion and production:
        lines += [
            "",
            f"Against production (`{champion['version']}`, `{champion['sha256'][:12]}`), "
            "on the same held-out rows:",
            "",
            "| metric | candidate | production | change |",
            "|---|---|---|---|",
        ]
        for key, label in QUALITY_ROWS:
            new, old = quality[key], production[key]
            lines.append(f"| {label} | {new:.4f} | {old:.4f} | {_delta(new, old)} |")
    else:
        lines += ["", "No production model is pinned yet: nothing to compare with."]
    return "\n".join(lines)


def build_comment(
    previews: list[Preview],
    verdict: Mapping[str, Any] | None,
    plans: list[RolloutPlan],
    details_link: str = "the job summary and the `previews` artifact",
) -> str:
    """The whole comment, never over GitHub's limit."""
    head = "\n\n".join(
        [
            MARKER,
            "## What this pull request would ship",
            model_section(verdict),
            "### Rollout plan after merge\n\n"
            "Each environment in turn: a gated canary, rolled back on any failed gate.\n\n"
            + plan_table(plans),
        ]
    )
    budget = COMMENT_LIMIT - len(head) - _RESERVE
    return f"{head}\n\n{infra_section(previews, budget, details_link)}\n"


STEP_SUMMARY_LIMIT = 1_000_000  # GitHub keeps up to 1 MiB of a step's summary


def full_diffs(previews: list[Preview], limit: int = STEP_SUMMARY_LIMIT) -> str:
    """Every environment's whole diff for the job summary, within its own limit."""
    ran = [(p.environment, p.text.strip()) for p in previews if p.text is not None]
    share = limit // max(len(ran), 1) - 200
    sections = ["## Infrastructure previews, in full"]
    for environment, whole in ran:
        text, cut = trim(whole, share)
        fence = _fence(text)
        note = f"\n\n_Cut at {len(text):,} characters: see the `previews` artifact._" if cut else ""
        sections.append(f"### {environment}\n\n{fence}diff\n{text}\n{fence}{note}")
    return "\n\n".join(sections) + "\n"
