"""The httpx adapter: sign an ``httpx.Request`` in place, sync or async, and guard redirects.

One adapter serves httpx and httpx2 (its continuation, with httpcore2 underneath): both have
the same API, and :func:`_client_of` finds the package a request belongs to. httpx2 2.16 and
httpcore2 2.16 differ from httpx 0.28 and httpcore 1.0 nowhere the adapter looks: the same
redirect requests (extensions passed on), the same trace event names and ``info``, the same
header list written after ``send_request_headers.started``, the same absolute-form target
through a forward proxy (httpcore2 also keeps a target that is already absolute). One
difference shows in what is sent, not in how we sign: for a file read partly already, httpx2
states the remaining length as Content-Length, where httpx 0.28 states the whole file's.

httpx runs the auth flow around its redirect loop: the flow sees only the last response, and
the redirect requests it builds keep every header but ``Authorization`` (and only across
origins). Two measures keep our credentials where they belong:

* an httpcore ``trace`` hook, inherited by every redirect request through ``extensions``,
  removes our headers from any hop bound for another origin just before its headers are written;
* a same-origin hop that API Gateway refuses is signed for its new URL and sent once more.

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
* ``URL._uri_reference`` (the parsed URL, a NamedTuple): a signed query (presigned, or a query
  sent in canonical order) is swapped into it instead of parsing the whole URL again. Checked
  once per package against a URL parsed whole; where that fails, the URL is parsed. Only
  speed depends on it.
* The redirect guard needs three things nobody documents: httpx carries a request's
  ``extensions`` to the redirects it follows; httpcore calls the ``trace`` hook with
  ``<http11|http2>.send_request_headers.started`` and the ``httpcore.Request`` in ``info``
  before writing; removing a header from that request's list keeps it off the wire. If any of
  them went away the guard would do nothing and, after a redirect to another origin, the session
  token (``X-Amz-Security-Token`` survives httpx's own redirect clean-up) would follow.
  A per-hop check cannot help: a hop the trace hook does not reach runs none of our code before
  its headers are written, and the auth flow sees it only after the fact. So the guard is
  proven before it is trusted: once per package, at the first request signed, the adapter runs
  that package's own redirect code (through its public ``MockTransport``) and its httpcore's
  HTTP/1.1 connection (writing to an in-memory stream) with a guard on a hop to another origin,
  and checks that the header was removed from the bytes written (no I/O; about a millisecond).
  If the proof fails the adapter fails safe: it warns once (``RuntimeWarning``, naming what
  broke) and signs every request in the query string instead, as ``presign=True`` does. A
  presigned request carries nothing of ours in its headers, and a redirect's URL is the one its
  ``Location`` names, so no hop can carry credentials anywhere; API Gateway accepts query
  signatures for every method and body. Refusing to sign was the other safe choice; it would
  stop every application on the next httpx release for a risk that query signing removes.
* Through a plain-HTTP forward proxy, httpcore writes the absolute URL as the target: the guard
  reads the real origin from it. Were that to change, the guard would take the proxy for another
  origin and strip the signature: the request is refused (fail closed), and the guard warns
  that requests through the proxy now go out unsigned.

Limits: the proof covers httpcore's HTTP/1.1 code (HTTP/2 uses the same hook, under the
``http2.`` prefix) and the sync redirect loop (the async one builds redirects with the same
method). A transport that is not httpcore (an ASGI app, a mock) never calls ``trace``: with it,
redirects to another origin are as safe as that transport makes them.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
import threading
import warnings
from functools import partial
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

from apigw_iam_auth import _sigv4
from apigw_iam_auth._body import hash_body, is_seekable
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth._uri import host_header
from apigw_iam_auth.errors import InvalidConfigError, UnsignableRequestError

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
    "small_body_hash",
]

_SIGNING_HEADERS_RAW = frozenset(name.encode("ascii") for name in _sigv4.SIGNING_HEADER_NAMES)
FORBIDDEN = 403


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
    return _sigv4.payload_hash(content) if len(content) <= _INLINE_HASH_BYTES else None


def body_hash_sync(request: httpx.Request) -> str:
    """Hash the body httpx will send; a seekable file is hashed in chunks, not buffered."""
    in_memory = small_body_hash(request)
    if in_memory is not None:
        return in_memory
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
    if not _files_reachable(type(request)):
        return None  # read into memory, as any stream (warned once)
    # httpx wraps file content in an iterator stream; reach the file to hash it in chunks
    # and rewind it, so a 100 MiB upload is never held in memory.
    # private coupling: IteratorByteStream._stream is the file given as content= (httpx
    # 0.27-0.28, httpx2 2.16); guarded by
    # tests/test_couplings.py::test_file_body_is_reached_in_place
    source = getattr(request.stream, "_stream", None)
    return source if is_seekable(source) else None


def _files_reachable(request_type: type) -> bool:
    """Whether this package keeps a file body at ``request.stream._stream``; warns once if not."""
    return _checked_once(_FILES_REACHABLE, request_type, _check_files)


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
                result = results[request_type] = check(_package_of(request_type))
    return result


# Held while a package's couplings are checked, so that each is checked (and warned of) once.
_CHECKING = threading.Lock()


# Request type -> whether its package keeps a file body at request.stream._stream.
_FILES_REACHABLE: dict[type, bool] = {}


def _check_files(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    probe = io.BytesIO()
    stream = client.Request("PUT", "http://a.invalid/", content=probe).stream
    # private coupling: IteratorByteStream._stream (httpx 0.27-0.28, httpx2 2.16); guarded by
    # tests/test_couplings.py::test_file_body_without_the_private_attribute_is_buffered_loudly
    if getattr(stream, "_stream", None) is probe:
        return True
    warnings.warn(
        f"apigw_iam_auth: {_named(client)} no longer keeps a file body at "
        "request.stream._stream; file bodies are read into memory to be hashed instead of "
        "in 1 MiB chunks",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


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
    """Sign ``request`` in place and install the cross-origin guard on it.

    Where the guard is not proven to work with this client package, the request is signed in
    the query string whatever ``presign`` says (see the module docstring).
    """
    if not presign and not _guard_proven(type(request)):
        presign = True
    headers = request.headers
    url = str(request.url)
    signed_url, destination, _, result = signer._sign_for_wire(  # noqa: SLF001 - adapters' route
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
    if _headers_listed(type(request)):
        # None of these names is among the headers now (stale ones just went): appending is
        # what headers[name] = value does, without its search of the list.
        # private coupling: Headers._list holds (name, lowercase name, value) bytes triples
        # (httpx 0.23-0.28, httpx2 2.16); guarded by
        # tests/test_couplings.py::test_signing_headers_are_appended_to_the_header_list
        headers._list.extend(  # noqa: SLF001
            [(*_SIGNER_HEADER_BYTES[name], value.encode()) for name, value in result.headers]
        )
    else:
        for name, value in result.headers:
            headers[name] = value
    if signed_url != url:  # parsing a URL is the costliest step of httpx; skip it when we can
        request.url = _signed_url(request, url, signed_url)
    _install_guard(request, (destination.scheme, destination.host), is_async=is_async)
    return result


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
        and _checked_once(_QUERY_SWAPPABLE, type(request), _check_query_swap)
    ):
        return _with_query(current, query)
    return _client_of(request).URL(signed_url)  # type: ignore[no-any-return]


def _with_query(url: httpx.URL, query: str) -> httpx.URL:
    # private coupling: URL._uri_reference, a NamedTuple ParseResult whose query field holds the
    # raw query text (httpx 0.28, httpx2 2.16); guarded by
    # tests/test_couplings.py::test_a_signed_query_is_swapped_into_the_parsed_url
    swapped = object.__new__(type(url))
    swapped._uri_reference = url._uri_reference._replace(query=query)  # noqa: SLF001
    return swapped


# Request type -> whether its package's URL takes a query swapped into its parsed form.
_QUERY_SWAPPABLE: dict[type, bool] = {}


def _check_query_swap(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    """Swap a query into a probe URL and compare it with the URL parsed whole."""
    query = "a=1&X-Amz-Signature=ab%2Fc"
    try:
        swapped = _with_query(client.URL("https://a.invalid:8443/p?b=2"), query)
        parsed = client.URL(f"https://a.invalid:8443/p?{query}")
        return bool(
            str(swapped) == str(parsed)
            and swapped == parsed
            and swapped.raw_path == parsed.raw_path == b"/p?" + query.encode()
            and swapped.params == parsed.params
        )
    except Exception:  # noqa: BLE001 - a check that cannot run proves nothing
        return False


# The headers the signer sets, as Headers._list holds a name: as given, and lowercase.
_SIGNER_HEADER_BYTES = {
    name: (name.encode("ascii"), name.lower().encode("ascii"))
    for name in (
        "Authorization",
        "X-Amz-Content-SHA256",
        "X-Amz-Date",
        "X-Amz-Region-Set",
        "X-Amz-Security-Token",
    )
}


def _headers_listed(request_type: type) -> bool:
    """Whether this package's ``Headers`` keep their items in ``_list`` (checked once)."""
    return _checked_once(_HEADERS_LISTED, request_type, _check_header_list)


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


def _client_of(request: httpx.Request) -> Any:  # noqa: ANN401 - the httpx or httpx2 module
    """The package (httpx or httpx2) a request belongs to: both have the same API."""
    return _package_of(type(request))


def _package_of(request_type: type) -> Any:  # noqa: ANN401 - the httpx or httpx2 module
    return sys.modules[request_type.__module__.partition(".")[0]]


def _named(module: Any) -> str:  # noqa: ANN401 - a module
    return f"{module.__name__} {getattr(module, '__version__', '(version unknown)')}"


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


def _install_guard(request: httpx.Request, origin: Origin, *, is_async: bool) -> None:
    # private coupling: httpx passes a request's extensions on to the redirect requests it
    # builds (httpx 0.27-0.28, httpx2 2.16); guarded by
    # tests/test_couplings.py::test_redirect_guard_is_proven_for_each_client and
    # tests/test_couplings.py::test_redirects_that_drop_extensions_switch_to_query_signing
    extensions = request.extensions
    inner: Any = extensions.get("trace")
    if isinstance(inner, partial) and inner.func in (_on_event, _on_event_async):  # signed again
        inner = inner.args[1]
    guard = partial(_GUARD_EVENTS[is_async], origin, inner)
    # A new dict: the one given may be shared by other requests (redirects share this one).
    request.extensions = {**extensions, "trace": guard}


# scheme, host (as httpcore holds them, bytes) and port of where a hop goes.
_RawOrigin = tuple[bytes, bytes, int | None]


def _raw_origin(url: httpx.URL) -> _RawOrigin:
    return url.raw_scheme, url.raw_host, url.port


# An origin as the signer names it: the lowercase scheme and the Host header a client sends
# there (default port dropped, IPv6 bracketed), as str.
Origin = tuple[str, str]


def _origin_of(scheme: bytes, host: bytes, port: int | None) -> Origin:
    """The :data:`Origin` of httpcore's view of a hop (bytes, port None when the default)."""
    text = scheme.decode("ascii", "replace").lower()
    return text, host_header(text, host.decode("ascii", "replace"), port)


# httpcore's trace events are named "<http11|http2>.<step>.<started|complete>".
# private coupling: the names of the events before a request's headers are written (httpcore
# 1.0, httpcore2 2.16); guarded by
# tests/test_couplings.py::test_redirect_guard_is_proven_for_each_client and
# tests/test_couplings.py::test_renamed_trace_events_switch_to_query_signing
_HEADERS_WRITTEN_NEXT = frozenset(
    {"http11.send_request_headers.started", "http2.send_request_headers.started"}
)


def _on_event(
    origin: Origin,
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
    origin: Origin,
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


def _strip_if_foreign(origin: Origin, info: dict[str, Any]) -> None:
    # private coupling: info["request"] is the httpcore.Request about to be written, and its
    # headers list is what gets written (httpcore 1.0, httpcore2 2.16); guarded by
    # tests/test_couplings.py::test_redirect_guard_is_proven_for_each_client,
    # tests/test_couplings.py::test_trace_without_the_request_switches_to_query_signing and
    # tests/test_couplings.py::test_trace_of_a_copied_request_switches_to_query_signing
    outgoing = info.get("request")
    if outgoing is None:
        return
    url = outgoing.url
    if _hop_origin(url) != origin:
        kept = [
            (name, value)
            for name, value in outgoing.headers
            if name.lower() not in _SIGNING_HEADERS_RAW
        ]
        if len(kept) != len(outgoing.headers) and _ours_through_a_proxy(origin, url, kept):
            _warn_proxy_target(_core_of(outgoing))
        outgoing.headers[:] = kept


def _hop_origin(url: Any) -> Origin:  # noqa: ANN401 - an httpcore.URL
    """Where a hop really goes, which is not always where httpcore connects.

    Through a plain-HTTP forward proxy httpcore connects to the proxy and writes the absolute
    URL as the request target: that URL is the origin.
    """
    # private coupling: the absolute-form target of a forwarded request (httpcore 1.0,
    # httpcore2 2.16); guarded by tests/test_couplings.py::test_forward_proxy_hop_names_our_origin
    # and tests/test_couplings.py::test_relative_proxy_target_fails_closed_and_says_so
    if url.target.startswith((b"http://", b"https://")):
        parts = urlsplit(url.target.decode("ascii", "replace"))
        try:
            port = parts.port
            return _origin_of(parts.scheme.encode("ascii"), (parts.hostname or "").encode(), port)
        except (ValueError, InvalidConfigError):  # a bad port or host: not ours to trust
            return _UNKNOWN_ORIGIN
    try:
        return _origin_of(url.scheme, url.host, url.port)
    except InvalidConfigError:  # a host no client of ours would send: not ours
        return _UNKNOWN_ORIGIN


_UNKNOWN_ORIGIN: Origin = ("", "")  # equal to no origin a request is signed for


def _ours_through_a_proxy(
    origin: Origin,
    url: Any,  # noqa: ANN401 - an httpcore.URL
    headers: list[tuple[bytes, bytes]],
) -> bool:
    """True when a hop for our own origin goes to a proxy whose target does not name it.

    httpcore forwards only ``http://`` requests to a proxy (others go through a tunnel), and
    httpx rewrites ``Host`` on a redirect to another origin: a plain-HTTP hop whose ``Host`` is
    still ours, sent to another address, can only be a forwarded request.
    """
    scheme, host = origin
    if (
        scheme != "http"
        or url.scheme != b"http"
        or _origin_of(b"http", url.host, url.port) == origin
    ):
        return False
    ours = host.encode("ascii")
    return any(name.lower() == b"host" and value == ours for name, value in headers)


def _core_of(outgoing: Any) -> Any:  # noqa: ANN401 - an httpcore request, and its module
    return sys.modules[type(outgoing).__module__.partition(".")[0]]


def _warn_proxy_target(core: Any) -> None:  # noqa: ANN401 - the httpcore module
    """Say once per httpcore that requests through a forward proxy can no longer be signed."""
    if core in _PROXY_WARNED:
        return
    _PROXY_WARNED.add(core)
    warnings.warn(
        f"apigw_iam_auth: {_named(core)} no longer writes the absolute URL as the target of a "
        "request through a forward proxy; such requests now go out unsigned (and are refused)",
        RuntimeWarning,
        stacklevel=2,
    )


# The httpcore modules already warned about (at most two: httpcore and httpcore2).
_PROXY_WARNED: set[Any] = set()


# The self-check of the redirect guard. ------------------------------------------------------

# The httpcore each client package sends with.
_CORE_OF_CLIENT = {"httpx": "httpcore", "httpx2": "httpcore2"}
_PROBE_TOKEN = b"apigw-iam-auth-probe"


def _guard_proven(request_type: type) -> bool:
    """Whether the redirect guard works with this client package; warns once if not."""
    return _checked_once(_GUARD_PROVEN, request_type, _prove_guard)


# Request type -> whether the guard was proven for its package (run once per package).
_GUARD_PROVEN: dict[type, bool] = {}


def _prove_guard(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    problem = _guard_problem(client)
    if problem is None:
        return True
    warnings.warn(
        f"apigw_iam_auth: cross-origin redirect protection is unavailable: {problem}. To keep "
        "credentials from following a redirect to another origin, requests are signed in the "
        "query string (as with presign=True) instead of in headers",
        RuntimeWarning,
        stacklevel=2,
    )
    return False


def _guard_problem(client: Any) -> str | None:  # noqa: ANN401 - the httpx or httpx2 module
    """What keeps the guard from removing our headers from a hop to another origin, or None."""
    try:
        core = importlib.import_module(_CORE_OF_CLIENT[client.__name__])
        return _redirect_problem(client) or _core_problem(core)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run proves nothing
        return f"its self-check with {_named(client)} failed ({exc!r})"


def _probe_trace(event: str, info: dict[str, Any]) -> None:
    """A ``trace`` hook that only marks a request, for the self-check."""


def _redirect_problem(client: Any) -> str | None:  # noqa: ANN401 - the httpx or httpx2 module
    """Whether ``client`` passes a request's ``trace`` hook on to a redirect it follows."""
    traces: list[object] = []

    def answer(request: Any) -> Any:  # noqa: ANN401 - the client's Request and Response
        traces.append(request.extensions.get("trace"))
        if len(traces) == 1:
            return client.Response(307, headers={"Location": "http://b.invalid/"})
        return client.Response(204)

    transport = client.MockTransport(answer)
    with client.Client(transport=transport, follow_redirects=True, trust_env=False) as probe:
        probe.get("http://a.invalid/", extensions={"trace": _probe_trace})
    if traces != [_probe_trace, _probe_trace]:
        return f"{_named(client)} does not pass a request's trace hook on to its redirects"
    return None


def _core_problem(core: Any) -> str | None:  # noqa: ANN401 - the httpcore module
    """Whether the guard keeps our header off the wire of ``core``'s HTTP/1.1 connection."""
    events: list[str] = []
    stream = _RecordingStream()
    signed_for: Origin = ("http", "a.invalid")
    guard = partial(_on_event, signed_for, lambda event, _: events.append(event))
    request = core.Request(
        "GET",
        "http://b.invalid/",
        headers=[(b"Host", b"b.invalid"), (b"X-Amz-Security-Token", _PROBE_TOKEN)],
        extensions={"trace": guard},
    )
    with core.HTTP11Connection(origin=core.Origin(b"http", b"b.invalid", 80), stream=stream) as hop:
        hop.handle_request(request).read()
    wire = b"".join(stream.written)
    if not events:
        return f"{_named(core)} did not call the trace hook"
    if not _HEADERS_WRITTEN_NEXT.intersection(events):
        return f"{_named(core)} sent none of the trace events {sorted(_HEADERS_WRITTEN_NEXT)}"
    if not wire.startswith(b"GET / HTTP/1.1\r\n"):
        return f"its self-check saw {_named(core)} write no request"
    if _PROBE_TOKEN in wire:
        return f"{_named(core)} writes headers its trace hook can no longer remove"
    return None


class _RecordingStream:
    """An in-memory httpcore network stream: keeps what is written, answers 204 No Content."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self._replies = [b"HTTP/1.1 204 No Content\r\n\r\n"]

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ARG002
        return self._replies.pop(0) if self._replies else b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ARG002
        self.written.append(buffer)

    def close(self) -> None:
        """Nothing to release."""

    def get_extra_info(self, info: str) -> None:  # noqa: ARG002
        return None
