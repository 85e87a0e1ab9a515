"""Plain values that flow through the signer: frozen, validated at construction, secret-safe."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from apigw_iam_auth.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_UNSIGNED_HEADERS",
    "HTTP_TOKEN",
    "Credentials",
    "SignableRequest",
    "SignatureLocation",
    "SignedRequest",
    "SigningConfig",
    "SigningResult",
    "binary_kind",
    "checked_flag",
]

# Headers that HTTP clients, proxies and load balancers add, drop or rewrite after signing, so
# signing them only produces 403s. Union of botocore's SIGNED_HEADERS_BLACKLIST, aws-c-auth's
# s_skipped_headers, aws-sdk-go's ignoredHeaders and the hop-by-hop headers of RFC 9110 7.6.1
# (botocore now also skips W3C trace context: baggage, traceparent, tracestate, which tracing
# agents rewrite); content-length is left out because clients switch to chunked framing.
DEFAULT_UNSIGNED_HEADERS: frozenset[str] = frozenset(
    {
        "accept-encoding",
        "authorization",
        "baggage",
        "connection",
        "content-length",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "via",
        "x-amzn-trace-id",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    }
)

# RFC 9110 5.1 field-name = token, 9.1 method = token.
HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Region and service go into the credential scope verbatim; AWS names are lowercase letters,
# digits and dashes ("ap-northeast-1", "execute-api", "us-gov-west-1").
_SCOPE_PART = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_ACCESS_KEY = re.compile(r"[A-Za-z0-9_.\-]+")
_PRINTABLE_ASCII = re.compile(r"[!-~]+")


class SignatureLocation(enum.Enum):
    """Where the signature goes: the ``Authorization`` header or a presigned query string."""

    HEADERS = "headers"
    QUERY = "query"


_BINARY_TYPES = (bytes, bytearray, memoryview)


def binary_kind(value: object) -> str | None:
    """How an error names a key given as bytes ("bytes", "a bytearray"); None if it is not."""
    if not isinstance(value, _BINARY_TYPES):
        return None
    return "bytes" if isinstance(value, bytes) else f"a {type(value).__name__}"


def checked_flag(name: str, value: object) -> bool:
    """A True/False setting, refused otherwise: ``presign="false"`` would read as true."""
    if type(value) is not bool:
        kind = type(value)
        named = f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")
        raise InvalidConfigError(f"{name} must be True or False, got {named}; pass bool(...)")
    return value


def _refuse_binary(label: str, value: object) -> None:
    """A key read from a file or a KMS call comes as bytes: say to decode it (never show it)."""
    kind = binary_kind(value)
    if kind is not None:
        raise InvalidConfigError(
            f"the {label} is {kind}: keys are str; decode them (value.decode('ascii'))"
        )


@dataclass(frozen=True, slots=True)
class Credentials:
    """One consistent snapshot of AWS credentials.

    The secret and the token never appear in ``repr``: the object ends up in tracebacks and logs.
    ``expiry`` is the aware UTC time after which AWS rejects the credentials (None: never).
    """

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    expiry: datetime | None = None

    def __post_init__(self) -> None:
        """Refuse credentials that could only ever produce a confusing 403."""
        if not isinstance(self.access_key, str) or not self.access_key:
            _refuse_binary("access key", self.access_key)
            raise InvalidConfigError("access key must be a non-empty string")
        if not isinstance(self.secret_key, str) or not self.secret_key:
            _refuse_binary("secret key", self.secret_key)
            raise InvalidConfigError("secret key must be a non-empty string")
        if self.token is not None and not isinstance(self.token, str):
            _refuse_binary("session token", self.token)
            raise InvalidConfigError("session token must be a string or None")
        for label, text in (("secret key", self.secret_key), ("session token", self.token)):
            if text and not _PRINTABLE_ASCII.fullmatch(text):
                # A trailing newline read from a file, or a space from a copy and paste: the
                # token would break the X-Amz-Security-Token header, the secret every signature.
                raise InvalidConfigError(
                    f"{label} must be printable ASCII without spaces; "
                    "check for a stray newline, space or quote"
                )
        if not _ACCESS_KEY.fullmatch(self.access_key):
            # A space or newline in a pasted key produces API Gateway's puzzling
            # "not a valid key=value pair" 403; "/" and "," would break the Credential= field.
            raise InvalidConfigError(
                "access key must be ASCII letters, digits, '_', '-' or '.'; "
                "check for stray whitespace or quotes"
            )
        if self.expiry is not None and (
            not isinstance(self.expiry, datetime) or self.expiry.utcoffset() is None
        ):
            raise InvalidConfigError("credentials expiry must be an aware datetime")
        if self.token == "":
            object.__setattr__(self, "token", None)


@dataclass(frozen=True, slots=True)
class SigningConfig:
    """What to sign for: the credential scope and the few protocol choices a caller may change.

    The defaults are API Gateway's: service ``execute-api``, normalised and double-encoded path,
    the body's SHA-256 signed, no ``x-amz-content-sha256`` header. ``unsigned_payload`` signs
    ``UNSIGNED-PAYLOAD`` instead of the body hash (VPC Lattice accepts nothing else).
    ``region_set`` selects SigV4a (``AWS4-ECDSA-P256-SHA256``): one signature valid in every
    region of the set (``("*",)`` for all); ``region`` then plays no part in the scope.
    """

    region: str
    service: str = "execute-api"
    unsigned_headers: frozenset[str] = DEFAULT_UNSIGNED_HEADERS
    add_content_sha256_header: bool = False
    unsigned_payload: bool = False
    region_set: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        """Validate the scope parts, so a typo fails here and not as a 403 from AWS."""
        if self.region_set is not None:
            if not isinstance(self.region_set, tuple) or not self.region_set:
                raise InvalidConfigError("region_set must be a non-empty tuple of region names")
            for region in self.region_set:
                if region != "*" and not (
                    isinstance(region, str) and _SCOPE_PART.fullmatch(region)
                ):
                    raise InvalidConfigError(
                        f"region_set holds AWS region names or '*', got {region!r}"
                    )
        for name, value in (("region", self.region), ("service", self.service)):
            if name == "region" and self.region_set is not None and value == "*":
                continue  # SigV4a: the scope names no region
            if not isinstance(value, str) or not _SCOPE_PART.fullmatch(value):
                raise InvalidConfigError(
                    f"{name} must be an AWS {name} name such as "
                    f"{'ap-northeast-1' if name == 'region' else 'execute-api'}, got {value!r}"
                )
        object.__setattr__(self, "unsigned_headers", _unsigned_names(self.unsigned_headers))


def _unsigned_names(given: object) -> frozenset[str]:
    """The header names to leave unsigned, lowercased; any iterable of them, read once."""
    names = None if isinstance(given, str) or not isinstance(given, Iterable) else tuple(given)
    if names is None:
        raise InvalidConfigError("unsigned_headers must be a collection of header names")
    for name in names:
        if not isinstance(name, str) or not HTTP_TOKEN.fullmatch(name):
            raise InvalidConfigError(
                f"unsigned_headers holds {name!r}, which is not an HTTP header name"
            )
    lowered = frozenset(name.lower() for name in names)
    if "host" in lowered:
        raise InvalidConfigError("the host header is always signed; remove it from unsigned")
    return lowered


# The three per-request values below are NamedTuples rather than frozen dataclasses: they are
# built on every signature, and a frozen dataclass pays an object.__setattr__ per field (about
# 0.6 us each, a quarter of the whole signing budget). They are just as immutable.


class SignableRequest(NamedTuple):
    """A request exactly as it will go on the wire, in the pieces SigV4 reads.

    ``path`` is the percent-encoded path of the request line; ``query`` holds the decoded
    ``(name, value)`` pairs in their original order; ``headers`` includes ``host``.
    ``payload_hash`` is the lowercase hex SHA-256 of the body, or ``UNSIGNED-PAYLOAD`` (signed
    by header only where the signer sends ``x-amz-content-sha256``, the one place a service
    reads it). In header mode the query is sent as given, so it may hold no ``X-Amz-*``
    parameter of a presigned URL.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    payload_hash: str


class SigningResult(NamedTuple):
    """What the core computed and where it goes; adapters only apply it.

    ``headers`` are set on the request (replacing any of the same name) and ``stale_headers``
    removed from it (signing headers of an earlier attempt, as the request spelled them);
    ``query`` is the complete canonical query string (with the ``X-Amz-*`` parameters when
    presigning). ``payload_hash`` is the body hash that was signed. The intermediate strings are
    kept for diagnostics and vector tests but hidden from ``repr`` since they may hold the token.
    """

    headers: tuple[tuple[str, str], ...]
    query: str
    signature: str
    canonical_request: str
    string_to_sign: str
    stale_headers: tuple[str, ...] = ()
    payload_hash: str = ""

    def __repr__(self) -> str:
        """Header names and nothing secret."""
        names = ", ".join(name for name, _ in self.headers)
        return f"SigningResult(headers=[{names}], query=<{len(self.query)} chars>)"


class SignedRequest(NamedTuple):
    """A request ready to send: the URL (path and query as they must go) and every header to set.

    ``headers`` holds the caller's headers plus ``Host`` and the signing headers; repeated
    caller headers are joined with ``,`` (same meaning in HTTP, same canonical form in SigV4).
    ``signing`` keeps the canonical request and string to sign, for diagnostics.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None
    signing: SigningResult | None = None

    def __repr__(self) -> str:
        """Method and URL path only: the headers hold the signature and token."""
        return f"SignedRequest(method={self.method!r}, url={self.url.partition('?')[0]!r})"
