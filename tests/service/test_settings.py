from pathlib import Path

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


def test_secrets_mounted_as_files_are_read_from_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """GKE's Secret Manager add-on mounts each secret as a file named after its setting."""
    (tmp_path / "USER_HASH_KEY").write_text("k" * 32 + "\n", encoding="utf-8")
    (tmp_path / "PORT").write_text("9191", encoding="utf-8")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    settings = Settings()
    assert settings.user_hash_key == b"k" * 32, "the mounted file's trailing newline is not key"
    assert settings.PORT == 9191
    monkeypatch.setenv("PORT", "9292")
    assert Settings().PORT == 9292, "the environment wins where both say"
    monkeypatch.delenv("SECRETS_DIR")
    assert Settings().USER_HASH_KEY is None
