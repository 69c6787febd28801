"""Every traffic change on Cloud Run is a Pulumi transition: `pulumi up` with RELEASE_* inputs.

Pulumi stays the only owner of revisions and traffic (no gcloud side channel, no Admin API
write), so infrastructure as code and the rollout never fight. The CLI runs from the repository
root with the policy pack, as `make up` does: the Automation API's LocalWorkspace ignores
`stackConfigDir` (https://github.com/pulumi/pulumi/issues/10305).
"""

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.release import Action
from pipelines.rollout.platform import DeployError

REPOSITORY_ROOT = Path(__file__).resolve().parents[4]
# A transition replaces at most one revision and moves traffic: minutes, not hours.
UP_TIMEOUT_S = 20 * 60
STALE_LOCK_HINT = (
    "\nA `pulumi up` that was killed leaves its lock behind (the message above names the lock "
    "object). If no other job is deploying this stack, remove it with `pulumi cancel --stack "
    "<environment>` and run the rollout again: it resumes from its record."
)


@dataclass(frozen=True)
class PulumiStack:
    """One environment's stack, driven through the Pulumi CLI."""

    environment: str
    root: Path = REPOSITORY_ROOT
    executable: str = "pulumi"
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def _run(self, args: list[str], env: Mapping[str, str], timeout: float) -> str:
        command = [self.executable, *args, "--stack", self.environment, "--non-interactive"]
        try:
            done = subprocess.run(  # noqa: S603  # our own argument list, no shell
                command, cwd=self.root, env=dict(env), capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        except FileNotFoundError as error:
            raise DeployError(
                f"the Pulumi CLI ({self.executable}) is not on PATH: install it "
                "(https://www.pulumi.com/docs/install/)"
            ) from error
        except subprocess.TimeoutExpired as error:
            raise DeployError(f"`pulumi {args[0]}` did not finish in {timeout:.0f} s") from error
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            hint = STALE_LOCK_HINT if "currently locked" in tail else ""
            raise DeployError(
                f"`pulumi {' '.join(args)}` failed ({done.returncode}):\n{tail}{hint}"
            )
        return done.stdout

    def transition(  # pylint: disable=too-many-arguments
        self,
        action: Action,
        *,
        image: str | None = None,
        git_sha: str | None = None,
        percent: int | None = None,
        force: bool = False,
        faults: Mapping[str, str] | None = None,
    ) -> None:
        """Apply one release transition; the program refuses one that does not fit, whole.
        `faults` are a drill's (FAULT_* settings of the new revision)."""
        release = {
            "RELEASE_ACTION": action,
            "RELEASE_IMAGE": image or "",
            "RELEASE_GIT_SHA": git_sha or "",
            "RELEASE_PERCENT": "" if percent is None else str(percent),
            "RELEASE_FORCE": "true" if force else "",
            "RELEASE_DRILL_FAULTS": ",".join(f"{k}={v}" for k, v in sorted((faults or {}).items())),
        }
        self._up({k: v for k, v in release.items() if v})

    def reconcile(self) -> None:
        """A plain `pulumi up`: put back exactly what the stack recorded (no transition)."""
        self._up({})

    def _up(self, release: Mapping[str, str]) -> None:
        env = {k: v for k, v in self.environ.items() if not k.startswith("RELEASE_")} | dict(
            release
        )
        policy_pack = str(self.root / "infra" / "policy")
        self._run(["up", "--yes", "--policy-pack", policy_pack], env, UP_TIMEOUT_S)

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs (the recorded `release`, URLs, identities)."""
        text = self._run(["stack", "output", "--json"], self.environ, 120)
        try:
            outputs = json.loads(text or "{}")
        except json.JSONDecodeError as error:
            raise DeployError(
                f"`pulumi stack output --json` printed no JSON: {text[:200]}"
            ) from error
        if not isinstance(outputs, dict):
            raise DeployError(f"`pulumi stack output --json` printed {type(outputs).__name__}")
        return outputs  # pyright: ignore[reportUnknownVariableType]
