"""The aiohttp adapter: a client middleware (aiohttp 3.12.14+) that signs what aiohttp sends.

How aiohttp runs a middleware (line numbers of ``aiohttp/client.py`` and ``client_reqrep.py``
in aiohttp 3.14.5):

* ``ClientSession._request`` calls the middlewares once per hop -- the request, then every
  redirect it follows, to any origin (client.py:900, inside its ``while True`` loop) -- each
  time with a new ``ClientRequest`` whose headers are rebuilt from the caller's (client.py:659,
  client_reqrep.py:1268). Headers set here therefore never travel to the next hop; what must
  be decided per hop is whether to sign it at all.
* The hops of one call share the list of tracers made for that call (client.py:610, passed at
  841, kept at client_reqrep.py:1118 and by each response at client_reqrep.py:514). Its
  identity is what tells a redirect hop from a new request: see :func:`_chain_origin`.
* The request line is ``request.url.raw_path_qs`` (client_reqrep.py:1655; the absolute URL
  through a plain-HTTP proxy, 1653) and the ``Host`` header was written from the URL when the
  request was built. The URL is signed as yarl holds it, and replaced by the signed form,
  parsed with ``encoded=True`` so yarl does not quote it again. The response keeps
  ``original_url`` (client_reqrep.py:1742): a presigned query never shows in ``response.url``.
* The body is a payload object (``request.body``), written after the middleware returns; it
  is hashed here as it will be written (:func:`_read_body_hash`).
* Payload methods used here (``as_bytes``, ``consumed``, ``write_with_length``,
  ``ClientRequest.update_body``) exist from aiohttp 3.12.1 on. Before 3.12.14 aiohttp rebuilds
  a 307/308 hop's body from the caller's ``data`` (client.py:978 in 3.14 reuses the payload):
  a file is then at its end and an async iterator spent, so that hop goes out empty -- signed
  as sent, but without its body.
* After the middleware returns, aiohttp may still add ``Content-Type: application/octet-stream``
  to a POST/PUT/PATCH without one (client_reqrep.py:1689) and ``Connection``; neither is
  signed, which SigV4 allows.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import sys
import weakref
from typing import TYPE_CHECKING, Any, cast

from apigw_iam_auth import _sigv4
from apigw_iam_auth._body import IN_PLACE, INLINE_HASH_BYTES, copied, hash_body, is_seekable
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth._skew import corrected_after_refusal
from apigw_iam_auth.diagnostics import FORBIDDEN, MAX_REFUSAL_BYTES, readable_refusal
from apigw_iam_auth.errors import UnsignableRequestError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiohttp import ClientRequest, ClientResponse
    from aiohttp.abc import AbstractStreamWriter
    from aiohttp.client_middlewares import ClientHandlerType
    from aiohttp.payload import Payload
    from yarl import URL

    from apigw_iam_auth._models import Credentials, SigningResult
    from apigw_iam_auth.auth import AuthSettings
    from apigw_iam_auth.signer import SigV4Signer

__all__ = ["middleware"]

_log = logging.getLogger("apigw_iam_auth")

_HEADERS, _QUERY = SignatureLocation.HEADERS, SignatureLocation.QUERY
_REDIRECTS = frozenset({301, 302, 303, 307, 308})  # what aiohttp follows (client.py:936)
# The body hash, kept on the payload with the call it was made for: that call's redirect hops
# (307/308) send the same body.
_HASH_ATTRIBUTE = "_apigw_iam_auth_sha256"


async def middleware(
    settings: AuthSettings, request: ClientRequest, handler: ClientHandlerType
) -> ClientResponse:
    """Sign ``request`` (by header, or by presigning its URL), send it, and guard the outcome.

    A redirect hop to another origin than the one the call was first made to is sent
    unsigned, and so is every later hop of that call, back to that origin too (why:
    ``_httpx_redirects.needs_resign``). A clock-skew refusal corrects the signer's clock and
    sends the request once more; any other 403 is explained at DEBUG.
    """
    signer, presign, expires = settings.signer, settings.presign, settings.expires
    first = _chain_origin(request) if _chains else None  # no chain open: a new request
    if first is not None and first != _origin(request.url):
        _leave_chain(request)
        return await _send_unsigned(request, handler)
    if signer._configured is None:  # noqa: SLF001 - read off the loop, see the method
        await signer._read_configured_region_off_loop()  # noqa: SLF001
    body_hash = _known_body_hash(request) or (
        _sigv4.UNSIGNED_PAYLOAD  # a stream goes out as it comes: no hash is signed
        if signer._signs_unsigned_payload(str(request.url), request.headers.get("Host"))  # noqa: SLF001
        else await _read_body_hash(request)
    )
    provider = signer._credentials  # noqa: SLF001 - the adapters' provider
    credentials = await provider.aget()
    if signer._configured is None:  # noqa: SLF001 - read off the loop, see the method
        await signer._read_configured_region_off_loop()  # noqa: SLF001
    signing = _sign(signer, request, body_hash, credentials, presign=presign, expires=expires)
    response = await handler(request)
    if response.status == FORBIDDEN and await _clock_corrected(
        signer, response, signing, correct=settings.correct_clock_skew, resend=_replayable(request)
    ):
        response.release()
        credentials = await provider.aget()
        if signer._configured is None:  # noqa: SLF001 - read off the loop, see the method
            await signer._read_configured_region_off_loop()  # noqa: SLF001
        _sign(signer, request, body_hash, credentials, presign=presign, expires=expires)
        response = await handler(request)
    if first is None and response.status in _REDIRECTS:
        _remember_chain(request, response, _origin(request.url))
    return response


async def _send_unsigned(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
    """A hop to another origin: sent as aiohttp built it, without any signing header."""
    for name in [name for name in request.headers if name.lower() in _sigv4.SIGNING_HEADER_NAMES]:
        request.headers.popall(name, None)
    _log.debug("redirected to another origin (%s): sent unsigned", request.url.host)
    return await handler(request)


async def _clock_corrected(
    signer: SigV4Signer,
    response: ClientResponse,
    signing: SigningResult,
    *,
    correct: bool,
    resend: bool,
) -> bool:
    """After a 403: True when it was a clock-skew refusal, now corrected, to be sent again.

    Any other refusal is explained at DEBUG. The body read stays readable for the caller, by
    ``read()`` and by streaming from ``response.content`` (:func:`_stream_again`).
    """
    body: bytes | None = None  # left unread: not explained (see readable_refusal)
    if readable_refusal(response.headers):
        body = await response.read()
        _stream_again(response, body)
    date = response.headers.get("Date")
    return corrected_after_refusal(signer, body, date, signing, correct=correct, resend=resend)


def _stream_again(response: ClientResponse, body: bytes) -> None:
    """Give ``response`` a ``content`` stream holding ``body`` again, once read to be explained.

    ``read()``, ``text()`` and ``json()`` return the body aiohttp kept, but a caller streaming
    from ``response.content`` (``iter_chunked``, ``readline``, ``async for``) would find it
    empty. Where aiohttp no longer builds a stream this way, it stays read (``read()`` has it).
    """
    # private coupling: StreamReader(protocol, limit, loop=...), feed_data and feed_eof, and
    # BaseProtocol(loop) (aiohttp 3.12-3.14; documented as not to be built by users). The
    # protocol is never asked to pause: the limit is the body's own length (read decompressed,
    # it may exceed the Content-Length that let it be read). Guarded by tests/test_aiohttp.py::
    # test_a_refusal_read_to_be_explained_still_streams_to_the_caller and ...::test_a_large_
    # decompressed_refusal_streams_whole_to_the_caller, the fallback by ...::test_a_refusal_
    # stays_readable_without_the_stream
    loop = asyncio.get_running_loop()
    try:
        from aiohttp import StreamReader  # noqa: PLC0415 - the adapter's client, imported late
        from aiohttp.base_protocol import BaseProtocol  # noqa: PLC0415

        stream = StreamReader(BaseProtocol(loop), max(len(body), MAX_REFUSAL_BYTES), loop=loop)
        stream.feed_data(body)
        stream.feed_eof()
    except (ImportError, TypeError, AttributeError, AssertionError):  # built otherwise now
        return
    response.content = stream


# --- applying a signature ------------------------------------------------------------------


def _sign(
    signer: SigV4Signer,
    request: ClientRequest,
    body_hash: str,
    credentials: Credentials,
    *,
    presign: bool,
    expires: int,
) -> SigningResult:
    """Sign ``request`` in place: its headers, and its URL when the signed form differs."""
    headers = request.headers
    url = str(request.url)  # yarl's encoded form: the request line aiohttp will write
    # Names may be multidict's istr, a str subclass: the signer reads them as any str.
    signed_url, _, _, result = signer._sign_for_wire(  # noqa: SLF001 - the adapters' route
        request.method,
        url,
        tuple(headers.items()),
        body_hash,
        location=_QUERY if presign else _HEADERS,
        expires=expires,
        credentials=credentials,
    )
    for name in result.stale_headers:  # signing headers of an earlier signature (a retry)
        headers.popall(name, None)
    headers.extend(result.headers)  # none of these names is left: appending is setting them
    if signed_url != url:  # a query in canonical encoding, or the presigned query
        from yarl import URL  # noqa: PLC0415 - aiohttp's own dependency, imported only when used

        request.url = URL(signed_url, encoded=True)  # sent exactly as signed: no re-quoting
    return result


_Origin = tuple[str, str | None, int | None]


def _origin(url: URL) -> _Origin:
    """Scheme, host and port: what aiohttp compares (``url.origin()``) before a redirect.

    The host in lowercase, as it is signed: yarl keeps the case of a URL given with
    ``encoded=True``, while the ``Location`` of a redirect back to that host is lowercased.
    """
    host = url.raw_host
    return url.scheme, None if host is None else host.lower(), url.port


# --- redirect chains -----------------------------------------------------------------------

# The origin each redirect chain was first sent to, keyed by id() of the chain's tracer list;
# the entry holds that list (so the id cannot be reused while the entry lives) and a weak
# reference to the chain's first redirect response, whose death removes the entry. aiohttp
# keeps that response in the chain's history until the call returns, then in the final
# response's ``history``: the entry lives exactly as long as any hop can still come.
_chains: dict[int, tuple[object, _Origin, weakref.ref[Any]]] = {}


def _chain_origin(request: ClientRequest) -> _Origin | None:
    """The origin this request's redirect chain was first sent to; None for a new request.

    aiohttp hands every hop of one ``session.request(...)`` call the same tracer list, and
    each call a new one; nothing public links a hop to the call it belongs to.
    """
    tracers = request._traces  # noqa: SLF001 - the only link between a call's hops
    entry = _chains.get(id(tracers))
    if entry is None or entry[0] is not tracers:
        return None
    return entry[1]


def _remember_chain(request: ClientRequest, response: ClientResponse, origin: _Origin) -> None:
    """Record that ``request``'s call may go on to more hops, first sent to ``origin``."""
    tracers = request._traces  # noqa: SLF001 - see _chain_origin
    key = id(tracers)
    reference = weakref.ref(response, lambda dead: _forget_chain(key, dead))
    _chains[key] = (tracers, origin, reference)


def _leave_chain(request: ClientRequest) -> None:
    """Record that ``request``'s call has left its first origin: no later hop is signed."""
    tracers = request._traces  # noqa: SLF001 - see _chain_origin
    entry = _chains.get(id(tracers))
    if entry is not None and entry[0] is tracers:
        _chains[id(tracers)] = (tracers, _LEFT, entry[2])


# The origin of a chain that has been elsewhere: equal to no URL's origin.
_LEFT: _Origin = ("", None, None)


def _forget_chain(key: int, reference: weakref.ref[Any]) -> None:
    entry = _chains.get(key)
    if entry is not None and entry[2] is reference:
        _chains.pop(key, None)


# --- bodies --------------------------------------------------------------------------------


def _known_body_hash(request: ClientRequest) -> str | None:
    """The body hash when it takes no waiting: no body, bytes in memory, or a known hash.

    Bytes in memory (bytes, str, JSON, url-encoded forms: a ``BytesPayload``) up to 1 MiB
    are hashed here; a payload hashed for an earlier hop keeps its hash. None: the payload
    must be read (:func:`_read_body_hash`).
    """
    body = request.body
    if isinstance(body, IN_PLACE):  # b"": no body at all
        return _sigv4.EMPTY_SHA256
    if request.compress:  # the bytes sent are not these: to be read as written, or refused
        return None
    if isinstance(body, sys.modules["aiohttp.payload"].BytesPayload):  # imported: aiohttp is
        data = body._value  # noqa: SLF001 - what as_bytes() returns, without a coroutine
        if isinstance(data, bytes) and len(data) <= INLINE_HASH_BYTES:
            return _sigv4.payload_hash(_cut(data, _content_length(request, len(data))))
    known = getattr(body, _HASH_ATTRIBUTE, None)
    if isinstance(known, tuple) and known[0] is request._traces:  # noqa: SLF001 - a hop of its call
        return cast("str", known[1])
    return None


async def _read_body_hash(request: ClientRequest) -> str:
    """SHA-256 of the payload aiohttp will write, read as it will be written.

    Kept on the payload, which aiohttp reuses for the 307/308 hops of this call, with the call's
    tracer list (see :func:`_chain_origin`): the caller may send the same payload object again
    in a later call, changed (a part added, a buffer rewritten), and that is hashed afresh.
    """
    if request.compress:  # a hash is signed (UNSIGNED-PAYLOAD would need none)
        raise UnsignableRequestError(
            "aiohttp compresses this body after it is signed (compress=); compress it "
            "yourself, send the bytes, and set Content-Encoding"
        )
    body = cast("Payload", request.body)  # not b"": _known_body_hash answered for that
    payload = sys.modules["aiohttp.payload"]  # imported: aiohttp built this request
    if isinstance(body, payload.BytesPayload):  # bytes over the inline size
        digest = await _hash_bytes(await body.as_bytes(), _content_length(request))
    elif isinstance(body, payload.AsyncIterablePayload):  # read once, then sent from memory
        digest = await _buffered(request, body, _content_length(request))
    else:
        digest = await _payload_hash(request, body)
    body = cast("Payload", request.body)  # the buffer sent in its place, if it was read once
    # Not contextlib.suppress: entering a context manager costs about as much as hashing 1 KiB.
    try:  # noqa: SIM105
        setattr(body, _HASH_ATTRIBUTE, (request._traces, digest))  # noqa: SLF001
    except AttributeError:  # a payload with __slots__: hashed per hop
        pass
    return digest


async def _payload_hash(request: ClientRequest, body: Payload) -> str:
    """A file payload hashed where it lies, or any other payload as it writes itself."""
    payload = sys.modules["aiohttp.payload"]

    limit = _content_length(request)
    if isinstance(body, payload.IOBasePayload) and not isinstance(body, payload.TextIOPayload):
        source: Any = body._value  # noqa: SLF001 - the file the payload will read
        if isinstance(source, io.BytesIO):  # in memory already: hashed where it lies
            with source.getbuffer() as buffer, buffer[source.tell() :] as rest:
                return await _hash_bytes(rest, limit)
        if not is_seekable(source):
            return await _buffered(request, body, limit)
        size = body.size
        if limit is None or (size is not None and limit >= size):  # the file to its end:
            return await asyncio.to_thread(hash_body, source)  # 1 MiB chunks, off the loop
    return await _hash_written(body, limit)


def _content_length(request: ClientRequest, size: int | None = None) -> int | None:
    """The Content-Length aiohttp will cut the body to, if the caller set one.

    aiohttp sets the header itself to the payload's ``size`` when it is known: that value,
    compared as text, is not parsed (an ``int()`` per request).
    """
    value = request.headers.get("Content-Length")
    if value is None or (size is not None and value == str(size)):
        return None
    return int(value) if value.isascii() and value.isdigit() else None


def _cut(data: bytes | bytearray | memoryview, limit: int | None) -> bytes | bytearray | memoryview:
    """The part of ``data`` a ``Content-Length`` of ``limit`` lets aiohttp write."""
    return data if limit is None or limit >= len(data) else memoryview(data)[:limit]


async def _hash_bytes(data: bytes | bytearray | memoryview, limit: int | None) -> str:
    data = _cut(data, limit)
    if len(data) <= INLINE_HASH_BYTES:
        return _sigv4.payload_hash(data)
    return await asyncio.to_thread(_sigv4.payload_hash, data)


async def _buffered(request: ClientRequest, body: Payload, limit: int | None) -> str:
    """A payload that can be read only once (a pipe, an async iterator), read to send from memory.

    Each chunk is copied as the payload writes it (a generator may yield views of one buffer
    it refills, which a list of the chunks joined at the end would get wrong), and cut as
    aiohttp would cut it to the caller's ``Content-Length``: ``update_body`` sets the length of
    what it is given.
    """
    copier = _CopyingWriter()
    await body.write_with_length(_as_writer(copier), limit)
    data = b"".join(copier.chunks)
    await request.update_body(data)
    return await _hash_bytes(data, None)


async def _hash_written(body: Payload, limit: int | None) -> str:
    """Hash a payload by letting it write itself, as it will when sent (multipart, text files).

    Files inside are read in chunks off the loop by aiohttp and rewound before sending.
    """
    await _buffer_streamed_parts(body)
    # aiohttp also marks a payload consumed when it closes it after a call; one sent again in a
    # later call still writes itself. Only a payload (or a part) the hashing used up is refused.
    before = _used_up(body)
    hasher = _HashingWriter()
    await body.write_with_length(_as_writer(hasher), limit)
    used = [now and not then for then, now in zip(before, _used_up(body), strict=True)]
    if any(used[1:]):  # a part, which also marks the multipart body itself used up
        raise UnsignableRequestError(
            "a part of this multipart body can be read only once (a pipe, a socket), so it "
            "cannot be both hashed and sent; read that part into bytes first"
        )
    if used[0]:
        raise UnsignableRequestError(
            f"this {type(body).__name__} body can be read only once, so it cannot be both "
            "hashed and sent; pass bytes, a file opened in 'rb' mode, or an async iterator"
        )
    return hasher.hexdigest()


async def _buffer_streamed_parts(body: Payload) -> None:
    """Read each async-iterator part, at any depth, once: kept, it is written twice."""
    from aiohttp import MultipartWriter, payload  # noqa: PLC0415 - see _payload_hash

    if isinstance(body, MultipartWriter):
        for part, _, _ in body:
            if isinstance(part, payload.AsyncIterablePayload):
                # as_bytes() keeps each chunk as drawn, and a generator may refill one buffer
                # it yields views of: it is handed copies. _iter is what as_bytes() drains
                # (aiohttp 3.12-3.14); guarded by tests/test_aiohttp.py::
                # test_an_async_iterator_reusing_one_buffer_is_sent_as_it_yielded
                drawn = getattr(part, "_iter", None)
                if drawn is not None:
                    part._iter = _copies(drawn)  # noqa: SLF001
                await part.as_bytes()
            else:
                await _buffer_streamed_parts(part)


async def _copies(chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield copied(chunk)


def _used_up(body: Payload) -> tuple[bool, ...]:
    """Whether the payload, and each part of a multipart body at any depth, is used up."""
    from aiohttp import MultipartWriter  # noqa: PLC0415 - see _payload_hash

    parts = body if isinstance(body, MultipartWriter) else ()
    return (body.consumed, *(used for part, _, _ in parts for used in _used_up(part)))


def _as_writer(stand_in: _HashingWriter | _CopyingWriter) -> AbstractStreamWriter:
    # Payloads only call write(): a stand-in needs no more of the stream writer's interface.
    return stand_in  # type: ignore[return-value]


class _CopyingWriter:
    """Stands in for aiohttp's stream writer: keeps a copy of each chunk a payload writes."""

    __slots__ = ("chunks",)

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        self.chunks.append(copied(chunk))


class _HashingWriter:
    """Stands in for aiohttp's stream writer: hashes what a payload writes, keeps nothing."""

    __slots__ = ("_digest",)

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    async def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if len(chunk) > INLINE_HASH_BYTES:  # hashlib releases the GIL: hash big parts aside
            await asyncio.to_thread(self._digest.update, chunk)
        else:
            self._digest.update(chunk)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _replayable(request: ClientRequest) -> bool:
    """True when the body can be written again as it was signed (for the clock-skew retry)."""
    body = request.body
    return isinstance(body, IN_PLACE) or not body.consumed
