"""verify_request: rules mutation testing of server/_verify.py found no test pinning.

Each test here failed against a mutant of ``src/apigw_iam_auth/server/_verify.py`` that the
rest of the suite let live; its docstring says which rule it pins. Requests are signed by the
library's signer (SigV4 and SigV4a) and then edited, as in tests/test_verify.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from apigw_iam_auth.server import FailureKind, KnownKey, VerificationError, verify_request
from apigw_iam_auth.signer import SigV4Signer

T = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
KEYS = {KEY: KnownKey(SECRET)}
BASE = "https://abc123.execute-api.us-east-1.amazonaws.com"

Request = tuple[str, str, list[tuple[str, str]], bytes]


def signed(*, region_set: list[str] | None = None) -> Request:
    """A GET signed at T by our signer: SigV4, or SigV4a for ``region_set``."""
    signer = (
        SigV4Signer("us-east-1", credentials=(KEY, SECRET))
        if region_set is None
        else SigV4Signer(region_set=region_set, credentials=(KEY, SECRET))
    )
    request = signer.sign("GET", f"{BASE}/prod/pets", timestamp=T)
    return "GET", urlsplit(request.url).path, list(request.headers.items()), b""


def with_credential(request: Request, credential: str) -> Request:
    """``request`` with its Authorization header's Credential replaced."""
    method, target, headers, body = request
    authorization = next(value for name, value in headers if name.lower() == "authorization")
    given = authorization.split("Credential=")[1].split(",")[0]
    edited = [
        (name, authorization.replace(given, credential) if value == authorization else value)
        for name, value in headers
    ]
    return method, target, edited, body


def refused(request: Request) -> VerificationError:
    method, target, headers, body = request
    with pytest.raises(VerificationError) as info:
        verify_request(method, target, headers, body, lookup=KEYS.get, region="us-east-1", now=T)
    return info.value


def test_a_sigv4a_credential_of_the_wrong_length_asks_for_its_four_elements():
    """A SigV4a scope names no region: a Credential of another length is refused asking for
    four elements in SigV4a's shape, not SigV4's five."""
    error = refused(with_credential(signed(region_set=["us-east-1"]), KEY))
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.message == (
        "Credential must have exactly 4 slash-delimited elements, "
        f"e.g. keyid/date/service/term, got '{KEY}'"
    )


def test_a_scope_dated_another_day_than_the_request_is_blamed_on_re_dating():
    """A Credential whose date is not X-Amz-Date's day is refused with AWS's scope message,
    and the log-safe cause says the request was re-dated after signing."""
    request = with_credential(signed(), f"{KEY}/20240430/us-east-1/execute-api/aws4_request")
    error = refused(request)
    assert error.kind is FailureKind.INVALID_SCOPE
    assert "'20240430' != '20240501'" in error.message
    assert error.likely_cause == "the request was re-dated after signing: sign again instead"


def test_an_absolute_form_target_on_the_highest_port_matches_its_host_header():
    """Port 65535 is a port: a request-target in absolute form naming it, with the Host
    header naming the same, is verified, not refused as naming an invalid host."""
    url = "https://abc123.execute-api.us-east-1.amazonaws.com:65535/prod/pets"
    request = SigV4Signer("us-east-1", credentials=(KEY, SECRET)).sign("GET", url, timestamp=T)
    headers = list(request.headers.items())
    assert ("Host", "abc123.execute-api.us-east-1.amazonaws.com:65535") in headers
    verified = verify_request("GET", url, headers, b"", lookup=KEYS.get, region="us-east-1", now=T)
    assert verified.access_key == KEY
