from pathlib import Path
from typing import Any

import pytest

from environments.declared import declarations
from environments.rollout_policy import (
    STACK_KEYS,
    Gates,
    PolicyError,
    RolloutPolicy,
    ShadowPhase,
    load_policy,
)


def test_the_shipped_local_policy_loads() -> None:
    policy = load_policy("local")
    assert policy.steps == sorted(policy.steps)
    assert 0 < policy.gates.error_rate.false_alarm_rate < 0.5


TIMING = "  bake_seconds: 1\n  check_interval_seconds: 1\n  min_requests: 1\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


def test_a_pulumi_stack_file_is_read_from_its_flat_project_keys(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        "Pulumi.dev.yaml",
        """
config:
  gcp:project: my-project
  cloudrun-ml-rollouts:serviceName: fraud-scorer
  cloudrun-ml-rollouts:rolloutSteps: [10, 50]
  cloudrun-ml-rollouts:rolloutBakeSeconds: 300
  cloudrun-ml-rollouts:rolloutCheckIntervalSeconds: 30
  cloudrun-ml-rollouts:rolloutMinRequests: 200
  cloudrun-ml-rollouts:sloMaxErrorRate: "0.005"
""",
    )
    policy = load_policy("dev", root)
    assert (policy.steps, policy.bake_seconds) == ([10, 50], 300)
    assert policy.gates.error_rate.max_error_rate == 0.005


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("[50, 10]", "strictly ascending"),
        ("[0, 50]", "between 1 and 99"),
        ("[10, 100]", "between 1 and 99"),
        ("[]", "at least 1"),
    ],
)
def test_bad_steps_are_explained(tmp_path: Path, steps: str, message: str) -> None:
    root = write(
        tmp_path,
        "local.yaml",
        f"rollout:\n  steps: {steps}\n{TIMING}",
    )
    with pytest.raises(PolicyError, match=message):
        load_policy("local", root)


def test_unknown_keys_and_missing_sections_are_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        "local.yaml",
        f"rollout:\n  steps: [10]\n{TIMING}  bake_secs: 5\n",
    )
    with pytest.raises(PolicyError, match="bake_secs"):
        load_policy("local", root)
    with pytest.raises(PolicyError, match="no stack file"):
        load_policy("staging", root)


def test_a_stack_file_without_rollout_keys_gets_the_declared_defaults(tmp_path: Path) -> None:
    """As `pulumi up` would: Pulumi.yaml's defaults fill in what a stack file leaves out."""
    root = write(tmp_path, "Pulumi.prod.yaml", "config: {}\n")
    defaults = declarations().defaults
    policy = load_policy("prod", root)
    assert policy.steps == defaults["rolloutSteps"]
    assert policy.gates.latency.max_ratio == float(defaults["gateLatencyMaxRatio"])


def test_every_declared_default_is_the_one_the_code_uses() -> None:
    """The policy models' own defaults (used by local.yaml and by code) match Pulumi.yaml's."""
    defaults = declarations().defaults
    code = RolloutPolicy.model_construct().model_dump()
    code["gates"] = Gates().model_dump()
    code["shadow"] = ShadowPhase().model_dump()
    compared = 0
    for key, path in STACK_KEYS.items():
        section: Any = code
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if section is None:
            continue  # no default in code: the value must be given (steps, timings)
        declared = defaults[key]
        assert section == (float(declared) if isinstance(section, float) else declared), key
        compared += 1
    assert compared >= 10
