"""An environment's platform is built from its stack file, with keyless Google credentials."""

import base64
from pathlib import Path
from typing import Any

import certifi
import google.auth
import httpx
import pytest

from environments.stack_settings import load_file
from pipelines.rollout.platform import DeployError
from pipelines.rollout.platforms.cloud import connect as connecting
from pipelines.rollout.platforms.cloud.connect import (
    cloud_run_serving,
    connect,
    kubernetes_serving,
)
from pipelines.rollout.platforms.cloud.google_auth import AccessToken, IdentityToken
from pipelines.rollout.platforms.cloudrun.serving import CloudRunServing
from pipelines.rollout.platforms.kubernetes.serving import KubernetesServing

# A real CA certificate to stand for the cluster's (any will do: the context only has to load
# it): the first of the bundle httpx trusts, so no certificate file lives in the repository.
BEGIN, END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
CA_PEM = BEGIN + Path(certifi.where()).read_bytes().split(BEGIN)[1].split(END)[0] + END + b"\n"


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
    assert isinstance(platform.serving, CloudRunServing)
    assert cloud_run_serving(settings, httpx.Client()).service.name == (
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
    serving = cloud_run_serving(load_file(environment), httpx.Client())
    tagged = "https://candidate---fraud-scorer-xyz-ew.a.run.app"
    with serving.client_for(tagged, "https://fraud-scorer-xyz-ew.a.run.app") as client:
        assert str(client.base_url).rstrip("/") == tagged
        assert isinstance(client.auth, IdentityToken) == token
        if isinstance(client.auth, IdentityToken):
            assert client.auth.audience == "https://fraud-scorer-xyz-ew.a.run.app"


def on_kubernetes(monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any], **changes: str) -> None:
    settings = load_file("staging").model_copy(update={"platform": "kubernetes", **changes})
    monkeypatch.setattr(connecting, "load_file", lambda _: settings)
    monkeypatch.setattr(connecting.PulumiStack, "outputs", lambda _: outputs)


def test_on_kubernetes_the_cluster_comes_from_the_stacks_outputs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca = base64.b64encode(CA_PEM).decode()
    on_kubernetes(
        monkeypatch, {"cluster_endpoint": "https://34.1.2.3", "cluster_ca_certificate": ca}
    )
    platform, _ = connect("staging")
    assert isinstance(platform.serving, KubernetesServing)
    outputs = {"cluster_endpoint": "https://34.1.2.3", "cluster_ca_certificate": ca}
    serving = kubernetes_serving(platform.settings, outputs, AccessToken())
    assert (serving.cluster.endpoint, serving.cluster.namespace) == (
        "https://34.1.2.3",
        "fraud-scorer",
    )
    assert isinstance(serving.cluster.auth, AccessToken), "the deployer's own Google token"
    assert serving.public is False
    assert str(platform.windows.http.base_url).startswith("https://monitoring.googleapis.com/")
    assert platform.windows.where == ',cluster="fraud-scorer-staging"'


def test_any_prometheus_may_be_read_instead_of_googles(monkeypatch: pytest.MonkeyPatch) -> None:
    ca = base64.b64encode(CA_PEM).decode()
    on_kubernetes(
        monkeypatch,
        {"cluster_endpoint": "https://34.1.2.3", "cluster_ca_certificate": ca},
        kubernetes_prometheus_url="https://prometheus.example.internal",
    )
    platform, _ = connect("staging")
    assert str(platform.windows.http.base_url) == "https://prometheus.example.internal"
    assert platform.windows.http.auth is None, "Google's token goes to Google only"
    assert platform.windows.where == "", "a team's own Prometheus labels as it likes"


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({}, "has no cluster_endpoint output"),
        (
            {"cluster_endpoint": "https://x", "cluster_ca_certificate": "not base64!"},
            "not a base64",
        ),
    ],
)
def test_a_stack_without_a_usable_cluster_is_explained(
    monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any], message: str
) -> None:
    on_kubernetes(monkeypatch, outputs)
    with pytest.raises(DeployError, match=message):
        connect("staging")
