"""An environment's platform is built from its stack file, with keyless Google credentials."""

import google.auth
import pytest

from environments.stack_settings import load_file
from pipelines.rollout.platforms.cloudrun.connect import connect
from pipelines.rollout.platforms.cloudrun.google_auth import AccessToken, IdentityToken


class Credentials:
    valid, token = True, "token"


@pytest.fixture(autouse=True)
def keyless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(google.auth, "default", lambda **_: (Credentials(), "my-ml-dev"))


@pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
def test_everything_is_named_by_the_environment_file(environment: str) -> None:
    settings = load_file(environment)
    platform, store = connect(environment)
    assert platform.settings == settings
    assert platform.stack.environment == environment
    assert platform.service.name == (
        f"projects/{settings.project}/locations/{settings.region}/services/{settings.service_name}"
    )
    assert str(platform.windows.http.base_url) == (
        f"https://monitoring.googleapis.com/v1/projects/{settings.project}/location/global/"
        "prometheus/"
    )
    assert isinstance(platform.windows.http.auth, AccessToken)
    assert store.url == (
        f"gs://{settings.project}-{environment}-pulumi-state/rollouts/fraud-scorer/"
        "rollout-state.json"
    )


@pytest.mark.parametrize(("environment", "token"), [("dev", False), ("prod", True)])
def test_only_a_private_service_is_called_with_an_id_token_for_its_own_url(
    environment: str, token: bool
) -> None:
    platform, _ = connect(environment)
    tagged = "https://candidate---fraud-scorer-xyz-ew.a.run.app"
    with platform.client_for(tagged, "https://fraud-scorer-xyz-ew.a.run.app") as client:
        assert str(client.base_url).rstrip("/") == tagged
        assert isinstance(client.auth, IdentityToken) == token
        if isinstance(client.auth, IdentityToken):
            assert client.auth.audience == "https://fraud-scorer-xyz-ew.a.run.app"
