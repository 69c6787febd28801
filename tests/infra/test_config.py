from pathlib import Path
from typing import Any

import pytest
import yaml

from environments.monitoring_policy import load_monitoring
from environments.rollout_policy import load_policy
from environments.stack_settings import (
    ALL_KEYS,
    ENVIRONMENTS,
    ConfigError,
    StackSettings,
    list_keys,
    load_file,
)
from infra.config import load
from tests.infra.mock_stack import PULUMI_PROJECT, run_program, stack_config

ENVIRONMENTS_DIR = Path("environments")


def stack_file(environment: str) -> dict[str, Any]:
    return yaml.safe_load((ENVIRONMENTS_DIR / f"Pulumi.{environment}.yaml").read_text())["config"]


def declared() -> dict[str, Any]:
    return yaml.safe_load(Path("Pulumi.yaml").read_text(encoding="utf-8"))["config"]


def test_the_three_environments_set_the_same_keys() -> None:
    """Configuration drift between environments is a bug unless declared."""
    keys = {environment: set(stack_file(environment)) for environment in ENVIRONMENTS}
    assert keys["dev"] == keys["staging"] == keys["prod"]


def test_every_key_is_declared_read_and_documented() -> None:
    declarations = declared()
    assert set(declarations) == set(ALL_KEYS), "Pulumi.yaml declares exactly what the program reads"
    assert {k for k in stack_file("prod") if k.startswith(f"{PULUMI_PROJECT}:")} == {
        f"{PULUMI_PROJECT}:{key}" for key in ALL_KEYS
    }
    for key, declaration in declarations.items():
        assert declaration["description"], key
        assert "default" in declaration, key
        assert (declaration["type"] == "array") == (key in list_keys()), key


def test_the_declared_defaults_are_themselves_valid() -> None:
    defaults = {key: declaration["default"] for key, declaration in declared().items()}
    defaults["registry"] = "europe-west1-docker.pkg.dev/my-ml-shared/services"
    settings = StackSettings.model_validate(
        {
            key: value
            for key, value in defaults.items()
            if not key.startswith(("rollout", "gate", "slo", "monitor", "retrain"))
        }
        | {"environment": "dev", "project": "my-ml-dev", "region": "europe-west1"}
        | {"rollout": load_policy("staging"), "monitoring": load_monitoring("staging")}
    )
    assert settings.concurrency == defaults["concurrency"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_each_environment_file_is_valid_and_read_the_same_way_by_pulumi(environment: str) -> None:
    from_file = load_file(environment)
    config = stack_config(ENVIRONMENTS_DIR / f"Pulumi.{environment}.yaml")
    run = run_program(lambda: {"settings": load().model_dump_json()}, environment, config)
    assert run.outputs["settings"] == from_file.model_dump_json()
    assert from_file.rollout == load_policy(environment), "the controller reads the same policy"
    assert from_file.monitoring == load_monitoring(environment), "and monitoring the same"


def test_prod_is_authenticated_warm_and_protected() -> None:
    prod = load_file("prod")
    assert not prod.public
    assert prod.min_instances >= 1
    assert prod.deletion_protection
    assert prod.alert_emails


def write_variant(tmp_path: Path, **changes: Any) -> Path:
    config = stack_file("staging")
    for key, value in changes.items():
        config[key if ":" in key else f"{PULUMI_PROJECT}:{key}"] = value
    (tmp_path / "Pulumi.staging.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gcp:region": "europe-west99"}, "gcp:region: .*europe-west99.*not a Cloud Run region"),
        ({"rolloutSteps": [50, 10]}, "rolloutSteps: .*strictly ascending"),
        ({"rolloutSteps": [10, 150]}, "rolloutSteps: .*between 1 and 99"),
        ({"sloMaxErrorRate": "1.5"}, "sloMaxErrorRate: "),
        ({"minInstances": 20, "maxInstances": 5}, "minInstances \\(20\\) exceeds maxInstances"),
        ({"labels": ["Team=ML"]}, "labels.*key=value in lowercase"),
        ({"secretEnv": ["api_key=my-secret"]}, "ENV_NAME=secret-id"),
        ({"jobImage": "trainer:latest"}, "jobImage.*by digest"),
        (
            {"metricsCollectorImage": "docker.io/otel/opentelemetry-collector:latest"},
            "metricsCollectorImage .* must be a release of .*cloud-run-gmp-sidecar",
        ),
        ({"cpu": "3"}, "cpu"),
        ({"servicePort": 8080}, "unknown keys \\['servicePort'\\]"),
        ({"gcp:project": "X"}, "gcp:project: "),
    ],
)
def test_bad_values_are_named_with_the_fix(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_file("staging", write_variant(tmp_path, **changes))
    assert "Pulumi.staging.yaml" in str(raised.value)


def test_a_missing_stack_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no stack file"):
        load_file("prod", tmp_path)


PULUMI_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "array": list,
}


def test_values_and_defaults_have_their_declared_types() -> None:
    """What Pulumi's project-config validation checks: a quoted decimal is a string."""
    declarations = declared()
    assert {d["type"] for d in declarations.values()} <= set(PULUMI_TYPES)
    for key, declaration in declarations.items():
        expected = PULUMI_TYPES[declaration["type"]]
        assert isinstance(declaration["default"], expected), f"default of {key}"
        if declaration["type"] == "integer":
            assert not isinstance(declaration["default"], bool), key
        if declaration["type"] == "array":
            item_type = PULUMI_TYPES[declaration["items"]["type"]]
            assert all(isinstance(item, item_type) for item in declaration["default"]), key
        for environment in ENVIRONMENTS:
            value = stack_file(environment)[f"{PULUMI_PROJECT}:{key}"]
            assert isinstance(value, expected), f"{key} in Pulumi.{environment}.yaml"
