"""``SigV4Signer``: the pure core plus the three things it must not hold itself.

The signer owns the scope settings, a credentials provider and a clock. Per signature it reads
the clock once and snapshots the credentials once, then hands plain values to the core.

Every signature is computed, on one route shared by ``sign``, ``presign`` and the HTTP-client
adapters: URL split (``_uri.wire_parts``) -> origin -> clock and credentials -> canonical query
(``_sigv4.user_query``) -> header set -> the pure core (``_sigv4.sign_parts``) -> the URL and
headers to place. Nothing keyed by a whole request or URL is kept. The signing path has
exactly three caches, for values shared by many requests:

=============  ============================  =====================  ========  ===================
cache          holds                         key                    bound     why it pays
=============  ============================  =====================  ========  ===================
origins        Host header, URL prefix,      ``scheme://netloc`` as 256 per   all calls to an API
(``_origin``)  scope (region, service) or    written in the URL     signer,   share them; a host
               why there is none, and the                           cleared   parse and its region
               names of the headers the                             when full cost more than the
               signer adds                                                    whole core
keys           the day's signing key, its    access key, secret,    64, LRU   four HMACs and the
(``_sigv4.     HMAC pads, its YYYYMMDD and   token, day (counted              pads once a day, not
_keys``)       scope strings, and the        from 1970), region,              per signature; the
               encoded session token         service                          ~1 KB token encoded
                                                                              once for presigning;
                                                                              the date written
                                                                              once a day
header sets    the checked, canonical block  the header pairs as    256,      a client sends the
(``_sigv4.     of a set of headers with      the client holds them  cleared   same headers (Host,
headers_to_    slots for the signer's own,   (str or bytes), and    when full User-Agent, Accept)
sign``)        the signed names, the Host    the same pairs                   with every request;
               signed and stale signing      without unsigned                 Content-Length
               headers in it                 values; the unsigned             follows each body
                                             names, the signer's              and a trace id is
                                             own names, the URL's             new per request,
                                             Host                             neither signed
=============  ============================  =====================  ========  ===================

Memos sit beside the path and hold no request data; each is described where it lives. Per
signer: the region configured outside the code (``_configured``). Process-wide: botocore's
region data (``_botocore.region_data``) and the adapters' once-per-package checks of what
they rely on (``_httpx._checked_once``, ``_requests._STORE_PROVEN``). Per aiohttp payload:
the hash of a body that had to be read, for the redirect hops of the same call, which send
the same payload (``_aiohttp._HASH_ATTRIBUTE``; it dies with the payload).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Literal, NamedTuple, cast

from apigw_iam_auth import _sigv4
from apigw_iam_auth._models import (
    DEFAULT_UNSIGNED_HEADERS,
    Credentials,
    SignableRequest,
    SignatureLocation,
    SignedRequest,
    SigningConfig,
    SigningResult,
    checked_flag,
)
from apigw_iam_auth._region import (
    check_region,
    check_region_set_name,
    configured_region,
    infer_scope,
    names_scope,
    region_names,
    service_defaults,
)
from apigw_iam_auth._sigv4 import _text
from apigw_iam_auth._threads import in_worker_thread
from apigw_iam_auth._uri import (
    fragment_of,
    is_utf8,
    parse_origin,
    wire_parts,
)
from apigw_iam_auth.credentials import (
    BotocoreProvider,
    CredentialsProvider,
    CredentialsSource,
    FixedKeys,
    not_a_snapshot,
    resolve_provider,
    snapshot_of,
)
from apigw_iam_auth.errors import (
    CredentialsError,
    InvalidConfigError,
    UnsignableRequestError,
)

__all__ = [
    "Body",
    "Clock",
    "CredentialsSource",
    "HeadersLike",
    "Payload",
    "SigV4Signer",
    "utc_now",
]

_log = logging.getLogger("apigw_iam_auth")

Clock = Callable[[], datetime]
Payload = Literal["signed", "unsigned"]


Body = bytes | bytearray | memoryview | str | None
# Pairs may hold bytes, as requests and httpx keep them; they are read as Latin-1.
HeadersLike = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] | None
HeaderPairs = tuple[tuple[str | bytes, str | bytes], ...]


_HEADERS, _QUERY = SignatureLocation.HEADERS, SignatureLocation.QUERY
_SHA256_HEX_LENGTH = 64
_MAX_ORIGINS = 256
# HTTP dates have whole seconds; a server "ahead" by less than this is simply in agreement.
_CLOCK_RESOLUTION = timedelta(seconds=2)
_COMMON_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HOST_NAMES = frozenset({"host", b"host"})


def utc_now() -> datetime:
    """The default clock: the system's idea of now, in UTC."""
    return datetime.now(timezone.utc)


class Destination(NamedTuple):
    """What a request's ``scheme://netloc`` decides: the Host sent, the URL prefix, the scope.

    ``(scheme, host)`` names the origin (lowercase scheme, Host header form): what the
    adapters compare a redirect's target with.
    """

    scheme: str
    host: str
    prefix: str
    # None where the host names no region and none is configured: a Host header may still
    # name one (why not, in ``unscoped``).
    config: SigningConfig | None
    # The signer's own headers in header mode (:func:`_sigv4.own_headers`), without and with
    # a session token.
    own: tuple[tuple[str, ...], tuple[str, ...]]
    unscoped: str = ""


class SigV4Signer:
    """Sign HTTP requests with AWS Signature Version 4, by header or as presigned URLs.

    >>> signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), region="us-east-1")
    >>> signed = signer.sign("GET", "https://abc.execute-api.us-east-1.amazonaws.com/prod/pets")
    >>> signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    True

    ``region=None`` reads the region off the host (execute-api, VPC endpoint, Lambda function
    URL, AppSync, VPC Lattice, OpenSearch), else takes ``AWS_REGION`` or the profile's region
    (that of a botocore or boto3 ``Session`` given as ``credentials``).
    The object holds no per-request state and may be shared across threads and tasks.
    """

    __slots__ = (
        "_add_sha256",
        "_clock",
        "_configured",
        "_credentials",
        "_epoch_clock",
        "_offset",
        "_origins",
        "_payload",
        "_profile",
        "_region",
        "_region_set",
        "_service",
        "_unsigned",
        "_unsigned_names",
    )

    def __init__(
        self,
        region: str | None = None,
        *,
        service: str = "execute-api",
        credentials: CredentialsSource = None,
        profile: str | None = None,
        clock: Clock = utc_now,
        unsigned_headers: Iterable[str] = DEFAULT_UNSIGNED_HEADERS,
        add_content_sha256_header: bool = False,
        payload: Payload | None = None,
        region_set: str | Iterable[str] | None = None,
    ) -> None:
        """Validate the settings now, so mistakes fail here rather than as a 403 later.

        ``payload="unsigned"`` signs ``UNSIGNED-PAYLOAD`` (sent in ``x-amz-content-sha256``)
        instead of the body's SHA-256; ``"signed"`` always signs the hash; None (the default)
        lets the service decide: VPC Lattice accepts only unsigned payloads, OpenSearch wants
        the hash in ``x-amz-content-sha256``, everything else gets the plain SigV4 default.
        ``region_set`` (``["us-east-1", "eu-west-1"]`` or ``"*"``) signs with SigV4a: one
        signature valid in every region of the set (needs the ``sigv4a`` extra); ``region``
        then plays no part, as SigV4a's scope names no region.

        ``credentials`` is ``(key, secret)``, ``(key, secret, token)``, a botocore
        ``Credentials``/``RefreshableCredentials``, a botocore or boto3 ``Session``, a callable
        (sync or async) returning credentials, a list of these tried in order, a
        :class:`CredentialsProvider`, or None for botocore's default chain (honouring
        ``profile``). ``clock`` returns an aware datetime; inject one in tests (it is first read
        at the first signature, so a clock that steps or counts its calls is not disturbed).
        """
        if region is not None and not isinstance(region, str):
            raise InvalidConfigError(f"region must be a str or None, got {type(region).__name__}")
        if not isinstance(service, str):
            raise InvalidConfigError(f"service must be a str, got {type(service).__name__}")
        if not callable(clock):
            raise InvalidConfigError("clock must be a callable returning an aware datetime")
        self._credentials: CredentialsProvider = resolve_provider(credentials, profile)
        self._region = None if region is None else check_region(region)
        self._profile = profile
        self._service = service
        # Validates region, service and header names now (the region may still be read off
        # each host later); the validated header names are what every per-host config reuses.
        defaults = SigningConfig(
            region or "us-east-1",
            service,
            cast("frozenset[str]", unsigned_headers),  # SigningConfig checks and normalises it
            checked_flag("add_content_sha256_header", add_content_sha256_header),
        )
        self._unsigned = defaults.unsigned_headers
        # The same names as bytes too, as requests and httpx may hold a header's name: a header
        # set's signed form (_sigv4.headers_to_sign) then finds them without decoding.
        self._unsigned_names: frozenset[str | bytes] = self._unsigned | {
            name.encode("latin-1") for name in self._unsigned
        }
        self._add_sha256 = defaults.add_content_sha256_header
        if payload not in {None, "signed", "unsigned"}:
            raise InvalidConfigError(
                f"payload must be 'signed', 'unsigned' or None (the service's default), "
                f"got {payload!r}"
            )
        self._payload = payload
        self._region_set = _checked_region_set(region_set)
        # The region configured outside the code, as (region, error message), read the first
        # time a host names no region (see _configured_region); None until then, and never
        # read when the signer has a region or a region set of its own.
        never_needed = self._region is not None or self._region_set is not None
        self._configured: tuple[str | None, str | None] | None = (
            (None, None) if never_needed else None
        )
        self._origins: dict[str, Destination] = {}
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
        once the machine's clock is right again (NTP caught up). A difference within 2 seconds
        (``Date`` has whole seconds, and reading it takes time) means the clocks agree: the
        refused request was merely old (re-sent long after signing), and the offset goes back
        to zero.
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
                "clock must return an aware datetime (e.g. datetime.now(timezone.utc)), "
                f"got {type(now).__name__}"
            )
        return now

    def _config_for(self, host: str) -> SigningConfig:
        """The scope for a request to ``host``: explicit region, or read off the hostname."""
        region, service = infer_scope(
            host,
            self._region,
            self._service,
            # SigV4a's scope names no region: a host without one needs none.
            (lambda: "*") if self._region_set else self._configured_region,
            self._region_set,
        )
        defaults = service_defaults(service)
        unsigned = self._payload == "unsigned" or (
            self._payload is None and defaults.unsigned_payload
        )
        return SigningConfig(
            region,
            service,
            self._unsigned,
            self._add_sha256 or defaults.content_sha256_header or unsigned,
            unsigned,
            self._region_set,
        )

    def _host_config(self, host: str, url_config: SigningConfig | None) -> SigningConfig:
        """The scope for a Host header naming another host than the URL.

        A Host that AWS documents names its own region and service; another (a private API's
        custom domain sent to its VPC endpoint) takes the URL's, read off the endpoint's name.
        """
        if url_config is None or names_scope(host):
            return self._config_for(host)
        return url_config

    def _configured_region(self) -> str | None:
        """``AWS_REGION`` or the profile's region, for hosts that name none; read once.

        Reading it builds a botocore session and parses the config files (tens of
        milliseconds): once per signer, not once per host. A broken profile is reported each
        time a host needs the region, and never where the host names its own.
        """
        configured = self._configured  # read once: _unscoped may drop it meanwhile
        if configured is None:
            configured = self._read_configured_region()
        region, error = configured
        if error is not None:
            raise InvalidConfigError(error)
        return region

    def _read_configured_region(self) -> tuple[str | None, str | None]:
        """Read the configured region now, where blocking is harmless (a worker thread).

        The async adapters run it in a worker thread (:meth:`_read_configured_region_off_loop`)
        whenever it is unread and a step may need it, since any host may turn out to.
        """
        provider = self._credentials
        profile, session = self._profile, None
        if isinstance(provider, BotocoreProvider):  # its keys' profile, or session, names it
            profile, session = provider.profile or profile, provider.session
        try:
            configured: tuple[str | None, str | None] = (
                configured_region(profile, session),
                None,
            )
        except InvalidConfigError as exc:
            configured = (None, str(exc))
        self._configured = configured
        return configured

    async def _read_configured_region_off_loop(self) -> None:
        """Read the configured region in a worker thread, where it is unread or was dropped.

        A request that found no region drops what was read (:meth:`_unscoped`), for the next
        one to read it again: that must not happen on an event loop, so the async adapters call
        this before each step that may need it (when ``_configured`` is None), with no await
        between the two.
        """
        while self._configured is None:
            await in_worker_thread(self._read_configured_region)

    def _unscoped(self, message: str, origin_text: str = "") -> InvalidConfigError:
        """The error of a request no region was found for, with the failure forgotten.

        The message asks for ``AWS_REGION`` or a profile's region: the origin's entry and what
        was read of the configuration are dropped (``origin_text``: the ``scheme://netloc``
        of the URL), so that the next request reads it again and finds one set since. Only a
        failing request pays that read.
        """
        self._origins.pop(origin_text, None)
        if self._region is None and self._region_set is None:  # else it is never read
            self._configured = None
        return InvalidConfigError(message)

    def _origin(self, origin: str) -> Destination:
        """The Destination of a ``scheme://netloc`` not kept yet, now kept (see the table)."""
        host, prefix = parse_origin(origin)
        config: SigningConfig | None = None
        own: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        unscoped = ""
        try:
            config = self._config_for(host)
        except InvalidConfigError as exc:  # no region: raised unless a Host header names one
            unscoped = str(exc)
        else:
            own = (
                _sigv4.own_headers(config, None, _HEADERS),
                _sigv4.own_headers(config, "a session token", _HEADERS),
            )
        found = Destination(prefix.partition(":")[0], host, prefix, config, own, unscoped)
        if len(self._origins) >= _MAX_ORIGINS:  # bounded: a crawler of many hosts stays flat
            self._origins.clear()
        self._origins[origin] = found
        return found

    def _signs_unsigned_payload(self, url: str, host: str | bytes | None = None) -> bool:
        """Whether a request signs ``UNSIGNED-PAYLOAD``, so its body need not be read.

        The adapters ask before reading a stream to hash it (VPC Lattice uploads go out as they
        are streamed), passing the Host header the client holds, which decides the scope as in
        :meth:`_sign_for_wire`. A request that cannot be signed says False: signing reports why.
        """
        if self._payload is not None:
            return self._payload == "unsigned"
        try:
            origin_text = wire_parts(url)[0]
            origin = self._origins.get(origin_text) or self._origin(origin_text)
            config = origin.config
            given = None if host is None else _sigv4.folded(_text(host))  # as it is signed
            if given is not None and given != origin.host:  # another host's scope
                config = self._host_config(given, config)
        except (InvalidConfigError, UnsignableRequestError):
            return False
        return config is not None and config.unsigned_payload

    def sign_request(
        self,
        request: SignableRequest,
        *,
        location: SignatureLocation = SignatureLocation.HEADERS,
        expires: int = 900,
        timestamp: datetime | None = None,
        credentials: FixedKeys | None = None,
    ) -> SigningResult:
        """Sign a request already split into its wire parts, as SigV4 reads them.

        ``credentials`` lets async callers pass a snapshot they fetched off the event loop.
        In query mode, ``expires`` is capped to the credentials' remaining lifetime: a link
        must not promise more than its session token can keep.
        """
        request = _checked_request(request)
        if not isinstance(location, SignatureLocation):
            raise InvalidConfigError(
                f"location must be SignatureLocation.HEADERS or .QUERY, got {location!r}"
            )
        host = _given_host(request.headers)
        if host is None:
            raise UnsignableRequestError("request has no Host header; SigV4 always signs host")
        try:
            config = self._config_for(host)
        except InvalidConfigError as exc:
            raise self._unscoped(str(exc)) from None
        given = _given_credentials(credentials)
        snapshot = self._credentials.get() if given is None else given
        epoch, expires = self._time_to_sign(timestamp, snapshot, location, expires)
        return _sigv4.sign(request, snapshot, config, epoch, location, expires)

    def _sign_for_wire(
        self,
        method: str,
        url: str,
        headers: HeaderPairs,
        payload_hash: str,
        *,
        location: SignatureLocation = _HEADERS,
        expires: int = 900,
        timestamp: datetime | None = None,
        credentials: Credentials | None = None,
    ) -> tuple[str, Destination, str, SigningResult]:
        """The one route from a request to its signature.

        Returns the URL to send (``url`` rewritten only as :meth:`sign` says, and in query mode
        given the ``X-Amz-*`` parameters, before a link's fragment), where it goes, the Host
        signed, and the result, whose ``headers`` are to be set and ``stale_headers`` removed.
        Adapters (requests, httpx, aiohttp) call this, with ``headers`` as the client holds them
        (a tuple of str or bytes pairs) and the hash of the body they will send.
        """
        method = _method(method)
        origin_text, path, canonical_uri, raw_query = wire_parts(url)
        origin = self._origins.get(origin_text) or self._origin(origin_text)
        config = origin.config
        # Refused before credentials are read, unless a Host header names an AWS host.
        if config is None and not names_scope((_given_host(headers) or "").strip()):
            raise self._unscoped(origin.unscoped, origin_text)
        snapshot = self._credentials.get() if credentials is None else credentials
        if timestamp is None and self._epoch_clock and location is _HEADERS:
            epoch = int(time.time() + self._offset)  # as _time_to_sign, without the call
        else:
            epoch, expires = self._time_to_sign(timestamp, snapshot, location, expires)
        query_text, wire_query = _sigv4.user_query(raw_query) if raw_query else ("", "")
        own = origin.own[snapshot.token is not None] if location is _HEADERS else ()
        header_set = _sigv4.headers_to_sign(headers, self._unsigned_names, own, origin.host)
        if header_set.host != origin.host:  # the caller's Host names another host
            try:
                config = self._host_config(header_set.host, config)
            except InvalidConfigError as exc:
                raise self._unscoped(str(exc), origin_text) from None
            own = _sigv4.own_headers(config, snapshot.token, location)
            header_set = _sigv4.headers_to_sign(headers, self._unsigned_names, own, origin.host)
        elif config is None:  # a Host header naming the URL's own host
            raise self._unscoped(origin.unscoped, origin_text)
        result = _sigv4.sign_parts(
            method,
            canonical_uri,
            query_text,
            header_set,
            payload_hash,
            snapshot,
            config,
            epoch,
            location,
            expires,
        )
        # The caller's pairs go in the caller's order; a presigned URL's X-Amz-* follow them.
        if location is _HEADERS:
            query = wire_query
        elif wire_query:
            query = f"{wire_query}&{_sigv4.signer_parameters(result.query)}"
        else:
            query = result.query
        signed_url = f"{origin.prefix}{path}?{query}" if query else origin.prefix + path
        if location is _QUERY and "#" in url:  # a link keeps its fragment: never sent or signed
            signed_url += fragment_of(url)
        return signed_url, origin, header_set.host, result

    def _time_to_sign(
        self,
        timestamp: datetime | None,
        credentials: Credentials,
        location: SignatureLocation,
        expires: int,
    ) -> tuple[int, int]:
        """The second to sign at (as :func:`_sigv4.epoch_seconds`), and ``expires`` capped.

        ``expires`` is capped to the credentials' remaining life. The default clock is read as
        ``time.time()`` (why: see ``_epoch_clock`` in ``__init__``).
        """
        if timestamp is None and self._epoch_clock:
            now = time.time() + self._offset  # by the system clock: within X-Amz-Date's years
            if location is _QUERY and credentials.expiry is not None:  # else sign_parts checks it
                moment = datetime.fromtimestamp(now, timezone.utc)
                expires = _capped_expiry(expires, credentials, moment)
            return int(now), expires
        when = self.now() if timestamp is None else timestamp
        epoch = _sigv4.epoch_seconds(when)  # first: it refuses what is no aware datetime
        if location is _QUERY:
            expires = _capped_expiry(expires, credentials, when)
        return epoch, expires

    def sign(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersLike = None,
        body: Body = None,
        timestamp: datetime | None = None,
        payload_hash: str | None = None,
        credentials: FixedKeys | None = None,
    ) -> SignedRequest:
        """Sign with an ``Authorization`` header; send the result's url, headers and body.

        ``body`` is bytes or str (UTF-8); for large or streamed bodies pass ``payload_hash``,
        the hex SHA-256 you computed in chunks. Signing headers among ``headers``
        (``Authorization``, ``X-Amz-Date``, ``X-Amz-Security-Token``, ``X-Amz-Content-SHA256``,
        ``X-Amz-Region-Set``) are dropped and replaced by fresh ones;
        ``add_content_sha256_header=True`` sends the body hash. The returned URL is the one to
        send: the path as clients put it on the wire, and a query that could be read two ways
        rewritten pair by pair in canonical encoding, in the order given (aiohttp sends it
        unchanged as ``yarl.URL(url, encoded=True)``; given text, it re-quotes the path).
        ``credentials`` is a snapshot fetched elsewhere (the async adapter fetches it off the
        event loop); None asks the provider.
        """
        raw_body, payload_hash = _body_and_hash(body, payload_hash)
        pairs = _snapshot(headers)
        method = _method(method)
        url, _, host, result = self._sign_for_wire(
            method,
            url,
            pairs,
            payload_hash,
            timestamp=timestamp,
            credentials=_given_credentials(credentials),
        )
        merged = _joined(pairs, host)
        merged.update(result.headers)
        # One C call: the NamedTuple's own constructor (a Python function) costs 0.2 µs more.
        return tuple.__new__(SignedRequest, (method, url, merged, raw_body, result))

    def presign(
        self,
        method: str,
        url: str,
        *,
        headers: HeadersLike = None,
        expires: int = 900,
        timestamp: datetime | None = None,
        body: Body = None,
        payload_hash: str | None = None,
        credentials: FixedKeys | None = None,
    ) -> str:
        """Return ``url`` with the signature in its query string (a presigned URL).

        Whoever opens it needs no credentials, so treat it as one. Only ``host`` is signed
        unless you pass ``headers``, which the user of the link must then send too. The body
        hash is signed as well: a presigned POST works only with exactly that body.
        ``wss://`` and ``ws://`` URLs (WebSocket APIs) are presigned as their https and http
        forms are: the scheme is not signed. A fragment (``#section``) stays at the end of the
        link, as a browser needs it; clients never send it, so it is not signed. With aiohttp,
        open the link as ``yarl.URL(link, encoded=True)``: given text, it re-quotes the path.
        """
        _sigv4.check_expires(expires)  # before credentials: a typo costs no credential chain
        _, payload_hash = _body_and_hash(body, payload_hash)
        return self._sign_for_wire(
            method,
            url,
            _snapshot(headers),
            payload_hash,
            location=_QUERY,
            expires=expires,
            timestamp=timestamp,
            credentials=_given_credentials(credentials),
        )[0]


def _described(item: object) -> str:
    """A header item's type and length, without its text."""
    size = len(item) if isinstance(item, tuple | list | str | bytes) else None
    return type(item).__name__ if size is None else f"a {type(item).__name__} of length {size}"


def _given_credentials(credentials: object) -> Credentials | None:
    """The snapshot passed, or None; anything else is named, never shown: it may hold a secret."""
    if credentials is None:
        return None
    snapshot = snapshot_of(credentials)
    if snapshot is None:
        raise not_a_snapshot("credentials must be", credentials)
    return snapshot


def _checked_region_set(region_set: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """The SigV4a region set as a tuple: ``"*"``, or real region names (each checked).

    A string is read as the header writes the set: ``"us-east-1,eu-west-1"``.
    """
    if region_set is None:
        return None
    regions = region_names(region_set) if isinstance(region_set, str) else region_set
    try:
        names = tuple(regions)
    except TypeError:
        raise InvalidConfigError(
            f"region_set must be '*' or a list of region names, got {type(region_set).__name__}"
        ) from None
    if not names or not all(isinstance(name, str) for name in names):
        raise InvalidConfigError("region_set must be '*' or a non-empty list of region names")
    if "*" in names:
        if len(names) > 1:
            raise InvalidConfigError("region_set '*' already means every region; pass it alone")
        return names
    return tuple(check_region_set_name(name) for name in names)


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


def _checked_request(request: SignableRequest) -> SignableRequest:
    """The request as signed, its pairs as tuples (callers may build it with lists).

    The method must be an HTTP token and is signed as given (these are the wire parts: a
    lowercase custom method goes out lowercase); the payload hash is checked as
    :meth:`SigV4Signer.sign` checks it.
    """
    if not isinstance(request, SignableRequest):
        raise InvalidConfigError(f"request must be a SignableRequest, got {type(request).__name__}")
    method, payload_hash = request.method, request.payload_hash
    if type(method) is not str or method not in _COMMON_METHODS:
        _method(method)  # the same refusals as sign(); the case stays as sent
    if payload_hash != _sigv4.UNSIGNED_PAYLOAD:
        _checked_hash(payload_hash)
    if not isinstance(request.path, str):
        raise UnsignableRequestError(
            "a SignableRequest's path is the percent-encoded path of the request line, a str "
            f"such as '/prod/pets'; got {type(request.path).__name__}"
        )
    query, headers = request.query, request.headers
    if _pairs_of(query, str) and _pairs_of(headers, _TEXT_TYPES):  # as nearly every caller has
        return request
    try:
        query = tuple(map(_as_pair, query))
        headers = tuple(map(_as_pair, headers))
    except TypeError:
        raise UnsignableRequestError(
            "a SignableRequest holds (name, value) pairs in its query and headers"
        ) from None
    if not _pairs_of(query, str):
        raise UnsignableRequestError(
            "a SignableRequest's query holds decoded (name, value) pairs of str"
        )
    _snapshot(headers)  # str or bytes, as sign() takes them: refused with what is wrong
    return request._replace(query=query, headers=headers)


def _pairs_of(items: object, kinds: type | tuple[type, ...]) -> bool:
    """Whether ``items`` is a tuple of ``(name, value)`` tuples of ``kinds``.

    Subclasses count: aiohttp's names are multidict's ``istr``.
    """
    if type(items) is not tuple:
        return False
    for pair in items:  # a loop, not all() over a generator: half the cost on a few pairs
        if type(pair) is not tuple or len(pair) != 2:  # noqa: PLR2004 - a pair
            return False
        name, value = pair
        if not isinstance(name, kinds) or not isinstance(value, kinds):
            return False
    return True


def _as_pair(item: tuple[str, str]) -> tuple[str, str]:
    """``item`` as a tuple, if it is a pair: a 2-character str is not ``(name, value)``.

    Typed as callers claim, checked as they give it.
    """
    if not isinstance(item, _PAIR_TYPES) or len(item) != 2:  # noqa: PLR2004 - a pair
        raise TypeError
    return item[0], item[1]


def _given_host(headers: HeaderPairs) -> str | None:
    """The value of the first Host header among ``headers``, if any.

    A name may be a str subclass: aiohttp holds names as multidict's ``istr``.
    """
    for name, value in headers:
        if (
            isinstance(name, _TEXT_TYPES)
            and len(name) == len("host")
            and name.lower() in _HOST_NAMES
        ):
            return value if type(value) is str else _text(value)
    return None


_TEXT_TYPES = (str, bytes)
# Type tuples, not ``str | bytes``: isinstance with a union built per call costs 4x more.
_STRINGS = (str, bytes, bytearray)
_PAIR_TYPES = (tuple, list)


def _snapshot(headers: HeadersLike) -> HeaderPairs:
    """The caller's headers as a tuple of pairs, read once (an iterator is read only once)."""
    if headers is None:
        return ()
    if isinstance(headers, _STRINGS):
        raise UnsignableRequestError(
            "headers must be a mapping or (name, value) pairs, not a string"
        )
    try:
        items = tuple(headers.items() if isinstance(headers, Mapping) else headers)
    except TypeError:
        raise UnsignableRequestError(
            f"headers must be a mapping or (name, value) pairs, got {type(headers).__name__}"
        ) from None
    for item in items:
        if not isinstance(item, _PAIR_TYPES) or len(item) != 2:  # noqa: PLR2004 - a pair
            raise UnsignableRequestError(  # named, never shown: it may be a signed header
                f"each header must be a (name, value) pair, got {_described(item)}"
            )
        for part in item:  # exactly str or bytes: a memoryview equal to bytes is not the same
            if not isinstance(part, _TEXT_TYPES):
                raise UnsignableRequestError(
                    f"header names and values must be str or bytes, got {type(part).__name__}"
                )
    return cast("HeaderPairs", items)


def _method(method: object) -> str:
    """An HTTP method as signed: the common ones as they are, any other token uppercased."""
    if type(method) is str and method in _COMMON_METHODS:
        return method
    if not isinstance(method, str):
        raise InvalidConfigError(f"method must be a str such as 'GET', got {type(method).__name__}")
    if not _sigv4.HTTP_TOKEN.fullmatch(method):
        raise InvalidConfigError(f"method must be an HTTP method such as 'GET', got {method!r}")
    return method.upper()


def _body_and_hash(body: Body, payload_hash: str | None) -> tuple[bytes | None, str]:
    """The body as bytes, and its hash: ``payload_hash`` when given (checked), else computed."""
    if body is None and payload_hash is None:  # no body: nothing to check or hash
        return None, _sigv4.EMPTY_SHA256
    raw_body = None if body is None else _body_bytes(body)
    if payload_hash is None:
        return raw_body, _sigv4.payload_hash(raw_body or b"")
    return raw_body, _checked_hash(payload_hash)


def _checked_hash(payload_hash: object) -> str:
    """A payload hash given by the caller: 64 lowercase hex digits, as SigV4 signs it."""
    if (  # stripping every hex digit leaves nothing
        not isinstance(payload_hash, str)
        or len(payload_hash) != _SHA256_HEX_LENGTH
        or payload_hash.strip("0123456789abcdef")
    ):
        raise UnsignableRequestError(
            "payload_hash must be the lowercase hex SHA-256 of the body (64 characters)"
        )
    return payload_hash


def _joined(pairs: HeaderPairs, host: str) -> dict[str, str]:
    """Headers as a dict, ``Host`` first unless given; repeats joined with ",".

    Signing headers of an earlier attempt are dropped.
    """
    if not pairs:
        return {"Host": host}
    merged: dict[str, str] = {"Host": host}
    first_spelling: dict[str, str] = {"host": "Host"}
    given_host = False
    for raw_name, raw_value in pairs:
        name = raw_name if type(raw_name) is str else _text(raw_name)
        # Trimmed as SigV4 trims them for signing: "a" and " b" go out as "a,b", as signed.
        value = (raw_value if type(raw_value) is str else _text(raw_value)).strip(" \t")
        key = name.lower()
        if key in _sigv4.SIGNING_HEADER_NAMES:
            continue
        if key == "host" and not given_host:  # the caller's spelling and value, in its place
            given_host = True
            del merged["Host"], first_spelling["host"]
        if key in first_spelling:
            name = first_spelling[key]
            merged[name] = f"{merged[name]},{value}"
        else:
            first_spelling[key] = name
            merged[name] = value
    return merged


def _body_bytes(body: bytes | bytearray | memoryview | str) -> bytes:
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
