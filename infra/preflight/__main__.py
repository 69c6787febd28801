"""`python -m infra.preflight --environment prod` (`make preflight ENV=prod`)."""

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import httpx

from infra.preflight.bindings import check_from_workstation
from infra.preflight.expectation import Finding, expectation_for
from infra.preflight.oidc import check_from_github

TOKEN_VARIABLE = "GOOGLE_OAUTH_ACCESS_TOKEN"  # noqa: S105  # the variable's name, not a token


def run(environment: str, environ: Mapping[str, str], client: httpx.Client) -> list[Finding] | str:
    """The findings, or what to set first when there is nothing to check with."""
    expected = expectation_for(environment, environ)
    if not expected.provider or not expected.service_account:
        return (
            "set GCP_WORKLOAD_IDENTITY_PROVIDER(_PROD) and GCP_DEPLOYER_<ENV> from the bootstrap "
            "stack's `github_variables` output (`make bootstrap` prints them)"
        )
    if environ.get("GITHUB_ACTIONS") == "true":
        return check_from_github(expected, environ, client)
    token = environ.get(TOKEN_VARIABLE)
    if not token:
        return (
            f"outside GitHub Actions, check with your own credentials: "
            f"{TOKEN_VARIABLE}=$(gcloud auth print-access-token) make preflight ENV={environment}"
        )
    client.headers["Authorization"] = f"Bearer {token}"
    return check_from_workstation(expected, client)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__)
    parser.add_argument("--environment", choices=["dev", "staging", "prod"], required=True)
    arguments = parser.parse_args(argv)
    with httpx.Client(timeout=20) as client:
        result = run(arguments.environment, os.environ, client)
    if isinstance(result, str):
        print(f"error: {result}", file=sys.stderr)
        return 2
    for finding in result:
        print(f"{'ok  ' if finding.ok else 'FAIL'} {finding.check}: {finding.detail}")
    return 0 if all(finding.ok for finding in result) else 1


if __name__ == "__main__":
    sys.exit(main())
