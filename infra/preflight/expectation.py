"""What the bootstrap stack trusts and a deploy needs, and the shape of every preflight finding."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
import yaml

from environments.stack_settings import load_file

BOOTSTRAP_STACK = Path(__file__).resolve().parents[1] / "bootstrap" / "Pulumi.main.yaml"
ENVIRONMENTS_DIR = Path(__file__).resolve().parents[2] / "environments"
BOOTSTRAP_PROJECT = "cloudrun-ml-rollouts-bootstrap"
# Deployers change an environment (prod's only through the prod pool); previewers only read it.
Role = Literal["deployer", "previewer"]


@dataclass(frozen=True)
class Finding:
    """One link of the chain: whether it held, and what to do if not."""

    ok: bool
    check: str
    detail: str


@dataclass(frozen=True)
class Expectation:
    """What the bootstrap stack trusts, and what this environment's deploy needs."""

    environment: str
    repository: str
    prod_ref: str
    provider: str
    service_account: str
    project: str
    service_name: str = "fraud-scorer"
    platform: str = "cloudrun"  # the environment file's; a Kubernetes deployer holds one role more
    role: Role = "deployer"
    backend_url: str = ""

    @property
    def prod_pool(self) -> bool:
        """Whether the identity is trusted only through the prod pool (prod's deployer)."""
        return self.environment == "prod" and self.role == "deployer"

    @property
    def pool(self) -> str:
        """The provider's pool: `projects/N/locations/global/workloadIdentityPools/ID`."""
        return self.provider.split("/providers/")[0]


def error_text(response: httpx.Response) -> str:
    """Google's error message, whichever of its two error shapes the API used."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message", error))  # pyright: ignore[reportUnknownMemberType]
    return str(body.get("error_description") or error or body)


def expectation_for(
    environment: str,
    environ: Mapping[str, str],
    bootstrap: Path = BOOTSTRAP_STACK,
    role: Role = "deployer",
) -> Expectation:
    """What to expect, from the bootstrap stack file and the variables the bootstrap printed."""
    config = yaml.safe_load(bootstrap.read_text(encoding="utf-8"))["config"]
    key = BOOTSTRAP_PROJECT
    projects = dict(entry.split("=", 1) for entry in config[f"{key}:environmentProjects"])
    suffix = "_PROD" if environment == "prod" and role == "deployer" else ""
    stack = load_file(environment, ENVIRONMENTS_DIR)
    return Expectation(
        environment=environment,
        repository=config[f"{key}:githubRepository"],
        prod_ref=config.get(f"{key}:prodRef", "refs/heads/main"),
        provider=environ.get(f"GCP_WORKLOAD_IDENTITY_PROVIDER{suffix}", ""),
        service_account=environ.get(f"GCP_{role.upper()}_{environment.upper()}", ""),
        project=projects[environment],
        service_name=stack.service_name,
        platform=stack.platform,
        role=role,
        backend_url=environ.get(f"PULUMI_BACKEND_URL_{environment.upper()}", ""),
    )
