"""The requests adapter: sign a ``PreparedRequest`` in place and keep redirects safe.

requests applies ``auth`` once, after preparing the body and before urllib3 adds ``Host``; it
never re-applies it to redirects, whose copies keep every header but ``Authorization``. So the
adapter (1) signs the prepared URL, headers and final body bytes, rewriting the URL into the
exact form it signed, and (2) hooks responses (:class:`ResponseGuard`): nothing of ours is
copied into a redirect, a refused same-origin hop is signed for its new URL (unless the chain
has been to another origin), and a clock-skew refusal corrects the clock and retries once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from apigw_iam_auth import _sigv4
from apigw_iam_auth._body import BYTES_LIKE, copied, hash_body, is_seekable
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth._skew import corrected_after_refusal
from apigw_iam_auth._uri import DEFAULT_PORTS
from apigw_iam_auth.diagnostics import FORBIDDEN, readable_refusal
from apigw_iam_auth.errors import UnsignableRequestError

if TYPE_CHECKING:
    import requests

    from apigw_iam_auth._models import SigningResult
    from apigw_iam_auth.auth import AuthSettings
    from apigw_iam_auth.signer import SigV4Signer

__all__ = ["ResponseGuard", "sign_prepared"]


_log = logging.getLogger("apigw_iam_auth")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})  # requests.status_codes.REDIRECT_STATI
# Attributes set on the PreparedRequest objects we sign (requests' copy() does not copy them).
_SIGNING = "_apigw_iam_auth_signing"
_SKEW_RETRY = "_apigw_iam_auth_skew_retry"
_GUARD = "_apigw_iam_auth_guard"  # on the request a ResponseGuard was made for: that guard


def sign_prepared(settings: AuthSettings, prepared: requests.PreparedRequest) -> None:
    """Sign ``prepared`` in place: by header, or by rewriting its URL into presigned form."""
    signer = settings.signer
    body_hash = _final_body_hash(prepared, signer)  # first: buffering sets Content-Length
    headers = prepared.headers
    store = _store_of(headers)
    url, _, _, result = signer._sign_for_wire(  # noqa: SLF001 - the adapters' route
        prepared.method or "GET",
        prepared.url or "",
        tuple(headers.lower_items()) if store is None else tuple(dict.values(store)),
        body_hash,
        location=SignatureLocation.QUERY if settings.presign else SignatureLocation.HEADERS,
        expires=settings.expires,
    )
    for name in result.stale_headers:  # our own headers from an earlier signature (a retry)
        if headers.pop(name, None) is None:  # set under a bytes name after prepare()
            headers.pop(name.encode("latin-1"), None)  # type: ignore[call-overload]
    prepared.url = url
    if store is None:
        for name, value in result.headers:
            headers[name] = value
    else:  # what headers[name] = value does, without a Python method call per header
        for name, value in result.headers:
            store[name.lower()] = (name, value)
    setattr(prepared, _SIGNING, result)


def _store_of(headers: Any) -> dict[Any, tuple[Any, Any]] | None:  # noqa: ANN401 - any mapping
    """The dict behind requests' ``CaseInsensitiveDict`` where it is proven to be one, else None.

    Reading the headers from it, and setting ours in it, costs about 0.7 µs less per request than
    ``lower_items()`` and ``headers[name] = value``, each a Python-level step per header. The
    headers are read as a plain dict's values: the ``OrderedDict`` iterator looks each key up
    again, and signing does not depend on their order (each name is there once).
    """
    # private coupling: CaseInsensitiveDict._store maps each lowercase name to (name, value)
    # (requests 2.x); guarded by tests/test_couplings.py: test_requests_headers_are_kept_in_
    # the_store and test_requests_headers_without_the_store_go_through_the_public_api
    proven = _STORE_PROVEN.get(type(headers))
    if proven is None:
        proven = _STORE_PROVEN[type(headers)] = _check_store(type(headers))
    return headers._store if proven else None  # noqa: SLF001


_REQUESTS_HEADERS = ("requests.structures", "CaseInsensitiveDict")
# Header dict type -> whether it keeps its items in _store as requests' CaseInsensitiveDict does
# (a process-wide memo, one entry per type, like the httpx adapter's package checks).
_STORE_PROVEN: dict[type, bool] = {}


def _check_store(headers_type: type) -> bool:
    """Write through a probe's ``_store`` and read it back through the public API.

    Only speed depends on it: where it fails, headers are read and set as any caller would.
    Only requests' own type qualifies: a subclass may do more when a header is set.
    """
    if (headers_type.__module__, headers_type.__qualname__) != _REQUESTS_HEADERS:
        return False
    try:
        probe = headers_type({"Accept": "*/*"})
        store = probe._store  # noqa: SLF001
        read = tuple(dict.values(store))
        store["x-amz-date"] = ("X-Amz-Date", "20150830T123600Z")
        return bool(
            read == (("Accept", "*/*"),)
            and probe["X-AMZ-DATE"] == "20150830T123600Z"
            and list(probe.items()) == [("Accept", "*/*"), ("X-Amz-Date", "20150830T123600Z")]
            and list(probe.lower_items()) == [("accept", "*/*"), ("x-amz-date", "20150830T123600Z")]
        )
    except Exception:  # noqa: BLE001 - a check that cannot run proves nothing
        return False


def _final_body_hash(prepared: requests.PreparedRequest, signer: SigV4Signer) -> str:
    """Hash the bytes requests will send, buffering only bodies that cannot be re-read.

    A file or stream is not read at all where no hash is signed (``UNSIGNED-PAYLOAD``).
    """
    body: Any = prepared.body
    if body is None or body in (b"", ""):
        return _sigv4.EMPTY_SHA256
    if isinstance(body, str):
        body = body.encode("utf-8")
        _replace_body(prepared, body)
    if isinstance(body, BYTES_LIKE):
        return hash_body(body)
    if signer._signs_unsigned_payload(prepared.url or "", prepared.headers.get("Host")):  # noqa: SLF001
        return _sigv4.UNSIGNED_PAYLOAD
    if is_seekable(body):
        return hash_body(body)
    if isinstance(body, Iterable) or callable(getattr(body, "read", None)):
        # A generator or an unseekable stream can be read only once: read it here, send the
        # buffered copy. Pass a seekable file (open(path, "rb")) to keep memory flat.
        buffered = _drain(body)
        _replace_body(prepared, buffered)
        return _sigv4.payload_hash(buffered)
    raise UnsignableRequestError(
        f"cannot sign a request body of type {type(body).__name__}; pass bytes, str, "
        "a dict (form), json=, files=, a file opened in 'rb' mode, or an iterable of bytes"
    )


def _drain(body: Any) -> bytes:  # noqa: ANN401 - whatever requests accepted as data
    """The body's bytes, each chunk copied as it is drawn: a generator may refill one buffer."""
    try:
        chunks = [body.read()] if callable(getattr(body, "read", None)) else body
        return b"".join(
            chunk.encode("utf-8") if isinstance(chunk, str) else copied(chunk) for chunk in chunks
        )
    except (TypeError, ValueError, UnicodeError) as exc:
        raise UnsignableRequestError(
            f"the request body could not be read as bytes ({type(exc).__name__}); "
            "yield bytes or str chunks, or pass bytes"
        ) from exc


def _replace_body(prepared: requests.PreparedRequest, body: bytes) -> None:
    """Send ``body`` (bytes) in place of what requests prepared, as if it had been given."""
    prepared.body = body
    # requests marks a stream it could not tell the position of as one to rewind before a
    # redirect or retry (and then fails): bytes need no rewinding, as for a body given as bytes.
    prepared._body_position = None  # type: ignore[attr-defined]  # noqa: SLF001
    prepared.headers.pop("Transfer-Encoding", None)
    prepared.headers["Content-Length"] = str(len(body))


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)


class ResponseGuard:
    """A response hook for one signed request and the copies requests makes of it.

    requests shares a request's hooks with the copies it makes for redirects, so the guard
    sees every hop of the chain and does there what the module docstring lists; it also logs a
    redacted diff at DEBUG when API Gateway computed a different signature. The signing result
    (``_SIGNING``), which a copy lacks, is what tells a redirect copy from the request we signed.
    One guard is built per prepared request, and serves every send of it (the request names
    it, ``_GUARD``, so that its response is known to start a chain): it stores the auth
    object's settings, the URL signed and the threads whose chain has left its origin (requests
    follows a chain on the thread that sent it); everything else is worked out when a redirect
    or a 403 arrives. Pickled with a request or response, it comes back inert: no settings, so
    no credentials, travel in the pickle.
    """

    __slots__ = ("_left", "_settings", "_signed_url")

    def __init__(
        self, settings: AuthSettings, signed_url: str, request: requests.PreparedRequest
    ) -> None:
        """Remember where the signed request went and how to sign again."""
        self._settings = settings
        self._signed_url = signed_url  # parsed only when a hop is a redirect or refused
        setattr(request, _GUARD, self)  # copies lack it: requests' copy() leaves it out
        # The threads whose chain went to another origin: no later hop of it is signed, one
        # back to ours included (why: _httpx_redirects.needs_resign).
        self._left: set[int] = set()

    def __reduce__(self) -> tuple[Callable[[], Callable[..., Any]], tuple[()]]:
        return _inert, ()

    def __deepcopy__(self, memo: dict[int, Any]) -> ResponseGuard:
        return self  # shared by copies, as requests' own copy() shares a request's hooks

    def __call__(self, response: requests.Response, **send_kwargs: Any) -> requests.Response:  # noqa: ANN401 - requests' send kwargs
        """Decide what a response means for the signature; maybe send once more."""
        status = response.status_code
        if status != FORBIDDEN and status not in _REDIRECTS:  # the common case: nothing to do
            return response
        request = response.request
        thread = threading.get_ident()
        if getattr(request, _GUARD, None) is self:  # the request itself, sent: a chain starts
            self._left.discard(thread)
        if response.is_redirect:  # ours, or a copy of ours (copy() keeps our hooks, not our mark)
            _unsign(request)
        elif status == FORBIDDEN and hasattr(request, _SIGNING):  # our own signature refused
            return self._after_refusal(response, send_kwargs)
        if _origin(request.url or "") != _origin(self._signed_url):
            self._left.add(thread)
            return response
        if status != FORBIDDEN or thread in self._left:
            return response
        return self._resend_signed(response, send_kwargs)

    def _after_refusal(
        self, response: requests.Response, send_kwargs: dict[str, Any]
    ) -> requests.Response:
        request = response.request
        signing = getattr(request, _SIGNING)
        _warn_if_body_changed(request, signing)
        if corrected_after_refusal(
            self._settings.signer,
            response.content if readable_refusal(response.headers) else None,
            response.headers.get("Date"),
            signing,
            # once per request: the retry itself refused for the clock is returned as it is
            correct=self._settings.correct_clock_skew and not getattr(request, _SKEW_RETRY, False),
            resend=_replayable(request),
        ):
            return self._resend_signed(response, send_kwargs, skew_retry=True)
        return response

    def _resend_signed(
        self, response: requests.Response, send_kwargs: dict[str, Any], *, skew_retry: bool = False
    ) -> requests.Response:
        """Sign the request again (for its own URL, at the current time) and send it once more.

        The same move requests' own digest auth makes after a 401.
        """
        import requests.utils  # noqa: PLC0415 - requests is an optional dependency

        retry = response.request.copy()
        if retry.body is not None and getattr(retry, "_body_position", None) is not None:
            requests.utils.rewind_body(retry)
        sign_prepared(self._settings, retry)
        setattr(retry, _SKEW_RETRY, skew_retry)
        if readable_refusal(response.headers):
            _ = response.content  # drained, the connection of the refused attempt is reused
        response.close()
        resent: requests.Response = response.connection.send(retry, **send_kwargs)
        resent.history = [*response.history, response]
        resent.request = retry
        if resent.status_code == FORBIDDEN:  # sent past the hooks: what they would have done
            return self._after_refusal(resent, send_kwargs)
        if resent.is_redirect:
            # requests builds the next hop from the request it was given, not from ours: that
            # one must carry nothing of ours either (after a clock-skew retry it still did).
            _unsign(response.request)
        return resent


def _inert() -> Callable[..., Any]:
    """What an unpickled :class:`ResponseGuard` becomes: a hook that passes responses on."""
    return _passed_on


def _passed_on(response: requests.Response, **_: Any) -> requests.Response:  # noqa: ANN401
    return response


def _unsign(request: requests.PreparedRequest) -> None:
    """Take our signing headers off a request requests is about to copy for a redirect.

    requests copies every header but ``Authorization`` (and that only across hosts). The
    request then counts as unsigned: should the caller send it again, the refusal of the
    unsigned request is answered by signing it afresh for its own URL.
    """
    for name in [name for name in request.headers if name.lower() in _sigv4.SIGNING_HEADER_NAMES]:
        del request.headers[name]
    with contextlib.suppress(AttributeError):  # a redirect hop we unsigned before
        delattr(request, _SIGNING)


def _warn_if_body_changed(request: requests.PreparedRequest, signing: SigningResult) -> None:
    """Say so loudly when the body sent is not the body signed (changed after ``auth`` ran).

    requests has no hook between auth and sending, so a body replaced on the prepared request
    afterwards cannot be stopped; the refusal that follows must at least name the cause.
    """
    if signing.payload_hash == _sigv4.UNSIGNED_PAYLOAD:
        return  # no body was signed, so none can have changed
    body: Any = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, (*BYTES_LIKE, type(None))):
        return  # a file or stream: what was sent cannot be read again here
    if _sigv4.payload_hash(body or b"") != signing.payload_hash:
        _log.warning(
            "the request body was changed after it was signed, so API Gateway refused it; "
            "change the body before the request is prepared (auth runs in prepare)"
        )


def _replayable(request: requests.PreparedRequest) -> bool:
    """True when the refused request's body can be sent again as it was signed."""
    body: Any = request.body
    if body is None or isinstance(body, (*BYTES_LIKE, str)):  # in memory
        return True
    return getattr(request, "_body_position", None) is not None
