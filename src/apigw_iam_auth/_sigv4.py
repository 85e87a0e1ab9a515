"""The SigV4 core: pure functions from plain values to a signature and where to put it.

No I/O, no clock, no environment: the timestamp and credentials are arguments. One ``sign``
serves both placements; header and query mode differ only where values are placed. Step names
follow the AWS documentation ("Create a canonical request", "Create a string to sign", "Calculate
the signature") and botocore's ``SigV4Auth``, and each matches a file of the official test suite.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from datetime import datetime, timezone
from functools import lru_cache
from typing import NamedTuple

from apigw_iam_auth._models import (
    Credentials,
    SignableRequest,
    SignatureLocation,
    SigningConfig,
    SigningResult,
)
from apigw_iam_auth._uri import canonical_path, canonical_query, encoded_query, join_query
from apigw_iam_auth.errors import InvalidConfigError, UnsignableRequestError

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "HTTP_TOKEN",
    "MAX_EXPIRES",
    "SIGNING_HEADER_NAMES",
    "TERMINATOR",
    "Plan",
    "amz_date",
    "amz_date_of_epoch",
    "canonical_headers",
    "canonical_request",
    "check_expires",
    "credential_scope",
    "derive_signing_key",
    "parse_amz_date",
    "payload_hash",
    "sign",
    "sign_at",
    "sign_with_plan",
    "signature",
    "signing_plan",
    "string_to_sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"  # the last element of every credential scope
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Presigned URLs live at most seven days (SigV4 query auth limit; botocore, JS and Ruby SDKs).
MAX_EXPIRES = 7 * 24 * 60 * 60

# Headers the signer itself owns. Stale copies from an earlier attempt (a retry, a redirect)
# are dropped before signing, as botocore does, so a request can be re-signed any number of times.
SIGNING_HEADER_NAMES = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)
_SIGNER_QUERY = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    }
)
# RFC 9110 5.1 field-name = token, 9.1 method = token; 5.5: no CR, LF or NUL in a field value.
HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def amz_date(timestamp: datetime) -> str:
    """ISO 8601 basic UTC without fractions (``20150830T123600Z``), as ``X-Amz-Date`` wants."""
    if not isinstance(timestamp, datetime) or timestamp.utcoffset() is None:
        raise InvalidConfigError(
            "timestamp must be an aware datetime, e.g. datetime.now(timezone.utc)"
        )
    try:
        seconds = math.floor(timestamp.timestamp())
    except (OverflowError, ValueError, OSError):
        raise InvalidConfigError("timestamp is outside the range a UTC date can hold") from None
    return amz_date_of_epoch(seconds)


def amz_date_of_epoch(seconds: int) -> str:
    """:func:`amz_date` of a POSIX time in whole seconds (for clocks that read ``time.time``)."""
    last_seconds, last_text = _last_amz_date
    if seconds == last_seconds:
        return last_text
    try:
        utc = time.gmtime(seconds)
    except (OverflowError, ValueError, OSError):
        raise InvalidConfigError("timestamp is outside the range a UTC date can hold") from None
    text = (
        f"{utc.tm_year:04d}{utc.tm_mon:02d}{utc.tm_mday:02d}"
        f"T{utc.tm_hour:02d}{utc.tm_min:02d}{utc.tm_sec:02d}Z"
    )
    _remember_amz_date((seconds, text))
    return text


# Formatting costs more than the rest of the date handling; a busy client signs many requests
# within one second. One entry, replaced whole (atomic), so threads never see a torn pair.
_last_amz_date: tuple[int, str] = (-(2**63), "")


def _remember_amz_date(entry: tuple[int, str]) -> None:
    global _last_amz_date  # noqa: PLW0603 - a one-entry cache, replaced atomically
    _last_amz_date = entry


def parse_amz_date(text: str) -> datetime:
    """The inverse of :func:`amz_date` (raises ValueError)."""
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def credential_scope(date: str, region: str, service: str) -> str:
    """``YYYYMMDD/region/service/aws4_request``: the key derivation path, spelled out."""
    return f"{date}/{region}/{service}/{TERMINATOR}"


def payload_hash(body: bytes | bytearray) -> str:
    """Lowercase hex SHA-256 of the body; the empty body has a well-known constant."""
    if not body:
        return EMPTY_SHA256
    return hashlib.sha256(body).hexdigest()


def canonical_headers(
    headers: tuple[tuple[str, str], ...] | list[tuple[str, str]],
    unsigned: frozenset[str],
    added: tuple[tuple[str, str], ...] = (),
) -> tuple[str, str]:
    """The canonical headers block and the signed-headers list.

    Names lowercased and sorted; values trimmed with inner whitespace runs collapsed to one space
    (quotes are not special); repeats joined with ``,`` in the order they were given. ``added``
    are the signer's own headers, already canonical (lowercase names, clean values).
    """
    merged: dict[str, str] = {}
    for name, value in headers:
        key = _header_key(name)
        if "\r" in value or "\n" in value or "\x00" in value:
            raise UnsignableRequestError(
                f"header {name!r} has a CR, LF or NUL in its value; HTTP cannot carry it"
            )
        if key in unsigned:
            continue
        folded = " ".join(value.split())
        merged[key] = f"{merged[key]},{folded}" if key in merged else folded
    merged.update(added)
    names = sorted(merged)
    block = "".join([f"{name}:{merged[name]}\n" for name in names])
    return block, ";".join(names)


# Requests to many URLs of one API carry one set of headers: its canonical form is kept.
_canonical_headers = lru_cache(maxsize=256)(canonical_headers)


@lru_cache(maxsize=256)
def _header_key(name: str) -> str:
    """Validate a header name (an HTTP token) once, and lowercase it."""
    if not HTTP_TOKEN.fullmatch(name):
        raise UnsignableRequestError(
            f"header name {name!r} is not a valid HTTP field name; remove or rename it"
        )
    return name.lower()


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers_block: str,
    signed_headers: str,
    body_hash: str,
) -> str:
    """Task 1 of SigV4: the six canonical lines joined with newlines."""
    return (
        f"{method}\n{canonical_path(path)}\n{query}\n{headers_block}\n{signed_headers}\n{body_hash}"
    )


def string_to_sign(date_time: str, scope: str, canonical: str) -> str:
    """Task 2 of SigV4: algorithm, time, scope and the hash of the canonical request."""
    # surrogateescape: a verifier canonicalises raw bytes that need not be UTF-8.
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{date_time}\n{scope}\n{digest}"


@lru_cache(maxsize=64)
def derive_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """Task 3 of SigV4: four chained HMACs. Cached: the key only changes once a day.

    ``lru_cache`` is thread-safe and bounded, so long runs with rotating credentials keep a
    constant footprint.
    """
    key = hmac.digest(("AWS4" + secret_key).encode("utf-8"), date.encode("ascii"), "sha256")
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, part.encode("ascii"), "sha256")
    return key


def signature(signing_key: bytes, to_sign: str) -> str:
    """Task 4 of SigV4: hex HMAC-SHA256 of the string to sign."""
    return _hmac_hex(_hmac_states(signing_key), to_sign)


def _hmac_hex(states: tuple[hashlib._Hash, hashlib._Hash], message: str) -> str:
    inner, outer = states[0].copy(), states[1].copy()
    inner.update(message.encode())
    outer.update(inner.digest())
    return outer.hexdigest()


class _Scope(NamedTuple):
    """Everything about a signature that only changes with the day, the key or the scope."""

    scope: str
    credential: str  # "AKID/scope", as it appears in Authorization and X-Amz-Credential
    authorization_prefix: str
    states: tuple[hashlib._Hash, hashlib._Hash]


@lru_cache(maxsize=64)
def _scope(access_key: str, secret_key: str, date: str, region: str, service: str) -> _Scope:
    """Built once per (credentials, day, scope): bounded, so rotation keeps memory flat."""
    scope = credential_scope(date, region, service)
    credential = f"{access_key}/{scope}"
    return _Scope(
        scope,
        credential,
        f"{ALGORITHM} Credential={credential}, SignedHeaders=",
        _hmac_states(derive_signing_key(secret_key, date, region, service)),
    )


@lru_cache(maxsize=64)
def _hmac_states(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states with the key's inner and outer pads already absorbed (RFC 2104).

    Resuming copies of them computes the same HMAC as ``hmac.digest`` in half the time, since
    the two pad blocks are hashed once per signing key instead of once per signature.
    """
    block = key.ljust(64, b"\x00")  # SigV4 keys are 32 bytes, under SHA-256's 64-byte block
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
    return inner, outer


def check_expires(expires: object) -> int:
    """A presigned URL's lifetime: a whole number of seconds from 1 to 7 days."""
    if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= MAX_EXPIRES:
        raise InvalidConfigError(
            f"expires must be a whole number of seconds from 1 to {MAX_EXPIRES} (7 days), "
            f"got {expires!r}"
        )
    return expires


def sign(
    request: SignableRequest,
    credentials: Credentials,
    config: SigningConfig,
    timestamp: datetime,
    location: SignatureLocation = SignatureLocation.HEADERS,
    expires: int = 900,
) -> SigningResult:
    """Sign ``request`` at ``timestamp`` and say what to add to it.

    In header mode the result carries ``Authorization``, ``X-Amz-Date`` and, with temporary
    credentials, ``X-Amz-Security-Token``. In query mode those facts become ``X-Amz-*`` query
    parameters (the token among them, so it is signed) and ``expires`` bounds the URL's life.
    Either way ``result.query`` is the complete query string to send. Stale signing headers
    and parameters from an earlier attempt (a retry, a redirect) are ignored and replaced.

    Everything but the time is worked out once per distinct request (:func:`signing_plan`);
    per signature only the date is spliced in and the two hashes and the HMAC are computed.
    """
    return sign_at(request, credentials, config, amz_date(timestamp), location, expires)


def sign_at(
    request: SignableRequest,
    credentials: Credentials,
    config: SigningConfig,
    date_time: str,
    location: SignatureLocation = SignatureLocation.HEADERS,
    expires: int = 900,
) -> SigningResult:
    """:func:`sign` with the ``X-Amz-Date`` value already formatted (see :func:`amz_date`)."""
    day = date_time[:8]
    plan = signing_plan(request, credentials, config, day, location, expires)
    return sign_with_plan(plan, date_time)


def signing_plan(
    request: SignableRequest,
    credentials: Credentials,
    config: SigningConfig,
    day: str,
    location: SignatureLocation = SignatureLocation.HEADERS,
    expires: int = 900,
) -> Plan:
    """Everything about a signature but its time: valid for every signature on ``day``.

    Kept in a bounded cache; a caller that signs one request shape repeatedly may also keep
    the plan itself and call :func:`sign_with_plan` per signature.
    """
    if location is SignatureLocation.QUERY:
        check_expires(expires)
    return _cached_plan(
        request,
        credentials.access_key,
        credentials.secret_key,
        credentials.token,
        config,
        day,
        location,
        expires,
    )


def sign_with_plan(plan: Plan, date_time: str) -> SigningResult:
    """The per-signature work: splice in the time, hash, and compute the HMAC.

    ``date_time`` must fall on the plan's day (the scope's date is part of the plan).
    """
    canonical = plan.canonical_head + date_time + plan.canonical_tail
    to_sign = string_to_sign(date_time, plan.scope.scope, canonical)
    sig = _hmac_hex(plan.scope.states, to_sign)
    if plan.location is SignatureLocation.HEADERS:
        headers = (
            *plan.headers_head,
            ("X-Amz-Date", date_time),
            *plan.headers_tail,
            ("Authorization", plan.authorization_head + sig),
        )
        return SigningResult(headers, plan.query_head, sig, canonical, to_sign)
    query = f"{plan.query_head}{date_time}{plan.query_tail}&X-Amz-Signature={sig}"
    return SigningResult((), query, sig, canonical, to_sign)


# Stands in for the X-Amz-Date value while a plan is built, which is then cut where it stands.
# NUL occurs nowhere else in a canonical request: paths and queries are percent-encoded, header
# values with NUL are refused, and the slot itself is placed after encoding.
_DATE_SLOT = "\x00"


class Plan(NamedTuple):
    """A signature's time-independent parts, each cut where the X-Amz-Date value goes."""

    location: SignatureLocation
    scope: _Scope
    canonical_head: str
    canonical_tail: str
    query_head: str  # header mode: the whole query; query mode: up to the date
    query_tail: str
    headers_head: tuple[tuple[str, str], ...]  # placed before X-Amz-Date (header mode)
    headers_tail: tuple[tuple[str, str], ...]  # placed after it, before Authorization
    authorization_head: str  # the Authorization value up to the signature itself


def _plan(
    request: SignableRequest,
    access_key: str,
    secret_key: str,
    token: str | None,
    config: SigningConfig,
    day: str,
    location: SignatureLocation,
    expires: int,
) -> Plan:
    """Tasks 1 and 2 of SigV4 with a slot for the time."""
    keys = _scope(access_key, secret_key, day, config.region, config.service)
    skipped = _skipped_headers(config.unsigned_headers)
    if location is SignatureLocation.HEADERS:
        # In canonical (lowercase) order, which is also the order they are sent in.
        placed = [("X-Amz-Date", _DATE_SLOT)]
        if config.add_content_sha256_header:
            placed.insert(0, ("X-Amz-Content-SHA256", request.payload_hash))
        if token is not None:
            placed.append(("X-Amz-Security-Token", token))
        added = tuple([(name.lower(), value) for name, value in placed])
        headers_block, signed_headers = _canonical_headers(request.headers, skipped, added)
        query = _canonical_user_query(request.query)
    else:
        headers_block, signed_headers = _canonical_headers(request.headers, skipped, ())
        user_query = _user_query(request.query)
        amz = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", keys.credential),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", signed_headers),
        ]
        if token is not None:
            amz.append(("X-Amz-Security-Token", token))
        query = join_query([*encoded_query(user_query + amz), ("X-Amz-Date", _DATE_SLOT)])
    canonical = canonical_request(
        request.method, request.path, query, headers_block, signed_headers, request.payload_hash
    )
    canonical_head, _, canonical_tail = canonical.partition(_DATE_SLOT)
    if location is SignatureLocation.HEADERS:
        date_at = placed.index(("X-Amz-Date", _DATE_SLOT))
        return Plan(
            location,
            keys,
            canonical_head,
            canonical_tail,
            query,
            "",
            tuple(placed[:date_at]),
            tuple(placed[date_at + 1 :]),
            f"{keys.authorization_prefix}{signed_headers}, Signature=",
        )
    query_head, _, query_tail = query.partition(_DATE_SLOT)
    return Plan(
        location,
        keys,
        canonical_head,
        canonical_tail,
        query_head,
        query_tail,
        (),
        (),
        "",
    )


# Bounded; a service calling many distinct URLs only recomputes more often.
_cached_plan = lru_cache(maxsize=256)(_plan)


def _user_query(query: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """The caller's query pairs, without presigning parameters of an earlier signature."""
    return [pair for pair in query if pair[0] not in _SIGNER_QUERY]


@lru_cache(maxsize=256)
def _canonical_user_query(query: tuple[tuple[str, str], ...]) -> str:
    """Kept per query: calls to many paths of one API often share their query string."""
    return canonical_query(_user_query(query))


@lru_cache(maxsize=16)
def _skipped_headers(unsigned: frozenset[str]) -> frozenset[str]:
    return unsigned | SIGNING_HEADER_NAMES
