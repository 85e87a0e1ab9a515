"""The httpx adapter: sign an ``httpx.Request`` in place, sync or async, and guard redirects.

httpx runs the auth flow around its redirect loop: the flow sees only the last response, and
the redirect requests it builds keep every header but ``Authorization`` (and only across
origins). Two measures keep our credentials where they belong:

* an httpcore ``trace`` hook, inherited by every redirect request through ``extensions``,
  removes our headers from any hop bound for another origin just before its headers are written;
* a same-origin hop that API Gateway refuses is signed for its new URL and sent once more.
"""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from apigw_iam_auth import _sigv4
from apigw_iam_auth._body import hash_body, is_seekable
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth.errors import UnsignableRequestError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx

    from apigw_iam_auth._models import Credentials, SigningResult
    from apigw_iam_auth.signer import SigV4Signer

__all__ = [
    "FORBIDDEN",
    "body_hash_async",
    "body_hash_sync",
    "is_replayable",
    "needs_resign",
    "sign_request",
]

_SIGNING_HEADERS_RAW = frozenset(name.encode("ascii") for name in _sigv4.SIGNING_HEADER_NAMES)
FORBIDDEN = 403


def body_hash_sync(request: httpx.Request) -> str:
    """Hash the body httpx will send; a seekable file is hashed in chunks, not buffered."""
    source = _body_source(request)
    if source is None:
        try:
            source = request.read()
        except TypeError as exc:
            raise _unreadable(exc) from exc
    return hash_body(source)


async def body_hash_async(request: httpx.Request) -> str:
    """Like :func:`body_hash_sync`, without blocking the event loop on a large body.

    An async stream is buffered once with ``aread``; a file, or bytes above 1 MiB, is hashed
    in a worker thread.
    """
    source = _body_source(request)
    if source is None:
        try:
            source = await request.aread()
        except TypeError as exc:
            raise _unreadable(exc) from exc
    if isinstance(source, bytes) and len(source) <= _INLINE_HASH_BYTES:
        return _sigv4.payload_hash(source)
    return await asyncio.to_thread(hash_body, source)


# Hashing runs at ~1.5 GB/s: up to 1 MiB costs under a millisecond, less than a thread hop.
_INLINE_HASH_BYTES = 1024 * 1024


def _unreadable(exc: TypeError) -> UnsignableRequestError:
    return UnsignableRequestError(
        f"httpx cannot read this request body ({exc}); pass bytes, str, or an iterator of bytes"
    )


def _body_source(request: httpx.Request) -> bytes | IO[bytes] | IO[str] | None:
    """The body as bytes or a seekable file, or None when it is a stream still to be read."""
    if is_replayable(request):
        # In memory already; a redirect request carries the stream without ``content`` set.
        return request.read()
    # httpx wraps file content in an iterator stream; reach the file to hash it in chunks
    # and rewind it, so a 100 MiB upload is never held in memory.
    source = getattr(request.stream, "_stream", None)
    return source if is_seekable(source) else None


def sign_request(
    signer: SigV4Signer,
    request: httpx.Request,
    body_hash: str,
    *,
    presign: bool,
    expires: int,
    credentials: Credentials | None = None,
    is_async: bool,
) -> SigningResult:
    """Sign ``request`` in place and install the cross-origin guard on it."""
    headers = request.headers
    url = str(request.url)
    signed_url, _, _, result = signer._sign_for_wire(  # noqa: SLF001 - the adapters' route
        request.method,
        url,
        tuple(headers.raw),
        body_hash,
        location=SignatureLocation.QUERY if presign else SignatureLocation.HEADERS,
        expires=expires,
        credentials=credentials,
    )
    for name in result.stale_headers:  # our own headers from an earlier signature (a retry)
        headers.pop(name, None)
    for name, value in result.headers:
        headers[name] = value
    if signed_url != url:  # parsing a URL is the costliest step of httpx; skip it when we can
        request.url = _client_of(request).URL(signed_url)
    _install_guard(request, is_async=is_async)
    return result


def _client_of(request: httpx.Request) -> Any:  # noqa: ANN401 - the httpx or httpx2 module
    """The package (httpx or httpx2) a request belongs to: both have the same API."""
    return sys.modules[type(request).__module__.partition(".")[0]]


def is_replayable(request: httpx.Request) -> bool:
    """True when the body is in memory (a ``ByteStream``), so it can be sent again as signed."""
    return isinstance(request.stream, _client_of(request).ByteStream)


def needs_resign(response: httpx.Response, signed: httpx.Request) -> bool:
    """True when a redirect kept us on the origin but the new hop was refused unsigned."""
    return (
        response.status_code == FORBIDDEN
        and bool(response.history)
        and response.request is not signed
        and _raw_origin(response.request.url) == _raw_origin(signed.url)
    )


def _install_guard(request: httpx.Request, *, is_async: bool) -> None:
    extensions = request.extensions
    inner: Any = extensions.get("trace")
    if isinstance(inner, partial) and inner.func in (_on_event, _on_event_async):  # signed again
        inner = inner.args[1]
    guard = partial(_GUARD_EVENTS[is_async], _raw_origin(request.url), inner)
    # A new dict: the one given may be shared by other requests (redirects share this one).
    request.extensions = {**extensions, "trace": guard}


# scheme, host (as httpcore holds them, bytes) and port of where a hop goes.
_RawOrigin = tuple[bytes, bytes, int | None]


def _raw_origin(url: httpx.URL) -> _RawOrigin:
    return url.raw_scheme, url.raw_host, url.port


# httpcore's trace events are named "<http11|http2>.<step>.<started|complete>".
_HEADERS_WRITTEN_NEXT = frozenset(
    {"http11.send_request_headers.started", "http2.send_request_headers.started"}
)


def _on_event(
    origin: _RawOrigin,
    inner: Callable[[str, dict[str, Any]], None] | None,
    event: str,
    info: dict[str, Any],
) -> None:
    """The httpcore ``trace`` callback of sync clients; chains to a trace the user had set."""
    if event in _HEADERS_WRITTEN_NEXT:
        _strip_if_foreign(origin, info)
    if inner is not None:
        inner(event, info)


async def _on_event_async(
    origin: _RawOrigin,
    inner: Callable[[str, dict[str, Any]], Awaitable[None]] | None,
    event: str,
    info: dict[str, Any],
) -> None:
    """The httpcore ``trace`` callback of async clients, which await it."""
    if event in _HEADERS_WRITTEN_NEXT:
        _strip_if_foreign(origin, info)
    if inner is not None:
        await inner(event, info)


# Keyed by is_async. Guards are partials of these: called for every httpcore event, a plain
# function costs less than an object's __call__.
_GUARD_EVENTS: dict[bool, Callable[..., Any]] = {False: _on_event, True: _on_event_async}


def _strip_if_foreign(origin: _RawOrigin, info: dict[str, Any]) -> None:
    outgoing = info.get("request")
    if outgoing is None:
        return
    url = outgoing.url
    if (url.scheme, url.host, url.port) == origin and not url.target.startswith(b"http"):
        return  # straight to the origin we signed for: the common case
    if _hop_origin(url) != origin:
        outgoing.headers[:] = [
            (name, value)
            for name, value in outgoing.headers
            if name.lower() not in _SIGNING_HEADERS_RAW
        ]


def _hop_origin(url: Any) -> _RawOrigin:  # noqa: ANN401 - an httpcore.URL
    """Where a hop really goes, which is not always where httpcore connects.

    Through a plain-HTTP forward proxy httpcore connects to the proxy and writes the absolute
    URL as the request target: that URL is the origin.
    """
    if url.target.startswith((b"http://", b"https://")):
        parts = urlsplit(url.target.decode("ascii", "replace"))
        try:
            port = parts.port
        except ValueError:  # e.g. an IPv6 host written without brackets: not ours to trust
            return _UNKNOWN_ORIGIN
        host = parts.hostname or ""
        return parts.scheme.encode("ascii"), host.encode("ascii", "replace"), port
    return url.scheme, url.host, url.port


_UNKNOWN_ORIGIN: _RawOrigin = (b"", b"", None)  # equal to no origin a request is signed for
