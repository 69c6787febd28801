from pathlib import Path

import httpx
import pytest

from infra.preflight.__main__ import main, run
from infra.preflight.bindings import expected_condition
from infra.preflight.expectation import expectation_for
from tests.infra.preflight.test_oidc import GITHUB, google
from tests.infra.preflight.test_oidc import PROVIDER as OIDC_PROVIDER

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
        ({}, "GCP_DEPLOYER_DEV"),
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


def test_a_passing_chain_hands_its_identity_and_backend_to_the_next_steps(tmp_path: Path) -> None:
    """The prod previewer is trusted through the non-prod pool, with no prod claims required;
    the job's auth step and Pulumi read what preflight resolved."""
    environ = {
        **GITHUB,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_ENV": str(tmp_path / "env"),
        "GCP_WORKLOAD_IDENTITY_PROVIDER": OIDC_PROVIDER,
        "GCP_PREVIEWER_PROD": "preview-prod@my-ml-shared.iam.gserviceaccount.com",
        "PULUMI_BACKEND_URL_PROD": "gs://my-ml-prod-prod-pulumi-state",
    }
    pull_request = {"repository": "my-org/cloudrun-ml-rollouts", "ref": "refs/pull/7/merge"}
    with httpx.Client(transport=httpx.MockTransport(google(pull_request))) as client:
        findings = run("prod", environ, client, role="previewer")
    assert isinstance(findings, list)
    assert all(f.ok for f in findings), findings
    assert (tmp_path / "output").read_text(encoding="utf-8").splitlines() == [
        f"provider={OIDC_PROVIDER}",
        "service_account=preview-prod@my-ml-shared.iam.gserviceaccount.com",
    ]
    assert (tmp_path / "env").read_text(encoding="utf-8") == (
        "PULUMI_BACKEND_URL=gs://my-ml-prod-prod-pulumi-state\n"
    )


def test_a_failing_chain_hands_nothing_over(tmp_path: Path) -> None:
    environ = {
        **GITHUB,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GCP_WORKLOAD_IDENTITY_PROVIDER_PROD": OIDC_PROVIDER,
        "GCP_DEPLOYER_PROD": "deploy-prod@my-ml-shared.iam.gserviceaccount.com",
    }
    pull_request = {"repository": "my-org/cloudrun-ml-rollouts", "ref": "refs/pull/7/merge"}
    with httpx.Client(transport=httpx.MockTransport(google(pull_request))) as client:
        findings = run("prod", environ, client)
    assert isinstance(findings, list)
    assert not all(f.ok for f in findings), "a pull request may not deploy prod"
    assert not (tmp_path / "output").exists()
