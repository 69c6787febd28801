from pathlib import Path

import pytest

from pipelines.rollout.policy import PolicyError, load_policy


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
    write(tmp_path, "Pulumi.prod.yaml", "config: {}\n")
    with pytest.raises(PolicyError, match=r"has no `cloudrun-ml-rollouts:rollout\*` keys"):
        load_policy("prod", root)
    with pytest.raises(PolicyError, match="no policy file"):
        load_policy("staging", root)
