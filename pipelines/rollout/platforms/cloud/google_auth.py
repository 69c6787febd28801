"""Google credentials for the platform's HTTP clients: an access token for Google's APIs, an ID
token for a private Cloud Run URL. Keyless: Application Default Credentials, which in GitHub
Actions are the Workload Identity Federation credentials the auth step writes."""

import time
from collections.abc import Generator
from typing import Any

import google.auth
import google.auth.transport.requests
import httpx
from google.auth import exceptions, jwt
from google.oauth2 import id_token

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
EXPIRY_MARGIN_S = 300


class CredentialsError(httpx.RequestError):
    """No token could be had (expired federation, revoked grant, no credentials at all). A
    request error to its caller, which handles it like any request that could not be sent."""


def _credentials_error(error: exceptions.GoogleAuthError, request: httpx.Request) -> Exception:
    return CredentialsError(
        f"no Google credentials for {request.url.host}: {error}. In GitHub Actions the auth step "
        "must run before this one (its token lasts an hour); locally, run "
        "`gcloud auth application-default login`",
        request=request,
    )


class AccessToken(httpx.Auth):
    """`Authorization: Bearer` with an access token, refreshed before it expires."""

    def __init__(self, credentials: Any = None) -> None:
        self.credentials = credentials or google.auth.default(scopes=[CLOUD_PLATFORM])[0]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        if not self.credentials.valid:
            try:
                self.credentials.refresh(google.auth.transport.requests.Request())
            except exceptions.GoogleAuthError as error:
                raise _credentials_error(error, request) from error
        request.headers["Authorization"] = f"Bearer {self.credentials.token}"
        yield request


class IdentityToken(httpx.Auth):
    """`Authorization: Bearer` with an ID token for `audience` (a Cloud Run service's URL), as a
    private service requires; fetched anew five minutes before the last one expires."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self.token: str | None = None
        self.expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        if self.token is None or time.time() > self.expires_at:
            request_adapter = google.auth.transport.requests.Request()
            try:
                self.token = id_token.fetch_id_token(request_adapter, self.audience)
            except exceptions.GoogleAuthError as error:
                raise _credentials_error(error, request) from error
            claims = jwt.decode(self.token, verify=False)  # its own expiry, not a guess
            self.expires_at = float(claims["exp"]) - EXPIRY_MARGIN_S
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request
