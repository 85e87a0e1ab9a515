"""``SigV4Signer``: the pure core plus the three things it must not hold itself.

The signer owns the scope settings, a credentials provider and a clock. Per signature it reads
the clock once and snapshots the credentials once, then hands plain values to the core.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import NamedTuple, cast

from apigw_iam_auth import _sigv4
from apigw_iam_auth._models import (
    DEFAULT_UNSIGNED_HEADERS,
    Credentials,
    SignableRequest,
    SignatureLocation,
    SignedRequest,
    SigningConfig,
    SigningResult,
)
from apigw_iam_auth._region import infer_scope
from apigw_iam_auth._uri import is_utf8, parse_url
from apigw_iam_auth.credentials import CredentialsProvider, resolve_provider
from apigw_iam_auth.errors import (
    CredentialsError,
    InvalidConfigError,
    UnsignableRequestError,
)

__all__ = ["Body", "Clock", "HeadersLike", "SigV4Signer", "WireSignature", "utc_now"]

_log = logging.getLogger("apigw_iam_auth")

Clock = Callable[[], datetime]


Body = bytes | bytearray | memoryview | str | None
# Pairs may hold bytes, as requests and httpx keep them; they are read as Latin-1.
HeadersLike = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] | None


_HEADERS, _QUERY = SignatureLocation.HEADERS, SignatureLocation.QUERY
_SHA256_HEX_LENGTH = 64
_MAX_HOSTS = 256
_MAX_SHAPES = 256
# HTTP dates have whole seconds; a server "ahead" by less than this is simply in agreement.
_CLOCK_RESOLUTION = timedelta(seconds=2)


def utc_now() -> datetime:
    """The default clock: the system's idea of now, in UTC."""
    return datetime.now(timezone.utc)


class SigV4Signer:
    """Sign HTTP requests with AWS Signature Version 4, by header or as presigned URLs.

    >>> signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), region="us-east-1")
    >>> signed = signer.sign("GET", "https://abc.execute-api.us-east-1.amazonaws.com/prod/pets")
    >>> signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    True

    ``region=None`` reads the region off execute-api and Lambda function URL hostnames.
    The object holds no per-request state and may be shared across threads and tasks.
    """

    __slots__ = (
        "_add_sha256",
        "_clock",
        "_configs",
        "_credentials",
        "_epoch_clock",
        "_offset",
        "_region",
        "_service",
        "_shapes",
        "_unsigned",
    )

    def __init__(
        self,
        credentials: object = None,
        region: str | None = None,
        service: str = "execute-api",
        *,
        profile: str | None = None,
        clock: Clock = utc_now,
        unsigned_headers: Iterable[str] = DEFAULT_UNSIGNED_HEADERS,
        add_content_sha256_header: bool = False,
    ) -> None:
        """Validate the settings now, so mistakes fail here rather than as a 403 later.

        ``credentials`` is ``(key, secret)``, ``(key, secret, token)``, a botocore
        ``Credentials``/``RefreshableCredentials``, a botocore or boto3 ``Session``, a callable
        (sync or async) returning credentials, a list of these tried in order, a
        :class:`CredentialsProvider`, or None for botocore's default chain (honouring
        ``profile``). ``clock`` returns an aware datetime; inject one in tests.
        """
        if region is not None and not isinstance(region, str):
            raise InvalidConfigError(f"region must be a str or None, got {type(region).__name__}")
        if not isinstance(service, str):
            raise InvalidConfigError(f"service must be a str, got {type(service).__name__}")
        if not callable(clock):
            raise InvalidConfigError("clock must be a callable returning an aware datetime")
        self._credentials: CredentialsProvider = resolve_provider(credentials, profile)
        self._region = region
        self._service = service
        # Validates region, service and header names now (the region may still be read off
        # each host later); the validated header names are what every per-host config reuses.
        defaults = SigningConfig(
            region or "us-east-1",
            service,
            cast("frozenset[str]", unsigned_headers),  # SigningConfig checks and normalises it
            bool(add_content_sha256_header),
        )
        self._unsigned = defaults.unsigned_headers
        self._add_sha256 = defaults.add_content_sha256_header
        self._configs: dict[str, SigningConfig] = {}
        self._shapes: dict[tuple[str, str, HeadersLike, str], _Shape] = {}
        self._clock = clock
        # Correction learned from the server's clock (see correct_clock). A single attribute
        # replaced whole, so concurrent readers see the old or the new value, never a mix.
        self._offset = 0.0  # seconds
        # The default clock is read as time.time(): several times cheaper than building and
        # converting a datetime, on a path that runs once per request.
        self._epoch_clock = clock is utc_now

    def __repr__(self) -> str:
        """Settings only; never credentials."""
        return (
            f"SigV4Signer(region={self._region!r}, service={self._service!r}, "
            f"credentials={self._credentials!r})"
        )

    @property
    def credentials_provider(self) -> CredentialsProvider:
        """The provider snapshots come from (shared with adapters that fetch them async)."""
        return self._credentials

    def now(self) -> datetime:
        """Read the signer's clock once, corrected by what the server's clock taught us."""
        return self._read_clock() + timedelta(seconds=self._offset)

    @property
    def clock_offset(self) -> timedelta:
        """How far the server's clock was found ahead of ours (zero until a correction)."""
        return timedelta(seconds=self._offset)

    def correct_clock(self, server_time: datetime) -> None:
        """Sign from now on at the server's idea of the time (after a skew refusal).

        The offset is measured against the raw clock every time, so a correction is undone
        once the machine's clock is right again (NTP caught up). A difference within the
        server's one-second ``Date`` resolution means the clocks agree: the refused request
        was merely old (re-sent long after signing), and the offset goes back to zero.
        """
        if not isinstance(server_time, datetime) or server_time.utcoffset() is None:
            raise InvalidConfigError("server_time must be an aware datetime")
        offset = server_time - self._read_clock()
        if abs(offset) <= _CLOCK_RESOLUTION:
            _log.info("a request signed too long ago was refused; signing it again")
            self._offset = 0.0
            return
        _log.warning(
            "clock skew: the server's clock is %.0f s %s ours; signing with corrected time",
            abs(offset.total_seconds()),
            "ahead of" if offset >= timedelta(0) else "behind",
        )
        self._offset = offset.total_seconds()

    def _read_clock(self) -> datetime:
        now = self._clock()
        if not isinstance(now, datetime) or now.utcoffset() is None:
            raise InvalidConfigError(
                f"clock must return an aware datetime, got {type(now).__name__}"
            )
        return now

    def config_for(self, host: str) -> SigningConfig:
        """The scope for a request to ``host``: explicit region, or read off the hostname."""
        config = self._configs.get(host)
        if config is None:
            region, service = infer_scope(host, self._region, self._service)
            config = SigningConfig(region, service, self._unsigned, self._add_sha256)
            if len(self._configs) >= _MAX_HOSTS:  # bounded: a crawler of many hosts stays flat
                self._configs.clear()
            self._configs[host] = config
        return config

    def sign_request(
        self,
        request: SignableRequest,
        *,
        location: SignatureLocation = SignatureLocation.HEADERS,
        expires: int = 900,
        timestamp: datetime | None = None,
        credentials: Credentials | None = None,
    ) -> SigningResult:
        """Sign a request already split into its wire parts, as SigV4 reads them.

        ``credentials`` lets async callers pass a snapshot they fetched off the event loop.
        In query mode, ``expires`` is capped to the credentials' remaining lifetime: a link
        must not promise more than its session token can keep.
        """
        request = _as_tuples(request)
        config = self.config_for(_host_of(request.headers))
        snapshot = self._credentials.get() if credentials is None else credentials
        date_time, expires = self._time_to_sign(timestamp, snapshot, location, expires)
        return _sigv4.sign_at(request, snapshot, config, date_time, location, expires)

    def _time_to_sign(
        self,
        timestamp: datetime | None,
        credentials: Credentials,
        location: SignatureLocation,
        expires: int,
    ) -> tuple[str, int]:
        """The ``X-Amz-Date`` to sign at, and ``expires`` capped to the credentials' life.

        The default clock is read as ``time.time()``: several times cheaper than building and
        converting a datetime, on a path that runs once per request.
        """
        if timestamp is None and self._epoch_clock:
            epoch = time.time() + self._offset
            if location is _QUERY:
                expires = (
                    _sigv4.check_expires(expires)
                    if credentials.expiry is None
                    else _capped_expiry(
                        expires, credentials, datetime.fromtimestamp(epoch, timezone.utc)
                    )
                )
            return _sigv4.amz_date_of_epoch(math.floor(epoch)), expires
        when = self.now() if timestamp is None else timestamp
        if not isinstance(when, datetime):
            raise InvalidConfigError(
                f"timestamp must be an aware datetime or None, got {type(when).__name__}"
            )
        if location is _QUERY:
            expires = _capped_expiry(expires, credentials, when)
        return _sigv4.amz_date(when), expires

    def _signed_shape(
        self,
        shape: _Shape,
        credentials: Credentials,
        date_time: str,
        location: SignatureLocation,
        expires: int,
    ) -> SigningResult:
        """Sign a kept request shape, with its plan for the day (made again when it changed)."""
        memo_key = (credentials, date_time[:8], location, expires)
        memo = shape.memo
        if memo is None or memo[0] != memo_key:
            plan = _sigv4.signing_plan(
                shape.request, credentials, shape.config, memo_key[1], location, expires
            )
            shape.memo = memo = (memo_key, plan)
        return _sigv4.sign_with_plan(memo[1], date_time)

    def sign(
        self,
        method: str,
        url: str,
        headers: HeadersLike = None,
        body: Body = None,
        timestamp: datetime | None = None,
        *,
        payload_hash: str | None = None,
        credentials: Credentials | None = None,
    ) -> SignedRequest:
        """Sign with an ``Authorization`` header; send the result's url, headers and body.

        ``body`` is bytes or str (UTF-8); for large or streamed bodies pass ``payload_hash``,
        the hex SHA-256 you computed in chunks. Signing headers among ``headers``
        (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``, ``X-Amz-Content-SHA256``)
        are dropped and replaced by fresh ones; ``add_content_sha256_header=True`` sends the
        body hash. The returned URL carries the query in canonical
        order and encoding, which is how it must be sent. ``credentials`` is a snapshot fetched
        elsewhere (the async adapter fetches it off the event loop); None asks the provider.
        """
        raw_body, payload_hash = _body_and_hash(body, payload_hash)
        shape = self._shape(method, url, _hashable(headers), payload_hash)
        snapshot = self._credentials.get() if credentials is None else credentials
        date_time, _ = self._time_to_sign(timestamp, snapshot, _HEADERS, 900)
        result = self._signed_shape(shape, snapshot, date_time, _HEADERS, 900)
        merged = dict(_joined(shape.request.headers))
        merged.update(result.headers)
        url = _with_query(shape.base, result)
        return SignedRequest(shape.request.method, url, merged, raw_body, result)

    def sign_for_wire(
        self,
        method: str,
        url: str,
        headers: HeadersLike,
        payload_hash: str,
        *,
        presign: bool = False,
        expires: int = 900,
        credentials: Credentials | None = None,
    ) -> WireSignature:
        """What an adapter applies to its request: the adapters' fast path.

        Returns the URL to send, the names of stale signing headers to remove from the
        request, and the signing result (``result.headers`` are the headers to set; none when
        presigning). The caller's own headers are left for the caller to keep, so no merged
        copy is built.

        An identical request signed again within the same second (same ``X-Amz-Date``, so the
        very same signature) gets the signature already computed.
        """
        shape = self._shape(method, url, headers, payload_hash)
        snapshot = self._credentials.get() if credentials is None else credentials
        location = _QUERY if presign else _HEADERS
        date_time, expires = self._time_to_sign(None, snapshot, location, expires)
        reuse_key = (date_time, snapshot, location, expires)
        last = shape.last
        if last is not None and last[0] == reuse_key:
            return last[1]
        result = self._signed_shape(shape, snapshot, date_time, location, expires)
        wire = WireSignature(_with_query(shape.base, result), shape.stale, result)
        shape.last = (reuse_key, wire)
        return wire

    def _shape(self, method: str, url: str, headers: HeadersLike, payload_hash: str) -> _Shape:
        """The request parsed and checked, kept per (method, URL, headers, body hash).

        A client calls the same endpoints with the same headers: each shape is parsed once.
        Only headers given as a tuple of (str or bytes, str or bytes) pairs are kept; anything
        else (a mapping, a user's iterable that may change) is parsed on every call.
        """
        key = (method, url, headers, payload_hash)
        try:
            shape = self._shapes.get(key)
        except (TypeError, ValueError):  # unhashable (a list, a writable memoryview...)
            return self._new_shape(None, method, url, headers, payload_hash)
        if shape is None:
            shape = self._new_shape(key, method, url, headers, payload_hash)
        return shape

    def _new_shape(
        self,
        key: tuple[str, str, HeadersLike, str] | None,
        method: str,
        url: str,
        headers: HeadersLike,
        payload_hash: str,
    ) -> _Shape:
        plain = _plain_pairs(headers)
        request, base, host = _signable(method, url, headers, payload_hash, plain=plain)
        shape = _Shape(request, base, self.config_for(host), _stale(request.headers))
        if key is not None and plain:
            if len(self._shapes) >= _MAX_SHAPES:  # bounded, like every cache here
                self._shapes.clear()
            self._shapes[key] = shape
        return shape

    def presign(
        self,
        method: str,
        url: str,
        headers: HeadersLike = None,
        expires: int = 900,
        timestamp: datetime | None = None,
        *,
        body: Body = None,
        payload_hash: str | None = None,
        credentials: Credentials | None = None,
    ) -> str:
        """Return ``url`` with the signature in its query string (a presigned URL).

        Whoever opens it needs no credentials, so treat it as one. Only ``host`` is signed
        unless you pass ``headers``, which the user of the link must then send too. The body
        hash is signed as well: a presigned POST works only with exactly that body.
        """
        _, payload_hash = _body_and_hash(body, payload_hash)
        shape = self._shape(method, url, _hashable(headers), payload_hash)
        snapshot = self._credentials.get() if credentials is None else credentials
        date_time, expires = self._time_to_sign(timestamp, snapshot, _QUERY, expires)
        return _with_query(
            shape.base, self._signed_shape(shape, snapshot, date_time, _QUERY, expires)
        )


class WireSignature(NamedTuple):
    """What :meth:`SigV4Signer.sign_for_wire` tells an adapter to do to its request.

    Send ``url``; remove the headers named in ``stale`` (signing headers of an earlier
    attempt, as the request spelled them); set ``result.headers``.
    """

    url: str
    stale: tuple[str, ...]
    result: SigningResult


class _Shape:
    """One request shape (method, URL, headers, body hash): parsed once, signed many times.

    ``memo`` holds the last signing plan with what it was made for, ``last`` the adapters' last
    signature with its time; each is replaced whole (a single attribute store), so threads
    sharing the shape always read a matching pair.
    """

    __slots__ = ("base", "config", "last", "memo", "request", "stale")

    def __init__(
        self,
        request: SignableRequest,
        base: str,
        config: SigningConfig,
        stale: tuple[str, ...],
    ) -> None:
        self.request = request
        self.base = base
        self.config = config
        self.stale = stale
        self.memo: tuple[tuple[Credentials, str, SignatureLocation, int], _sigv4.Plan] | None = None
        self.last: tuple[tuple[str, Credentials, SignatureLocation, int], WireSignature] | None
        self.last = None


def _capped_expiry(expires: int, credentials: Credentials, now: datetime) -> int:
    expires = _sigv4.check_expires(expires)
    if credentials.expiry is None:
        return expires
    remaining = math.floor((credentials.expiry - now).total_seconds())
    if remaining < 1:
        raise CredentialsError(
            "the credentials expire before a presigned URL could be used; refresh them "
            "(e.g. `aws sso login`) or use long-term credentials"
        )
    if remaining < expires:
        _log.info(
            "presigned URL expiry capped from %ds to %ds: the session credentials expire then",
            expires,
            remaining,
        )
        return remaining
    return expires


def _with_query(base: str, result: SigningResult) -> str:
    return f"{base}?{result.query}" if result.query else base


def _as_tuples(request: SignableRequest) -> SignableRequest:
    """The request with its pairs as tuples (callers may build it with lists)."""
    if not isinstance(request, SignableRequest):
        raise InvalidConfigError(f"request must be a SignableRequest, got {type(request).__name__}")
    query, headers = request.query, request.headers
    if type(query) is tuple and type(headers) is tuple:
        return request
    try:
        return request._replace(
            query=tuple((name, value) for name, value in query),
            headers=tuple((name, value) for name, value in headers),
        )
    except (TypeError, ValueError):
        raise UnsignableRequestError(
            "a SignableRequest holds (name, value) pairs in its query and headers"
        ) from None


def _host_of(headers: tuple[tuple[str, str], ...]) -> str:
    host = _given_host(headers)
    if host is None:
        raise UnsignableRequestError("request has no Host header; SigV4 always signs host")
    return host


def _given_host(headers: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> str | None:
    """The value of the first Host header among ``headers``, if any."""
    for name, value in headers:
        if name.lower() == "host":
            return value
    return None


def _signable(
    method: str, url: str, headers: HeadersLike, payload_hash: str, *, plain: bool = False
) -> tuple[SignableRequest, str, str]:
    """The request as SigV4 reads it, the URL without query, and the Host it is sent with.

    ``plain`` headers (see :func:`_plain_pairs`) are checked once per distinct header set.
    """
    if not isinstance(method, str):
        raise InvalidConfigError(f"method must be a str such as 'GET', got {type(method).__name__}")
    method = _checked_method(method)
    parsed = parse_url(url)
    if plain:  # many URLs of one API share one header set
        header_items, host = _with_host_cached(headers, parsed.host)  # type: ignore[arg-type]
    else:
        header_items, host = _with_host(headers, parsed.host)
    if not _is_hex_sha256(payload_hash):
        raise UnsignableRequestError(
            "payload_hash must be the lowercase hex SHA-256 of the body (64 characters)"
        )
    request = SignableRequest(method, parsed.path, parsed.query, header_items, payload_hash)
    return request, parsed.base, host


def _body_and_hash(body: Body, payload_hash: str | None) -> tuple[bytes | None, str]:
    """The body as bytes, and its hash: ``payload_hash`` when given, else computed."""
    raw_body = None if body is None else _body_bytes(body)
    if payload_hash is None:
        return raw_body, _sigv4.payload_hash(raw_body or b"")
    return raw_body, payload_hash


def _hashable(headers: HeadersLike) -> HeadersLike:
    """Headers as a tuple of pairs (a snapshot of them), so the request shape can be kept.

    Anything that cannot be read as pairs is passed on as it is, for the checks to refuse.
    """
    if headers is None or isinstance(headers, str | bytes | bytearray):
        return headers
    try:
        return tuple(headers.items() if isinstance(headers, Mapping) else headers)
    except TypeError:
        return headers


_PLAIN_TEXT = (str, bytes)


def _plain_pairs(headers: HeadersLike) -> bool:
    """A tuple of (name, value) pairs of exactly str or bytes: safe to keep as a cache key.

    Anything else (a user's iterable that may change, a memoryview, a str subclass) is
    checked and parsed on every call instead.
    """
    return headers is None or (
        type(headers) is tuple
        and all(
            type(pair) is tuple
            and len(pair) == 2  # noqa: PLR2004 - a pair
            and type(pair[0]) in _PLAIN_TEXT
            and type(pair[1]) in _PLAIN_TEXT
            for pair in headers
        )
    )


def _is_hex_sha256(text: object) -> bool:
    """64 lowercase hex digits (stripping every hex digit leaves nothing)."""
    return (
        isinstance(text, str)
        and len(text) == _SHA256_HEX_LENGTH
        and not text.strip("0123456789abcdef")
    )


def _with_host(headers: HeadersLike, url_host: str) -> tuple[tuple[tuple[str, str], ...], str]:
    """The checked header pairs, led by ``Host`` (from the URL) unless the caller set one."""
    items = _header_items(headers) if headers else []
    host = _given_host(items)
    if host is not None:
        return tuple(items), host
    return (("Host", url_host), *items), url_host


_with_host_cached = lru_cache(maxsize=256)(_with_host)


@lru_cache(maxsize=256)
def _stale(headers: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """Signing headers already present (from an earlier attempt), as the request spells them."""
    return tuple(name for name, _ in headers if name.lower() in _sigv4.SIGNING_HEADER_NAMES)


@lru_cache(maxsize=64)
def _checked_method(method: str) -> str:
    if not _sigv4.HTTP_TOKEN.fullmatch(method):
        raise InvalidConfigError(f"method must be an HTTP method such as 'GET', got {method!r}")
    return method.upper()


def _header_items(headers: HeadersLike) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, str | bytes | bytearray):
        raise UnsignableRequestError(
            "headers must be a mapping or (name, value) pairs, not a string"
        )
    try:
        items = list(headers.items() if isinstance(headers, Mapping) else headers)
    except TypeError:
        raise UnsignableRequestError(
            f"headers must be a mapping or (name, value) pairs, got {type(headers).__name__}"
        ) from None
    result = []
    for item in items:
        if not isinstance(item, tuple | list) or len(item) != 2:  # noqa: PLR2004 - a pair
            raise UnsignableRequestError(f"each header must be a (name, value) pair, got {item!r}")
        name, value = item
        if type(name) is not str:
            name = _text(name)
        if type(value) is not str:
            value = _text(value)
        if not value.isascii():
            # requests sends str values as Latin-1, httpx bytes as they are: which bytes a
            # non-ASCII value becomes on the wire is the client's choice, so it cannot be
            # signed reliably (RFC 9110 5.5 also asks for ASCII).
            raise UnsignableRequestError(
                f"header {name!r} has a non-ASCII value; percent-encode or base64 it"
            )
        result.append((name, value))
    return result


def _text(part: object) -> str:
    """A header name or value; bytes (as requests and httpx hold them) are read as Latin-1."""
    if isinstance(part, str):
        return part
    if isinstance(part, bytes):
        return part.decode("latin-1")
    raise UnsignableRequestError(
        f"header names and values must be str or bytes, got {type(part).__name__}"
    )


@lru_cache(maxsize=256)
def _joined(items: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Caller headers as a dict: repeats joined with ",", stale signing headers dropped.

    Cached per header set: callers get a copy, never this dict itself.
    """
    merged: dict[str, str] = {}
    first_spelling: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key in _sigv4.SIGNING_HEADER_NAMES:
            continue
        if key in first_spelling:
            name = first_spelling[key]  # noqa: PLW2901 - keep the first spelling of a repeat
            merged[name] = f"{merged[name]},{value}"
        else:
            first_spelling[key] = name
            merged[name] = value
    return merged


def _body_bytes(body: Body) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        if not is_utf8(body):
            raise UnsignableRequestError("body is a str that UTF-8 cannot encode; pass bytes")
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    raise UnsignableRequestError(
        f"body must be bytes, str or None, got {type(body).__name__}; for files or streams "
        "compute the SHA-256 yourself and pass payload_hash="
    )
