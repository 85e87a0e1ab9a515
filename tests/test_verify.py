"""verify_request: accepts what AWS's own vectors, botocore and our signer sign; refuses tampering.

Every refusal is checked against API Gateway's exact 403 wording and x-amzn-ErrorType.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlsplit

import aws_vectors
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apigw_iam_auth import _sigv4
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth.errors import ApiGwIamAuthError, InvalidConfigError
from apigw_iam_auth.server import (
    FailureKind,
    IamAuthServer,
    KnownKey,
    VerificationError,
    VerifiedRequest,
    _verify,
    verify_request,
)
from apigw_iam_auth.signer import SigV4Signer

if TYPE_CHECKING:
    from pathlib import Path

SUITE = aws_vectors.V4
T = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEMP_KEY, TEMP_SECRET, TOKEN = "ASIAEXAMPLE", "temp/secret+key", "FQoGZXIvYXdzEJr//token+/="
KEYS = {
    KEY: KnownKey(SECRET, account_id="111122223333"),
    TEMP_KEY: KnownKey(TEMP_SECRET, token=TOKEN),
}
HOST = "abc123.execute-api.us-east-1.amazonaws.com"
UNSIGNED = "UNSIGNED-PAYLOAD"
BASE = f"https://{HOST}"

Request = tuple[str, str, list[tuple[str, str]], bytes]


def check(request: Request, *, now: datetime = T, keys=KEYS, **kwargs) -> VerifiedRequest:
    method, target, headers, body = request
    return verify_request(
        method, target, headers, body, lookup=keys.get, region="us-east-1", now=now, **kwargs
    )


def refused(request: Request, **kwargs) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        check(request, **kwargs)
    return info.value


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def ours(
    method="POST",
    url=f"{BASE}/prod/pets/a%20b?b=2&a=x%20y&flag",
    headers=(("Content-Type", "application/json"), ("X-Custom", "one")),
    body=b'{"name": "rex"}',
    *,
    credentials=(KEY, SECRET),
    region="us-east-1",
    service="execute-api",
    timestamp=T,
) -> Request:
    signer = SigV4Signer(region, service=service, credentials=credentials)
    signed = signer.sign(method, url, headers=list(headers), body=body, timestamp=timestamp)
    return method, target_of(signed.url), list(signed.headers.items()), body


def presigned(
    url=f"{BASE}/prod/pets?q=1", *, credentials=(KEY, SECRET), expires=900, timestamp=T
) -> Request:
    signer = SigV4Signer("us-east-1", credentials=credentials)
    link = signer.presign("GET", url, expires=expires, timestamp=timestamp)
    return "GET", target_of(link), [("Host", HOST)], b""


def replace_header(request: Request, name: str, value: str) -> Request:
    method, target, headers, body = request
    new = [(n, value if n.lower() == name.lower() else v) for n, v in headers]
    return method, target, new, body


def with_authorization(edit) -> Request:
    """Our signed request with its Authorization header rewritten by ``edit``."""
    request = ours()
    authorization = next(v for n, v in request[2] if n.lower() == "authorization")
    return replace_header(request, "Authorization", edit(authorization))


def amz(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


# --- AWS's own signed requests (an independent signer) -------------------------------------


def _read_vector(path: Path) -> Request:
    """Parse a test-suite ``*-signed-request.txt``: request line, headers (with folding), body."""
    head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
    request_line, *lines = head.split("\n")
    method, _, rest = request_line.partition(" ")
    target = rest.rpartition(" HTTP/1.1")[0]
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in {" ", "\t"} and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, target, headers, body.encode("utf-8")


def _not_applicable(context: dict, location: str) -> str | None:
    """Why an official case cannot apply to API Gateway, or None when it applies."""
    if not context["normalize"]:
        return "S3's path rule (no normalisation); API Gateway normalises the path"
    if context.get("omit_session_token") and location == "query":
        return "token appended after presigning (IoT style); execute-api signs it"
    return None


def _vector_cases(*, applicable: bool = True) -> list[tuple[str, str]]:
    if not SUITE.is_dir():  # fail loudly: the cases below must never silently disappear
        return [("<suite missing>", "header")]
    cases = []
    for case in sorted(SUITE.iterdir()):
        context = json.loads((case / "context.json").read_text(encoding="utf-8"))
        for location in ("header", "query"):
            exists = (case / f"{location}-signed-request.txt").is_file()
            if exists and (_not_applicable(context, location) is None) is applicable:
                cases.append((case.name, location))
    return cases


@pytest.mark.parametrize(("case", "location"), _vector_cases())
def test_aws_test_suite_signed_requests_verify(case, location):
    """Every applicable signed request of AWS's official SigV4 suite verifies, both placements."""
    aws_vectors.require("v4")
    directory = SUITE / case
    context = json.loads((directory / "context.json").read_text(encoding="utf-8"))
    credentials = context["credentials"]
    keys = {
        credentials["access_key_id"]: KnownKey(
            credentials["secret_access_key"], token=credentials.get("token")
        )
    }
    now = datetime.fromisoformat(context["timestamp"].replace("Z", "+00:00"))
    request = _read_vector(directory / f"{location}-signed-request.txt")
    method, target, headers, body = request
    verified = verify_request(
        method,
        target,
        headers,
        body,
        lookup=keys.get,
        region=context["region"],
        service=context["service"],
        now=now,
    )
    expected = SignatureLocation.HEADERS if location == "header" else SignatureLocation.QUERY
    assert verified.location is expected
    assert verified.access_key == credentials["access_key_id"]


def test_aws_test_suite_cases_are_all_accounted_for():
    """All 38 official cases run, except the 15 S3/IoT-only forms listed with their reason."""
    aws_vectors.require("v4")
    assert len(_vector_cases()) == 61
    assert len(_vector_cases(applicable=False)) == 15


# --- botocore (the reference Python signer) ------------------------------------------------


def _botocore(auth_class, method, url, headers=None, data=b"", token=None, **kwargs):
    credentials = botocore.credentials.Credentials(
        TEMP_KEY if token else KEY, TEMP_SECRET if token else SECRET, token
    )
    request = botocore.awsrequest.AWSRequest(method, url, headers=headers or {}, data=data)
    auth_class(credentials, "execute-api", "us-east-1", **kwargs).add_auth(request)
    signed_at = datetime.strptime(request.context["timestamp"] + "+0000", "%Y%m%dT%H%M%SZ%z")
    prepared = request.prepare()
    sent = [("Host", HOST), *prepared.headers.items()]
    return (method, target_of(prepared.url), sent, data), signed_at


def test_botocore_header_signature_verifies():
    """A request signed by botocore's SigV4Auth (token, body, custom headers) is accepted."""
    request, signed_at = _botocore(
        botocore.auth.SigV4Auth,
        "PUT",
        f"{BASE}/prod/items/caf%C3%A9/%40x?z=1&a=%2F&a=b",
        headers={"Content-Type": "text/plain", "X-Trace": "  spaced   value "},
        data=b"hello world",
        token=TOKEN,
    )
    verified = check(request, now=signed_at)
    assert verified.access_key == TEMP_KEY
    assert verified.location is SignatureLocation.HEADERS
    assert "x-amz-security-token" in verified.signed_headers
    assert "x-trace" in verified.signed_headers


def test_botocore_presigned_url_verifies():
    """A URL presigned by botocore's SigV4QueryAuth (with a session token) is accepted."""
    request, signed_at = _botocore(
        botocore.auth.SigV4QueryAuth, "GET", f"{BASE}/prod/pets?z=1&a=b", token=TOKEN, expires=60
    )
    verified = check(request, now=signed_at + timedelta(seconds=60))
    assert verified.location is SignatureLocation.QUERY
    assert verified.expires == 60
    assert ("z", "1") in verified.query


def test_botocore_presigned_url_expires_after_its_lifetime():
    """One second past X-Amz-Expires, botocore's presigned URL is refused as expired."""
    request, signed_at = _botocore(
        botocore.auth.SigV4QueryAuth, "GET", f"{BASE}/prod/pets", expires=60
    )
    now = signed_at + timedelta(seconds=61)
    error = refused(request, now=now)
    assert error.kind is FailureKind.SIGNATURE_EXPIRED
    assert error.message == (
        f"Signature expired: {amz(signed_at)} is now earlier than "
        f"{amz(now - timedelta(seconds=60))} ({amz(now)} - 1 min.)"
    )


def test_a_second_signature_appended_to_a_presigned_url_is_signed_like_any_parameter():
    """Only the first X-Amz-Signature is the signature: another appended to a link botocore
    presigned is part of the signed query, so the link fails rather than carry it unsigned."""
    request, signed_at = _botocore(botocore.auth.SigV4QueryAuth, "GET", f"{BASE}/prod/pets?q=1")
    method, target, headers, body = request
    assert ("q", "1") in check(request, now=signed_at).query
    error = refused((method, f"{target}&X-Amz-Signature={'0' * 64}", headers, body), now=signed_at)
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert f"&X-Amz-Signature={'0' * 64}&X-Amz-SignedHeaders=host&q=1\n" in error.message


def test_plus_in_query_is_a_space_so_botocore_verbatim_plus_is_refused():
    """API Gateway reads '+' as a space; botocore signs a raw '+' verbatim and so mismatches."""
    request, signed_at = _botocore(botocore.auth.SigV4Auth, "GET", f"{BASE}/prod/s?q=a+b")
    error = refused(request, now=signed_at)
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert "\nq=a%20b\n" in error.message


def test_encoded_space_query_from_botocore_verifies():
    """The same query written with %20 (what our signer sends) verifies from botocore too."""
    request, signed_at = _botocore(botocore.auth.SigV4Auth, "GET", f"{BASE}/prod/s?q=a%20b")
    assert check(request, now=signed_at).query == (("q", "a b"),)


# --- our signer ----------------------------------------------------------------------------


def test_our_header_signature_verifies():
    """SigV4Signer's header signature (encoded path, repeated and valueless query) verifies."""
    request = ours()
    verified = check(request)
    assert verified == VerifiedRequest(
        access_key=KEY,
        account_id="111122223333",
        location=SignatureLocation.HEADERS,
        signed_headers=("content-type", "host", "x-amz-date", "x-custom"),
        signed_at=T,
        path="/prod/pets/a%20b",
        query=tuple(parse_qsl(urlsplit(request[1]).query, keep_blank_values=True)),
    )
    assert sorted(verified.query) == [("a", "x y"), ("b", "2"), ("flag", "")]
    assert verified.principal_arn == "arn:aws:iam::111122223333:user/AKIDEXAMPLE"


def test_our_presigned_url_with_session_token_verifies():
    """SigV4Signer.presign with temporary credentials verifies until the link's end."""
    request = presigned(credentials=(TEMP_KEY, TEMP_SECRET, TOKEN), expires=120)
    verified = check(request, now=T + timedelta(seconds=120))
    assert verified.location is SignatureLocation.QUERY
    assert verified.access_key == TEMP_KEY


@pytest.mark.parametrize(
    "origin",
    [f"http://{HOST}", f"https://{HOST}:443", f"http://{HOST.upper()}:80", f"http://u@{HOST}"],
)
def test_absolute_form_request_target_verifies(origin):
    """A proxy-style absolute-form request-target is verified on its path and query."""
    method, target, headers, body = ours()
    assert check((method, f"{origin}{target}", headers, body)).path == "/prod/pets/a%20b"


@pytest.mark.parametrize("origin", ["http://other.example", f"http://{HOST}:8443", "http://[::1]"])
def test_absolute_form_target_naming_another_host_than_the_signed_one_is_a_bad_request(origin):
    """A server uses the target's host, not Host (RFC 9112 3.2.2): the two must agree."""
    method, target, headers, body = ours()
    error = refused((method, f"{origin}{target}", headers, body))
    assert error.status == 400
    assert error.message == "The request-target names another host than the Host header."


def test_payload_hash_stands_in_for_the_body():
    """A streamed body can be verified by its precomputed SHA-256 instead of the bytes."""
    method, target, headers, body = ours()
    verified = check((method, target, headers, b""), payload_hash=hashlib.sha256(body).hexdigest())
    assert verified.access_key == KEY


def test_date_header_replaces_a_missing_x_amz_date():
    """Without X-Amz-Date, the HTTP Date header dates the signature, as AWS allows."""
    date = format_datetime(T, usegmt=True)
    headers = [("Host", HOST), ("Date", date)]
    block, names = _sigv4.canonical_headers(headers, frozenset())
    canonical = _sigv4.canonical_request("GET", "/prod", "", block, names, _sigv4.EMPTY_SHA256)
    scope = f"{amz(T)[:8]}/us-east-1/execute-api/aws4_request"
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz(T),
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{SECRET}".encode()
    for part in (amz(T)[:8], "us-east-1", "execute-api", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    signature = hmac.digest(key, to_sign.encode(), "sha256").hex()
    authorization = (
        f"AWS4-HMAC-SHA256 Credential={KEY}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    verified = check(("GET", "/prod", [*headers, ("Authorization", authorization)], b""))
    assert verified.signed_headers == ("date", "host")


@settings(max_examples=60, deadline=None)
@given(
    path=st.text(alphabet="abcAZ09-._~ %+!*()'@:=$&,;/é", max_size=20),
    query=st.lists(st.tuples(st.text(min_size=1, max_size=6), st.text(max_size=6)), max_size=4),
    body=st.binary(max_size=64),
    flip=st.integers(min_value=0, max_value=63),
)
def test_any_signed_request_verifies_and_any_body_flip_is_refused(path, query, body, flip):
    """Whatever path, query and body are signed verify; flipping one body bit never does."""
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    url = f"{BASE}/prod/{path}" + (f"?{encoded}" if encoded else "")
    request = ours("POST", url, headers=(), body=body)
    assert sorted(check(request).query) == sorted(query)
    if body:
        index = flip % len(body)
        tampered = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        assert refused((*request[:3], tampered)).kind is FailureKind.SIGNATURE_MISMATCH


# --- tampering: each change to a signed request is refused with API Gateway's message -------


def _tamper_method(r: Request) -> Request:
    return ("PUT", *r[1:])


def _tamper_path(r: Request) -> Request:
    return (r[0], r[1].replace("/pets/", "/cats/"), r[2], r[3])


def _tamper_query(r: Request) -> Request:
    return (r[0], r[1].replace("b=2", "b=3"), r[2], r[3])


def _add_query(r: Request) -> Request:
    return (r[0], r[1] + "&admin=true", r[2], r[3])


def _tamper_header(r: Request) -> Request:
    return replace_header(r, "X-Custom", "two")


def _tamper_body(r: Request) -> Request:
    return (*r[:3], b'{"name": "max"}')


def _tamper_date(r: Request) -> Request:
    return replace_header(r, "X-Amz-Date", amz(T + timedelta(seconds=1)))


@pytest.mark.parametrize(
    "tamper",
    [
        _tamper_method,
        _tamper_path,
        _tamper_query,
        _add_query,
        _tamper_header,
        _tamper_body,
        _tamper_date,
    ],
)
def test_tampered_signed_parts_are_refused_with_the_expected_canonical_string(tamper):
    """Method, path, query, a signed header, body or date changed: InvalidSignatureException."""
    error = refused(tamper(ours()))
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert error.error_type == "InvalidSignatureException"
    assert error.status == 403
    assert error.message.startswith(
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details.\n\n"
        "The Canonical String for this request should have been\n'"
    )
    assert "'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n" in error.message
    assert error.message.endswith("'\n")


def test_mismatch_body_quotes_what_the_server_computed():
    """The quoted canonical string is the server's view of the tampered request."""
    error = refused(_tamper_path(ours()))
    body = json.loads(error.to_json())
    assert list(body) == ["message"]
    assert "\n/prod/cats/a%2520b\n" in body["message"]
    assert error.to_json().startswith('{"message":"The request signature')


def test_mismatch_str_is_log_safe():
    """str() of a mismatch leaves out the canonical string, which may hold the session token."""
    request = ours(credentials=(TEMP_KEY, TEMP_SECRET, TOKEN))
    error = refused(_tamper_body(request))
    assert TOKEN in error.message  # AWS quotes the caller's own token back in the body
    assert TOKEN not in str(error)
    assert str(error).startswith("The request signature we calculated does not match")


def test_tampered_credential_scope_is_refused():
    """A signature scoped to another region and service names both, as API Gateway does."""
    error = refused(ours(region="eu-west-1", service="lambda"))
    assert error.kind is FailureKind.INVALID_SCOPE
    assert error.error_type == "InvalidSignatureException"
    assert error.message == (
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
        "Credential should be scoped to correct service: 'execute-api'. "
    )


def test_scope_date_must_match_the_request_date():
    """A Credential dated another day than X-Amz-Date is refused with AWS's date message."""
    next_day = T + timedelta(days=1)
    request = replace_header(ours(), "X-Amz-Date", amz(next_day))
    error = refused(request, now=next_day)
    assert error.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '20240501' != '20240502', from '{amz(next_day)}'. "
    )


def test_scope_terminator_must_be_aws4_request():
    """A Credential not ending in aws4_request is refused with AWS's terminator message."""
    error = refused(with_authorization(lambda a: a.replace("aws4_request", "aws5_request")))
    assert error.message == (
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
    )


def test_expired_header_signature_is_refused():
    """Header signatures older than 5 minutes get API Gateway's 'Signature expired' text."""
    now = T + timedelta(minutes=5, seconds=1)
    error = refused(ours(), now=now)
    assert error.kind is FailureKind.SIGNATURE_EXPIRED
    assert error.error_type == "InvalidSignatureException"
    assert error.message == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z "
        "(20240501T120501Z - 5 min.)"
    )


def test_header_signature_within_skew_is_accepted():
    """Exactly 5 minutes of clock skew either way is still accepted."""
    assert check(ours(), now=T + timedelta(minutes=5)).signed_at == T
    assert check(ours(), now=T - timedelta(minutes=5)).signed_at == T


@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
def test_the_time_is_compared_in_the_whole_seconds_it_is_told_in(presign):
    """A clock with microseconds is read to the second, as X-Amz-Date and the message are:
    never 'T is now earlier than T' (a request refused 0.5 s past the limit)."""
    request, limit = (
        (presigned(expires=900), timedelta(seconds=900))
        if presign
        else (ours(), timedelta(minutes=5))
    )
    assert check(request, now=T + limit + timedelta(microseconds=500_000)).signed_at == T
    error = refused(request, now=T + limit + timedelta(seconds=1, microseconds=500_000))
    assert "is now earlier than 20240501T120001Z" in error.message


def test_a_sub_second_skew_allowance_is_kept_whole():
    """max_skew of 0.5 s: a request signed 0.3 s ahead of the server's clock is accepted, one
    1.3 s ahead is not yet current (the limits, not the clock, are read to the second)."""
    skew = timedelta(milliseconds=500)
    assert check(ours(), now=T - timedelta(milliseconds=300), max_skew=skew).signed_at == T
    error = refused(ours(), now=T - timedelta(milliseconds=1300), max_skew=skew)
    assert error.kind is FailureKind.SIGNATURE_NOT_YET_CURRENT


def test_future_signature_is_not_yet_current():
    """A signature dated more than 5 minutes ahead is 'not yet current'."""
    now = T - timedelta(minutes=6)
    error = refused(ours(), now=now)
    assert error.kind is FailureKind.SIGNATURE_NOT_YET_CURRENT
    assert error.message == (
        "Signature not yet current: 20240501T120000Z is still later than 20240501T115900Z "
        "(20240501T115400Z + 5 min.)"
    )


def test_expired_presigned_link_is_refused():
    """A presigned URL used after X-Amz-Expires is refused, naming the link's lifetime."""
    now = T + timedelta(seconds=901)
    error = refused(presigned(expires=900), now=now)
    assert error.kind is FailureKind.SIGNATURE_EXPIRED
    assert error.message == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z "
        "(20240501T121501Z - 15 min.)"
    )


def test_presigned_link_lifetime_tampering_is_refused():
    """Stretching X-Amz-Expires breaks the signature; out-of-range values are incomplete."""
    method, target, headers, body = presigned(expires=900)
    error = refused(
        (method, target.replace("X-Amz-Expires=900", "X-Amz-Expires=3600"), headers, body)
    )
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    error = refused(
        (method, target.replace("X-Amz-Expires=900", "X-Amz-Expires=604801"), headers, body)
    )
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert "X-Amz-Expires must be a whole number of seconds from 1 to 604800" in error.message


def test_unknown_access_key_is_refused():
    """A key the verifier does not know gets 'The security token ... is invalid.'."""
    error = refused(ours(credentials=("AKIDUNKNOWN", SECRET)))
    assert error.kind is FailureKind.UNRECOGNIZED_CLIENT
    assert error.error_type == "UnrecognizedClientException"
    assert error.message == "The security token included in the request is invalid."


def test_wrong_session_token_is_refused():
    """A temporary key sent with another session token is refused as an invalid token."""
    request = ours(credentials=(TEMP_KEY, TEMP_SECRET, "another-token"))
    assert refused(request).message == "The security token included in the request is invalid."


def test_missing_session_token_is_refused():
    """A temporary key sent without its session token is refused as an invalid token."""
    request = ours(credentials=(TEMP_KEY, TEMP_SECRET))
    assert refused(request).kind is FailureKind.UNRECOGNIZED_CLIENT


def test_token_with_a_long_term_key_is_refused():
    """A long-term key does not take a session token; sending one is refused."""
    assert refused(ours(credentials=(KEY, SECRET, TOKEN))).kind is FailureKind.UNRECOGNIZED_CLIENT


def test_expired_session_token_is_refused():
    """A known token past its expiry gets ExpiredTokenException."""
    keys = {TEMP_KEY: KnownKey(TEMP_SECRET, token=TOKEN, expiry=T)}
    error = refused(ours(credentials=(TEMP_KEY, TEMP_SECRET, TOKEN)), keys=keys)
    assert error.kind is FailureKind.EXPIRED_TOKEN
    assert error.error_type == "ExpiredTokenException"
    assert error.message == "The security token included in the request is expired"


def test_wrong_secret_is_a_signature_mismatch():
    """A known key signed with the wrong secret fails on the signature itself."""
    assert refused(ours(credentials=(KEY, "not-the-secret"))).kind is FailureKind.SIGNATURE_MISMATCH


def test_signed_header_that_was_not_sent_counts_as_empty():
    """A signed header dropped in transit shows as empty in the expected canonical string."""
    method, target, headers, body = ours()
    dropped = [(n, v) for n, v in headers if n.lower() != "x-custom"]
    error = refused((method, target, dropped, body))
    assert "\nx-custom:\n" in error.message


# --- incomplete or missing authentication --------------------------------------------------


def test_unsigned_request_is_missing_authentication_token():
    """No Authorization header and no X-Amz-Algorithm: 'Missing Authentication Token'."""
    error = refused(("GET", "/prod/pets", [("Host", HOST)], b""))
    assert error.kind is FailureKind.MISSING_AUTHENTICATION_TOKEN
    assert error.error_type == "MissingAuthenticationTokenException"
    assert error.to_json() == '{"message":"Missing Authentication Token"}'


@pytest.mark.parametrize(
    ("edit", "cause"),
    [
        (
            lambda query: "&".join(
                piece for piece in query.split("&") if not piece.startswith("X-Amz-Algorithm=")
            ),
            (
                "the query carries X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
                "X-Amz-Signature, X-Amz-SignedHeaders but no X-Amz-Algorithm"
            ),
        ),
        (
            lambda query: query.replace("X-Amz-Algorithm", "x-amz-algorithm"),
            "the query's X-Amz-Algorithm parameter is not spelled X-Amz-Algorithm",
        ),
    ],
    ids=["dropped", "lowercased"],
)
def test_a_presigned_query_without_its_algorithm_says_so_as_the_likely_cause(edit, cause):
    """Without X-Amz-Algorithm (exactly so spelled) a presigned link is unsigned to API
    Gateway: Missing Authentication Token, its likely cause naming what is there instead.
    """
    method, target, headers, body = presigned()
    path, _, query = target.partition("?")
    error = refused((method, f"{path}?{edit(query)}", headers, body))
    assert error.kind is FailureKind.MISSING_AUTHENTICATION_TOKEN
    assert error.likely_cause.startswith(cause)
    assert SECRET not in error.likely_cause


def test_bearer_token_is_not_a_valid_key_value_pair():
    """A bearer token on an IAM route gets API Gateway's key=value message; str() hides it."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    error = refused(("GET", "/prod", [("Host", HOST), ("Authorization", f"Bearer {jwt}")], b""))
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.error_type == "IncompleteSignatureException"
    assert error.message == (
        f"'{jwt}' not a valid key=value pair (missing equal-sign) in Authorization header: "
        f"'Bearer {jwt}'."
    )
    assert jwt not in str(error)


def test_authorization_without_parameters_lists_each_missing_one():
    """An Authorization header lacking everything lists every required part, in AWS's order."""
    error = refused(("GET", "/prod", [("Host", HOST), ("Authorization", "AWS4-HMAC-SHA256")], b""))
    assert error.message == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256"
    )


def test_bare_jwt_authorization_is_redacted_from_str():
    """A bare token as the whole Authorization value is quoted in the body, never in str()."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0"
    error = refused(("GET", "/prod", [("Host", HOST), ("Authorization", jwt)], b""))
    assert error.message.endswith(f"Authorization={jwt}")
    assert jwt not in str(error)


def test_unsupported_algorithm_is_named():
    """An AWS4 algorithm other than SigV4 and SigV4a is refused as unsupported."""
    headers = [("Host", HOST), ("Authorization", "AWS4-HMAC-SHA512 Credential=a/b")]
    error = refused(("GET", "/prod", headers, b""))
    assert error.message == "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'."


@pytest.mark.parametrize("separator", [",", "\t"])
def test_unsupported_algorithm_that_runs_into_the_credentials_is_redacted_from_str(separator):
    """Without a space after it, the "algorithm" is the whole header: str() must not quote it."""
    secret_as_key = SECRET  # a caller who swapped key id and secret
    authorization = (
        f"AWS4-HMAC-SHA256{separator}Credential={secret_as_key}/20150830/us-east-1/execute-api/"
        f"aws4_request,SignedHeaders=host;x-amz-date,Signature={'f' * 64}"
    )
    headers = [("Host", HOST), ("X-Amz-Date", "20150830T123600Z"), ("Authorization", authorization)]
    error = refused(("GET", "/prod", headers, b""))
    assert error.message == f"Unsupported AWS 'algorithm': '{authorization}'."
    assert str(error) == "Unsupported AWS 'algorithm': '<redacted>'."
    method, target, headers, body = presigned()
    target = target.replace("AWS4-HMAC-SHA256", quote(SECRET, safe=""))
    error = refused((method, target, headers, body))
    assert error.message == f"Unsupported AWS 'algorithm': '{SECRET}'."
    assert str(error) == "Unsupported AWS 'algorithm': '<redacted>'."


def test_incomplete_presigned_query_lists_missing_parameters():
    """A query with X-Amz-Algorithm but missing parts lists each, as AWS does."""
    error = refused(("GET", "/prod?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=x", [], b""))
    assert error.message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "AWS query-string parameters must include 'X-Amz-Signature'. "
        "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
        "Re-examine the query-string parameters."
    )


def test_header_and_query_signatures_together_are_refused():
    """SigV4 allows one placement; a request carrying both is refused."""
    method, target, _, body = presigned()
    header_signed = ours("GET", f"{BASE}/prod/pets?q=1", headers=(), body=b"")
    error = refused((method, target, header_signed[2], body))
    assert error.message.startswith("Only one auth mechanism allowed")


def test_host_must_be_signed():
    """A signature that does not cover Host is refused before anything is computed."""
    error = refused(with_authorization(lambda a: a.replace("host;", "")))
    assert (
        error.message == "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_malformed_date_is_refused():
    """An X-Amz-Date that is not ISO 8601 basic format gets AWS's date-format message."""
    error = refused(replace_header(ours(), "X-Amz-Date", "2024-05-01T12:00:00Z"))
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.message == (
        "Date must be in ISO-8601 'basic format'. Got '2024-05-01T12:00:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def test_credential_must_have_five_parts():
    """A Credential that is only a key id is refused with AWS's five-elements message."""
    request = with_authorization(lambda a: a.replace(a.split("Credential=")[1].split(",")[0], KEY))
    assert refused(request).message == (
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{KEY}'"
    )


# --- values ----------------------------------------------------------------------------------


def test_verification_error_is_a_library_error():
    """Callers catching ApiGwIamAuthError also catch refusals."""
    assert issubclass(VerificationError, ApiGwIamAuthError)


def test_known_key_repr_hides_secret_and_token():
    """KnownKey never shows its secret or session token."""
    text = repr(KnownKey("the-secret", token="the-token"))
    assert "the-secret" not in text
    assert "the-token" not in text


def test_a_verified_presigned_request_shows_neither_signature_nor_token_in_repr():
    """A VerifiedRequest keeps the presigned query whole (its ``query``), but its repr, which
    ends up in logs and test failures, masks the two values that make the link work.
    """
    request, signed_at = _botocore(
        botocore.auth.SigV4QueryAuth, "GET", f"{BASE}/prod/pets?z=1", token=TOKEN, expires=60
    )
    verified = check(request, now=signed_at)
    signature = dict(verified.query)["X-Amz-Signature"]
    assert dict(verified.query)["X-Amz-Security-Token"] == TOKEN
    text = repr(verified)
    assert TOKEN not in text
    assert signature not in text
    assert "('z', '1')" in text
    assert "('X-Amz-Signature', '<redacted>')" in text
    assert text.startswith("VerifiedRequest(access_key='ASIAEXAMPLE', ")


def test_a_reply_quoting_a_canonical_request_shows_no_token_in_repr():
    """A signature mismatch's reply quotes the canonical request (session token included), as
    API Gateway does; the Reply's repr names the body's length instead.
    """
    server = IamAuthServer(region="us-east-1", keys=KEYS)  # never started: handle() only
    wrong = SigV4Signer(region="us-east-1", credentials=(TEMP_KEY, "not-the-secret", TOKEN))
    link = urlsplit(wrong.presign("GET", f"{BASE}/prod/pets"))
    reply = server.handle("GET", f"{link.path}?{link.query}", [("host", link.netloc)], b"")
    assert reply.status == 403
    quoted = quote(TOKEN, safe="")  # as the canonical query holds it
    assert quoted in reply.body.decode()
    assert quoted not in repr(reply)
    assert f"body=<{len(reply.body)} bytes>" in repr(reply)


def test_known_key_rejects_empty_secret():
    """An empty secret could never verify anything and is refused at construction."""
    with pytest.raises(InvalidConfigError, match="secret key"):
        KnownKey("")


def test_naive_now_is_refused():
    """'now' must be aware: a naive datetime would silently shift the skew window."""
    with pytest.raises(InvalidConfigError, match="aware"):
        check(ours(), now=T.replace(tzinfo=None))


def test_bad_region_is_a_config_error():
    """A malformed region is a caller's configuration mistake, not a 403."""
    method, target, headers, body = ours()
    with pytest.raises(InvalidConfigError, match="region"):
        verify_request(method, target, headers, body, lookup=KEYS.get, region="US East", now=T)


def test_non_aws_algorithm_with_complete_parameters_is_unsupported():
    """A complete-looking Authorization under a foreign scheme is refused as unsupported."""
    error = refused(with_authorization(lambda a: a.replace("AWS4-HMAC-SHA256", "Custom", 1)))
    assert error.message == "Unsupported AWS 'algorithm': 'Custom'."


def test_presigned_algorithm_must_be_sigv4():
    """A presigned URL naming another algorithm is refused as unsupported."""
    method, target, headers, body = presigned()
    sent = target.replace("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-X")
    assert (
        refused((method, sent, headers, body)).message == "Unsupported AWS 'algorithm': 'AWS4-X'."
    )


def test_removing_x_amz_expires_breaks_the_signature():
    """X-Amz-Expires is signed: dropping it from a presigned URL is a signature mismatch."""
    method, target, headers, body = presigned()
    sent = target.replace("&X-Amz-Expires=900", "")
    assert refused((method, sent, headers, body)).kind is FailureKind.SIGNATURE_MISMATCH


def test_impossible_calendar_date_is_malformed():
    """A well-shaped X-Amz-Date that is not a real date gets the date-format message."""
    error = refused(replace_header(ours(), "X-Amz-Date", "20241301T120000Z"))
    assert error.message.startswith(
        "Date must be in ISO-8601 'basic format'. Got '20241301T120000Z'."
    )


def test_unparseable_date_header_is_malformed():
    """Without X-Amz-Date, a Date header that is not an HTTP date is refused."""
    method, target, headers, body = ours()
    sent = [(n, v) for n, v in headers if n.lower() != "x-amz-date"] + [("Date", "yesterday")]
    assert refused((method, target, sent, body)).message.startswith(
        "Date must be in ISO-8601 'basic format'. Got 'yesterday'."
    )


def test_signed_header_with_a_control_character_is_incomplete():
    """A signed header value that HTTP could not carry is refused, not crashed on."""
    request = replace_header(ours(), "X-Custom", "a\nb")
    error = refused(request)
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.message.startswith("Signed header is malformed:")


# --- hostile input (tests/test_hostile.py findings) ------------------------------------------


def as_wire(text: str) -> str:
    """``text`` as a server hands it over: its UTF-8 bytes, undecodable ones surrogate-escaped."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")


def without_x_amz_date(request: Request, date: str) -> Request:
    method, target, headers, body = request
    sent = [(n, v) for n, v in headers if n.lower() != "x-amz-date"] + [("Date", date)]
    return method, target, sent, body


@pytest.mark.parametrize("expires", ["%C2%B2", "%D9%A2", "%EF%BC%99", "9" * 5000, "+900", "9e2"])
def test_expires_that_is_not_ascii_digits_is_incomplete(expires):
    """X-Amz-Expires of '²', other scripts' digits or 5000 digits is refused, not a ValueError."""
    method, target, headers, body = presigned()
    sent = target.replace("X-Amz-Expires=900", f"X-Amz-Expires={expires}")
    error = refused((method, sent, headers, body))
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.message.startswith("X-Amz-Expires must be a whole number of seconds")


def test_x_amz_date_in_other_scripts_digits_is_malformed():
    """An X-Amz-Date written in Arabic-Indic digits gets the date-format message."""
    date = "20240501T120000Z".translate({ord("0") + i: 0x0660 + i for i in range(10)})
    error = refused(replace_header(ours(), "X-Amz-Date", date))
    assert error.message.startswith(f"Date must be in ISO-8601 'basic format'. Got '{date}'.")


@pytest.mark.parametrize(
    "date", ["Fri, 31 Dec 9999 23:00:00 -0200", "Fri, 31 Dec 9999 23:59:59 -2359"]
)
def test_date_header_outside_the_utc_range_is_malformed(date):
    """A Date header whose UTC form is past year 9999 is a malformed date, not OverflowError."""
    error = refused(without_x_amz_date(ours(), date))
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.message.startswith(f"Date must be in ISO-8601 'basic format'. Got '{date}'.")


@pytest.mark.parametrize("method", [as_wire("G\ud8ffT"), "GE T", "GET\r\n", "", "GÉT", "G/T"])
def test_method_that_is_not_an_http_token_is_a_bad_request(method):
    """A method that is no HTTP token (raw non-UTF-8 bytes, space, CRLF) is a 400, not a crash."""
    _, target, headers, body = ours()
    error = refused((method, target, headers, body))
    assert error.kind is FailureKind.BAD_REQUEST
    assert error.status == 400
    assert error.message == "The request method is not a valid HTTP method token."


def test_path_with_bytes_that_are_not_utf8_is_a_bad_request():
    """A raw non-UTF-8 byte in the path has no canonical URI: a 400, not UnicodeEncodeError."""
    method, target, headers, body = ours()
    error = refused((method, target.replace("/pets/", "/p\udcffets/"), headers, body))
    assert error.status == 400
    assert error.message == "The request path is not valid UTF-8; percent-encode its bytes."


@pytest.mark.parametrize(
    "host",
    [
        f"evil.example@{HOST}",
        f"{HOST}/evil",
        f"{HOST}:abc",
        f"{HOST}:70000",
        "a b",
        f"{HOST}\u3000",
    ],
)
def test_absolute_form_target_with_a_host_header_that_is_no_host_is_a_bad_request(host):
    """Host = uri-host [":" port] (RFC 9112 3.2): anything else is a 400, never read leniently."""
    method, target, headers, body = ours()
    sent = [(n, host if n.lower() == "host" else v) for n, v in headers]
    error = refused((method, f"http://{HOST}{target}", sent, body))
    assert error.status == 400
    assert error.message == "The Host header is not a valid host."


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (f"http://{HOST}:", f"{HOST}:"),  # port = *DIGIT: empty is the default
        (f"http://{HOST}:0080", f"{HOST}:080"),
        ("http://[fe80::1%25eth0]:8080", "[fe80::1%25eth0]:8080"),  # an IPv6 zone (RFC 6874)
    ],
)
def test_absolute_form_target_and_host_written_differently_pass_the_host_check(origin, host):
    """Spellings of the same host pass to the signature check (signed for another Host: 403)."""
    method, target, headers, body = ours()
    sent = [(n, host if n.lower() == "host" else v) for n, v in headers]
    error = refused((method, f"{origin}{target}", sent, body))
    assert (error.status, error.kind) == (403, FailureKind.SIGNATURE_MISMATCH)


def test_absolute_form_target_without_a_host_header_is_refused_for_its_unsigned_host():
    """HTTP/1.0 may leave Host out; the signature then covers no host, as the verifier says."""
    method, target, headers, body = ours()
    sent = [(n, v) for n, v in headers if n.lower() != "host"]
    error = refused((method, f"http://{HOST}{target}", sent, body))
    assert error.status == 403
    assert "host" in error.message.lower()


@pytest.mark.parametrize("target", ["prod/pets", "?a=1", "*", "ftp://h/prod/pets", "http:/p"])
def test_a_target_neither_a_path_nor_an_absolute_url_is_a_bad_request_saying_so(target):
    """Neither origin-form nor absolute-form (RFC 9112 3.2): a 400 that names the forms."""
    method, _, headers, body = ours()
    error = refused((method, target, headers, body))
    assert error.status == 400
    assert error.message == (
        "The request-target must be a path starting with '/' or an absolute http(s) URL."
    )
    # Refused before any signature is read: a bad request, not an incomplete signature.
    assert (error.kind, error.error_type) == (FailureKind.BAD_REQUEST, "BadRequestException")


def test_absolute_form_target_that_is_no_uri_is_a_bad_request():
    """An absolute-form target urlsplit cannot read (an open IPv6 bracket) is a 400."""
    method, _, headers, body = ours()
    error = refused((method, "http://[::1/prod/pets", headers, body))
    assert error.status == 400
    assert error.message == "The request-target is not a valid URI."


def test_raw_non_utf8_query_byte_verifies_as_its_percent_escape():
    """A raw 0xFF byte in the query is canonicalised as %FF, as API Gateway decodes the query."""
    method, target, headers, body = ours(url=f"{BASE}/prod/pets?q=%FF")
    assert "q=%FF" in target
    assert check((method, target.replace("%FF", "\udcff"), headers, body)).query == (
        ("q", "\udcff"),
    )


def test_signed_header_with_raw_non_utf8_bytes_is_a_mismatch():
    """A signed header value carrying a raw non-UTF-8 byte is hashed as bytes: a mismatch."""
    error = refused(replace_header(ours(), "X-Custom", as_wire("caf\udce9")))
    assert error.kind is FailureKind.SIGNATURE_MISMATCH


_GOOD = ours()


@pytest.mark.parametrize(
    ("argument", "value", "complaint"),
    [
        ("method", None, "method must be a str"),
        ("method", b"GET", "method must be a str"),
        ("target", None, "target must be a str"),
        ("target", "/prod/pets?a=\ud800", "target holds a lone surrogate"),
        ("headers", None, "headers must be an iterable"),
        ("headers", "0", "headers must be an iterable"),
        ("headers", {"Host": HOST}, "for a mapping pass list"),
        ("headers", 5, "headers must be an iterable"),
        ("headers", [(None, "x")], "each header must be a"),
        ("headers", [("Host",)], "each header must be a"),
        ("headers", ["ab"], "each header must be a"),
        ("headers", [("X-A", b"x")], "each header must be a"),
        ("headers", [*_GOOD[2], ("X-A", "\udfff")], "a header holds a lone surrogate"),
        ("body", "x", "body must be the received bytes"),
        ("body", None, "body must be the received bytes"),
    ],
)
def test_arguments_of_the_wrong_type_are_the_callers_error(argument, value, complaint):
    """None, str-for-bytes, malformed header pairs or lone surrogates raise InvalidConfigError."""
    request = dict(zip(("method", "target", "headers", "body"), _GOOD, strict=True))
    request[argument] = value
    with pytest.raises(InvalidConfigError, match=complaint):
        check(tuple(request.values()))


@pytest.mark.parametrize(
    ("option", "value", "complaint"),
    [
        ("lookup", None, "lookup must be a callable"),
        ("lookup", lambda _key: SECRET, "lookup must return a KnownKey or None, got str"),
        ("now", "2024-05-01", "now must be an aware datetime"),
        ("now", datetime.max.replace(tzinfo=timezone.utc), "outside the range of datetime"),
        ("now", datetime.max.replace(tzinfo=timezone(-timedelta(hours=1))), "UTC date"),
        ("max_skew", 300, "max_skew must be a timedelta"),
        ("max_skew", timedelta(minutes=-1), "max_skew must be a timedelta of zero or more"),
        ("payload_hash", "ABC", "payload_hash must be the lowercase hex SHA-256"),
        ("payload_hash", b"0" * 64, "payload_hash must be the lowercase hex SHA-256"),
    ],
)
def test_options_of_the_wrong_type_are_the_callers_error(option, value, complaint):
    """A non-callable lookup, a bad now, skew or payload hash raise InvalidConfigError."""
    method, target, headers, body = _GOOD
    kwargs = {"lookup": KEYS.get, "region": "us-east-1", "now": T, option: value}
    with pytest.raises(InvalidConfigError, match=complaint):
        verify_request(method, target, headers, body, **kwargs)


def test_body_may_be_a_bytearray_or_memoryview():
    """Any bytes-like body (bytearray, memoryview) is hashed like the same bytes."""
    method, target, headers, body = ours()
    assert check((method, target, headers, bytearray(body))).access_key == KEY
    assert check((method, target, headers, memoryview(body))).access_key == KEY


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"secret_key": "s\ud800"}, "secret key is not valid text"),
        ({"secret_key": "s", "token": "t\udcff"}, "session token is not valid text"),
        ({"secret_key": "s", "expiry": "2030-01-01"}, "key expiry must be an aware datetime"),
    ],
)
def test_known_key_rejects_values_that_cannot_be_used(kwargs, complaint):
    """KnownKey refuses a secret or token with lone surrogates and an expiry that is no datetime."""
    with pytest.raises(InvalidConfigError, match=complaint):
        KnownKey(**kwargs)


# --- the payload line per service ----------------------------------------------------------

LATTICE = "https://svc-0123.7d67968.vpc-lattice-svcs.us-east-1.on.aws"


class _UnsignedPayloadWithoutHeader(botocore.auth.SigV4Auth):
    """Signs UNSIGNED-PAYLOAD as the payload line but sends no x-amz-content-sha256."""

    def payload(self, request):  # noqa: ARG002 - botocore's signature
        return botocore.auth.UNSIGNED_PAYLOAD


class _PathAsSent(botocore.auth.SigV4Auth):
    """Signs the path as sent, neither normalised nor encoded again (S3's rule)."""

    def _normalize_url_path(self, path):
        return path


def _botocore_for(service, url, *, data=b"{}", content_sha256=None, auth_class=None, **kwargs):
    """A POST signed now by botocore for ``service``; returns the request and its signing time.

    botocore signs an x-amz-content-sha256 header's value as the payload line when it is set.
    """
    credentials = botocore.credentials.Credentials(KEY, SECRET)
    headers = {"Content-Type": "application/json"}
    if content_sha256 is not None:
        headers["X-Amz-Content-SHA256"] = content_sha256
    request = botocore.awsrequest.AWSRequest("POST", url, headers=headers, data=data)
    (auth_class or botocore.auth.SigV4Auth)(credentials, service, "us-east-1").add_auth(request)
    signed_at = datetime.strptime(request.context["timestamp"] + "+0000", "%Y%m%dT%H%M%SZ%z")
    prepared = request.prepare()
    host = urlsplit(url).hostname
    return ("POST", target_of(prepared.url), [("Host", host), *prepared.headers.items()], data), {
        "now": signed_at,
        **kwargs,
    }


def test_vpc_lattice_accepts_unsigned_payload_whatever_the_body():
    """vpc-lattice-svcs verifies x-amz-content-sha256: UNSIGNED-PAYLOAD; the body is not read."""
    request, options = _botocore_for(
        "vpc-lattice-svcs", f"{LATTICE}/items", content_sha256="UNSIGNED-PAYLOAD"
    )
    verified = check(request, service="vpc-lattice-svcs", **options)
    assert "x-amz-content-sha256" in verified.signed_headers
    other_body = (*request[:3], b"a different body")
    assert check(other_body, service="vpc-lattice-svcs", **options).access_key == KEY


def test_vpc_lattice_refuses_a_signed_payload():
    """VPC Lattice does not support payload signing: a body hash instead is refused."""
    request, options = _botocore_for("vpc-lattice-svcs", f"{LATTICE}/items")
    error = refused(request, service="vpc-lattice-svcs", **options)
    assert error.kind is FailureKind.INCOMPLETE_SIGNATURE
    assert error.status == 403
    assert error.message == (
        "vpc-lattice-svcs does not support payload signing: send the x-amz-content-sha256 "
        "header with the value UNSIGNED-PAYLOAD."
    )
    assert "payload_signing_enabled=False" in error.likely_cause


def test_execute_api_refuses_unsigned_payload_with_api_gateways_mismatch():
    """execute-api hashes the body itself: UNSIGNED-PAYLOAD gets the mismatch 403 and its cause."""
    request, options = _botocore_for("execute-api", f"{BASE}/prod/items", content_sha256=UNSIGNED)
    error = refused(request, **options)
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert error.status == 403
    assert error.error_type == "InvalidSignatureException"
    assert f"\n{hashlib.sha256(b'{}').hexdigest()}'\n\nThe String-to-Sign" in error.message
    assert error.likely_cause == (
        "the client signed UNSIGNED-PAYLOAD, which execute-api does not accept: it hashes the "
        "body it receives, so sign the body"
    )


@pytest.mark.parametrize("added", [UNSIGNED, hashlib.sha256(b"other").hexdigest()])
def test_a_content_sha256_added_after_signing_is_not_taken_for_the_clients(added):
    """An x-amz-content-sha256 outside SignedHeaders (a proxy added it) is not what the client
    signed: the signature over the body received decides, not a cause blaming the client.
    """
    (method, target, headers, body), options = _botocore_for("execute-api", f"{BASE}/prod/items")
    with_header = (method, target, [*headers, ("X-Amz-Content-SHA256", added)], body)
    verified = check(with_header, **options)
    assert "x-amz-content-sha256" not in verified.signed_headers
    error = refused((method, target, with_header[2], b"another body"), **options)
    assert not error.likely_cause.startswith("the client signed")
    assert "x-amz-content-sha256 is" not in error.likely_cause


def test_unsigned_payload_signed_without_the_header_is_recognised():
    """A signature over UNSIGNED-PAYLOAD without the header is refused, and the cause found."""
    request, options = _botocore_for(
        "execute-api", f"{BASE}/prod/items", auth_class=_UnsignedPayloadWithoutHeader
    )
    assert not any(name.lower() == "x-amz-content-sha256" for name, _ in request[2])
    error = refused(request, **options)
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert error.likely_cause.startswith("the client signed UNSIGNED-PAYLOAD")


def test_content_sha256_of_the_body_verifies():
    """An x-amz-content-sha256 that is the body's SHA-256 is accepted (and signed)."""
    body_hash = hashlib.sha256(b"{}").hexdigest()
    request, options = _botocore_for("execute-api", f"{BASE}/prod/items", content_sha256=body_hash)
    assert "x-amz-content-sha256" in check(request, **options).signed_headers


def test_content_sha256_of_another_body_is_refused():
    """A real hash in x-amz-content-sha256 must match the body received, else it is refused."""
    other = hashlib.sha256(b"the body that was signed").hexdigest()
    request, options = _botocore_for(
        "execute-api", f"{BASE}/prod/items", data=b"{}", content_sha256=other
    )
    error = refused(request, **options)
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert error.likely_cause.startswith(
        "x-amz-content-sha256 is the hash of another body than the one received"
    )


def test_content_sha256_is_checked_against_a_given_payload_hash():
    """With payload_hash= (a streamed body), the header is compared with that hash."""
    body_hash = hashlib.sha256(b"{}").hexdigest()
    request, options = _botocore_for("execute-api", f"{BASE}/prod/items", content_sha256=body_hash)
    streamed = (*request[:3], b"")
    assert check(streamed, payload_hash=body_hash, **options).access_key == KEY
    wrong = hashlib.sha256(b"[]").hexdigest()
    assert refused(streamed, payload_hash=wrong, **options).kind is FailureKind.SIGNATURE_MISMATCH


def test_streaming_content_sha256_is_refused_naming_the_value():
    """S3's chunked-signing marker is not accepted by execute-api; the log names the value."""
    marker = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    request, options = _botocore_for("execute-api", f"{BASE}/prod/items", content_sha256=marker)
    error = refused(request, **options)
    assert error.likely_cause == (
        f"x-amz-content-sha256 is '{marker}', which execute-api does not accept: sign the body"
    )


def test_path_signed_as_sent_is_recognised_as_the_cause():
    """A signer that encodes the path once (S3 style) is named as the cause of the mismatch."""
    request, options = _botocore_for("execute-api", f"{BASE}/prod/a%20b/c", auth_class=_PathAsSent)
    error = refused(request, **options)
    assert error.kind is FailureKind.SIGNATURE_MISMATCH
    assert error.likely_cause.startswith("the client signed the path as sent (encoded once")


def test_wrong_secret_gets_the_general_mismatch_cause():
    """When no usual mistake explains the mismatch, the cause lists the remaining suspects."""
    error = refused(ours(credentials=(KEY, "not-the-secret")))
    assert error.likely_cause == (
        "the secret key does not belong to the access key id, or the request changed after "
        "signing (method, path, query, a signed header or the body)"
    )


def test_s3_is_a_config_error():
    """S3's signing rules are not implemented, so verifying for service s3 is refused."""
    method, target, headers, body = ours()
    with pytest.raises(InvalidConfigError, match="S3's rules"):
        verify_request(
            method, target, headers, body, lookup=KEYS.get, region="us-east-1", service="s3", now=T
        )


# --- the likely cause of each refusal, for the server's log ----------------------------------


@pytest.mark.parametrize(
    ("request_of", "now", "cause"),
    [
        (
            ours,
            T + timedelta(minutes=6, seconds=1),
            (
                "the client's clock is 6 min 1 s behind the server's (at most 5 min is allowed): "
                "sync its clock, or sign just before sending"
            ),
        ),
        (
            ours,
            T - timedelta(hours=2),
            (
                "the client's clock is 2 h ahead of the server's (at most 5 min is allowed): "
                "sync its clock"
            ),
        ),
        (
            presigned,
            T + timedelta(days=3),
            (
                "the presigned URL was signed 3 days ago and lives 15 min: presign a new one "
                "(or a longer X-Amz-Expires)"
            ),
        ),
        (
            lambda: ours(region="eu-west-1"),
            T,
            (
                "the client signs for region 'eu-west-1' but this server is 'us-east-1': sign with "
                "region='us-east-1'"
            ),
        ),
        (
            lambda: ours(service="lambda"),
            T,
            (
                "the client signs for service 'lambda' but this server is 'execute-api': sign with "
                "service='execute-api'"
            ),
        ),
        (
            lambda: ours(credentials=("AKIDOTHER", SECRET)),
            T,
            "access key 'AKIDOTHER' is not one of the keys this server knows",
        ),
        (
            lambda: ours(credentials=(TEMP_KEY, TEMP_SECRET)),
            T,
            "the key is temporary but no session token (X-Amz-Security-Token) was sent",
        ),
        (
            lambda: ours(credentials=(TEMP_KEY, TEMP_SECRET, "other-token")),
            T,
            "the session token sent is not the one issued with this access key",
        ),
        (
            lambda: ours(credentials=(KEY, SECRET, "a-token")),
            T,
            "a session token was sent with a long-term key: send the key's own token only",
        ),
    ],
)
def test_each_refusal_names_its_likely_cause(request_of, now, cause):
    """Clock skew, expiry, scope, unknown key and token refusals each carry a precise cause."""
    error = refused(request_of(), now=now)
    assert error.likely_cause == cause


def test_likely_cause_of_a_bearer_token_never_quotes_it():
    """A bearer token sent to an IAM route is named as such, without being quoted."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    error = refused(("GET", "/prod", [("Host", HOST), ("Authorization", f"Bearer {jwt}")], b""))
    assert error.likely_cause.startswith("the Authorization header is not SigV4")
    assert jwt not in error.likely_cause


def test_every_failure_kind_has_a_default_cause():
    """A VerificationError built without a cause still says what most likely happened."""
    for kind in FailureKind:
        assert VerificationError(kind, "message").likely_cause


@settings(max_examples=500, deadline=None)
@given(
    pattern=st.text(alphabet="ab-1*", max_size=12),
    name=st.text(alphabet="ab-1", max_size=12),
)
def test_region_set_star_patterns_match_as_fnmatch_does(pattern, name):
    """The linear star-only match agrees with fnmatch wherever fnmatch has only stars to read."""
    assert _verify._glob_matches(pattern, name) == fnmatch.fnmatchcase(name, pattern)
