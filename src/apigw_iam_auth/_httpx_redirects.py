"""The httpx redirect guard: a signature stays with the origin it was made for.

httpx runs the auth flow around its redirect loop: the flow sees only the last response, and
the redirect requests it builds keep every header but ``Authorization`` (dropped on a hop to
another origin, except on an ``http`` to ``https`` upgrade of the same host). Every request
signed names the origin it was signed for in its ``extensions`` (:data:`SIGNED_FOR`), which
httpx passes on to every redirect request it builds. Two measures keep our credentials where
they belong:

* an httpcore ``trace`` hook (the guard), inherited by every redirect request the same way,
  removes our headers from any hop bound for another origin just before its headers are
  written. It costs about 2 µs per request sent, so it is hooked only where httpx's own
  clean-up could leave something of ours on such a hop: on a request signed in its headers
  that goes over plain http (whose ``Authorization`` httpx lets follow an upgrade to https),
  or that carries any header of ours but ``X-Amz-Date`` and ``Authorization`` (a session token,
  the body's hash, a SigV4a region set), or wherever httpx's dropping of ``Authorization`` is
  not proven (:func:`drops_authorization`). An https request signed with long-term keys leaves
  only its ``X-Amz-Date`` on a hop elsewhere, and a presigned one nothing;
* a same-origin hop that API Gateway refuses is signed for its new URL and sent once more,
  unless the chain has been to another origin before: that origin chose the hop's URL.

Both measures live here, with the proofs, run once per client package, that the guard works and
that httpx drops ``Authorization``; the adapter (``_httpx``) names the origin on every request
it signs and hooks the guard where it is needed.

Private couplings, and how each fails safe
------------------------------------------
Marked ``# private coupling:`` where they happen; ``tests/test_couplings.py`` checks that each
still holds and removes it to prove the fallback.

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
* httpx drops ``Authorization`` from a redirect to another origin (``_redirect_headers``),
  undocumented too (encode/httpx#3334). The requests whose signature relies on it alone (https,
  long-term keys, no header of ours but the date) are hooked anyway wherever a probe, run once
  per package through its ``MockTransport``, does not see it dropped on https hops to another
  port, to plain http and to another host. Only speed depends on it, so no warning.
* Once a hop's headers are settled the guard steps out of its other events, by giving that
  httpcore request a copy of its extensions without the guard: httpcore reads the hook anew
  at each step. Only speed depends on it (about 5 µs per request sent): were it read once,
  the guard would go on being called for events it passes over.
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

import importlib
import ipaddress
import logging
import sys
import threading
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import unquote, urlsplit

from apigw_iam_auth import _sigv4
from apigw_iam_auth._uri import host_header
from apigw_iam_auth.diagnostics import FORBIDDEN
from apigw_iam_auth.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx

__all__ = [
    "SIGNED_FOR",
    "Origin",
    "drops_authorization",
    "install_guard",
    "leave_origin",
    "left_our_origin",
    "named",
    "needs_resign",
    "package_of",
    "prove_guard",
]

_SIGNING_HEADERS_RAW = frozenset(name.encode("ascii") for name in _sigv4.SIGNING_HEADER_NAMES)
# The extension naming the :data:`Origin` a request was signed for; httpx passes a request's
# extensions on to its redirects, so every hop of a chain names it (:data:`_LEFT` once the
# chain has been elsewhere).
SIGNED_FOR = "apigw_iam_auth.signed_for"


def needs_resign(response: httpx.Response, signed: httpx.Request) -> bool:
    """True when a redirect kept us on the origin but the new hop was refused unsigned.

    Never once the chain has been to another origin, a hop back to ours included: that origin
    chose the hop's URL (and, on a 307 or 308, kept the caller's method and body), and the
    caller's signature is not for its choice. The last hop of such a chain is marked
    (:func:`leave_origin`), so that sending it again by hand does not sign it either.
    """
    if not response.history or response.request is signed:
        return False
    origin = _url_origin(signed.url)
    hops = (*response.history, response)
    if any(_url_origin(hop.request.url) != origin for hop in hops):
        leave_origin(response.request)
        return False
    return response.status_code == FORBIDDEN


def left_our_origin(request: httpx.Request) -> bool:
    """Whether ``request`` is a redirect hop, made from one we signed, to another origin.

    Or to any origin, after a hop elsewhere (:func:`leave_origin`).

    httpx builds a redirect's request (``response.next_request``, or its own hop) with the
    signed request's extensions, which name the origin signed for (:data:`SIGNED_FOR`). Sent by
    hand (``client.send(response.next_request)``), it runs the auth again: it must go as the
    client rebuilt it, unsigned, as the guard sends a hop httpx follows itself. A request the
    caller builds names no origin of ours, and is signed wherever it goes.
    """
    signed_for = request.extensions.get(SIGNED_FOR)
    return signed_for is not None and _url_origin(request.url) != signed_for


def leave_origin(request: httpx.Request) -> None:
    """Mark ``request``, a hop of a chain that has been to another origin: never signed again.

    Neither it, sent again, nor a hop made from it, back at the origin first signed for too
    (why: :func:`needs_resign`).
    """
    extensions = request.extensions
    if SIGNED_FOR not in extensions:
        return
    marked = {**extensions, SIGNED_FOR: _LEFT}
    guard = extensions.get("trace")
    if _is_guard(guard):
        marked["trace"] = partial(guard.func, _Chain(_LEFT), *guard.args[1:])
    request.extensions = marked


def install_guard(request: httpx.Request, origin: Origin, *, is_async: bool, hook: bool) -> None:
    """Name ``origin`` in ``request``'s extensions, and hook the guard on it if ``hook``.

    The guard carries the origin too, so that it works wherever the extensions go (a request
    hook that rebuilds them). The caller's own trace hook stays, chained behind the guard or in
    its place.
    """
    # private coupling: httpx passes a request's extensions on to the redirect requests it
    # builds (httpx 0.27-0.29, httpx2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_redirect_guard_is_proven_for_each_client and
    # tests/test_couplings.py::test_redirects_that_drop_extensions_switch_to_query_signing
    extensions = request.extensions
    inner: Any = extensions.get("trace")
    if _is_guard(inner):  # signed again
        inner = inner.args[1]
    scheme, host = origin
    signed_for = (scheme, _one_spelling(host))
    # A new dict: the one given may be shared by other requests (redirects share this one).
    marked = {**extensions, SIGNED_FOR: signed_for}
    trace = partial(_GUARD_EVENTS[is_async], _Chain(signed_for), inner) if hook else inner
    if trace is None:
        marked.pop("trace", None)
    else:
        marked["trace"] = trace
    request.extensions = marked


# An origin as the signer names it: the lowercase scheme and the Host header a client sends
# there (default port dropped, IPv6 bracketed), as str; an IPv6 literal in one spelling.
Origin = tuple[str, str]


def _origin_of(scheme: bytes, host: bytes, port: int | None) -> Origin:
    """The :data:`Origin` of httpcore's view of a hop (bytes, port None when the default)."""
    text = scheme.decode("ascii", "replace").lower()
    return text, _one_spelling(host_header(text, host.decode("ascii", "replace"), port))


def _url_origin(url: httpx.URL) -> Origin:
    """The :data:`Origin` of an httpx URL; a host no client would send names no origin."""
    try:
        return _origin_of(url.raw_scheme, url.raw_host, url.port)
    except InvalidConfigError:
        return _UNKNOWN_ORIGIN


def _one_spelling(host: str) -> str:
    """A Host value with its IPv6 literal compressed; any other host as it is.

    ``[0:0:0:0:0:0:0:1]`` and ``[::1]`` are one origin, which redirects may spell either way
    (httpx2 keeps the spelling of a hop's ``Location``); so are a zone id as a URL writes it
    (``[::1%251]``, RFC 6874) and as httpcore2 decodes it (``[::1%1]``).
    """
    if not host.startswith("["):
        return host
    literal, _, port = host[1:].partition("]")
    try:
        return f"[{ipaddress.IPv6Address(unquote(literal)).compressed}]{port}"
    except ValueError:
        return host


# httpcore's trace events are named "<http11|http2>.<step>.<started|complete>".
# private coupling: the names of the events before a request's headers are written (httpcore
# 1.0, httpcore2 2.14-2.17); guarded by
# tests/test_couplings.py::test_redirect_guard_is_proven_for_each_client and
# tests/test_couplings.py::test_renamed_trace_events_switch_to_query_signing
_HEADERS_WRITTEN_NEXT = frozenset(
    {"http11.send_request_headers.started", "http2.send_request_headers.started"}
)


class _Chain:
    """Where a redirect chain's hops may carry our headers: :data:`_LEFT` once one went away.

    Every hop httpx builds from a request shares that request's guard, and so this object: a
    hop back to the first origin after another carries nothing of ours either (httpx copies
    a session token and X-Amz-Date onto each hop it builds, and drops only Authorization).
    Each signing installs a new one.
    """

    __slots__ = ("origin",)

    def __init__(self, origin: Origin) -> None:
        self.origin = origin


def _on_event(
    chain: _Chain,
    inner: Callable[[str, dict[str, Any]], None] | None,
    event: str,
    info: dict[str, Any],
) -> None:
    """The httpcore ``trace`` callback of sync clients; chains to a trace the user had set."""
    if event in _HEADERS_WRITTEN_NEXT:
        _strip_if_foreign(chain, info, inner)
    if inner is not None:
        inner(event, info)


async def _on_event_async(
    chain: _Chain,
    inner: Callable[[str, dict[str, Any]], Awaitable[None]] | None,
    event: str,
    info: dict[str, Any],
) -> None:
    """The httpcore ``trace`` callback of async clients, which await it."""
    if event in _HEADERS_WRITTEN_NEXT:
        _strip_if_foreign(chain, info, inner)
    if inner is not None:
        await inner(event, info)


# Keyed by is_async. Guards are partials of these: called for every httpcore event, a plain
# function costs less than an object's __call__.
_GUARD_EVENTS: dict[bool, Callable[..., Any]] = {False: _on_event, True: _on_event_async}


def _is_guard(trace: object) -> TypeGuard[partial[Any]]:
    return isinstance(trace, partial) and trace.func in (_on_event, _on_event_async)


def _strip_if_foreign(chain: _Chain, info: dict[str, Any], inner: object) -> None:
    """Settle what the hop about to be written carries, then step out of its other events.

    Once its headers are settled (ours removed from the list httpcore writes, on a hop to
    another origin), the rest of this hop's events (its body, response, close: about eight)
    need no guard, and each call through httpcore's trace machinery costs about 0.6 µs. So
    this httpcore request gets a copy of its extensions without the guard (the user's own
    hook stays); the httpx request keeps the guard for the redirects built from it.

    A hop to the origin's host on its default port (nearly every request) is known as ours
    from its bytes; any other hop's origin is worked out. A hop elsewhere marks the chain as
    left (:class:`_Chain`).
    """
    # private coupling: info["request"] is the httpcore.Request about to be written, and its
    # headers list is what gets written (httpcore 1.0, httpcore2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_redirect_guard_is_proven_for_each_client,
    # tests/test_couplings.py::test_trace_without_the_request_switches_to_query_signing and
    # tests/test_couplings.py::test_trace_of_a_copied_request_switches_to_query_signing
    outgoing = info.get("request")
    if outgoing is None:
        return
    url = outgoing.url
    origin = chain.origin
    scheme, host = origin
    plainly_ours = (  # what _hop_origin(url) == origin says, without its parsing
        url.port is None
        and url.host == host.encode()
        and url.scheme == scheme.encode()
        and not url.target.startswith(_ABSOLUTE)  # not a hop through a forward proxy
    )
    if not plainly_ours and _hop_origin(url) != origin:
        chain.origin = _LEFT  # and for every later hop of this chain, back to ours too
        kept = [
            (name, value)
            for name, value in outgoing.headers
            if name.lower() not in _SIGNING_HEADERS_RAW
        ]
        if len(kept) != len(outgoing.headers) and _ours_through_a_proxy(origin, url, kept):
            _warn_proxy_target(package_of(type(outgoing)))
        outgoing.headers[:] = kept
    # private coupling: httpcore reads the hook from request.extensions["trace"] anew at each
    # step (Trace.__init__; httpcore 1.0, httpcore2 2.14-2.17). Only speed depends on it: were
    # it read once, the guard would go on seeing events it passes over. Guarded by
    # tests/test_httpx.py::test_the_guard_steps_out_once_the_headers_are_settled
    extensions = {**outgoing.extensions, "trace": inner}
    if inner is None:
        del extensions["trace"]
    outgoing.extensions = extensions


def _hop_origin(url: Any) -> Origin:  # noqa: ANN401 - an httpcore.URL
    """Where a hop really goes, which is not always where httpcore connects.

    Through a plain-HTTP forward proxy httpcore connects to the proxy and writes the absolute
    URL as the request target: that URL is the origin.
    """
    # private coupling: the absolute-form target of a forwarded request (httpcore 1.0,
    # httpcore2 2.14-2.17); guarded by
    # tests/test_couplings.py::test_forward_proxy_hop_names_our_origin and
    # tests/test_couplings.py::test_relative_proxy_target_fails_closed_and_says_so
    try:
        if url.target.startswith(_ABSOLUTE):
            parts = urlsplit(url.target.decode("ascii", "replace"))
            port = parts.port
            return _origin_of(parts.scheme.encode("ascii"), (parts.hostname or "").encode(), port)
        return _origin_of(url.scheme, url.host, url.port)
    except (ValueError, InvalidConfigError):  # a bad port or host: not ours to trust
        return _UNKNOWN_ORIGIN


_ABSOLUTE = (b"http://", b"https://")  # an absolute-form request target (RFC 9112 3.2.2)
_UNKNOWN_ORIGIN: Origin = ("", "")  # equal to no origin a request is signed for
# The origin of a chain that has been elsewhere: equal to no hop's origin, unknown ones included.
_LEFT: Origin = ("", "(left)")


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
    return any(
        name.lower() == b"host" and _one_spelling(value.decode("latin-1")) == host
        for name, value in headers
    )


def package_of(kind: type) -> Any:  # noqa: ANN401 - httpx or httpx2, httpcore or httpcore2
    """The package a client's type belongs to: both of each pair have the same API."""
    return sys.modules[kind.__module__.partition(".")[0]]


def _warn_proxy_target(core: Any) -> None:  # noqa: ANN401 - the httpcore module
    """Say once per httpcore that a request through a forward proxy went out unsigned."""
    if core in _PROXY_WARNED:
        return
    _PROXY_WARNED.add(core)
    warnings.warn(
        f"apigw_iam_auth: {named(core)} wrote a request through a forward proxy with a target "
        "that does not name the origin it was signed for (an IPv6 host without its brackets, "
        "or no absolute URL at all); such requests go out unsigned (and are refused): sign "
        "them in the query string (presign=True)",
        RuntimeWarning,
        stacklevel=2,
    )


# The httpcore modules already warned about (at most two: httpcore and httpcore2).
_PROXY_WARNED: set[Any] = set()


# The self-check of the redirect guard. ------------------------------------------------------

# The httpcore each client package sends with.
_CORE_OF_CLIENT = {"httpx": "httpcore", "httpx2": "httpcore2"}
_PROBE_TOKEN = b"apigw-iam-auth-probe"


def prove_guard(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    """Whether the guard works with ``client`` (httpx or httpx2); warns if not."""
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
        return f"its self-check with {named(client)} failed ({exc!r})"


def _probe_trace(event: str, info: dict[str, Any]) -> None:
    """A ``trace`` hook that only marks a request, for the self-check."""


def _redirect_problem(client: Any) -> str | None:  # noqa: ANN401 - the httpx or httpx2 module
    """Whether ``client`` passes a request's extensions on to a redirect it follows."""
    signed_for = ("http", "a.invalid")
    hops = _probe_redirects(
        client,
        {"http://a.invalid/": "http://b.invalid/"},
        extensions={"trace": _probe_trace, SIGNED_FOR: signed_for},
    )
    extensions = [(hop.extensions.get("trace"), hop.extensions.get(SIGNED_FOR)) for hop in hops]
    if extensions != [(_probe_trace, signed_for)] * 2:
        return f"{named(client)} does not pass a request's extensions on to its redirects"
    return None


def drops_authorization(client: Any) -> bool:  # noqa: ANN401 - the httpx or httpx2 module
    """Whether ``client`` drops ``Authorization`` from an https request's redirect elsewhere.

    To another port of the same host, to plain http, to another host: where the guard is not
    hooked, that is what keeps the signature off those hops (see the module docstring).
    """
    starts = {f"https://a.invalid/{n}": target for n, target in enumerate(_ELSEWHERE)}
    try:
        hops = _probe_redirects(client, starts, headers={"Authorization": "AWS4-HMAC-SHA256 p"})
    except Exception:  # noqa: BLE001 - a check that cannot run proves nothing
        return False
    redirected = hops[1::2]
    return len(hops) == 2 * len(starts) and not any(
        "Authorization" in hop.headers for hop in redirected
    )


_ELSEWHERE = ("https://a.invalid:8443/", "http://a.invalid/", "https://b.invalid/")


def _probe_redirects(client: Any, starts: dict[str, str], **options: Any) -> list[Any]:  # noqa: ANN401
    """What ``client`` sends for a GET of each key of ``starts``, redirected (307) to its value.

    Through the client's public ``MockTransport``: no I/O, and none of it logged.
    """
    hops: list[Any] = []

    def answer(request: Any) -> Any:  # noqa: ANN401 - the client's Request and Response
        hops.append(request)
        target = starts.get(str(request.url))
        if target is None:
            return client.Response(204)
        return client.Response(307, headers={"Location": target})

    transport = client.MockTransport(answer)
    log = logging.getLogger(client.__name__)  # where the client logs each request, at INFO
    unlogged = _ThisThreadOff()
    log.addFilter(unlogged)
    try:
        with client.Client(transport=transport, follow_redirects=True, trust_env=False) as probe:
            for start in starts:
                probe.get(start, **options)
    finally:
        log.removeFilter(unlogged)
    return hops


class _ThisThreadOff(logging.Filter):
    """Drops the records of the thread that made it: the self-check's requests never happened."""

    def __init__(self) -> None:
        super().__init__()
        self._thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self._thread


def _core_problem(core: Any) -> str | None:  # noqa: ANN401 - the httpcore module
    """Whether the guard keeps our header off the wire of ``core``'s HTTP/1.1 connection."""
    events: list[str] = []
    stream = _RecordingStream()
    guard = partial(_on_event, _Chain(("http", "a.invalid")), lambda event, _: events.append(event))
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
        return f"{named(core)} did not call the trace hook"
    if not _HEADERS_WRITTEN_NEXT.intersection(events):
        return f"{named(core)} sent none of the trace events {sorted(_HEADERS_WRITTEN_NEXT)}"
    if not wire.startswith(b"GET / HTTP/1.1\r\n"):
        return f"its self-check saw {named(core)} write no request"
    if _PROBE_TOKEN in wire:
        return f"{named(core)} writes headers its trace hook can no longer remove"
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


def named(module: Any) -> str:  # noqa: ANN401 - a module
    return f"{module.__name__} {getattr(module, '__version__', '(version unknown)')}"
