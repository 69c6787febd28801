from pathlib import Path

import pytest

from environments.declared import declarations
from environments.monitoring_policy import (
    SIGNALS,
    STACK_KEYS,
    MonitoringPolicy,
    load_monitoring,
)
from environments.rollout_policy import PolicyError


def test_every_declared_default_is_the_one_the_code_uses() -> None:
    """Pulumi.yaml's defaults for monitor* and retrain* keys are the models' own."""
    defaults = declarations().defaults
    code = MonitoringPolicy().model_dump()
    for key, path in STACK_KEYS.items():
        value = code
        for part in path:
            value = value[part]
        declared = defaults[key]
        assert value == (float(declared) if isinstance(value, float) else declared), key


def test_the_local_policy_and_each_environment_load() -> None:
    for environment in ("local", "dev", "staging", "prod"):
        policy = load_monitoring(environment)
        assert set(policy.retraining.triggers) <= set(SIGNALS)


def test_an_unknown_signal_is_refused_with_the_file_named(tmp_path: Path) -> None:
    (tmp_path / "local.yaml").write_text("monitoring:\n  retraining:\n    triggers: [drift]\n")
    with pytest.raises(PolicyError, match=r"local\.yaml(.|\n)*feature_drift"):
        load_monitoring("local", tmp_path)
