"""The official AWS SigV4a test suite (aws-c-auth ``tests/aws-signing-test-suite/v4a``) by stage.

Every applicable case is signed by the public ``SigV4Signer`` with ``region_set=[the case's
region]`` at the case's timestamp, in both placements (``Authorization`` header and presigned
query), and each stage is asserted on its own: the canonical request and the string to sign
byte for byte, then -- since ECDSA signatures are randomised and never reproduce the suite's --
the suite's README procedure: our signature verifies with ``public-key.json``, the key we derive
from the case's credentials has exactly that public point (and verifies our signature too), the
suite's own signatures verify over *our* string to sign, and a string to sign changed by one
character is refused. What we would send is compared with the suite's signed request.

The suite is the copy in ``tests/vectors`` (or another, see ``aws_vectors``); a missing suite
fails every test here with a message saying where it was looked for: a vector test that skips
proves nothing.

Count: 40 folders upstream. Two ship no expected files (``WITHOUT_OUTPUTS``); eight describe
S3/IoT rules that execute-api never applies (``EXCLUDED``: the seven ``normalize: false`` cases
and ``post-sts-header-after``, the same eight as the v4 harness). That leaves 30 cases, so 30
checks per placement and 60 in all -- not the issue's 58 (29 per placement), which matches
v4's 38 folders less the 2 without outputs less the 7 unnormalised ones, i.e. it took v4a to
have v4's 38 folders and forgot ``post-sts-header-after``. No further case fails to apply: all
30 pass every stage. ``test_check_count_per_placement`` pins the number.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import aws_vectors
import pytest
from test_vectors import (
    AWS_C_AUTH_SKIPPED_HEADERS,
    WIRE_UNREPRESENTABLE,
    HttpMessage,
    as_sent,
    parse_http,
)

from apigw_iam_auth import Credentials, SignatureLocation, SigV4Signer
from apigw_iam_auth._models import SignableRequest, SigningResult
from apigw_iam_auth._sigv4a import (
    ALGORITHM_V4A,
    derive_private_key,
    load_public_key,
    public_key_from_private,
    public_key_xy,
    verify,
)
from apigw_iam_auth._uri import parse_query

SUITE = aws_vectors.V4A
EXPECTED_FOLDER_COUNT = 40
# Applicable cases per placement (module docstring); times two placements is the check count.
EXPECTED_CHECKS_PER_PLACEMENT = 30

# Folders upstream ships with only context.json and request.txt: nothing to compare against.
WITHOUT_OUTPUTS: dict[str, str] = {
    "get-vanilla-query-order-key": "upstream ships only context.json and request.txt",
    "get-vanilla-query-order-value": "upstream ships only context.json and request.txt",
}
_S3_STYLE = (
    '"normalize": false: S3-style canonical URI (no dot-segment removal, no slash collapsing); '
    "execute-api always normalises"
)
# Cases that describe another service's rules (the same list as the v4 harness).
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
NOT_APPLICABLE = {**WITHOUT_OUTPUTS, **EXCLUDED}

LOCATIONS = pytest.mark.parametrize(
    "location", [SignatureLocation.HEADERS, SignatureLocation.QUERY], ids=["header", "query"]
)
_PREFIX = {SignatureLocation.HEADERS: "header", SignatureLocation.QUERY: "query"}
_MISSING = "sigv4a-test-suite-missing"
_SIGNATURE_IN_REQUEST = re.compile(r"(?:Signature=|X-Amz-Signature=)([0-9a-f]+)")


def _folders() -> list[str]:
    if not SUITE.is_dir():
        return []
    return sorted(entry.name for entry in SUITE.iterdir() if entry.is_dir())


ON_DISK = _folders()
# With the suite missing, one sentinel case keeps each test collected so that it fails loudly.
CASES = [name for name in ON_DISK if name not in NOT_APPLICABLE] or [_MISSING]
# From a URL, a raw space or raw UTF-8 path goes out percent-encoded and is signed encoded once
# more (test_vectors.py proves that difference); those two run through sign_request only.
URL_CASES = [name for name in CASES if name not in WIRE_UNREPRESENTABLE]


def _require_suite() -> None:
    aws_vectors.require("v4a")


@dataclass(frozen=True, slots=True)
class Case:
    """One v4a suite folder: the request, its context, the public key and the expected files."""

    name: str
    request: HttpMessage
    context: dict[str, Any]
    public_xy: tuple[str, str]

    def expected(self, location: SignatureLocation, stage: str) -> str:
        """An expected file's text; a trailing newline is dropped only if the file has one."""
        text = (SUITE / self.name / f"{_PREFIX[location]}-{stage}.txt").read_bytes().decode()
        return text.removesuffix("\n")

    def expected_message(self, location: SignatureLocation) -> HttpMessage:
        """The suite's signed request for ``location``, parsed like the request."""
        return parse_http(
            (SUITE / self.name / f"{_PREFIX[location]}-signed-request.txt").read_bytes()
        )

    def given_signatures(self, location: SignatureLocation) -> list[str]:
        """The suite's signature file and the signature inside its signed request (they differ)."""
        signed = (SUITE / self.name / f"{_PREFIX[location]}-signed-request.txt").read_text()
        found = _SIGNATURE_IN_REQUEST.search(signed)
        assert found is not None
        return [self.expected(location, "signature"), found.group(1)]

    @property
    def credentials(self) -> Credentials:
        """The case's credentials, with its session token if any."""
        creds = self.context["credentials"]
        return Credentials(creds["access_key_id"], creds["secret_access_key"], creds.get("token"))

    @property
    def timestamp(self) -> datetime:
        """The signing time (``...Z`` spelled so Python 3.10's fromisoformat reads it)."""
        return datetime.fromisoformat(self.context["timestamp"].replace("Z", "+00:00"))


@cache
def load(name: str) -> Case:
    """Read and parse one case (once per session)."""
    _require_suite()
    folder = SUITE / name
    context = json.loads((folder / "context.json").read_text(encoding="utf-8"))
    point = json.loads((folder / "public-key.json").read_text(encoding="utf-8"))
    return Case(
        name,
        parse_http((folder / "request.txt").read_bytes()),
        context,
        (point["X"].lower(), point["Y"].lower()),
    )


def _signer(case: Case) -> SigV4Signer:
    creds = case.credentials
    return SigV4Signer(
        region_set=[case.context["region"]],
        service=case.context["service"],
        credentials=(creds.access_key, creds.secret_key, creds.token)
        if creds.token
        else (creds.access_key, creds.secret_key),
        unsigned_headers=AWS_C_AUTH_SKIPPED_HEADERS,
        add_content_sha256_header=case.context["sign_body"],
    )


@cache
def signed(name: str, location: SignatureLocation) -> SigningResult:
    """Sign the case with SigV4Signer.sign_request at its timestamp, as its signer was set up."""
    case = load(name)
    request = SignableRequest(
        method=case.request.method,
        path=case.request.path,  # raw: the suite's canonical URI is this path encoded once
        query=parse_query(case.request.query),
        headers=case.request.headers,
        payload_hash=hashlib.sha256(case.request.body).hexdigest(),
    )
    return _signer(case).sign_request(
        request,
        location=location,
        expires=case.context["expiration_in_seconds"],
        timestamp=case.timestamp,
    )


@cache
def derived_public(access_key: str, secret_key: str) -> tuple[str, str]:
    """The public point of the key we derive from these credentials, as (X, Y) hex."""
    return public_key_xy(public_key_from_private(derive_private_key(access_key, secret_key)))


def _flip_last(text: str) -> str:
    """``text`` with its last character replaced by another one."""
    return text[:-1] + ("1" if text[-1] != "1" else "2")


def _header_multiset(headers: tuple[tuple[str, str], ...]) -> Counter[tuple[str, str]]:
    return Counter((name.lower(), value) for name, value in headers)


def _without_signature(headers: tuple[tuple[str, str], ...]) -> Counter[tuple[str, str]]:
    """Headers with the Authorization value cut before its (randomised) signature."""
    return _header_multiset(
        tuple(
            (name, value.rpartition("Signature=")[0] if name.lower() == "authorization" else value)
            for name, value in headers
        )
    )


def _query_without_signature(query: str) -> list[tuple[str, str]]:
    return sorted(pair for pair in parse_query(query) if pair[0] != "X-Amz-Signature")


# --- the suite itself ---------------------------------------------------------------------------


def test_suite_is_present_with_every_folder():
    """The v4a suite is found where CI puts it and holds all 40 upstream folders."""
    _require_suite()
    assert len(ON_DISK) == EXPECTED_FOLDER_COUNT, ON_DISK


def test_not_applicable_cases_are_exactly_the_listed_ones():
    """Excluded folders are exactly the normalize=false / omit_session_token / no-output ones."""
    _require_suite()
    assert set(NOT_APPLICABLE) <= set(ON_DISK)
    without_outputs = {
        name for name in ON_DISK if not (SUITE / name / "header-canonical-request.txt").is_file()
    }
    assert without_outputs == set(WITHOUT_OUTPUTS)
    non_execute_api = set()
    for name in set(ON_DISK) - without_outputs:
        context = json.loads((SUITE / name / "context.json").read_text(encoding="utf-8"))
        if not context["normalize"] or context.get("omit_session_token"):
            non_execute_api.add(name)
    assert non_execute_api == set(EXCLUDED)


def test_check_count_per_placement():
    """30 cases apply per placement, 60 checks in all (the module docstring explains why not 58)."""
    _require_suite()
    assert len(CASES) == EXPECTED_CHECKS_PER_PLACEMENT, CASES
    assert len(CASES) * len(_PREFIX) == 2 * EXPECTED_CHECKS_PER_PLACEMENT


def test_every_applicable_case_has_every_expected_file():
    """Each applicable case has public-key.json and the four files of both placements."""
    _require_suite()
    for name in CASES:
        for prefix in _PREFIX.values():
            for stage in ("canonical-request", "string-to-sign", "signature", "signed-request"):
                assert (SUITE / name / f"{prefix}-{stage}.txt").is_file(), (name, prefix, stage)
        assert (SUITE / name / "public-key.json").is_file(), name


# --- each stage, both placements ----------------------------------------------------------------


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_canonical_request(name, location):
    """The signer builds the suite's SigV4a canonical request byte for byte."""
    assert signed(name, location).canonical_request == load(name).expected(
        location, "canonical-request"
    )


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_string_to_sign(name, location):
    """The signer builds the suite's string to sign (algorithm, date, region-less scope, hash)."""
    to_sign = signed(name, location).string_to_sign
    assert to_sign.startswith(ALGORITHM_V4A + "\n")
    assert to_sign == load(name).expected(location, "string-to-sign")


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_signature_verifies_with_the_vectors_public_key(name, location):
    """Our signature verifies over the suite's string to sign with public-key.json's point."""
    case = load(name)
    result = signed(name, location)
    public = load_public_key(*case.public_xy)
    assert verify(public, result.signature, case.expected(location, "string-to-sign"))


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_derived_key_is_the_vectors_and_verifies_our_signature(name, location):
    """The key derived from the case's credentials is public-key.json's and verifies ours."""
    case = load(name)
    creds = case.credentials
    xy = derived_public(creds.access_key, creds.secret_key)
    assert xy == case.public_xy
    result = signed(name, location)
    assert verify(load_public_key(*xy), result.signature, result.string_to_sign)


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_suite_signatures_verify_over_our_string_to_sign(name, location):
    """Both of the suite's own signatures verify over the string to sign we computed."""
    case = load(name)
    public = load_public_key(*case.public_xy)
    ours = signed(name, location).string_to_sign
    for signature in case.given_signatures(location):
        assert verify(public, signature, ours)


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_tampered_string_to_sign_is_refused(name, location):
    """Our signature and the suite's fail over a string to sign changed in one character."""
    case = load(name)
    public = load_public_key(*case.public_xy)
    result = signed(name, location)
    tampered = _flip_last(result.string_to_sign)
    assert not verify(public, result.signature, tampered)
    for signature in case.given_signatures(location):
        assert not verify(public, signature, tampered)


@LOCATIONS
@pytest.mark.parametrize("name", CASES)
def test_signed_request(name, location):
    """What we would send equals the suite's signed request, up to the randomised signature."""
    case = load(name)
    result = signed(name, location)
    expected = case.expected_message(location)
    assert case.request.method == expected.method
    assert case.request.path == expected.path
    assert case.request.body == expected.body
    if location is SignatureLocation.HEADERS:
        assert _without_signature(case.request.headers + result.headers) == _without_signature(
            expected.headers
        )
        assert result.query == case.expected(location, "canonical-request").split("\n")[2]
    else:
        assert result.headers == ()
        assert _header_multiset(case.request.headers) == _header_multiset(expected.headers)
        assert _query_without_signature(result.query) == _query_without_signature(expected.query)
        assert dict(parse_query(result.query))["X-Amz-Signature"] == result.signature


# --- the same cases from a URL, as users call sign() and presign() -------------------------------


def _url(case: Case) -> str:
    host = next(value for name, value in case.request.headers if name.lower() == "host")
    return f"https://{host}{case.request.target}"


@pytest.mark.parametrize("name", URL_CASES)
def test_signer_sign_from_url(name):
    """SigV4Signer.sign on the case's URL signs the suite's canonical request; ours verifies."""
    case = load(name)
    result = _signer(case).sign(
        case.request.method,
        _url(case),
        headers=case.request.headers,
        body=case.request.body or None,
        timestamp=case.timestamp,
    )
    assert result.signing is not None
    assert result.signing.canonical_request == case.expected(
        SignatureLocation.HEADERS, "canonical-request"
    )
    authorization = result.headers["Authorization"]
    expected = dict(case.expected_message(SignatureLocation.HEADERS).headers)["Authorization"]
    assert authorization.rpartition("Signature=")[0] == expected.rpartition("Signature=")[0]
    assert result.headers["X-Amz-Region-Set"] == case.context["region"]
    public = load_public_key(*case.public_xy)
    signature = authorization.rpartition("Signature=")[2]
    assert verify(public, signature, case.expected(SignatureLocation.HEADERS, "string-to-sign"))


@pytest.mark.parametrize("name", URL_CASES)
def test_signer_presign_from_url(name):
    """SigV4Signer.presign on the case's URL carries the suite's X-Amz-* query; ours verifies."""
    case = load(name)
    url = _signer(case).presign(
        case.request.method,
        _url(case),
        headers=case.request.headers,
        expires=case.context["expiration_in_seconds"],
        timestamp=case.timestamp,
        body=case.request.body or None,
    )
    parts = urlsplit(url)
    expected = case.expected_message(SignatureLocation.QUERY)
    assert parts.path == as_sent(expected.path)  # dot segments gone, as a client sends it
    assert _query_without_signature(parts.query) == _query_without_signature(expected.query)
    signature = dict(parse_query(parts.query))["X-Amz-Signature"]
    public = load_public_key(*case.public_xy)
    assert verify(public, signature, case.expected(SignatureLocation.QUERY, "string-to-sign"))
