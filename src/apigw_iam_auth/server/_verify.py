"""Verify SigV4-signed requests the way API Gateway does with IAM authorization.

For services that *receive* signed calls (a local stand-in for API Gateway, a proxy, a test
double). The verifier recomputes the signature with the same core the signer uses, from the raw
request as received: the request-target exactly as it came on the request line, the header list,
and the body bytes. It is pure: no I/O, no clock (``now`` is an argument), no environment.

Failures raise :class:`VerificationError` whose ``message`` is API Gateway's 403 text for that
case (AWS's common SigV4 validation messages), so clients and
their error handling can be tested offline against the real wording. Checks run in the order
AWS's validators use: authentication present, parameters complete, host signed, date format,
clock skew or link expiry, credential scope, access key and session token, then the payload
and the signature.

Every refusal also carries ``likely_cause``: one log-safe sentence on what the client probably
did wrong (its clock, its region, a body changed after signing...), for server-side logs. For a
signature mismatch the verifier tries the usual mistakes (an unsigned payload, an empty body, a
path encoded once) against the signature received, so the cause is confirmed, not guessed.

The canonical request's payload line depends on the service (:data:`UNSIGNED_PAYLOAD_SERVICES`):

* ``execute-api`` and every other supported service: the SHA-256 of the body received, as API
  Gateway computes it. An ``x-amz-content-sha256`` header, when sent,
  must be that hash: ``UNSIGNED-PAYLOAD`` or another body's hash gets the signature-mismatch 403
  (every reference signer signs the header's value, so that is what API Gateway answers them);
* ``vpc-lattice-svcs``: ``UNSIGNED-PAYLOAD``, and the header must say so, as VPC Lattice
  documents; the body is not read.

One cache (a server verifies for one scope, so it holds one entry in practice):

=================  ======================  ==========  ==================================
cache              key                     bound       why it pays
=================  ======================  ==========  ==================================
``signing_config`` region, service         16, LRU     the scope's names are checked once,
                                                       not on every request
=================  ======================  ==========  ==================================
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from http import HTTPStatus
from urllib.parse import urlsplit

from apigw_iam_auth import _sigv4, _sigv4a
from apigw_iam_auth._models import SignatureLocation, SigningConfig
from apigw_iam_auth._region import partition_of
from apigw_iam_auth._sigv4a import ALGORITHM_V4A
from apigw_iam_auth._uri import canonical_query, host_header, is_utf8, parse_query
from apigw_iam_auth.errors import (
    FailureKind,
    InvalidConfigError,
    UnsignableRequestError,
    VerificationError,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_MAX_SKEW",
    "UNSIGNED_PAYLOAD",
    "UNSIGNED_PAYLOAD_SERVICES",
    "FailureKind",
    "KeyLookup",
    "KnownKey",
    "VerificationError",
    "VerifiedRequest",
    "signing_config",
    "verify_request",
]

DEFAULT_MAX_SKEW = _sigv4.SIGNATURE_WINDOW
# The account id of AWS's documentation examples; used where no account is configured.
DEFAULT_ACCOUNT_ID = "123456789012"
# API Gateway answers every authentication and authorization refusal with 403 Forbidden; the one
# place this package's server side writes that status.
# Refusals of a request line no signature could cover (a method that is no token, a bad path).
BAD_REQUEST = HTTPStatus.BAD_REQUEST.value
# The payload line (and x-amz-content-sha256 value) of a request whose body is not signed
# (S3's sig-v4-header-based-auth page; botocore auth.UNSIGNED_PAYLOAD).
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Services that take UNSIGNED_PAYLOAD instead of the body's hash. VPC Lattice: "does not support
# payload signing. You must send an x-amz-content-sha256 header with the value set to
# UNSIGNED-PAYLOAD" (docs.aws.amazon.com/vpc-lattice/latest/ug/sigv4-authenticated-requests.html).
# API Gateway hashes the body it received, as do Lambda function URLs
# ("Lambda doesn't support unsigned payloads"). S3 also documents it, but see _UNSUPPORTED below.
UNSIGNED_PAYLOAD_SERVICES = frozenset({"vpc-lattice-svcs"})
# S3 signs with rules this verifier does not implement (the path neither normalised nor encoded
# twice, the payload line taken from x-amz-content-sha256, chunked signing): verifying its
# requests here would accept and refuse the wrong ones.
_UNSUPPORTED_SERVICES = frozenset({"s3", "s3-object-lambda", "s3express"})
_CONTENT_SHA256 = "x-amz-content-sha256"
_SHOWN_VALUE = 40  # longest x-amz-content-sha256 value quoted in a log line (STREAMING-... fits)

# ASCII digits only: \d and str.isdigit() also accept '٢' or '²', which int() and the key
# derivation (an ASCII date) then choke on.
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_EXPIRES = re.compile(r"[0-9]{1,10}")
_PAYLOAD_HASH = re.compile(r"[0-9a-f]{64}")
# What an access key id looks like (AKIA..., ASIA..., AKIDEXAMPLE): uppercase letters and digits.
# A secret key is mixed-case base64 with '/' and '+', so a value of another shape may be one,
# sent in the key id's place by a client that swapped the two: log lines do not quote it.
_KEY_ID_SHAPE = re.compile(r"[A-Z][A-Z0-9]{3,127}")
# A Credential quoted in a log line: a key id, then scope elements (lowercase, digits, '-', '_').
_CREDENTIAL_SHAPE = re.compile(_KEY_ID_SHAPE.pattern + r"(?:/[a-z0-9_-]{0,64}){0,8}")
_AUTH_SPLIT = re.compile(r"[,\s]+")
_AUTH_PARAMS = ("Credential", "Signature", "SignedHeaders")
_ALGORITHMS = frozenset({_sigv4.ALGORITHM, ALGORITHM_V4A})
_QUERY_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
_INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 - a message
_EXPIRED_TOKEN = "The security token included in the request is expired"  # noqa: S105 - a message


@dataclass(frozen=True, slots=True)
class KnownKey:
    """What the verifier knows about one access key id.

    ``token`` is set for temporary (``ASIA...``) credentials: requests must then carry exactly
    that session token. ``expiry`` (aware) is when the token stops being accepted.
    """

    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    account_id: str = DEFAULT_ACCOUNT_ID
    expiry: datetime | None = None

    def __post_init__(self) -> None:
        """Refuse values that could never verify anything."""
        if not isinstance(self.secret_key, str) or not self.secret_key:
            raise InvalidConfigError("secret key must be a non-empty string")
        if self.token is not None and (not isinstance(self.token, str) or not self.token):
            raise InvalidConfigError("session token must be a non-empty string or None")
        for label, text in (("secret key", self.secret_key), ("session token", self.token)):
            if text is not None and not is_utf8(text):
                raise InvalidConfigError(f"{label} is not valid text (it holds a lone surrogate)")
        if not isinstance(self.account_id, str) or not self.account_id:
            raise InvalidConfigError("account id must be a non-empty string such as 123456789012")
        if self.expiry is not None and (
            not isinstance(self.expiry, datetime) or self.expiry.utcoffset() is None
        ):
            raise InvalidConfigError("key expiry must be an aware datetime")


# The query parameters that make a presigned link work for whoever holds them: never shown.
SECRET_QUERY = frozenset({"X-Amz-Signature", "X-Amz-Security-Token"})


def repr_with(value: object, **shown: str) -> str:
    """A dataclass's repr with the given fields shown as ``shown`` says instead of their values."""
    parts = [
        f"{name}={shown[name] if name in shown else repr(getattr(value, name))}"
        for name in value.__dataclass_fields__  # type: ignore[attr-defined]
    ]
    return f"{type(value).__name__}({', '.join(parts)})"


# Maps an access key id to what is known about it, e.g. ``dict.get``.
KeyLookup = Callable[[str], KnownKey | None]


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """Who signed an accepted request, how, and what it asked for.

    ``path`` is the wire path (still percent-encoded); ``query`` the decoded pairs in the order
    received, the signature's own ``X-Amz-*`` parameters included.
    """

    access_key: str
    account_id: str
    location: SignatureLocation
    signed_headers: tuple[str, ...]
    signed_at: datetime
    path: str
    query: tuple[tuple[str, str], ...] = field(repr=False)
    expires: int | None = None
    region: str = "us-east-1"  # verified for; its partition names the caller (arn:aws-cn:...)

    def __repr__(self) -> str:
        """The fields, the query's signature and session token masked: together, a live link."""
        query = tuple(
            (name, "<redacted>" if name in SECRET_QUERY else value) for name, value in self.query
        )
        return repr_with(self, query=repr(query))

    @property
    def principal_arn(self) -> str:
        """The caller as IAM names it in policy decisions and denial messages.

        Worked out when asked: the partition comes from botocore's data, which verifying a
        request never reads.
        """
        partition = partition_of(self.region)
        return f"arn:{partition}:iam::{self.account_id}:user/{self.access_key}"


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the request says about its own signature, before any of it is trusted."""

    location: SignatureLocation
    credential: str
    signature: str
    signed_headers: tuple[str, ...]
    date: str
    token: str | None
    expires: int | None
    query_pairs: tuple[tuple[str, str], ...]
    algorithm: str = _sigv4.ALGORITHM
    region_set: str | None = None  # SigV4a: X-Amz-Region-Set as received


def verify_request(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    lookup: KeyLookup,
    region: str,
    service: str = "execute-api",
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    payload_hash: str | None = None,
) -> VerifiedRequest:
    """Check a received request's SigV4 signature (header or presigned) as API Gateway would.

    ``target`` is the request-target exactly as received (``/prod/a%20b?x=1``); ``headers`` the
    received header list (repeats allowed); ``body`` the received bytes (or pass
    ``payload_hash``, the hex SHA-256 of a body you streamed). ``lookup`` maps an access key id
    to a :class:`KnownKey` or None, e.g. ``keys.get``. ``now`` is the aware current time.
    ``service`` decides the payload rule: ``execute-api`` hashes the body and
    refuses ``UNSIGNED-PAYLOAD``; ``vpc-lattice-svcs`` requires it. S3 is not supported.

    Returns who signed it; raises :class:`VerificationError` with API Gateway's message.
    Arguments of the wrong type (or text no server could have decoded from bytes) are the
    caller's bug and raise :class:`~apigw_iam_auth.errors.InvalidConfigError` instead.
    """
    config = signing_config(region, service)
    now = _check_arguments(method, target, body, lookup, now, max_skew, payload_hash)
    header_list = _header_list(headers)
    if not _sigv4.HTTP_TOKEN.fullmatch(method):
        # RFC 9110 9.1: a method is a token. API Gateway answers such a request line before
        # it looks at any signature; canonicalising it would mean hashing bytes of no method.
        raise _bad_request("The request method is not a valid HTTP method token.")
    path, raw_query = _split_target(target, header_list)
    pairs = parse_query(raw_query)
    claim = _read_claim(header_list, pairs)
    signed_at = _parse_date(claim.date)
    _check_time(claim, signed_at, now, max_skew)
    access_key, scope = _check_scope(claim, config)
    found = lookup(access_key)
    if found is not None and not isinstance(found, KnownKey):
        raise InvalidConfigError(
            f"lookup must return a KnownKey or None, got {type(found).__name__}"
        )
    known = _check_key(found, claim.token, access_key, now)

    declared = _first(header_list, _CONTENT_SHA256, fold=True)
    if service in UNSIGNED_PAYLOAD_SERVICES:
        _check_unsigned_payload(declared, service)
        body_hash = UNSIGNED_PAYLOAD
    elif payload_hash is None:
        body_hash = _sigv4.payload_hash(bytes(body) if isinstance(body, memoryview) else body)
    else:
        body_hash = payload_hash
    canonical = _canonical_request(method, path, claim, header_list, body_hash)
    to_sign = _sigv4.string_to_sign(claim.date, scope, canonical, claim.algorithm)
    if declared is not None and declared != body_hash and _CONTENT_SHA256 in claim.signed_headers:
        # Signers sign the header's value as the payload line, so this is what API Gateway's
        # own hash of the body makes of such a request: a mismatch. Unsigned, the header was
        # added after signing (a proxy): the signature, over the body, says whether it holds.
        raise _mismatch(canonical, to_sign, _declared_cause(declared, service))
    check = _signature_check(claim, access_key, known, (region, service, scope))
    if not check(canonical):
        raise _mismatch(
            canonical, to_sign, _Probe(check, canonical).cause(path, service, body_hash)
        )
    return VerifiedRequest(
        access_key=access_key,
        account_id=known.account_id,
        location=claim.location,
        signed_headers=claim.signed_headers,
        signed_at=signed_at,
        path=path,
        query=pairs,
        expires=claim.expires,
        region=region,
    )


@lru_cache(maxsize=16)
def signing_config(region: str, service: str) -> SigningConfig:
    """The validated scope this verifier checks against; InvalidConfigError for bad names.

    Refuses the S3 family, whose signing rules differ from the ones verified here.
    """
    config = SigningConfig(region, service)
    if service in _UNSUPPORTED_SERVICES:
        raise InvalidConfigError(
            f"service {service!r} signs with S3's rules (path not normalised or encoded twice, "
            "payload from x-amz-content-sha256), which this verifier does not implement; "
            "use execute-api, vpc-lattice-svcs or another service with the standard rules"
        )
    return config


def _is_wire_text(text: str) -> bool:
    """True if a server could have decoded ``text`` from the bytes it read.

    Latin-1 yields any of U+0000..U+00FF; UTF-8 with surrogateescape maps each undecodable byte
    to one of U+DC80..U+DCFF. Other lone surrogates come from no bytes at all.
    """
    return is_utf8(text, "surrogateescape")


def _check_arguments(
    method: object,
    target: object,
    body: object,
    lookup: object,
    now: object,
    max_skew: object,
    payload_hash: object,
) -> datetime:
    """Refuse arguments no server could have received: the caller's bug, not a 403.

    Returns ``now`` in UTC, so the skew arithmetic below cannot overflow a foreign zone.
    """
    for name, value in (("method", method), ("target", target)):
        if not isinstance(value, str):
            raise InvalidConfigError(f"{name} must be a str, got {type(value).__name__}")
        if not _is_wire_text(value):
            raise InvalidConfigError(
                f"{name} holds a lone surrogate: pass text decoded from the received bytes "
                "(latin-1, or UTF-8 with errors='surrogateescape')"
            )
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise InvalidConfigError(
            f"body must be the received bytes, got {type(body).__name__}; encode text first"
        )
    if payload_hash is not None and (
        not isinstance(payload_hash, str) or not _PAYLOAD_HASH.fullmatch(payload_hash)
    ):
        raise InvalidConfigError("payload_hash must be the lowercase hex SHA-256 of the body")
    if not callable(lookup):
        raise InvalidConfigError("lookup must be a callable such as keys.get")
    if not isinstance(max_skew, timedelta) or max_skew < timedelta(0):
        raise InvalidConfigError("max_skew must be a timedelta of zero or more")
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidConfigError("now must be an aware datetime, e.g. datetime.now(timezone.utc)")
    try:
        return now.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidConfigError("now is outside the range a UTC date can hold") from None


def _header_list(headers: object) -> list[tuple[str, str]]:
    """The received headers as a list of ``(name, value)`` str pairs, or InvalidConfigError."""
    if isinstance(headers, (str, bytes, bytearray, memoryview, Mapping)) or not isinstance(
        headers, Iterable
    ):
        raise InvalidConfigError(
            "headers must be an iterable of (name, value) pairs such as [('Host', 'h')], "
            f"got {type(headers).__name__} (for a mapping pass list(headers.items()))"
        )
    pairs: list[tuple[str, str]] = []
    for item in headers:
        if not (
            isinstance(item, (tuple, list))
            and len(item) == 2  # noqa: PLR2004 - a (name, value) pair
            and isinstance(item[0], str)
            and isinstance(item[1], str)
        ):
            raise InvalidConfigError(
                f"each header must be a (name, value) pair of str, got {type(item).__name__}"
            )
        name, value = item
        if not (_is_wire_text(name) and _is_wire_text(value)):
            raise InvalidConfigError(
                "a header holds a lone surrogate: pass text decoded from the received bytes "
                "(latin-1, or UTF-8 with errors='surrogateescape')"
            )
        pairs.append((name, value))
    return pairs


def _bad_request(message: str) -> VerificationError:
    """A request line API Gateway would refuse (400) before looking at any signature."""
    return VerificationError(FailureKind.BAD_REQUEST, message, status=BAD_REQUEST)


def _split_target(target: str, headers: list[tuple[str, str]]) -> tuple[str, str]:
    """Path and raw query of an origin-form (``/p?q``) or absolute-form request-target.

    An absolute-form target names the host itself, which RFC 9112 section 3.2.2 has a server
    use instead of the Host header: one naming another host than the Host signed is refused.
    """
    if target.startswith("/"):
        path, _, query = target.partition("?")
    else:
        try:
            parts = urlsplit(target)
            scheme = parts.scheme.lower()
            if scheme not in {"http", "https"} or not parts.netloc:  # "prod/pets", "*", "?a"
                raise _bad_request(
                    "The request-target must be a path starting with '/' or an absolute "
                    "http(s) URL."
                )
            named = host_header(scheme, parts.hostname or "", parts.port)
        except (ValueError, InvalidConfigError):  # an unclosed IPv6 bracket, a bad port...
            raise _bad_request("The request-target is not a valid URI.") from None
        host = _first(headers, "host", fold=True)
        if host is not None and named != _host_value(scheme, host.strip(" \t")):
            # None: an HTTP/1.0 request may omit Host; "host must be signed" answers it.
            raise _bad_request("The request-target names another host than the Host header.")
        path, query = parts.path or "/", parts.query
    if not is_utf8(path):
        # Bytes that are not UTF-8 (surrogate-escaped by the server): SigV4 canonicalises the
        # path as UTF-8 text, so there is no canonical URI to check a signature against.
        raise _bad_request("The request path is not valid UTF-8; percent-encode its bytes.")
    return path, query


def _host_value(scheme: str, host: str) -> str:
    """A Host header's value as :func:`host_header` writes it; a 400 if it is not a host."""
    shape = _HOST_FIELD.fullmatch(host)
    try:
        port = None if shape is None or not shape["port"] else int(shape["port"])  # "h:": none
        if shape is not None and (port is None or port <= _MAX_PORT):
            return host_header(scheme, shape["name"].strip("[]"), port)
    except InvalidConfigError:  # a name IDNA refuses
        pass
    raise _bad_request("The Host header is not a valid host.")


_MAX_PORT = 65535
# RFC 9112 section 3.2: Host = uri-host [ ":" port ], an IP literal bracketed.
# port = *DIGIT (leading zeros allowed); an IPv6 literal may carry a zone (RFC 6874: %25eth0).
_HOST_FIELD = re.compile(
    r"(?P<name>\[[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9._~-]+)?\]|[^\s@/?#\[\]\\:]+)"
    r"(?::(?P<port>[0-9]{0,16}))?"
)


def _incomplete(
    message: str, log_message: str | None = None, likely_cause: str | None = None
) -> VerificationError:
    return VerificationError(
        FailureKind.INCOMPLETE_SIGNATURE,
        message,
        log_message=log_message,
        likely_cause=likely_cause,
    )


def _unsupported(algorithm: str) -> VerificationError:
    """API Gateway's refusal of an algorithm, which quotes it; ``str()`` quotes a name only.

    The algorithm is what precedes the first space: with a comma or tab there instead, it is
    the whole header, credentials and signature included.
    """
    shown = algorithm if _ALGORITHM_NAME.fullmatch(algorithm) else "<redacted>"
    return _incomplete(
        f"Unsupported AWS 'algorithm': '{algorithm}'.", f"Unsupported AWS 'algorithm': '{shown}'."
    )


# What an algorithm's name looks like (AWS4-HMAC-SHA256); a key or signature never does.
_ALGORITHM_NAME = re.compile(r"[A-Z0-9-]{1,32}")


def _first(items: Iterable[tuple[str, str]], name: str, *, fold: bool) -> str | None:
    wanted = name.lower() if fold else name
    for key, value in items:
        if (key.lower() if fold else key) == wanted:
            return value
    return None


def _joined(items: Iterable[tuple[str, str]], name: str, *, fold: bool) -> str | None:
    """Every value of a repeated field joined with ``,``, as the canonical request joins them.

    A proxy may split ``X-Amz-Region-Set: a,b`` into two field lines (RFC 9110 section 5.3);
    the signature covers both, so the region set checked must be both too, not the first.
    """
    wanted = name.lower() if fold else name
    values = [value for key, value in items if (key.lower() if fold else key) == wanted]
    return ",".join(values) if values else None


def _read_claim(headers: list[tuple[str, str]], pairs: tuple[tuple[str, str], ...]) -> _Claim:
    """Find the signature in the Authorization header or the query, and check it is complete."""
    authorization = _first(headers, "authorization", fold=True)
    in_query = any(name == "X-Amz-Algorithm" for name, _ in pairs)
    if authorization is not None and in_query:
        # AWS's wording (S3 and the coral services); SigV4 allows one placement, never both.
        raise _incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified"
        )
    if authorization is not None:
        return _header_claim(authorization, headers, pairs)
    if in_query:
        return _query_claim(pairs)
    raise VerificationError(
        FailureKind.MISSING_AUTHENTICATION_TOKEN,
        "Missing Authentication Token",
        likely_cause=_missing_algorithm(pairs),
    )


def _missing_algorithm(pairs: tuple[tuple[str, str], ...]) -> str | None:
    """Why a query that carries presigning parameters counts as unsigned, if it does.

    Only ``X-Amz-Algorithm`` spelled exactly so marks a presigned request. Log-safe: the
    names said are our own spellings, never the client's text.
    """
    given = {name.lower() for name, _ in pairs}
    present = sorted(name for name in _sigv4.SIGNER_QUERY if name.lower() in given)
    if not present:
        return None
    if "X-Amz-Algorithm" in present:  # in another case than AWS's
        return (
            "the query's X-Amz-Algorithm parameter is not spelled X-Amz-Algorithm (query "
            "parameter names are case-sensitive): a client or proxy changed its case"
        )
    return (
        f"the query carries {', '.join(present)} but no X-Amz-Algorithm: a presigned link "
        "lost that parameter (cut short, or edited)"
    )


def _header_claim(
    authorization: str, headers: list[tuple[str, str]], pairs: tuple[tuple[str, str], ...]
) -> _Claim:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm.startswith("AWS4-") and algorithm not in _ALGORITHMS:
        raise _unsupported(algorithm)
    params: dict[str, str] = {}
    for piece in _AUTH_SPLIT.split(rest):
        if not piece:
            continue
        name, equals, value = piece.partition("=")
        if not equals:
            # API Gateway's answer to "Authorization: Bearer <jwt>" on an IAM route.
            raise _incomplete(
                f"'{piece}' not a valid key=value pair (missing equal-sign) in "
                f"Authorization header: '{authorization}'.",
                "not a valid key=value pair (missing equal-sign) in Authorization header: "
                "'<redacted>'.",
                "the Authorization header is not SigV4 (a bearer token or API key?): an IAM "
                "route takes an AWS4-HMAC-SHA256 signature",
            )
        params.setdefault(name, value)
    date = _first(headers, "x-amz-date", fold=True)
    http_date = _first(headers, "date", fold=True)
    missing = [
        f"Authorization header requires '{name}' parameter. "
        for name in _AUTH_PARAMS
        if not params.get(name)
    ]
    if date is None and http_date is None:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        )
    if missing:
        shown = algorithm if algorithm in _ALGORITHMS else "<redacted>"
        raise _incomplete(
            "".join(missing) + f"Authorization={algorithm}",
            "".join(missing) + f"Authorization={shown}",
        )
    if algorithm not in _ALGORITHMS:
        raise _unsupported(algorithm)
    return _Claim(
        algorithm=algorithm,
        region_set=_joined(headers, "x-amz-region-set", fold=True),
        location=SignatureLocation.HEADERS,
        credential=params["Credential"],
        signature=params["Signature"],
        signed_headers=_signed_names(params["SignedHeaders"]),
        date=date if date is not None else _http_date_as_amz(http_date or ""),
        token=_first(headers, "x-amz-security-token", fold=True),
        expires=None,
        query_pairs=pairs,
    )


def _query_claim(pairs: tuple[tuple[str, str], ...]) -> _Claim:
    values = {name: _first(pairs, name, fold=False) for name in (*_QUERY_PARAMS, "X-Amz-Expires")}
    missing = [
        f"AWS query-string parameters must include '{name}'. "
        for name in _QUERY_PARAMS
        if not values[name]
    ]
    if missing:
        raise _incomplete("".join(missing) + "Re-examine the query-string parameters.")
    if values["X-Amz-Algorithm"] not in _ALGORITHMS:
        raise _unsupported(values["X-Amz-Algorithm"] or "")
    return _Claim(
        algorithm=values["X-Amz-Algorithm"] or "",
        region_set=_joined(pairs, "X-Amz-Region-Set", fold=False),
        location=SignatureLocation.QUERY,
        credential=values["X-Amz-Credential"] or "",
        signature=values["X-Amz-Signature"] or "",
        signed_headers=_signed_names(values["X-Amz-SignedHeaders"] or ""),
        date=values["X-Amz-Date"] or "",
        token=_first(pairs, "X-Amz-Security-Token", fold=False),
        expires=_parse_expires(values["X-Amz-Expires"]),
        query_pairs=_without_the_signature(pairs),
    )


def _without_the_signature(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The query signed: every pair but the first ``X-Amz-Signature``, the one checked.

    A second one is signed like any other parameter: appended to a link, it fails the check
    rather than riding along, unsigned, to the backend.
    """
    names = [name for name, _ in pairs]
    first = names.index("X-Amz-Signature")
    return pairs[:first] + pairs[first + 1 :]


def _signed_names(value: str) -> tuple[str, ...]:
    names = tuple(name.lower() for name in value.split(";") if name)
    if "host" not in names:
        raise _incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    return names


def _parse_expires(value: str | None) -> int | None:
    """``X-Amz-Expires``: optional, whole seconds from 1 to 7 days (SigV4's limit)."""
    if value is None:
        return None
    if not _EXPIRES.fullmatch(value) or not 1 <= int(value) <= _sigv4.MAX_EXPIRES:
        raise _incomplete(
            f"X-Amz-Expires must be a whole number of seconds from 1 to {_sigv4.MAX_EXPIRES} "
            f"(7 days). Got '{value}'."
        )
    return int(value)


def _date_error(text: str) -> VerificationError:
    return _incomplete(
        f"Date must be in ISO-8601 'basic format'. Got '{text}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _http_date_as_amz(text: str) -> str:
    """A ``Date`` header (RFC 9110 IMF-fixdate) stands in for ``X-Amz-Date`` when that is absent."""
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        raise _date_error(text) from None
    if parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:  # 'Fri, 31 Dec 9999 23:00:00 -0200' is a valid date whose UTC form is not
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError:
        raise _date_error(text) from None
    return _sigv4.amz_date(parsed)


def _parse_date(text: str) -> datetime:
    if _AMZ_DATE.fullmatch(text):
        try:
            return _sigv4.parse_amz_date(text)
        except ValueError:
            pass
    raise _date_error(text)


def _minutes(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} sec"


def _check_time(claim: _Claim, signed_at: datetime, now: datetime, max_skew: timedelta) -> None:
    """Header mode: within ``max_skew`` of ``now``. Presigned: not after date + X-Amz-Expires.

    The presigned wording follows the header-mode text with the link's lifetime as the window;
    no captured API Gateway body for an expired presigned URL was found.
    The limits are whole seconds, as X-Amz-Date and the message tell time: a clock's
    microseconds would refuse a request "earlier than" the very second it was signed.
    """
    amz = _sigv4.amz_date
    window = max_skew if claim.expires is None else timedelta(seconds=claim.expires)
    try:
        latest = (now + max_skew).replace(microsecond=0)
        earliest = (now - window).replace(microsecond=0)
    except OverflowError:
        raise InvalidConfigError(
            "now and max_skew reach outside the range of datetime; pass the real current time"
        ) from None
    if signed_at > latest:
        raise VerificationError(
            FailureKind.SIGNATURE_NOT_YET_CURRENT,
            f"Signature not yet current: {claim.date} is still later than "
            f"{amz(latest)} ({amz(now)} + {_minutes(max_skew)}.)",
            likely_cause=(
                f"the client's clock is {_span(signed_at - now)} ahead of the server's "
                f"(at most {_span(max_skew)} is allowed): sync its clock"
            ),
        )
    if signed_at < earliest:
        late = _span(now - signed_at)
        cause = (
            f"the client's clock is {late} behind the server's (at most {_span(max_skew)} is "
            "allowed): sync its clock, or sign just before sending"
            if claim.expires is None
            else f"the presigned URL was signed {late} ago and lives {_span(window)}: presign "
            "a new one (or a longer X-Amz-Expires)"
        )
        raise VerificationError(
            FailureKind.SIGNATURE_EXPIRED,
            f"Signature expired: {claim.date} is now earlier than "
            f"{amz(earliest)} ({amz(now)} - {_minutes(window)}.)",
            likely_cause=cause,
        )


def _span(delta: timedelta) -> str:
    """A duration for a log line: ``6 min 1 s``, ``1 h``, ``2 h 5 min``, ``3 days``."""
    seconds = int(abs(delta.total_seconds()))
    days = seconds // 86400
    if days:
        return f"{days} day{'s' if days > 1 else ''}"
    hours, minutes, seconds = seconds // 3600, seconds // 60 % 60, seconds % 60
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (seconds, "s")) if n]
    return " ".join(parts[:2]) or "0 s"


def _check_scope(claim: _Claim, config: SigningConfig) -> tuple[str, str]:
    """Split ``Credential`` into the access key and scope; the scope must name our endpoint.

    SigV4a scopes name no region (``keyid/date/service/aws4_request``); instead the signed
    ``X-Amz-Region-Set`` must include this server's region, as AWS requires.
    """
    credential, amz = claim.credential, claim.date
    v4a = claim.algorithm == ALGORITHM_V4A
    parts = credential.split("/")
    if len(parts) != (4 if v4a else 5):
        shape = "keyid/date/service/term" if v4a else "keyid/date/region/service/term"
        message = (
            f"Credential must have exactly {4 if v4a else 5} slash-delimited elements, "
            f"e.g. {shape}, got "
        )
        shown = credential if _CREDENTIAL_SHAPE.fullmatch(credential) else "<redacted>"
        raise _incomplete(
            f"{message}'{credential}'",
            f"{message}'{shown}'",
            None
            if shown == credential
            else "the Credential does not start with an access key id: the client may have "
            "swapped the access key id and the secret key",
        )
    if v4a:
        access_key, date, service, terminator = parts
        region = config.region
    else:
        access_key, date, region, service, terminator = parts
    problems, causes = [], []
    region_set_problem = _region_set_problem(claim, config.region) if v4a else None
    if region_set_problem is not None:
        problems.append(region_set_problem[0])
        causes.append(region_set_problem[1])
    elif region != config.region:
        problems.append(f"Credential should be scoped to a valid region, not '{region}'. ")
        causes.append(
            f"the client signs for region {region!r} but this server is {config.region!r}: "
            f"sign with region={config.region!r}"
        )
    if service != config.service:
        problems.append(f"Credential should be scoped to correct service: '{config.service}'. ")
        causes.append(
            f"the client signs for service {service!r} but this server is "
            f"{config.service!r}: sign with service={config.service!r}"
        )
    if terminator != _sigv4.TERMINATOR:
        problems.append(
            f"Credential should be scoped with a valid terminator: '{_sigv4.TERMINATOR}', "
            f"not '{terminator}'. "
        )
    if date != amz[:8]:
        problems.append(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz[:8]}', from '{amz}'. "
        )
        causes.append("the request was re-dated after signing: sign again instead")
    if problems:
        raise VerificationError(
            FailureKind.INVALID_SCOPE, "".join(problems), likely_cause="; ".join(causes) or None
        )
    return access_key, "/".join(parts[1:])


def _region_set_problem(claim: _Claim, region: str) -> tuple[str, str] | None:
    """Why the request's region set does not cover ``region`` (message, cause), or None.

    The region set must be signed (a header named in SignedHeaders; the query is always
    signed): an unsigned one proves nothing. Each case is said apart, so that a client that
    forgot to sign the header, or a proxy that dropped it, is not told its set lacks a region
    it names. The wording is ours: no captured AWS answer for these cases was found.
    """
    header_mode = claim.location is SignatureLocation.HEADERS
    signed = not header_mode or "x-amz-region-set" in claim.signed_headers
    if claim.region_set is None:
        if header_mode and signed:
            return (
                "X-Amz-Region-Set is named in SignedHeaders but was not sent. ",
                (
                    "the signed X-Amz-Region-Set header did not arrive: a proxy or the client "
                    "dropped it after signing"
                ),
            )
        return (
            "SigV4a requires the X-Amz-Region-Set of the request, which it does not carry. ",
            f"the SigV4a request names no region set: sign with a region set including {region!r}",
        )
    if not signed:
        return (
            "X-Amz-Region-Set must be a SignedHeader in the AWS Authorization. ",
            "the client sent X-Amz-Region-Set without signing it: add it to SignedHeaders",
        )
    if _region_set_covers(claim.region_set, region):
        return None
    return (
        (
            f"The X-Amz-Region-Set of this request ('{claim.region_set}') does not include "
            f"this endpoint's region '{region}'. "
        ),
        f"the SigV4a region set does not include {region!r}: add it to region_set",
    )


def _region_set_covers(region_set: str, region: str) -> bool:
    """True if the region set names ``region``, or matches it with ``*`` wildcards."""
    return any(_glob_matches(pattern.strip(), region) for pattern in region_set.split(","))


def _glob_matches(pattern: str, name: str) -> bool:
    """``name`` matches ``pattern``, where ``*`` stands for any run of characters.

    ``*`` is the only wildcard SigV4a defines (fnmatch would also read ``?`` and ``[...]``).
    Linear in the pattern: the pieces between stars are found in order, leftmost first, which
    is exact for star-only patterns; a regex of ``.*`` runs would backtrack exponentially on a
    client's ``****...z``, before any key or signature is checked.
    """
    if "*" not in pattern:
        return pattern == name
    first, *middle, last = pattern.split("*")
    if len(first) + len(last) > len(name) or not (name.startswith(first) and name.endswith(last)):
        return False
    position, end = len(first), len(name) - len(last)
    for piece in middle:
        found = name.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def is_key_id_shaped(text: str) -> bool:
    """Whether ``text`` looks like an access key id, which a log line may quote.

    A value of another shape may be the secret key, sent in the key id's place by a client
    that swapped the two.
    """
    return _KEY_ID_SHAPE.fullmatch(text) is not None


def _check_key(
    known: KnownKey | None, token: str | None, access_key: str, now: datetime
) -> KnownKey:
    """Unknown keys and wrong or missing session tokens get the same answer, as in AWS.

    Only the log-safe ``likely_cause`` tells them apart (an access key id is not a secret).
    """
    if known is None:
        unknown = (
            f"access key {access_key!r} is not one of the keys this server knows"
            if is_key_id_shaped(access_key)
            else "the access key id sent is not one of the keys this server knows, nor shaped "
            "like one (not quoted: it may be the secret key, swapped with the key id)"
        )
        raise VerificationError(
            FailureKind.UNRECOGNIZED_CLIENT, _INVALID_TOKEN, likely_cause=unknown
        )
    cause = None
    if known.token is None:
        if token is not None:
            cause = "a session token was sent with a long-term key: send the key's own token only"
    elif token is None:
        cause = "the key is temporary but no session token (X-Amz-Security-Token) was sent"
    elif not hmac.compare_digest(
        hashlib.sha256(known.token.encode("utf-8", "surrogateescape")).digest(),
        hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest(),
    ):
        cause = "the session token sent is not the one issued with this access key"
    if cause is not None:
        raise VerificationError(FailureKind.UNRECOGNIZED_CLIENT, _INVALID_TOKEN, likely_cause=cause)
    if known.expiry is not None and now >= known.expiry:
        raise VerificationError(FailureKind.EXPIRED_TOKEN, _EXPIRED_TOKEN)
    return known


def _check_unsigned_payload(declared: str | None, service: str) -> None:
    """A service without payload signing needs ``x-amz-content-sha256: UNSIGNED-PAYLOAD``.

    The wording is ours (VPC Lattice documents the rule, no captured answer was found).
    """
    if declared != UNSIGNED_PAYLOAD:
        raise _incomplete(
            f"{service} does not support payload signing: send the x-amz-content-sha256 "
            f"header with the value {UNSIGNED_PAYLOAD}.",
            likely_cause=(
                f"the client signed the body, {service} takes {_CONTENT_SHA256}: "
                f"{UNSIGNED_PAYLOAD} (e.g. botocore with payload_signing_enabled=False)"
            ),
        )


def _declared_cause(declared: str, service: str) -> str:
    """Why an ``x-amz-content-sha256`` that is not the body's hash was sent, in one line."""
    if declared == UNSIGNED_PAYLOAD:
        return (
            f"the client signed {UNSIGNED_PAYLOAD}, which {service} does not accept: it hashes "
            "the body it receives, so sign the body"
        )
    if _PAYLOAD_HASH.fullmatch(declared):
        return (
            f"{_CONTENT_SHA256} is the hash of another body than the one received: the body "
            "changed after signing (re-encoded JSON, compression, a consumed stream, a proxy)"
        )
    shown = declared if len(declared) <= _SHOWN_VALUE and declared.isprintable() else "a value"
    return f"{_CONTENT_SHA256} is {shown!r}, which {service} does not accept: sign the body"


def _mismatch(canonical: str, to_sign: str, likely_cause: str) -> VerificationError:
    """API Gateway's mismatch 403, quoting the strings it computed (the log form does not)."""
    return VerificationError(
        FailureKind.SIGNATURE_MISMATCH,
        f"{_MISMATCH}\n\nThe Canonical String for this request should have been\n"
        f"'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n",
        log_message=_MISMATCH,
        likely_cause=likely_cause,
    )


_SignatureCheck = Callable[[str], bool]


def _signature_check(
    claim: _Claim, access_key: str, known: KnownKey, where: tuple[str, str, str]
) -> _SignatureCheck:
    """A test of "is the received signature the signature of this canonical request?".

    SigV4 recomputes the HMAC and compares in constant time; SigV4a verifies the ECDSA
    signature with the public key of the credentials' derived key pair.
    """
    region, service, scope = where
    provided = claim.signature.encode("utf-8", "surrogateescape")
    date, algorithm = claim.date, claim.algorithm
    if algorithm == ALGORITHM_V4A:
        public_key = _sigv4a.public_key_from_private(
            _sigv4a.derive_private_key(access_key, known.secret_key)
        )
        signature = claim.signature

        def ecdsa_check(canonical: str) -> bool:
            to_sign = _sigv4.string_to_sign(date, scope, canonical, algorithm)
            return _sigv4a.verify(public_key, signature, to_sign)

        return ecdsa_check
    key = _sigv4.derive_signing_key(known.secret_key, date[:8], region, service)

    def hmac_check(canonical: str) -> bool:
        expected = _sigv4.signature(key, _sigv4.string_to_sign(date, scope, canonical))
        return hmac.compare_digest(expected.encode("ascii"), provided)

    return hmac_check


# A byte that is not UTF-8, as the server hands it over (surrogate-escaped).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class _Probe:
    """After a mismatch: which usual mistake, if any, the signature received was made with.

    Each guess is one more signature check, spent only on refused requests; a guess that
    verifies is the cause for certain.
    """

    check: _SignatureCheck
    canonical: str

    def _with_line(self, index: int, value: str) -> bool:
        lines = self.canonical.split("\n")
        if lines[index] == value:
            return False
        lines[index] = value
        return self.check("\n".join(lines))

    def _python_folded(self) -> list[str]:
        """The headers whose values verify once folded as Python's ``str.split`` folds them.

        Read as sent, then with raw bytes as Latin-1: botocore signs a str value folded, and
        http.client sends it as Latin-1 (U+00A0 goes as the byte 0xA0).
        """
        readings = [self.canonical]
        if _NOT_UTF8.search(self.canonical):
            readings.append(_as_latin1(self.canonical))
        for canonical in readings:
            lines = canonical.split("\n")
            names = []
            for index in range(3, lines.index("", 3)):  # the header lines, before the blank one
                name, _, value = lines[index].partition(":")
                as_botocore = " ".join(value.split())
                if as_botocore != value:
                    lines[index] = f"{name}:{as_botocore}"
                    names.append(name)
            if names and self.check("\n".join(lines)):
                return names
        return []

    def cause(self, path: str, service: str, body_hash: str) -> str:
        last = self.canonical.count("\n")  # the payload line
        if self._with_line(last, UNSIGNED_PAYLOAD):
            return _declared_cause(UNSIGNED_PAYLOAD, service)
        if body_hash != UNSIGNED_PAYLOAD and self._with_line(last, _sigv4.payload_hash(b"")):
            return (
                "the client signed an empty body but a body arrived: the body was set or "
                "changed after signing"
            )
        if self._with_line(1, path):  # the canonical URI line, here as the wire spells it
            return (
                f"the client signed the path as sent (encoded once, S3 style); {service} "
                "encodes the received path again (%20 -> %2520) and removes dot segments"
            )
        folded = self._python_folded()
        if folded:
            which = f"header {folded[0]!r} was" if len(folded) == 1 else f"headers {folded} were"
            return (
                f"{which} signed with a character folded as whitespace, as botocore's signer "
                "folds it (U+00A0, U+0085, 0x1C-0x1F...) and the AWS CRT and SDK for Java do "
                "not, nor this verifier: remove it from the value, or percent-encode it"
            )
        raw = [line for line in self.canonical.split("\n") if _NOT_UTF8.search(line)]
        if raw and self.check(_as_latin1(self.canonical)):  # one check for every such header
            names = ", ".join(repr(line.partition(":")[0]) for line in raw)
            which = f"header {names} was" if len(raw) == 1 else f"headers {names} were"
            return (
                f"{which} signed as text but sent as Latin-1 bytes (http.client and urllib3 "
                "send str values so): send header values in ASCII (percent-encode or base64 them)"
            )
        return FailureKind.SIGNATURE_MISMATCH.default_cause


def _as_latin1(canonical: str) -> str:
    """The canonical request with each raw (non-UTF-8) byte read as its Latin-1 character."""
    return _NOT_UTF8.sub(lambda byte: chr(ord(byte[0]) - 0xDC00), canonical)


def _canonical_request(
    method: str,
    path: str,
    claim: _Claim,
    headers: list[tuple[str, str]],
    body_hash: str,
) -> str:
    """The canonical request API Gateway computes from what it received.

    The query is decoded (``+`` is a space) and re-encoded, so any equivalent spelling of the
    same parameters verifies. A header named in SignedHeaders but absent counts as empty.
    """
    wanted = set(claim.signed_headers)
    chosen = [(name, value) for name, value in headers if name.lower() in wanted]
    present = {name.lower() for name, _ in chosen}
    chosen += [(name, "") for name in claim.signed_headers if name not in present]
    try:
        block, signed = _sigv4.canonical_headers(chosen, frozenset())
    except UnsignableRequestError as exc:
        raise _incomplete(f"Signed header is malformed: {exc}") from None
    return _sigv4.canonical_request(
        method, path, canonical_query(claim.query_pairs), block, signed, body_hash
    )
