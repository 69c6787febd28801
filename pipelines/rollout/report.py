"""The rollout report: JSON for machines, Markdown for people, a PNG timeline for both.

In GitHub Actions the Markdown is appended to the job summary ($GITHUB_STEP_SUMMARY).
"""

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from matplotlib.figure import Figure

from pipelines.rollout import shadow_report
from pipelines.rollout.shadow_report import ShadowFindings
from pipelines.rollout.state import RolloutState


@dataclass(frozen=True)
class Outcome:
    """What one user request got: when, which status (0: no answer), from which revision."""

    at: float
    status: int  # 0 when the request never got an answer
    revision: str
    latency_s: float

    @property
    def failed(self) -> bool:
        return not 200 <= self.status < 300


@dataclass(frozen=True)
class RolloutSummary:
    """The numbers people ask about first."""

    candidate: str
    outcome: str
    reason: str
    seconds_to_rollback: float | None
    user_requests: int
    failed_requests: int
    candidate_requests: int  # user requests the candidate answered (a mirrored copy is not one)
    failures: dict[str, int]  # "<status> from <revision>" -> count (status 0: no answer)

    @property
    def failed_request_ratio(self) -> float:
        return self.failed_requests / self.user_requests if self.user_requests else 0.0


def summarize(state: RolloutState, outcomes: list[Outcome]) -> RolloutSummary:
    """Outcomes are the user requests sent while this rollout ran (from the traffic generator)."""
    end = state.finished_at or max((o.at for o in outcomes), default=state.started_at)
    during = [o for o in outcomes if state.started_at <= o.at <= end]
    to_rollback = None
    # From the first request the candidate answered: a canary's, or a mirrored one's.
    shadow_start = next((d.at for d in state.decisions if d.action == "shadow_start"), None)
    first_traffic = shadow_start or state.first_canary_at
    if state.phase == "rolled_back" and first_traffic and state.back_on_stable_at:
        to_rollback = state.back_on_stable_at - first_traffic
    failures = Counter(f"{o.status} from {o.revision or 'nowhere'}" for o in during if o.failed)
    return RolloutSummary(
        state.candidate, state.phase, state.reason, to_rollback,
        len(during), sum(failures.values()),
        sum(o.revision == state.candidate for o in during), dict(failures),
    )  # fmt: skip


def _gate_value(check: dict[str, Any], gate: str, key: str) -> float:
    for result in check["gates"]:
        if result["gate"] == gate:
            return float(result["values"].get(key, float("nan")))
    return float("nan")


def plot_timeline(state: RolloutState, path: Path) -> None:
    """Candidate traffic share, error rates, p99 and score shift against time since the start."""
    t0 = state.started_at
    # The object API renders straight to a file: no pyplot state, no display backend needed.
    fig = Figure(figsize=(9, 9))
    axes = fig.subplots(4, 1, sharex=True)
    times, percents = [0.0], [0]
    for decision in state.decisions:
        if decision.traffic is not None:
            share = sum(t["percent"] for t in decision.traffic if t["revision"] == state.candidate)
            times.append(decision.at - t0)
            percents.append(share)
    times.append((state.finished_at or state.decisions[-1].at) - t0)
    percents.append(percents[-1])
    axes[0].step(times, percents, where="post", color="tab:blue")
    axes[0].set_ylabel(f"{state.candidate}\ntraffic %")
    axes[0].set_ylim(-5, 105)
    checks = [c.model_dump() for c in state.checks]
    at = [c["at"] - t0 for c in checks]
    for who, colour in (("candidate", "tab:red"), ("stable", "tab:green")):
        rates = [100 * _gate_value(c, "error_rate", f"{who}_error_rate") for c in checks]
        axes[1].plot(at, rates, marker=".", color=colour, label=who)
        p99 = [_gate_value(c, "latency", f"{who}_p99_ms") for c in checks]
        axes[2].plot(at, p99, marker=".", color=colour, label=who)
    axes[1].set_ylabel("error rate %")
    axes[2].set_ylabel("p99 ms")
    axes[3].plot(at, [_gate_value(c, "scores", "ks_distance") for c in checks], marker=".",
                 color="tab:purple", label="KS distance")  # fmt: skip
    axes[3].plot(at, [_gate_value(c, "scores", "ks_limit") for c in checks], color="grey",
                 linestyle=":", label="limit")  # fmt: skip
    axes[3].set_ylabel("score shift\n(cand. vs stable)")
    axes[3].legend(loc="upper left")
    axes[3].set_xlabel("seconds since the rollout started")
    for axis in axes[1:3]:
        axis.legend(loc="upper left")
    for decision in state.decisions:
        if decision.action in ("roll_back", "promote"):
            for axis in axes:
                axis.axvline(decision.at - t0, color="black", linestyle="--", linewidth=0.8)
    fig.suptitle(f"{state.candidate} over {state.stable}: {state.phase.replace('_', ' ')}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def markdown(
    state: RolloutState,
    summary: RolloutSummary,
    png_name: str,
    links: Mapping[str, str],
    shadow: tuple[ShadowFindings, str] | None = None,
) -> str:
    t0 = state.started_at
    lines = [
        f"## Rollout of `{state.candidate}` over `{state.stable}` ({state.environment}): "
        f"**{state.phase.replace('_', ' ')}**",
        "",
        f"- reason: {state.reason}",
    ]
    if links:
        lines.append("- " + " · ".join(f"[{name}]({url})" for name, url in links.items()))
    if summary.user_requests:  # only a simulated user (the local traffic generator) counts them
        lines.append(
            f"- user requests during the rollout: {summary.user_requests}, failed: "
            f"{summary.failed_requests} ({summary.failed_request_ratio:.2%}), answered by the "
            f"candidate: {summary.candidate_requests}"
        )
    if summary.seconds_to_rollback is not None:
        lines.append(
            "- first traffic to the candidate (mirrored or canary) to back on stable: "
            f"{summary.seconds_to_rollback:.1f} s"
        )
    lines += [
        "",
        f"![timeline]({png_name})",
        *(shadow_report.markdown(*shadow) if shadow else []),
        "",
        "| t (s) | decision | why | traffic |",
        "|---|---|---|---|",
    ]
    for d in state.decisions:
        split = ", ".join(f"{t['revision']} {t['percent']}%" for t in d.traffic or [])
        lines.append(f"| {d.at - t0:.1f} | {d.action} | {d.reason} | {split} |")
    lines += ["", "| t (s) | step | verdict | gates |", "|---|---|---|---|"]
    for c in state.checks:
        gates = "; ".join(f"{g['gate']} {g['verdict']}: {g['reason']}" for g in c.gates)
        step = f"{c.step_percent}%" if c.step_percent else "shadow"
        lines.append(f"| {c.at - t0:.1f} | {step} | {c.verdict} | {gates} |")
    return "\n".join(lines) + "\n"


def write_report(
    state: RolloutState,
    outcomes: list[Outcome],
    folder: Path,
    links: Mapping[str, str] = MappingProxyType({}),
    shadow: ShadowFindings | None = None,
) -> RolloutSummary:
    """Write `<candidate>.json`, `.md` and `.png` (and `-shadow.png` after a shadow phase) into
    `folder`; returns the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize(state, outcomes)
    stem = folder / state.candidate
    plot_timeline(state, stem.with_suffix(".png"))
    shadow_png = folder / f"{state.candidate}-shadow.png"
    if shadow is not None:
        shadow_report.plot(shadow, shadow_png)
    text = markdown(
        state, summary, stem.with_suffix(".png").name, links,
        (shadow, shadow_png.name) if shadow else None,
    )  # fmt: skip
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    record = {
        "state": state.model_dump(mode="json"),
        "summary": {**summary.__dict__, "failed_request_ratio": summary.failed_request_ratio},
        "links": dict(links),
        "shadow": shadow.__dict__ if shadow else None,
        "written_at": datetime.now(UTC).isoformat(),
    }
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2))
    if step_summary := os.environ.get("GITHUB_STEP_SUMMARY"):
        with Path(step_summary).open("a", encoding="utf-8") as handle:
            handle.write(text)
    return summary
