"""The single reader of `environments/Pulumi.<env>.yaml`: what `pulumi up` of that stack sees.

Values come back without the project prefix, with Pulumi.yaml's declared defaults for the keys a
file leaves out, exactly as the Pulumi engine hands them to the program.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from environments.declared import ContractError, declarations

ENVIRONMENTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class StackFile:
    """One environment's stack file, read."""

    environment: str
    path: Path
    project: Any  # gcp:project, validated by the settings that use it
    region: Any  # gcp:region
    values: dict[str, Any]  # project keys without their prefix, defaults filled in
    unknown: tuple[str, ...]  # project keys Pulumi.yaml does not declare


def stack_path(environment: str, root: Path = ENVIRONMENTS_DIR) -> Path:
    return root / f"Pulumi.{environment}.yaml"


def read_stack_file(environment: str, root: Path = ENVIRONMENTS_DIR) -> StackFile:
    path = stack_path(environment, root)
    if not path.is_file():
        raise ContractError(f"no stack file {path} for environment {environment!r}")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ContractError(f"{path} is not valid YAML: {error}") from None
    config: dict[str, Any] = (document.get("config") or {}) if isinstance(document, dict) else {}
    declared = declarations()
    prefix = f"{declared.project}:"
    given = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    return StackFile(
        environment=environment,
        path=path,
        project=config.get("gcp:project"),
        region=config.get("gcp:region"),
        values=declared.defaults | given,
        unknown=tuple(sorted(set(given) - set(declared.types))),
    )
