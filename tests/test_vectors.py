"""The official AWS SigV4 test suite (aws-c-auth ``tests/aws-signing-test-suite/v4``) by stage.

Every applicable case runs through the pure core in both placements (``Authorization`` header and
presigned query) and each stage is asserted on its own -- canonical request, string to sign,
signature, signed request -- so a failure names the step that broke. A second layer runs the same
cases through the public ``SigV4Signer`` from a URL, as users call it.

The suite is the copy in ``tests/vectors`` (or another, see ``aws_vectors``); a missing suite
fails every test here with a message saying where it was looked for: a vector test that
silently skips proves nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

import aws_vectors
import pytest
import urllib3

from apigw_iam_auth import Credentials, SignatureLocation, SigV4Signer
from apigw_iam_auth._models import SignableRequest, SigningConfig, SigningResult
from apigw_iam_auth._sigv4 import sign
from apigw_iam_auth._uri import parse_query

SUITE = aws_vectors.V4
EXPECTED_CASE_COUNT = 38

# aws-c-auth's s_skipped_headers (source/aws_signing.c; listed in SIGV4_NOTES.md section 3): the
# signer that produced these vectors. Unlike our execute-api default it signs content-length,
# which the post-x-www-form-urlencoded cases expect in their signed headers.
AWS_C_AUTH_SKIPPED_HEADERS = frozenset(
    {
        "x-amzn-trace-id",
        "user-agent",
        "connection",
        "expect",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "sec-websocket-version",
        "upgrade",
        "transfer-encoding",
    }
)

_S3_STYLE = (
    '"normalize": false: S3-style canonical URI (no dot-segment removal, no slash collapsing); '
    "execute-api always normalises"
)
# Cases that describe another service's rules; filtered out of the parametrisation (not skipped)
# and kept honest by test_excluded_cases_are_exactly_the_non_execute_api_ones.
EXCLUDED: dict[str, str] = {
    "get-relative-relative-unnormalized": _S3_STYLE,
    "get-relative-unnormalized": _S3_STYLE,
    "get-slash-dot-slash-unnormalized": _S3_STYLE,
    "get-slash-pointless-dot-unnormalized": _S3_STYLE,
    "get-slash-unnormalized": _S3_STYLE,
    "get-slashes-unnormalized": _S3_STYLE,
    "get-space-unnormalized": _S3_STYLE,
    "post-sts-header-after": (
        '"omit_session_token": true: the token is added after signing and left unsigned, an '
        "IoT/S3 quirk; execute-api requires a signed X-Amz-Security-Token"
    ),
}

# Cases whose request-target cannot be sent as is: a real client percent-encodes the path first
# (%20, %E1%88%B4), and SigV4 for non-S3 services encodes the *wire* path once more (%2520). The
# suite encodes its raw path once, so SigV4Signer, which starts from a URL, rightly differs;
# test_signer_double_encodes_a_path_that_needs_wire_encoding proves the difference is exactly that.
WIRE_UNREPRESENTABLE: dict[str, str] = {
    "get-space-normalized": "raw space in the path: sent as %20, canonical /example%2520space/",
    "get-utf8": "raw UTF-8 in the path: sent as %E1%88%B4, canonical /%25E1%2588%25B4",
}

LOCATIONS = pytest.mark.parametrize(
    "location", [SignatureLocation.HEADERS, SignatureLocation.QUERY], ids=["header", "query"]
)
_PREFIX = {SignatureLocation.HEADERS: "header", SignatureLocation.QUERY: "query"}
_MISSING = "sigv4-test-suite-missing"
_OWS = " \t"  # RFC 9110 5.6.3 optional whitespace around field values


def _case_names() -> list[str]:
    if not SUITE.is_dir():
        return []
    return sorted(entry.name for entry in SUITE.iterdir() if entry.is_dir())


ON_DISK = _case_names()
# With the suite missing, one sentinel case keeps each test collected so that it fails loudly.
CASES = [name for name in ON_DISK if name not in EXCLUDED] or [_MISSING]
SIGNER_CASES = [name for name in CASES if name not in WIRE_UNREPRESENTABLE]


def _require_suite() -> None:
    aws_vectors.require("v4")


@dataclass(frozen=True, slots=True)
class HttpMessage:
    """One HTTP/1.1 message of the suite, read as a server would read it off the wire."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        """The request-target up to ``?``, untouched (the suite's is raw, not encoded)."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The raw query after the first ``?``."""
        return self.target.partition("?")[2]


def parse_http(data: bytes) -> HttpMessage:
    """Parse request line, ``Name:value`` fields (obs-fold unfolded, RFC 9112 5.2) and body.

    The suite's request line may hold a raw space in its target, so the method is the first
    word, the version the last and the target everything between.
    """
    text = data.decode("utf-8")
    lines = text.split("\n")
    method, _, rest = lines[0].rstrip("\r").partition(" ")
    target, _, _version = rest.rpartition(" ")
    headers: list[tuple[str, str]] = []
    index = 1
    while index < len(lines):
        line = lines[index].rstrip("\r")
        index += 1
        if not line:
            break
        if line[0] in _OWS:
            # RFC 9112 5.2: replace each obs-fold with SP before interpreting the value.
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip(_OWS))
            continue
        name, colon, value = line.partition(":")
        if not colon:
            msg = f"header line without ':' in suite file: {line!r}"
            raise ValueError(msg)
        headers.append((name, value.strip(_OWS)))
    body = "\n".join(lines[index:]).encode("utf-8")
    return HttpMessage(method, target, tuple(headers), body)


@dataclass(frozen=True, slots=True)
class Case:
    """One suite folder: the request, its context and the expected files."""

    name: str
    request: HttpMessage
    context: dict[str, Any]

    def expected(self, location: SignatureLocation, stage: str) -> str:
        """An expected file's text; a trailing newline is dropped only if the file has one."""
        text = (SUITE / self.name / f"{_PREFIX[location]}-{stage}.txt").read_bytes().decode()
        return text.removesuffix("\n")

    def expected_message(self, location: SignatureLocation) -> HttpMessage:
        """The suite's signed request for ``location``, parsed like the request."""
        return parse_http(
            (SUITE / self.name / f"{_PREFIX[location]}-signed-request.txt").read_bytes()
        )

    @property
    def credentials(self) -> Credentials:
        """The case's credentials, with its session token if any."""
        creds = self.context["credentials"]
        return Credentials(creds["access_key_id"], creds["secret_access_key"], creds.get("token"))

    @property
    def timestamp(self) -> datetime:
        """The signing time (``...Z`` spelled so Python 3.10's fromisoformat reads it)."""
        return datetime.fromisoformat(self.context["timestamp"].replace("Z", "+00:00"))

    @property
    def host(self) -> str:
        """The Host header of the request."""
        return next(value for name, value in self.request.headers if name.lower() == "host")


@cache
def load(name: str) -> Case:
    """Read and parse one case (once per session)."""
    _require_suite()
    folder = SUITE / name
    context = json.loads((folder / "context.json").read_text(encoding="utf-8"))
    return Case(name, parse_http((folder / "request.txt").read_bytes()), context)


@cache
def core_sign(name: str, location: SignatureLocation) -> SigningResult:
    """Sign the case's request with the pure core, as the suite's signer was configured."""
    case = load(name)
    request = SignableRequest(
        method=case.request.method,
        path=case.request.path,  # raw: the suite's canonical URI is this path encoded once
        query=parse_query(case.request.query),
        headers=case.request.headers,
        payload_hash=hashlib.sha256(case.request.body).hexdigest(),
    )
    config = SigningConfig(
        case.context["region"],
        case.context["service"],
        unsigned_headers=AWS_C_AUTH_SKIPPED_HEADERS,
        add_content_sha256_header=case.context["sign_body"],
    )
    return sign(
        request,
        case.credentials,
        config,
        case.timestamp,
        location,
        expires=case.context["expiration_in_seconds"],
    )


def _signer(case: Case) -> SigV4Signer:
    creds = case.credentials
    return SigV4Signer(
        credentials=(creds.access_key, creds.secret_key, creds.token)
        if creds.token
        else (creds.access_key, creds.secret_key),
        region=case.context["region"],
        service=case.context["service"],
        unsigned_headers=AWS_C_AUTH_SKIPPED_HEADERS,
        add_content_sha256_header=case.context["sign_body"],
    )


def _signer_sign(case: Case) -> dict[str, str]:
    signed = _signer(case).sign(
        case.request.method,
        f"https://{case.host}{case.request.target}",
        headers=case.request.headers,
        body=case.request.body or None,
        timestamp=case.timestamp,
    )
    return dict(signed.headers)


def _signer_presign(case: Case) -> tuple[str, tuple[tuple[str, str], ...]]:
    url = _signer(case).presign(
        case.request.method,
        f"https://{case.host}{case.request.target}",
        headers=case.request.headers,
        expires=case.context["expiration_in_seconds"],
        timestamp=case.timestamp,
        body=case.request.body or None,
    )
    parts = urlsplit(url)
    return parts.path, parse_query(parts.query)


def _header_multiset(headers: tuple[tuple[str, str], ...]) -> Counter[tuple[str, str]]:
    return Counter((name.lower(), value) for name, value in headers)


def _query_multiset(query: str) -> list[tuple[str, str]]:
    # The suite writes X-Amz-* parameters in its own order, we send the canonical order; the
    # order of query parameters does not enter the signature, so decoded pairs are compared.
    return sorted(parse_query(query))


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode("utf-8"), "sha256")


def _reference_signature(case: Case, canonical: str) -> str:
    """Signature of ``canonical`` written straight from the AWS docs, independent of the core."""
    amz_date = case.timestamp.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{case.context['region']}/{case.context['service']}/aws4_request"
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
    key = ("AWS4" + case.credentials.secret_key).encode("utf-8")
    for part in (amz_date[:8], case.context["region"], case.context["service"], "aws4_request"):
        key = _hmac(key, part)
    return _hmac(key, to_sign).hex()


# --- the suite itself ---------------------------------------------------------------------------


def test_suite_is_present_with_every_case():
    """The suite is found where CI puts it and holds all 38 cases (a missing suite fails)."""
    _require_suite()
    assert len(ON_DISK) == EXPECTED_CASE_COUNT, ON_DISK


def test_excluded_cases_are_exactly_the_non_execute_api_ones():
    """EXCLUDED names real folders and is exactly the normalize=false / omit_session_token cases."""
    _require_suite()
    assert set(EXCLUDED) <= set(ON_DISK)
    non_execute_api = {
        name
        for name in ON_DISK
        if not load(name).context["normalize"] or load(name).context.get("omit_session_token")
    }
    assert set(EXCLUDED) == non_execute_api


def test_wire_unrepresentable_cases_are_exactly_the_raw_paths():
    """WIRE_UNREPRESENTABLE is exactly the included cases with a raw space or non-ASCII path."""
    _require_suite()
    raw = {
        name
        for name in CASES
        if " " in load(name).request.path or not load(name).request.path.isascii()
    }
    assert set(WIRE_UNREPRESENTABLE) == raw


# --- layer 1: the pure core, every stage --------------------------------------------------------


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_canonical_request(name, location):
    """Task 1: the core builds the suite's canonical request byte for byte."""
    assert core_sign(name, location).canonical_request == load(name).expected(
        location, "canonical-request"
    )


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_string_to_sign(name, location):
    """Task 2: the core builds the suite's string to sign."""
    assert core_sign(name, location).string_to_sign == load(name).expected(
        location, "string-to-sign"
    )


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_signature(name, location):
    """Tasks 3-4: the core computes the suite's signature."""
    assert core_sign(name, location).signature == load(name).expected(location, "signature")


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_signed_request(name, location):
    """What we would send equals the suite's signed request: method, path, headers, query, body."""
    case = load(name)
    result = core_sign(name, location)
    expected = case.expected_message(location)
    assert case.request.method == expected.method
    assert case.request.path == expected.path
    assert _header_multiset(case.request.headers + result.headers) == _header_multiset(
        expected.headers
    )
    assert _query_multiset(result.query) == _query_multiset(expected.query)
    assert case.request.body == expected.body


# --- layer 2: the public SigV4Signer, from a URL ------------------------------------------------


@pytest.mark.parametrize("name", SIGNER_CASES)
def test_signer_sign_matches_suite(name):
    """SigV4Signer.sign on the case's URL yields the suite's Authorization header."""
    case = load(name)
    expected = dict(case.expected_message(SignatureLocation.HEADERS).headers)
    headers = _signer_sign(case)
    assert headers["Authorization"] == expected["Authorization"]
    assert headers["Authorization"].endswith(
        "Signature=" + case.expected(SignatureLocation.HEADERS, "signature")
    )


def as_sent(path: str) -> str:
    """A path as requests sends it (urllib3 removes dot segments): what our links must carry."""
    return urllib3.util.parse_url(f"https://example.amazonaws.com{path}").path or "/"


@pytest.mark.parametrize("name", SIGNER_CASES)
def test_signer_presign_matches_suite(name):
    """SigV4Signer.presign on the case's URL yields the suite's X-Amz-Signature and query."""
    case = load(name)
    path, query = _signer_presign(case)
    expected = case.expected_message(SignatureLocation.QUERY)
    assert dict(query)["X-Amz-Signature"] == case.expected(SignatureLocation.QUERY, "signature")
    assert sorted(query) == _query_multiset(expected.query)
    assert path == as_sent(expected.path)  # dot segments gone, as a client sends it


@LOCATIONS
@pytest.mark.parametrize("name", sorted(WIRE_UNREPRESENTABLE))
def test_signer_double_encodes_a_path_that_needs_wire_encoding(name, location):
    """A raw-space/UTF-8 path goes out percent-encoded and is signed encoded once more."""
    case = load(name)
    lines = case.expected(location, "canonical-request").split("\n")
    # Rule: the suite's canonical URI is the raw path encoded once, i.e. exactly the wire path a
    # client sends; execute-api's canonical URI is the wire path encoded once more (RFC 3986
    # unreserved characters and '/' kept).
    wire_path = lines[1]
    lines[1] = quote(wire_path, safe="/")
    if name == "get-space-normalized":
        assert lines[1] == "/example%2520space/"
    double_encoded = _reference_signature(case, "\n".join(lines))
    if location is SignatureLocation.HEADERS:
        authorization = _signer_sign(case)["Authorization"]
        signature = authorization.rpartition("Signature=")[2]
    else:
        path, query = _signer_presign(case)
        assert path == wire_path
        signature = dict(query)["X-Amz-Signature"]
    assert signature == double_encoded
    assert signature != case.expected(location, "signature")
