import pytest

from environments.stack_settings import ENVIRONMENTS, load_file
from infra.revision import build_spec
from service.settings import Settings


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_container_environment_is_one_the_service_starts_with(environment: str) -> None:
    """The program does not import the service; this contract test stands in for it."""
    spec = build_spec(load_file(environment), "0123456789abcdef0123456789abcdef01234567")
    settings = Settings.model_validate(spec.env)
    assert environment == settings.ENVIRONMENT
    assert spec.env["GIT_SHA"] == settings.GIT_SHA
    assert spec.service_account.startswith(f"fraud-scorer-{environment[:4]}-run@")


def test_differences_name_the_fields_a_new_revision_would_change() -> None:
    staging = load_file("staging")
    first = build_spec(staging, "a" * 40)
    louder = build_spec(staging.model_copy(update={"log_level": "DEBUG"}), "a" * 40)
    assert first.differences(louder) == ["env"]
    assert first.differences(build_spec(staging, "b" * 40)) == ["env", "labels"]
