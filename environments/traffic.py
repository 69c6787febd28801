"""Traffic splits: which revision gets what percentage, and which carries the `candidate` tag.

The states of a release are splits: stable only; candidate dark-launched at 0% with its tag; canary
at p%; promoted (candidate at 100%); rolled back (stable 100%, candidate 0% and still tagged).
"""

from dataclasses import dataclass

CANDIDATE_TAG = "candidate"


class TrafficError(ValueError):
    """A split that does not sum to 100, repeats a revision, or has a percent outside 0-100."""


@dataclass(frozen=True)
class Target:
    """One revision's share of traffic, and its tag (a stable URL of its own) if any."""

    revision: str
    percent: int
    tag: str | None = None


@dataclass(frozen=True, eq=False)
class TrafficSplit:
    """A validated list of targets that sums to 100. Two splits are equal when they send the same
    share to the same revisions with the same tags, in whatever order they list them."""

    targets: tuple[Target, ...]

    def _key(self) -> tuple[tuple[str, int, str], ...]:
        return tuple(sorted((t.revision, t.percent, t.tag or "") for t in self.targets))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrafficSplit) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __post_init__(self) -> None:
        names = [t.revision for t in self.targets]
        problems = []
        if len(set(names)) != len(names):
            problems.append(f"a revision appears twice: {names}")
        if any(not 0 <= t.percent <= 100 for t in self.targets):
            problems.append("every percent must be between 0 and 100")
        if sum(t.percent for t in self.targets) != 100:
            problems.append(f"percents sum to {sum(t.percent for t in self.targets)}, not 100")
        tags = [t.tag for t in self.targets if t.tag]
        if len(set(tags)) != len(tags):
            problems.append(f"a tag appears twice: {tags}")
        if problems:
            raise TrafficError("invalid traffic split: " + "; ".join(problems))

    def percent(self, revision: str) -> int:
        return sum(t.percent for t in self.targets if t.revision == revision)

    def tagged(self, tag: str) -> str | None:
        return next((t.revision for t in self.targets if t.tag == tag), None)

    def as_dict(self) -> list[dict[str, object]]:
        return [{"revision": t.revision, "percent": t.percent, "tag": t.tag} for t in self.targets]

    @classmethod
    def from_dict(cls, targets: list[dict[str, object]]) -> "TrafficSplit":
        return cls(
            tuple(
                Target(
                    str(t["revision"]),
                    int(str(t["percent"])),
                    str(t["tag"]) if t.get("tag") else None,
                )
                for t in targets
            )
        )


def stable_only(stable: str) -> TrafficSplit:
    return TrafficSplit((Target(stable, 100),))


def canary(stable: str, candidate: str, percent: int) -> TrafficSplit:
    """Candidate at `percent` with its tag; 0 is the dark launch, and the rolled-back state."""
    return TrafficSplit((Target(stable, 100 - percent), Target(candidate, percent, CANDIDATE_TAG)))


def promoted(candidate: str) -> TrafficSplit:
    return stable_only(candidate)


def of_release(stable: str, candidate: str | None, candidate_percent: int) -> TrafficSplit:
    """The split a recorded release declares: what the program applies and the controller
    expects to find live."""
    if candidate is None:
        return stable_only(stable)
    return canary(stable, candidate, candidate_percent)
