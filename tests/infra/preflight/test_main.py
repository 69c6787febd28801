from pathlib import Path

import httpx
import pytest

from infra.preflight.__main__ import main, run
from infra.preflight.bindings import expected_condition
from infra.preflight.expectation import expectation_for

PROVIDER = "projects/1/locations/global/workloadIdentityPools/github/providers/github-oidc"
VARIABLES = {
    "GCP_WORKLOAD_IDENTITY_PROVIDER": PROVIDER,
    "GCP_DEPLOYER_DEV": "deploy-dev@p.iam.gserviceaccount.com",
}


def test_the_expectation_comes_from_the_bootstrap_stack_and_its_variables() -> None:
    expected = expectation_for("dev", VARIABLES, Path("infra/bootstrap/Pulumi.main.yaml"))
    assert (expected.repository, expected.project, expected.provider) == (
        "my-org/cloudrun-ml-rollouts",
        "my-ml-dev",
        PROVIDER,
    )
    assert expected.pool == "projects/1/locations/global/workloadIdentityPools/github"
    assert expectation_for("prod", {}).provider == "", "prod reads its own provider variable"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "GCP_DEPLOYER_<ENV>"),
        (
            VARIABLES,
            "GOOGLE_OAUTH_ACCESS_TOKEN=$(gcloud auth print-access-token) make preflight ENV=dev",
        ),
    ],
)
def test_without_anything_to_check_with_it_says_what_to_set(
    environ: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("GITHUB_ACTIONS", "GOOGLE_OAUTH_ACCESS_TOKEN", *VARIABLES):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["--environment", "dev"]) == 2
    assert message in capsys.readouterr().err


def test_a_github_job_without_the_id_token_permission_fails_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    for name, value in (VARIABLES | {"GITHUB_ACTIONS": "true"}).items():
        monkeypatch.setenv(name, value)
    assert main(["--environment", "dev"]) == 1
    assert "FAIL GitHub OIDC token: no OIDC token" in capsys.readouterr().out


def test_a_workstation_check_uses_the_given_credentials() -> None:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        if request.method == "GET":
            expected = expectation_for("dev", VARIABLES)
            return httpx.Response(
                200, json={"state": "ACTIVE", "attributeCondition": expected_condition(expected)}
            )
        return httpx.Response(200, json={"bindings": []})

    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        findings = run("dev", VARIABLES | {"GOOGLE_OAUTH_ACCESS_TOKEN": "mine"}, client)
    assert not isinstance(findings, str)
    assert [f.ok for f in findings] == [True, False, False]
    assert set(seen) == {"Bearer mine"}
