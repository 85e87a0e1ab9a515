"""The public API as users call it: checked by ``mypy --strict`` in CI, never run.

Lines marked ``# type: ignore[...]`` are misuse that must be rejected: with
``warn_unused_ignores`` (part of ``--strict``), mypy fails if one of them is ever accepted.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import aiohttp
import httpx
import httpx2
import requests
from botocore.credentials import Credentials as BotocoreCredentials
from botocore.credentials import ReadOnlyCredentials

from apigw_iam_auth import (
    ApiGwIamAuth,
    ApiGwIamAuthError,
    Credentials,
    CredentialsSource,
    InvalidConfigError,
    SignableRequest,
    SignatureLocation,
    SignedRequest,
    SigningResult,
    SigV4Signer,
    StaticProvider,
    explain_signature_mismatch,
    presign_url,
    redact,
)
from apigw_iam_auth.server import IamAuthServer, KnownKey, VerifiedRequest, verify_request

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/pets"


class KeysFromVault:
    """A user's object shaped as botocore's credentials."""

    def get_frozen_credentials(self) -> ReadOnlyCredentials:
        return ReadOnlyCredentials("AKIDEXAMPLE", "secret", None)


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def clients() -> None:
    """One auth object for every client."""
    auth = ApiGwIamAuth(region="eu-west-1", credentials=("AKIDEXAMPLE", "secret"))
    requests.get(URL, auth=auth, timeout=5)
    httpx.Client(auth=auth)
    httpx.AsyncClient(auth=auth)
    httpx2.Client(auth=auth)
    httpx2.AsyncClient(auth=auth)
    aiohttp.ClientSession(middlewares=(auth,))
    auth.singer.sign("GET", URL)  # type: ignore[attr-defined]
    number: int = auth  # type: ignore[assignment]
    del number
    ApiGwIamAuth(presign=True, expires=3600, region_set=["us-east-1", "eu-west-1"])
    ApiGwIamAuth("eu-west-1", payload="unsigned")
    ApiGwIamAuth("eu-west-1", "execute-api")  # type: ignore[call-arg]
    ApiGwIamAuth(payload="maybe")  # type: ignore[arg-type]
    ApiGwIamAuth(expires="1h")  # type: ignore[arg-type]


def signer() -> None:
    """The signer on its own: keyword-only after method and url."""
    source: CredentialsSource = ("AKIDEXAMPLE", "secret", "token")
    signer = SigV4Signer("eu-west-1", credentials=source)
    signed: SignedRequest = signer.sign("POST", URL, headers={"A": "b"}, body=b"{}", timestamp=NOW)
    link: str = signer.presign("GET", URL, expires=60)
    result: SigningResult | None = signed.signing
    explained: str | None = explain_signature_mismatch(b"{}", signed)  # or signed.signing
    explain_signature_mismatch(b"{}", URL)  # type: ignore[arg-type]
    del explained
    request = SignableRequest("GET", "/prod", (), (("Host", "h"),), "0" * 64)
    signer.sign_request(request, location=SignatureLocation.QUERY, timestamp=NOW)
    signer.sign("GET", URL, credentials=("AKIDEXAMPLE", "secret", "token"))  # a snapshot per call
    signer.presign("GET", URL, credentials=Credentials("AKIDEXAMPLE", "secret"))
    signer.sign("GET", URL, credentials="AKIDEXAMPLE")  # type: ignore[arg-type]
    signer.sign("GET", URL, {"A": "b"})  # type: ignore[call-arg]
    signer.presign("GET", URL, None, 60)  # type: ignore[call-arg]
    SigV4Signer(credentials=StaticProvider(Credentials("AKIDEXAMPLE", "secret")))
    frozen = ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token")  # get_frozen_credentials()
    StaticProvider(("AKIDEXAMPLE", "secret", os.environ.get("AWS_SESSION_TOKEN")))
    StaticProvider(frozen)
    signer.sign("GET", URL, credentials=frozen)
    SigV4Signer(credentials=KeysFromVault())  # anything botocore-like: get_frozen_credentials()
    StaticProvider(("AKIDEXAMPLE",))  # type: ignore[arg-type]
    live = BotocoreCredentials("AKIDEXAMPLE", "secret")  # may refresh: no snapshot
    StaticProvider(live)  # type: ignore[arg-type]
    signer.sign("GET", URL, credentials=live)  # type: ignore[arg-type]
    SigV4Signer(credentials=42)  # type: ignore[arg-type]
    del link, result


def links() -> str:
    """A shareable link."""
    return presign_url(URL, expires=3600, credentials=("AKIDEXAMPLE", "secret"))


def server() -> VerifiedRequest:
    """The server side."""
    with IamAuthServer(region="eu-west-1", keys={"AKIDEXAMPLE": KnownKey("secret")}) as running:
        del running
    keys: dict[str, KnownKey] = {"AKIDEXAMPLE": KnownKey("secret")}
    return verify_request(
        "GET", "/prod", [("Host", "h")], b"", lookup=keys.get, region="eu-west-1", now=NOW
    )


def misspelt() -> None:
    """A name the package does not export is an error, not Any."""
    from apigw_iam_auth import presign_urll  # type: ignore[attr-defined]  # noqa: PLC0415

    del presign_urll


def errors(exc: Exception) -> str:
    """Errors are typed and redactable."""
    if isinstance(exc, InvalidConfigError | ApiGwIamAuthError):
        return redact(str(exc))
    return ""
