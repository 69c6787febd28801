"""The bootstrap stack's settings: the only reader of its pulumi.Config."""

import re
from pathlib import Path
from typing import Annotated, Any

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from environments.stack_settings import ENVIRONMENTS, REGIONS, ConfigError, StackSettings, load_file

ENVIRONMENTS_DIR = Path(__file__).resolve().parents[2] / "environments"
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


class BootstrapSettings(BaseModel):
    """Where shared things live, who may deploy, and which project each environment uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    project: Annotated[str, Field(pattern=PROJECT_ID.pattern)]
    region: str
    github_repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")]
    environment_projects: dict[str, str]
    prod_ref: Annotated[str, Field(pattern=r"^refs/(heads|tags)/\S+$")]
    registry_name: Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in REGIONS:
            raise ValueError(f"{region!r} is not a Cloud Run region (e.g. europe-west1)")
        return region

    @field_validator("environment_projects", mode="before")
    @classmethod
    def _pairs(cls, entries: Any) -> dict[str, str]:
        if isinstance(entries, dict):
            return entries  # pyright: ignore[reportUnknownVariableType]
        pairs = dict(str(entry).split("=", 1) for entry in entries if "=" in str(entry))
        if sorted(pairs) != sorted(ENVIRONMENTS) or len(pairs) != len(entries):
            raise ValueError(f"give exactly dev=..., staging=... and prod=..., got {entries}")
        bad = [project for project in pairs.values() if not PROJECT_ID.match(project)]
        if bad:
            raise ValueError(f"{bad} are not GCP project ids")
        return pairs

    @model_validator(mode="after")
    def _prod_apart(self) -> "BootstrapSettings":
        prod = self.environment_projects["prod"]
        shared = [env for env in ("dev", "staging") if self.environment_projects[env] == prod]
        if shared:
            raise ValueError(
                f"prod shares project {prod} with {', '.join(shared)}: a deployer's roles are "
                "project-wide, so that deployer could rewrite prod's state and resources; give "
                "prod a project of its own (dev and staging may share one)"
            )
        return self

    @property
    def all_projects(self) -> list[str]:
        """Every project the bootstrap touches, each once."""
        return sorted({self.project, *self.environment_projects.values()})


def load() -> BootstrapSettings:
    config, gcp = pulumi.Config(), pulumi.Config("gcp")
    try:
        return BootstrapSettings(
            project=gcp.require("project"),
            region=gcp.require("region"),
            github_repository=config.require("githubRepository"),
            environment_projects=config.require_object("environmentProjects"),
            prod_ref=config.get("prodRef") or "refs/heads/main",
            registry_name=config.get("registryName") or "services",
        )
    except ValidationError as error:
        problems = "\n".join(
            f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"invalid bootstrap configuration:\n{problems}") from None


def environment_stacks(
    settings: BootstrapSettings, root: Path = ENVIRONMENTS_DIR
) -> dict[str, StackSettings]:
    """Each environment's stack settings, which must name the project the bootstrap was given."""
    stacks = {environment: load_file(environment, root) for environment in ENVIRONMENTS}
    wrong = [
        f"  environments/Pulumi.{env}.yaml says gcp:project {stack.project}, "
        f"environmentProjects says {settings.environment_projects[env]}"
        for env, stack in stacks.items()
        if stack.project != settings.environment_projects[env]
    ]
    if wrong:
        raise ConfigError("the bootstrap and the environments disagree:\n" + "\n".join(wrong))
    return stacks
