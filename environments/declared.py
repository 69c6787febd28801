"""The keys Pulumi.yaml declares for the project's stacks: the one place their types and
defaults are written.

Pulumi applies a declared default when a stack file leaves a key out. Everything that reads a
stack file directly (the rollout controller, the policy pack, the bootstrap, the tests) gets the
same defaults from here, so no reader keeps defaults of its own.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_FILE = Path(__file__).resolve().parents[1] / "Pulumi.yaml"
# Pulumi's project config declares only these types, not objects (pulumi's project.json schema).
PULUMI_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool, "array": list}


class ContractError(ValueError):
    """A file of the environment contract is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Declarations:
    """The project's name (the prefix of its keys in stack files) and each key's declaration."""

    project: str
    types: dict[str, str]
    defaults: dict[str, Any]
    descriptions: dict[str, str]

    @property
    def list_keys(self) -> frozenset[str]:
        return frozenset(key for key, kind in self.types.items() if kind == "array")


@cache
def declarations(path: Path = PROJECT_FILE) -> Declarations:
    """Pulumi.yaml's `name` and `config` declarations, read once."""
    try:
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        config: dict[str, dict[str, Any]] = document["config"]
        return Declarations(
            project=str(document["name"]),
            types={key: str(spec["type"]) for key, spec in config.items()},
            defaults={key: spec.get("default") for key, spec in config.items()},
            descriptions={key: str(spec.get("description", "")) for key, spec in config.items()},
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise ContractError(f"{path} does not declare the project's config: {error!r}") from None
