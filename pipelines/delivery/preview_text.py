"""What a `pulumi preview --diff` printed, summarised: changes by operation, policy violations,
and whether it failed. The text is what reviewers read, so the comment quotes it; the summary is
read from its `Resources:` and `Policies:` blocks, the stable parts of Pulumi's output (its
`--json` form leaves policy violations out)."""

import re
from dataclasses import dataclass, field

_CHANGE = re.compile(r"^\s*(?:[-+~<>]+\s*)?(\d+) to ([a-z-]+)\s*$")
_UNCHANGED = re.compile(r"(\d+) unchanged")
_BLOCK = re.compile(r"^(Resources|Policies|Diagnostics|Outputs|Duration):\s*$")
_ERROR = re.compile(r"^\s*error: ", re.MULTILINE)


@dataclass(frozen=True)
class PreviewSummary:
    """Counts by operation ("create", "update", "replace", "delete", ...), and what went wrong."""

    changes: dict[str, int] = field(default_factory=dict[str, int])
    unchanged: int = 0
    policy_lines: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def total_changes(self) -> int:
        return sum(self.changes.values())

    def headline(self) -> str:
        """One line: `2 to update, 1 to replace (24 unchanged)`, `no changes`, or the failure."""
        if self.failed:
            return f"preview failed: {self.errors[0]}"
        if not self.changes:
            return f"no changes ({self.unchanged} unchanged)"
        counts = ", ".join(f"{count} to {op}" for op, count in self.changes.items())
        return f"{counts} ({self.unchanged} unchanged)"


def _blocks(text: str) -> dict[str, list[str]]:
    """The indented lines under each `Name:` heading at the start of a line."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if heading := _BLOCK.match(line):
            current = blocks.setdefault(heading.group(1), [])
        elif current is not None and (line.startswith(" ") or not line.strip()):
            current.append(line)
        else:
            current = None
    return blocks


def parse_preview(text: str) -> PreviewSummary:
    blocks = _blocks(text)
    changes: dict[str, int] = {}
    unchanged = 0
    for line in blocks.get("Resources", []):
        if match := _CHANGE.match(line):
            changes[match.group(2)] = changes.get(match.group(2), 0) + int(match.group(1))
        elif match := _UNCHANGED.search(line):
            unchanged = int(match.group(1))
    policies = tuple(line.rstrip() for line in blocks.get("Policies", []) if line.strip())
    errors = tuple(
        line.strip().removeprefix("error: ") for line in text.splitlines() if _ERROR.match(line)
    )
    return PreviewSummary(changes, unchanged, policies, errors)
