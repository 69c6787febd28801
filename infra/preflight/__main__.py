"""`python -m infra.preflight --environment prod` (`make preflight ENV=prod`)."""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import httpx

from environments.stack_settings import ENVIRONMENTS
from infra.preflight.bindings import check_from_workstation
from infra.preflight.expectation import Expectation, Finding, Role, expectation_for
from infra.preflight.oidc import check_from_github

TOKEN_VARIABLE = "GOOGLE_OAUTH_ACCESS_TOKEN"  # noqa: S105  # the variable's name, not a token


def run(
    environment: str, environ: Mapping[str, str], client: httpx.Client, role: Role = "deployer"
) -> list[Finding] | str:
    """The findings, or what to set first when there is nothing to check with."""
    expected = expectation_for(environment, environ, role=role)
    if not expected.provider or not expected.service_account:
        return (
            f"set GCP_WORKLOAD_IDENTITY_PROVIDER(_PROD) and GCP_{role.upper()}_"
            f"{environment.upper()} from the bootstrap stack's `github_variables` output "
            "(`make bootstrap` prints them)"
        )
    if environ.get("GITHUB_ACTIONS") == "true":
        findings = check_from_github(expected, environ, client)
        if all(finding.ok for finding in findings):
            hand_over(expected, environ)
        return findings
    token = environ.get(TOKEN_VARIABLE)
    if not token:
        return (
            f"outside GitHub Actions, check with your own credentials: "
            f"{TOKEN_VARIABLE}=$(gcloud auth print-access-token) make preflight ENV={environment}"
        )
    client.headers["Authorization"] = f"Bearer {token}"
    return check_from_workstation(expected, client)


def hand_over(expected: Expectation, environ: Mapping[str, str]) -> None:
    """Give the job's next steps what the chain was checked with: the auth step's provider and
    account (step outputs), and the environment's Pulumi backend (job environment). One place
    picks them from the bootstrap's variables, so no workflow repeats that choice."""
    outputs = {"provider": expected.provider, "service_account": expected.service_account}
    for variable, values in (
        ("GITHUB_OUTPUT", outputs),
        (
            "GITHUB_ENV",
            {"PULUMI_BACKEND_URL": expected.backend_url} if expected.backend_url else {},
        ),
    ):
        if target := environ.get(variable):
            with open(target, "a", encoding="utf-8") as handle:
                handle.writelines(f"{key}={value}\n" for key, value in values.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__)
    parser.add_argument("--environment", choices=ENVIRONMENTS, required=True)
    parser.add_argument(
        "--as",
        dest="role",
        choices=["deployer", "previewer"],
        default="deployer",
        help="the identity to check: the deployer (changes the environment) or the previewer",
    )
    arguments = parser.parse_args(argv)
    with httpx.Client(timeout=20) as client:
        result = run(arguments.environment, os.environ, client, arguments.role)
    if isinstance(result, str):
        print(f"error: {result}", file=sys.stderr)
        return 2
    for finding in result:
        print(f"{'ok  ' if finding.ok else 'FAIL'} {finding.check}: {finding.detail}")
    return 0 if all(finding.ok for finding in result) else 1


if __name__ == "__main__":
    sys.exit(main())
