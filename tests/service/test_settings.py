import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_development_defaults_are_valid() -> None:
    assert Settings().ENVIRONMENT == "development"


def test_a_deployed_revision_must_name_its_commit() -> None:
    with pytest.raises(ValidationError, match="GIT_SHA must be set when ENVIRONMENT=prod"):
        Settings(ENVIRONMENT="prod")
    assert Settings(ENVIRONMENT="prod", GIT_SHA="abc123").GIT_SHA == "abc123"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9090")
    monkeypatch.setenv("BATCH_MAX_INSTANCES", "7")
    settings = Settings()
    assert (settings.PORT, settings.BATCH_MAX_INSTANCES) == (9090, 7)


def test_an_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "70000")
    with pytest.raises(ValidationError, match="PORT"):
        Settings()
