"""The verdict of an interleaving experiment: which model's placements reviewers confirm.

Per ranking with feedback, the team that placed more confirmed frauds wins that query (equal
credit is a tie). Under no difference a decided query is a fair coin, so the challenger's share
of decided queries gets a two-sided sign test; a winner is named only below alpha. The test is
fixed-horizon: decide once, at the number of queries planned, not at every look.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from scipy import stats

from environments.experiment import ExperimentPlan
from pipelines.atomic_file import write_json_atomic, write_text_atomic
from pipelines.experiments.analysis import EXIT_CODES, Decision
from pipelines.experiments.events import CREDITS, EventStore, fetch


@dataclass(frozen=True)
class InterleavingResult:
    """Wins per team over the rankings that got feedback, and the sign test on them."""

    name: str
    alpha: float
    queries: int
    champion_wins: int
    challenger_wins: int
    ties: int
    p_value: float
    decision: Decision
    reason: str

    @property
    def preference(self) -> float:
        """(challenger wins - champion wins) / queries: the field's Δ, in [-1, 1]."""
        return (self.challenger_wins - self.champion_wins) / self.queries if self.queries else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]


def analyze_interleaving(store: EventStore, plan: ExperimentPlan) -> InterleavingResult:
    rankings = fetch(store, CREDITS, plan.name)
    champion = sum(1 for c in rankings if int(c["champion"]) > int(c["challenger"]))
    challenger = sum(1 for c in rankings if int(c["challenger"]) > int(c["champion"]))
    ties = len(rankings) - champion - challenger
    decided = champion + challenger
    p = float(stats.binomtest(challenger, decided, 0.5).pvalue) if decided else 1.0
    tally = (
        f"challenger won {challenger}, champion {champion}, {ties} ties of {len(rankings)} rankings"
    )
    decision: Decision
    if p <= plan.alpha:
        decision = "win" if challenger > champion else "loss"
        reason = f"{tally} (sign test p={p:.2g} ≤ {plan.alpha})"
    else:
        decision, reason = "no decision", f"{tally}: no significant preference (p={p:.2g})"
    return InterleavingResult(plan.name, plan.alpha, len(rankings), champion, challenger, ties,
                              p, decision, reason)  # fmt: skip


def write_interleaving_report(result: InterleavingResult, folder: Path) -> Path:
    """`<folder>/<name>.{md,json,png}`; returns the Markdown's path."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / result.name
    fig = Figure(figsize=(6, 3))
    axis = fig.add_subplot()
    axis.barh(["champion wins", "ties", "challenger wins"],
              [result.champion_wins, result.ties, result.challenger_wins],
              color=["tab:blue", "tab:grey", "tab:orange"])  # fmt: skip
    axis.set_xlabel("rankings with feedback")
    fig.suptitle(f"{result.name}: {result.decision}")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=90)
    document: dict[str, Any] = asdict(result) | {"preference": result.preference}
    write_json_atomic(stem.with_suffix(".json"), document)
    write_text_atomic(stem.with_suffix(".md"), "\n".join([
        f"# Interleaving {result.name}: {result.decision}", "", result.reason, "",
        f"- preference for the challenger: {result.preference:+.3f} "
        "((challenger wins - champion wins) / rankings)",
        f"- sign test over the {result.champion_wins + result.challenger_wins} decided rankings: "
        f"p={result.p_value:.3g}, alpha {result.alpha} (fixed horizon: read it once, at the "
        "planned number of rankings)",
        "", f"![wins]({stem.with_suffix('.png').name})", "",
    ]))  # fmt: skip
    return stem.with_suffix(".md")
