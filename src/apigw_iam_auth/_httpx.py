"""The httpx adapter: sign an ``httpx.Request`` in place, sync or async.

One adapter serves httpx and httpx2 (its continuation, with httpcore2 underneath): both have
the same API, and :func:`package_of` finds the package a request belongs to. httpx2 and
httpcore2 2.14 to 2.17 differ from httpx 0.28-0.29 and httpcore 1.0 nowhere the adapter looks: the
same redirect requests (extensions passed on), the same trace event names and ``info``, the
same header list written after ``send_request_headers.started``, the same absolute-form target
through a forward proxy (httpcore2 also keeps a target that is already absolute). One
difference shows in what is sent, not in how we sign: for a file read partly already, httpx2
states the remaining length as Content-Length, where httpx 0.28-0.29 states the whole file's.

Redirects, and the guard that keeps our headers off a hop to another origin: ``_httpx_redirects``.

Private couplings, and how each fails safe
------------------------------------------
Every use of a private attribute or of undocumented behaviour of httpx/httpcore is marked
``# private coupling:`` where it happens, and ``tests/test_couplings.py`` both checks that it
still holds and removes it to prove the fallback. None is trusted blindly:

* ``request.stream._stream`` (the file behind ``content=``): checked once per package by
  building a request around an empty file. Without it, file bodies are read into memory to be
  hashed, with a ``RuntimeWarning`` that says so.
* ``Headers._list`` (the header triples: name, lowercase name, value, as bytes): the signing
  headers are appended there in one step instead of set one by one (each ``headers[name] =
  value`` searches the whole list). Checked once per package by appending to a probe and
  reading it back through the public API; where that fails, headers are set one by one. Only
  speed depends on it, so no warning.
* ``URL._uri_reference`` (the parsed URL, a NamedTuple): the URL's text is written from its
  parts (``str(url)`` costs three times more), and a signed query (presigned, or a query sent
  in canonical encoding) is swapped into it instead of parsing the whole URL again. Checked
  once per package against ``str()`` and a URL parsed whole; where that fails, the URL is
  read with ``str()`` and parsed whole. Only speed depends on it.
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import AsyncIterable, Iterable
from typing import IO, TYPE_CHECKING, Any

from apigw_iam_auth import _sigv4
from apigw_iam_auth._body import INLINE_HASH_BYTES, copied, hash_body, is_seekable
from apigw_iam_auth._httpx_redirects import (
    drops_authorization,
    install_guard,
    leave_origin,
    named,
    package_of,
    prove_guard,
)
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth._threads import in_worker_thread
from apigw_iam_auth.errors import InvalidConfigError, UnsignableRequestError

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from apigw_iam_auth._models import Credentials, SigningResult
    from apigw_iam_auth.auth import AuthSettings
    from apigw_iam_auth.signer import SigV4Signer

__all__ = [
    "body_hash_async",
    "body_hash_sync",
    "is_replayable",
    "sign_request",
    "small_body_hash",
    "unsigned",
]


def small_body_hash(request: httpx.Request) -> str | None:
    """The hash of a body of at most 1 MiB that httpx holds in memory, else None.

    httpx reads a body given as bytes, str, JSON or a form when it builds the request, and
    then sends exactly ``request.content``; it refuses ``content`` for a stream not yet read.
    Nearly every request is hashed here, without looking at its stream.
    """
    try:
        content = request.content
    except RuntimeError:  # httpx.RequestNotRead: a stream or file, see body_hash_sync
        return None
    return _sigv4.payload_hash(content) if len(content) <= INLINE_HASH_BYTES else None


def body_hash_sync(request: httpx.Request, signer: SigV4Signer) -> str:
    """Hash the body httpx will send; a seekable file is hashed in chunks, not buffered.

    A stream is not read at all where no hash is signed (``UNSIGNED-PAYLOAD``).
    """
    in_memory = small_body_hash(request)
    if in_memory is not None:
        return in_memory
    if signer._signs_unsigned_payload(str(request.url), request.headers.get("Host")):  # noqa: SLF001
        return _sigv4.UNSIGNED_PAYLOAD
    source = _body_source(request)
    if source is None:
        if not isinstance(request.stream, Iterable):  # httpx would fail an assert in read()
            raise UnsignableRequestError(
                "this body is an async iterator, which a sync Client cannot send: use an "
                "AsyncClient, or pass bytes or a sync iterator"
            )
        try:
            source = _buffered(request, b"".join([copied(chunk) for chunk in request.stream]))
        except TypeError as exc:
            raise _unreadable(exc) from exc
    return hash_body(source)


async def body_hash_async(request: httpx.Request, signer: SigV4Signer) -> str:
    """Like :func:`body_hash_sync`, without blocking the event loop on a large body.

    An async stream is buffered once with ``aread``; a file, or bytes above 1 MiB, is hashed
    in a worker thread.
    """
    if not isinstance(request.stream, AsyncIterable):  # httpx would refuse it when sending
        raise UnsignableRequestError(
            "this body is a sync iterator or file (httpx takes a bytearray as an iterator too), "
            "which an AsyncClient cannot send: pass bytes or an async iterator"
        )
    if signer._signs_unsigned_payload(str(request.url), request.headers.get("Host")):  # noqa: SLF001
        return _sigv4.UNSIGNED_PAYLOAD
    source = _body_source(request)
    if source is None:
        try:
            chunks = [copied(chunk) async for chunk in request.stream]
        except TypeError as exc:
            raise _unreadable(exc) from exc
        source = _buffered(request, b"".join(chunks))
    if isinstance(source, bytes) and len(source) <= INLINE_HASH_BYTES:
        return _sigv4.payload_hash(source)
    return await in_worker_thread(hash_body, source)


def _buffered(request: httpx.Request, content: bytes) -> bytes:
    """Send ``content``, a stream read once to be hashed, as the request's body from now on.

    The stream's chunks are copied as they are drawn (a generator may refill one buffer,
    which ``Request.read()`` would join only at the end); the request then holds them as
    ``read()`` leaves it: its ``content`` and a ``ByteStream``, so redirects and the skew
    retry send it again.
    """
    request.stream = package_of(type(request)).ByteStream(content)
    return request.read()


def _unreadable(exc: TypeError) -> UnsignableRequestError:
    return UnsignableRequestError(
        f"httpx cannot read this request body ({exc}); pass bytes, str, or an iterator of bytes"
    )


def _body_source(request: httpx.Request) -> bytes | IO[bytes] | IO[str] | None:
    """The body as bytes or a seekable file, or None when it is a stream still to be read."""
    if is_replayable(request):
        # In memory already; a redirect request carries the stream without ``content`` set.
        return request.read()
    if not _checked_once(_FILES_REACHABLE, type(request), _check_files):
        return None  # read into memory, as any stream (warned once)
    # httpx wraps file content in an iterator stream; reach the file to hash it in chunks
    # and rewind it, so a 100 MiB upload is never held in memory.
    # private coupling: IteratorByteStream._stream is the file given as content= (httpx
    # 0.27-0.29, httpx2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_file_body_is_reached_in_place
    source = getattr(request.stream, "_stream", None)
    return source if is_seekable(source) else None


def _checked_once(
    results: dict[type, bool],
    request_type: type,
    check: Callable[[Any], bool],
) -> bool:
    """``check(package)`` of a request type's client package, run (and warned of) only once."""
    result = results.get(request_type)
    if result is None:
        with _CHECKING:
            result = results.get(request_type)
            if result is None:
                result = results[request_type] = check(package_of(request_type))
    return result


# Held while a package's couplings are checked, so that each is checked (and warned of) once.
_CHECKING = threading.Lock()


def _reset_after_fork() -> None:
    """In a forked child: a new lock, which no parent thread (absent here) can be holding.

    A check cut short by the fork left no result, so the child's first request checks again.
    """
    global _CHECKING  # noqa: PLW0603 - the parent's lock may have been held at fork time
    _CHECKING = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_reset_after_fork)


# Request type -> whether its package keeps a file body at request.stream._stream.
_FILES_REACHABLE: dict[type, bool] = {}


def _check_files(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    probe = io.BytesIO()
    stream = client.Request("PUT", "http://a.invalid/", content=probe).stream
    # private coupling: IteratorByteStream._stream (httpx 0.27-0.29, httpx2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_file_body_without_the_private_attribute_is_buffered_loudly
    if getattr(stream, "_stream", None) is probe:
        return True
    warnings.warn(
        f"apigw_iam_auth: {named(client)} no longer keeps a file body at "
        "request.stream._stream; file bodies are read into memory to be hashed instead of "
        "in 1 MiB chunks",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


def sign_request(
    settings: AuthSettings,
    request: httpx.Request,
    body_hash: str,
    credentials: Credentials | None,
    *,
    is_async: bool,
) -> SigningResult:
    """Sign ``request`` in place, name its origin, and hook the guard where it is needed.

    Where the guard is not proven to work with this client package, the request is signed in
    the query string whatever ``presign`` says (see ``_httpx_redirects``).
    """
    presign = settings.presign
    unguarded = not presign and not _guard_proven(type(request))
    in_headers = not presign and not unguarded
    headers = request.headers
    parsed = _checked_once(_URL_PARSED, type(request), _check_parsed_url)
    url = _url_text(request.url) if parsed else str(request.url)
    try:
        signed_url, destination, _, result = settings.signer._sign_for_wire(  # noqa: SLF001
            request.method,
            url,
            tuple(headers.raw),
            body_hash,
            location=SignatureLocation.HEADERS if in_headers else SignatureLocation.QUERY,
            expires=settings.expires,
            credentials=credentials,
        )
    except InvalidConfigError as exc:
        if not unguarded:
            raise
        raise InvalidConfigError(
            f"{exc} (this request is signed in the query string although presign=False: "
            f"redirects cannot be guarded with this {named(package_of(type(request)))}, see "
            "the RuntimeWarning)"
        ) from None
    for name in result.stale_headers:  # our own headers from an earlier signature (a retry)
        headers.pop(name, None)
    if _checked_once(_HEADERS_LISTED, type(request), _check_header_list):
        # None of these names is among the headers now (stale ones just went): appending is
        # what headers[name] = value does, without its search of the list.
        # private coupling: Headers._list holds (name, lowercase name, value) bytes triples
        # (httpx 0.23-0.29, httpx2 2.14-2.17); guarded by
        # tests/test_couplings.py::test_signing_headers_are_appended_to_the_header_list
        headers._list.extend(  # noqa: SLF001
            [(*_SIGNER_HEADER_BYTES[name], value.encode()) for name, value in result.headers]
        )
    else:
        for name, value in result.headers:
            headers[name] = value
    if signed_url != url:  # parsing a URL is the costliest step of httpx; skip it when we can
        request.url = _signed_url(request, url, signed_url)
    # Hooked only where httpx's own clean-up could leave more of ours than X-Amz-Date on a hop
    # elsewhere (why: _httpx_redirects).
    hook = in_headers and (
        destination.scheme == "http"
        or len(result.headers) > len(_DATE_AND_SIGNATURE)
        or not _checked_once(_AUTHORIZATION_DROPPED, type(request), drops_authorization)
    )
    install_guard(request, (destination.scheme, destination.host), is_async=is_async, hook=hook)
    return result


def unsigned(request: httpx.Request) -> httpx.Request:
    """``request``, a hop to another origin, without the signing headers of an earlier signature.

    It is marked so that no later hop of its chain is signed (:func:`leave_origin`).
    """
    for name in _sigv4.SIGNING_HEADER_NAMES:  # httpx finds a name in any case
        request.headers.pop(name, None)
    leave_origin(request)
    return request


def _signed_url(request: httpx.Request, url: str, signed_url: str) -> httpx.URL:
    """``signed_url`` as the request's URL; where only the query changed, swapped in alone.

    The query of a presigned or reordered URL is canonical already (unreserved characters and
    ``%XX``), which httpx would only re-validate, at the cost of a whole parse (~30 µs for a
    presigned query): where the package allows, the parsed URL keeps everything but its query.
    """
    base, _, query = signed_url.partition("?")
    current = request.url
    if (
        query
        and "#" not in url
        and base == url.partition("?")[0]
        and _checked_once(_URL_PARSED, type(request), _check_parsed_url)
    ):
        return _with_query(current, query)
    return package_of(type(request)).URL(signed_url)  # type: ignore[no-any-return]


def _url_text(url: httpx.URL) -> str:
    """``str(url)``, written from the parsed URL where it has no userinfo, IPv6 host or fragment.

    httpx's own ``__str__`` rebuilds the authority through three properties (1 µs a request).
    """
    # private coupling: URL._uri_reference, a NamedTuple ParseResult of the URL's parts as
    # str(url) joins them (httpx 0.28-0.29, httpx2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_the_url_text_is_written_from_its_parts
    scheme, userinfo, host, port, path, query, fragment = url._uri_reference  # noqa: SLF001
    if userinfo or fragment is not None or not scheme or not host or ":" in host:
        return str(url)
    if port is not None:
        host = f"{host}:{port}"
    return f"{scheme}://{host}{path}" if query is None else f"{scheme}://{host}{path}?{query}"


def _with_query(url: httpx.URL, query: str) -> httpx.URL:
    # private coupling: URL._uri_reference, a NamedTuple ParseResult whose query field holds the
    # raw query text (httpx 0.28-0.29, httpx2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_a_signed_query_is_swapped_into_the_parsed_url
    swapped = object.__new__(type(url))
    swapped._uri_reference = url._uri_reference._replace(query=query)  # noqa: SLF001
    return swapped


# Request type -> whether its package's URL is read from its parts, and takes a query swapped
# into them.
_URL_PARSED: dict[type, bool] = {}


def _check_parsed_url(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    """Write probe URLs from their parts, swap a query into one, and compare with httpx's own."""
    query = "a=1&X-Amz-Signature=ab%2Fc"
    try:
        probes = [client.URL(url) for url in _PROBE_URLS]
        swapped = _with_query(client.URL("https://a.invalid:8443/p?b=2"), query)
        parsed = client.URL(f"https://a.invalid:8443/p?{query}")
        return bool(
            all(_url_text(probe) == str(probe) for probe in probes)
            and str(swapped) == str(parsed)
            and swapped == parsed
            and swapped.raw_path == parsed.raw_path == b"/p?" + query.encode()
            and swapped.params == parsed.params
        )
    except Exception:  # noqa: BLE001 - a check that cannot run proves nothing
        return False


_PROBE_URLS = (
    "https://a.invalid",
    "http://A.invalid:8080/p/%7E/%C3%A9?",
    "https://a.invalid/?q=a%20b&r",
    "https://a.invalid:443/p",
    "http://127.0.0.1:8080/p%2F?a=1",
)


_DATE_AND_SIGNATURE = ("X-Amz-Date", "Authorization")
# Request type -> whether its package drops Authorization from an https request's redirect to
# another origin.
_AUTHORIZATION_DROPPED: dict[type, bool] = {}
# The headers the signer sets, as Headers._list holds a name: as given, and lowercase.
_SIGNER_HEADER_BYTES = {
    name: (name.encode("ascii"), name.lower().encode("ascii")) for name in _sigv4.SIGNING_HEADERS
}


# Request type -> whether its package's Headers take an appended (name, lower, value) triple.
_HEADERS_LISTED: dict[type, bool] = {}


def _check_header_list(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    """Append a triple to a probe's ``_list`` and read it back through the public API.

    Only speed depends on it: where it fails, headers are set one by one, as any caller would.
    """
    try:
        probe = client.Headers({"Accept": "*/*"})
        # private coupling: see sign_request
        probe._list.append((b"X-Amz-Date", b"x-amz-date", b"20150830T123600Z"))  # noqa: SLF001
        return (
            probe.get("x-amz-date") == "20150830T123600Z"
            and probe.raw == [(b"Accept", b"*/*"), (b"X-Amz-Date", b"20150830T123600Z")]
            and list(probe.multi_items()) == [("accept", "*/*"), ("x-amz-date", "20150830T123600Z")]
        )
    except Exception:  # noqa: BLE001 - a check that cannot run proves nothing
        return False


def is_replayable(request: httpx.Request) -> bool:
    """True when the body is in memory (a ``ByteStream``), so it can be sent again as signed."""
    return isinstance(request.stream, package_of(type(request)).ByteStream)


def _guard_proven(request_type: type) -> bool:
    """Whether the redirect guard works with this client package (proven once, warned once)."""
    return _checked_once(_GUARD_PROVEN, request_type, prove_guard)


# Request type -> whether the guard was proven for its package (run once per package).
_GUARD_PROVEN: dict[type, bool] = {}
