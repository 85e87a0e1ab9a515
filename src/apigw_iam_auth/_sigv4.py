"""The SigV4 core: pure functions from plain values to a signature and where to put it.

No I/O, no clock, no environment: the timestamp and credentials are arguments. One ``sign``
serves both placements; header and query mode differ only where values are placed. Step names
follow the AWS documentation ("Create a canonical request", "Create a string to sign", "Calculate
the signature") and botocore's ``SigV4Auth``, and each matches a file of the official test suite.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from functools import lru_cache, partial
from typing import NamedTuple, cast

from apigw_iam_auth import _sigv4a
from apigw_iam_auth._models import (
    HTTP_TOKEN,
    Credentials,
    SignableRequest,
    SignatureLocation,
    SigningConfig,
    SigningResult,
)
from apigw_iam_auth._uri import (
    canonical_path,
    encode_query_component,
    encoded_query,
    join_query,
    parse_query,
    sorted_plain_query,
)
from apigw_iam_auth.errors import InvalidConfigError, UnsignableRequestError

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "HTTP_TOKEN",
    "MAX_EXPIRES",
    "SIGNER_QUERY",
    "SIGNING_HEADERS",
    "SIGNING_HEADER_NAMES",
    "TERMINATOR",
    "UNSIGNED_PAYLOAD",
    "HeaderSet",
    "amz_date",
    "canonical_headers",
    "canonical_request",
    "check_expires",
    "derive_signing_key",
    "epoch_seconds",
    "folded",
    "header_set",
    "headers_to_sign",
    "own_headers",
    "parse_amz_date",
    "payload_hash",
    "sign",
    "sign_parts",
    "signature",
    "signer_parameters",
    "string_to_sign",
    "unsigned_payload_needs_a_header",
    "user_query",
]

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"  # the last element of every credential scope
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Signed in place of the body hash where the service allows it (VPC Lattice requires it).
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Presigned URLs live at most seven days (SigV4 query auth limit; botocore, JS and Ruby SDKs).
MAX_EXPIRES = 7 * 24 * 60 * 60
# API Gateway accepts a header-signed request dated up to this far either side of its clock.
SIGNATURE_WINDOW = timedelta(minutes=5)

# Headers the signer itself owns. Stale copies from an earlier attempt (a retry, a redirect)
# are dropped before signing, as botocore does, so a request can be re-signed any number of times.
SIGNING_HEADERS = (
    "Authorization",
    "X-Amz-Content-SHA256",
    "X-Amz-Date",
    "X-Amz-Region-Set",
    "X-Amz-Security-Token",
)
SIGNING_HEADER_NAMES = frozenset(name.lower() for name in SIGNING_HEADERS)
# Query parameters the signer itself owns (presigned form); an earlier signature's are dropped.
SIGNER_QUERY = frozenset(
    {
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-Region-Set",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    }
)


def amz_date(timestamp: datetime) -> str:
    """ISO 8601 basic UTC without fractions (``20150830T123600Z``), as ``X-Amz-Date`` wants."""
    day, seconds = divmod(epoch_seconds(timestamp), _SECONDS_PER_DAY)
    return _x_amz_date(_day_stamp(day), seconds)


def epoch_seconds(timestamp: datetime) -> int:
    """Whole seconds since 1970-01-01 UTC of an aware datetime X-Amz-Date can write.

    This is the core's timestamp: the signer reads the system clock as a number, and a number
    splits into the day (the key's scope) and the time of day with two integer steps.
    """
    if not isinstance(timestamp, datetime) or timestamp.utcoffset() is None:
        given = "a naive one" if isinstance(timestamp, datetime) else type(timestamp).__name__
        raise InvalidConfigError(
            f"timestamp must be an aware datetime, e.g. datetime.now(timezone.utc); got {given}"
        )
    epoch = (timestamp - _UNIX_EPOCH) // _ONE_SECOND  # exact: a float loses the microseconds
    if not _FIRST_SECOND <= epoch <= _LAST_SECOND:
        raise InvalidConfigError("timestamp is outside the range a UTC date can hold")
    return epoch


def _day_stamp(day: int) -> str:
    """``YYYYMMDD`` of a day counted from 1970-01-01: the date in X-Amz-Date and the scope.

    Runs once a day per key, so it is also where a time outside those years that did not come
    from :func:`epoch_seconds` (a clock corrected past 9999 by a server's ``Date``) is refused.
    """
    try:
        date = _FIRST_DAY_OF_1970 + timedelta(days=day)
    except OverflowError:
        raise InvalidConfigError(
            "the time to sign is outside the years X-Amz-Date can write (0001 to 9999)"
        ) from None
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"


def _x_amz_date(date: str, seconds: int) -> str:
    """X-Amz-Date, ``YYYYMMDDTHHMMSSZ``, of a day's stamp and a second of that day.

    Both :func:`amz_date` and the signing path write it here; POSIX time has no leap seconds.
    """
    return f"{date}T{_HOURS_MINUTES[seconds // 60]}{_TWO_DIGITS[seconds % 60]}Z"


_SECONDS_PER_DAY = 86400
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIRST_DAY_OF_1970 = _UNIX_EPOCH.date()  # date arithmetic: gmtime fails before 1970 on Windows
_ONE_SECOND = timedelta(seconds=1)
# X-Amz-Date has four year digits.
_FIRST_SECOND = (datetime(1, 1, 1, tzinfo=timezone.utc) - _UNIX_EPOCH) // _ONE_SECOND
_LAST_SECOND = (
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc) - _UNIX_EPOCH
) // _ONE_SECOND
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(60))
# "HHMM" of each minute of a day: one lookup, not two divisions and two (80 ns per signature).
_HOURS_MINUTES = tuple(f"{hour}{minute}" for hour in _TWO_DIGITS[:24] for minute in _TWO_DIGITS)


def parse_amz_date(text: str) -> datetime:
    """The inverse of :func:`amz_date` (raises ValueError)."""
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


def payload_hash(body: bytes | bytearray | memoryview) -> str:
    """Lowercase hex SHA-256 of the body; the empty body has a well-known constant."""
    if not body:
        return EMPTY_SHA256
    return hashlib.sha256(body).hexdigest()


HeaderPairs = Iterable[tuple[str | bytes, str | bytes]]
# Unsigned header names, lowercase: str, and also bytes where the caller passes the names as
# requests and httpx may hold them (a header set's signed form then reads a name undecoded).
Unsigned = frozenset[str | bytes]


def canonical_headers(headers: HeaderPairs, unsigned: frozenset[str]) -> tuple[str, str]:
    """The canonical headers block and the signed-headers list of headers as received.

    Names lowercased and sorted; values trimmed with inner whitespace runs collapsed to one space
    (quotes are not special); repeats joined with ``,`` in the order they were given. Every
    header is taken as it is, signing headers included: this is the verifier's reading of a
    request.
    """
    merged, _ = _header_map(headers, unsigned, signing=False)
    names = sorted(merged)
    return "".join([f"{name}:{merged[name]}\n" for name in names]), ";".join(names)


def _header_map(
    headers: HeaderPairs, unsigned: Unsigned, *, signing: bool = True
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The headers to sign by lowercase name, and the signing headers of an earlier attempt.

    Names and values may be bytes, as requests and httpx hold them; they are read as Latin-1.
    When ``signing``, signing headers already present (a retry, a redirect) are not signed but
    returned, as the request spells them, for the caller to remove (the signer writes fresh
    ones), and non-ASCII values are refused: requests sends str values as Latin-1, httpx bytes
    as they are, so which bytes such a value becomes is the client's choice and cannot be
    signed reliably (RFC 9110 5.5 also asks for ASCII); so are 0x1C-0x1F, which botocore
    folds as whitespace and aws-c-auth does not.
    """
    merged: dict[str, str] = {}
    stale: list[str] = []
    for name, raw in headers:  # pairs: the signer and the verifier checked them
        text = name if type(name) is str else _text(name)
        if not HTTP_TOKEN.fullmatch(text):
            raise UnsignableRequestError(
                f"header name {text!r} is not a valid HTTP field name; remove or rename it"
            )
        key = text.lower()
        value = raw if type(raw) is str else _text(raw)
        printable = value.isprintable()
        if not printable and _FORBIDDEN_IN_VALUE.search(value):
            raise UnsignableRequestError(
                f"header {text!r} has a CR, LF or NUL in its value; HTTP cannot carry it"
            )
        if signing and key in SIGNING_HEADER_NAMES:
            stale.append(text)
            continue
        if key in unsigned:
            continue
        if signing:
            _check_signable(text, value, printable, second_host=key == "host" and key in merged)
        value = folded(value)
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    return merged, tuple(stale)


def _check_signable(name: str, value: str, printable: bool, *, second_host: bool) -> None:
    """Refuse a header whose signature could not be relied on (see :func:`_header_map`).

    A second Host is refused by name: joined to the first, it would name no host at all.
    """
    if not value.isascii():
        raise UnsignableRequestError(
            f"header {name!r} has a non-ASCII value; percent-encode or base64 it"
        )
    if not printable and _SEPARATORS.search(value):
        raise UnsignableRequestError(
            f"header {name!r} has a control character 0x1C-0x1F in its value, which AWS's "
            "signers read differently (botocore as a space, the AWS CRT as itself) and HTTP "
            "does not allow; remove it"
        )
    if second_host:
        raise UnsignableRequestError(
            "the request has more than one Host header, which HTTP does not allow "
            "(RFC 9112 3.2); keep the one to sign"
        )


def folded(value: str) -> str:
    """A header value as SigV4 signs it: trimmed, each inner run of whitespace one space.

    Whitespace is ASCII's (space, tab, CR, LF, VT, FF), as aws-c-auth (the AWS CRT), the AWS SDK
    for Java and Ruby's aws-sigv4 fold it. botocore's ``str.split`` also takes 0x1C-0x1F and
    Unicode spaces (U+0085, U+00A0, U+3000...), the JavaScript SDK's regex the Unicode spaces:
    the signer refuses such values (non-ASCII, 0x1C-0x1F), and the verifier reads them as the
    majority does (API Gateway's own reading is unverified).
    """
    if value.isascii() and value.isprintable():  # only spaces to fold (nearly every value)
        return " ".join(value.split())
    return _ASCII_WHITESPACE_RUNS.sub(" ", value.strip(_ASCII_WHITESPACE))


_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"
_ASCII_WHITESPACE_RUNS = re.compile(f"[{_ASCII_WHITESPACE}]+")


class HeaderSet(NamedTuple):
    """A caller's headers as SigV4 signs them, around slots for the signer's own headers.

    The canonical block is ``pieces[0] + value_0 + pieces[1] + ... + pieces[-1]``, the values
    being those of the signer's own headers the set was made for (:func:`own_headers`), in
    their sorted order.
    """

    host: str  # the Host signed: the caller's, else the URL's
    pieces: tuple[str, ...]
    signed: str  # the SignedHeaders list
    stale: tuple[str, ...]  # signing headers of an earlier attempt, as the request spells them


def header_set(
    headers: HeaderPairs,
    unsigned: Unsigned,
    own: tuple[str, ...],
    default_host: str | None,
) -> HeaderSet:
    """The :class:`HeaderSet` of one set of headers (:func:`headers_to_sign` keeps them).

    ``own`` names the signer's headers (:func:`own_headers`); ``default_host`` is signed when
    the headers hold no Host (None: the headers must hold one).
    """
    merged, stale = _header_map(headers, unsigned)
    if "host" not in merged:
        if default_host is None:
            raise UnsignableRequestError("request has no Host header; SigV4 always signs host")
        merged["host"] = default_host
    slots = dict.fromkeys(own, "")
    names = sorted({**merged, **slots})
    pieces: list[str] = []
    lines: list[str] = []
    for name in names:
        if name in slots:
            lines.append(f"{name}:")
            pieces.append("".join(lines))
            lines = ["\n"]
        else:
            lines.append(f"{name}:{merged[name]}\n")
    pieces.append("".join(lines))
    return HeaderSet(merged["host"], tuple(pieces), ";".join(names), stale)


def headers_to_sign(
    headers: HeaderPairs,
    unsigned: Unsigned,
    own: tuple[str, ...],
    default_host: str | None,
) -> HeaderSet:
    """:func:`header_set`, kept when the pairs can be hashed (see the table in signer.py).

    Kept under the pairs as the client holds them, and under the same pairs without the values
    of unsigned headers (:func:`_signed_form`): a POST whose ``Content-Length`` follows its
    body, or a new ``X-Amzn-Trace-Id`` per request, finds the set made for the first request.
    """
    key = (headers, unsigned, own, default_host)
    try:
        found = _HEADER_SETS.get(key)
    except (TypeError, ValueError):  # unhashable pairs (lists, a memoryview...): read uncached
        return header_set(headers, unsigned, own, default_host)
    if found is None:
        signed_form = _signed_form(headers, unsigned)
        signed_key = None if signed_form is None else (signed_form, unsigned, own, default_host)
        found = None if signed_key is None else _HEADER_SETS.get(signed_key)
        if found is None:
            found = header_set(headers, unsigned, own, default_host)
            _keep(signed_key, found)
        _keep(key, found)
    return found


def _signed_form(headers: HeaderPairs, unsigned: Unsigned) -> tuple[object, ...] | None:
    """The pairs, each unsigned header's value left out: all its :class:`HeaderSet` reads.

    An unsigned header's name stays (it is checked, and may be a stale signing header); its
    value is only checked for CR, LF and NUL, here. None where a pair needs
    :func:`header_set`'s own reading (and its error).
    """
    form: list[object] = []
    try:
        for pair in headers:
            name, value = pair
            # str or a subclass (aiohttp's istr), or bytes, looked up as such: a bytes name is
            # found only if ``unsigned`` holds bytes too (the signer's does). Not found, a pair
            # stays whole: the key is then only less often shared, never wrongly.
            lowered = name.lower() if isinstance(name, _NAME_TYPES) else _text(name).lower()
            if lowered not in unsigned:
                form.append(pair)
            elif (
                value if type(value) is str else _text(value)
            ).isprintable() or not _FORBIDDEN_IN_VALUE.search(_text(value)):
                form.append(name)
            else:
                return None
    except (TypeError, ValueError, UnsignableRequestError):
        return None
    return tuple(form)


_NAME_TYPES = (str, bytes)  # a tuple: isinstance with a union built per call costs more
# Header sets by (pairs, unsigned names, own names, default Host), the pairs as the client
# holds them or in their signed form; see the table in signer.py.
_HEADER_SETS: dict[tuple[object, ...], HeaderSet] = {}
_MAX_HEADER_SETS = 256


def _keep(key: tuple[object, ...] | None, found: HeaderSet) -> None:
    if key is None:
        return
    if len(_HEADER_SETS) >= _MAX_HEADER_SETS:  # bounded: cleared when full, as origins are
        _HEADER_SETS.clear()
    _HEADER_SETS[key] = found


def own_headers(
    config: SigningConfig, token: str | None, location: SignatureLocation
) -> tuple[str, ...]:
    """The headers the signer adds and signs, lowercase and sorted (none when presigning)."""
    if location is not SignatureLocation.HEADERS:  # presigned: the values go in the query
        return ()
    return tuple(name.lower() for name, _ in _placed_headers(config, token, "", ""))


def _placed_headers(
    config: SigningConfig, token: str | None, date_time: str, body_hash: str
) -> list[tuple[str, str]]:
    """The signer's own headers in header mode, in canonical (sorted) order."""
    placed = [("X-Amz-Date", date_time)]
    if config.add_content_sha256_header:
        placed.insert(0, ("X-Amz-Content-SHA256", body_hash))
    if config.region_set is not None:
        placed.append(("X-Amz-Region-Set", ",".join(config.region_set)))
    if token is not None:
        placed.append(("X-Amz-Security-Token", token))
    return placed


_FORBIDDEN_IN_VALUE = re.compile(r"[\r\n\x00]")
# The ASCII separators, whitespace to str.split (so to botocore's folding) but not to
# aws-c-auth's: no signature over them is sure to verify.
_SEPARATORS = re.compile(r"[\x1c-\x1f]")


def _text(part: object) -> str:
    """A header name or value; bytes (as requests and httpx hold them) are read as Latin-1."""
    if isinstance(part, str):
        return part
    if isinstance(part, bytes):
        return part.decode("latin-1")
    raise UnsignableRequestError(
        f"header names and values must be str or bytes, got {type(part).__name__}"
    )


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers_block: str,
    signed_headers: str,
    body_hash: str,
) -> str:
    """Task 1 of SigV4: the six canonical lines joined with newlines (``path`` as sent)."""
    canonical_uri = canonical_path(path)
    return f"{method}\n{canonical_uri}\n{query}\n{headers_block}\n{signed_headers}\n{body_hash}"


def string_to_sign(date_time: str, scope: str, canonical: str, algorithm: str = ALGORITHM) -> str:
    """Task 2 of SigV4: algorithm, time, scope and the hash of the canonical request."""
    # surrogateescape: a verifier canonicalises raw bytes that need not be UTF-8.
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{algorithm}\n{date_time}\n{scope}\n{digest}"


def derive_signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """Task 3 of SigV4: four chained HMACs, from the secret down to the day's scope."""
    key = hmac.digest(("AWS4" + secret_key).encode("utf-8"), date.encode("ascii"), "sha256")
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, part.encode("ascii"), "sha256")
    return key


def signature(signing_key: bytes, to_sign: str) -> str:
    """Task 4 of SigV4: hex HMAC-SHA256 of the string to sign."""
    return hmac.new(signing_key, to_sign.encode(), "sha256").hexdigest()


def check_expires(expires: object) -> int:
    """A presigned URL's lifetime: a whole number of seconds from 1 to 7 days."""
    if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= MAX_EXPIRES:
        shown = repr(expires) if not isinstance(expires, int) or abs(expires) < _SHOWN else "..."
        raise InvalidConfigError(
            f"expires must be a whole number of seconds from 1 to {MAX_EXPIRES} (7 days), "
            f"got {shown}"
        )
    return expires


_SHOWN = 10**30  # a larger int is not shown: its text would be huge (and raises past 4300 digits)


class _Keys(NamedTuple):
    """Everything about a signature that only changes with the credentials, day and scope."""

    algorithm: str
    date: str  # the day's YYYYMMDD
    scope: str
    authorization_prefix: str  # "AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders="
    query_credential: str  # the X-Amz-Credential value, percent-encoded
    query_token: str | None  # the X-Amz-Security-Token value, percent-encoded
    sign: Callable[[str], str]  # task 4: the string to sign -> the hex signature


@lru_cache(maxsize=64)
def _keys(
    access_key: str,
    secret_key: str,
    token: str | None,
    day: int,
    region: str | None,
    service: str,
) -> _Keys:
    """The day's signing key and scope for one set of credentials (see the table in signer.py).

    SigV4 (``region`` given): besides the key itself, the HMAC pads are absorbed once (RFC
    2104), so each signature resumes copies of two SHA-256 states, half the work of
    ``hmac.new``. SigV4a (``region`` None): the scope names no region and the key is the ECDSA
    P-256 key derived from the credentials (:mod:`apigw_iam_auth._sigv4a`).
    """
    date = _day_stamp(day)
    if region is None:
        algorithm = _sigv4a.ALGORITHM_V4A
        scope = f"{date}/{service}/{TERMINATOR}"
        private_key = _sigv4a.derive_private_key(access_key, secret_key)
        sign = _sigv4a.signer_for(private_key)
    else:
        algorithm = ALGORITHM
        scope = f"{date}/{region}/{service}/{TERMINATOR}"
        key = derive_signing_key(secret_key, date, region, service).ljust(64, b"\x00")
        inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        sign = partial(_hmac_hex, (inner, outer))
    return _Keys(
        algorithm,
        date,
        scope,
        f"{algorithm} Credential={access_key}/{scope}, SignedHeaders=",
        encode_query_component(f"{access_key}/{scope}"),
        None if token is None else encode_query_component(token),
        sign,
    )


def _hmac_hex(states: tuple[hashlib._Hash, hashlib._Hash], message: str) -> str:
    inner, outer = states[0].copy(), states[1].copy()
    inner.update(message.encode())
    outer.update(inner.digest())
    return outer.hexdigest()


def sign(
    request: SignableRequest,
    credentials: Credentials,
    config: SigningConfig,
    timestamp: datetime | int,
    location: SignatureLocation = SignatureLocation.HEADERS,
    expires: int = 900,
) -> SigningResult:
    """Sign ``request`` at ``timestamp`` and say what to add to it.

    ``timestamp`` is an aware datetime, or whole seconds since 1970 (:func:`epoch_seconds`), as
    the signer reads its clock. In header mode the result carries ``Authorization``,
    ``X-Amz-Date`` and, with temporary credentials, ``X-Amz-Security-Token``. In query mode
    those facts become ``X-Amz-*`` query parameters (the token among them, so it is signed) and
    ``expires`` bounds the URL's life. Either way ``result.query`` is the complete canonical
    query string. Stale signing headers and parameters from an earlier attempt (a retry, a
    redirect) are ignored and replaced.
    """
    epoch = timestamp if type(timestamp) is int else epoch_seconds(cast("datetime", timestamp))
    method, path, pairs, headers, body_hash = request
    if location is SignatureLocation.HEADERS:
        _check_header_signable(pairs, body_hash, config)
    own = own_headers(config, credentials.token, location)
    return sign_parts(
        method,
        canonical_path(path),
        join_query([pair for pair in encoded_query(pairs) if pair[0] not in SIGNER_QUERY]),
        headers_to_sign(headers, config.unsigned_headers, own, None),
        body_hash,
        credentials,
        config,
        epoch,
        location,
        expires,
    )


def _check_header_signable(
    pairs: tuple[tuple[str, str], ...], body_hash: str, config: SigningConfig
) -> None:
    """Refuse what a header signature over the caller's own query cannot carry.

    ``UNSIGNED-PAYLOAD`` is signed only with ``x-amz-content-sha256`` saying so, which the
    signer adds where the service or ``payload=`` asks for it (a link cannot: see
    :func:`sign_parts`); an earlier presigned URL's ``X-Amz-*`` parameters are left out of the
    signature while the request, sent as given, would carry them. (:meth:`SigV4Signer.sign`
    never meets either: it checks the hash and writes the URL it returns.)
    """
    if body_hash == UNSIGNED_PAYLOAD and not config.add_content_sha256_header:
        raise UnsignableRequestError(
            f"{config.service} learns of UNSIGNED-PAYLOAD only from the x-amz-content-sha256 "
            "header, which this signer does not send: build it with payload='unsigned' (or "
            "add_content_sha256_header=True)"
        )
    stale = sorted({name for name, _ in pairs if name in SIGNER_QUERY})
    if stale:
        raise UnsignableRequestError(
            f"the query holds {', '.join(stale)}, a presigned URL's parameters, which a header "
            "signature leaves out: remove them from the query sent"
        )


def user_query(raw: str) -> tuple[str, str]:
    """The canonical query string of a raw query, and the query to send in its place.

    An earlier signature's ``X-Amz-*`` parameters (:data:`SIGNER_QUERY`) are dropped from both.
    The common plain query is only sorted (:func:`sorted_plain_query`) and goes as written;
    any other goes with each pair in canonical encoding, so that every reader sees the pairs
    signed, in the caller's order: SigV4 sorts the pairs only to sign them, and the order of a
    repeated name's values (``sort=price&sort=name``) is the backend's to read.
    """
    text = sorted_plain_query(raw)
    if text is not None:
        return text, raw
    kept = [pair for pair in encoded_query(parse_query(raw)) if pair[0] not in SIGNER_QUERY]
    wire = "&".join([f"{name}={value}" for name, value in kept])
    return join_query(kept), wire  # join_query sorts kept: wire first


def unsigned_payload_needs_a_header(service: str) -> str:
    """Why no presigned URL can sign ``UNSIGNED-PAYLOAD``: said wherever that is refused."""
    return (
        f"{service} learns of UNSIGNED-PAYLOAD only from the x-amz-content-sha256 header, "
        "which a URL does not carry"
    )


def signer_parameters(query: str) -> str:
    """The signer's own ``X-Amz-*`` pieces of a presigned query, in their order."""
    return "&".join(
        [piece for piece in query.split("&") if piece.partition("=")[0] in SIGNER_QUERY]
    )


def sign_parts(
    method: str,
    canonical_uri: str,
    query: str,
    headers: HeaderSet,
    body_hash: str,
    credentials: Credentials,
    config: SigningConfig,
    epoch: int,
    location: SignatureLocation = SignatureLocation.HEADERS,
    expires: int = 900,
) -> SigningResult:
    """:func:`sign` of a request in parts: canonical path, query and header set.

    ``query`` is the canonical query string of the caller's parameters (:func:`user_query`).

    ``headers`` must have been made for :func:`own_headers` of the same config, credentials
    and location: the signer's values fill its slots in that order.
    """
    region_set = config.region_set
    day, seconds = divmod(epoch, _SECONDS_PER_DAY)
    keys = _keys(
        credentials.access_key,
        credentials.secret_key,
        credentials.token,
        day,
        None if region_set is not None else config.region,
        config.service,
    )
    date_time = _x_amz_date(keys.date, seconds)
    if config.unsigned_payload:
        body_hash = UNSIGNED_PAYLOAD
    token = credentials.token
    signed = headers.signed
    if location is SignatureLocation.HEADERS:
        pieces = headers.pieces
        if len(pieces) == 2:  # noqa: PLR2004 - one slot: X-Amz-Date alone, the common case
            placed = [("X-Amz-Date", date_time)]
            block = f"{pieces[0]}{date_time}{pieces[1]}"
        elif len(pieces) == 3 and token is not None:  # noqa: PLR2004 - X-Amz-Date and the token
            # The common case on AWS compute (a role's session), in _placed_headers's order.
            placed = [("X-Amz-Date", date_time), ("X-Amz-Security-Token", token)]
            block = f"{pieces[0]}{date_time}{pieces[1]}{token}{pieces[2]}"
        else:
            placed = _placed_headers(config, token, date_time, body_hash)  # the slots' order
            values = (
                f"{value}{piece}" for (_, value), piece in zip(placed, pieces[1:], strict=True)
            )
            block = "".join([pieces[0], *values])
        canonical_query_text = query
    else:
        if body_hash == UNSIGNED_PAYLOAD:  # the service's rule, payload="unsigned", or given
            raise InvalidConfigError(
                f"a link cannot be presigned with an unsigned payload: "
                f"{unsigned_payload_needs_a_header(config.service)}; sign with headers instead "
                "(presign=False; on the command line, call without --presign)"
            )
        check_expires(expires)
        block = headers.pieces[0]
        amz = [
            ("X-Amz-Algorithm", keys.algorithm),
            ("X-Amz-Credential", keys.query_credential),
            ("X-Amz-Date", date_time),
            ("X-Amz-Expires", str(expires)),
            ("X-Amz-SignedHeaders", encode_query_component(signed)),
        ]
        if region_set is not None:
            amz.append(("X-Amz-Region-Set", encode_query_component(",".join(region_set))))
        if keys.query_token is not None:
            amz.append(("X-Amz-Security-Token", keys.query_token))
        split = (piece.partition("=") for piece in query.split("&")) if query else ()
        canonical_query_text = join_query([(name, value) for name, _, value in split] + amz)
    canonical = f"{method}\n{canonical_uri}\n{canonical_query_text}\n{block}\n{signed}\n{body_hash}"
    to_sign = string_to_sign(date_time, keys.scope, canonical, keys.algorithm)
    sig = keys.sign(to_sign)
    if location is SignatureLocation.HEADERS:
        placed.append(("Authorization", f"{keys.authorization_prefix}{signed}, Signature={sig}"))
        to_place, query_text = tuple(placed), canonical_query_text
    else:
        to_place, query_text = (), f"{canonical_query_text}&X-Amz-Signature={sig}"
    # One C call: the NamedTuple's own constructor (a Python function) costs 0.2 µs more.
    return tuple.__new__(
        SigningResult,
        (to_place, query_text, sig, canonical, to_sign, headers.stale, body_hash),
    )
