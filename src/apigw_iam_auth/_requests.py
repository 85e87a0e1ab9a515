"""The requests adapter: sign a ``PreparedRequest`` in place and keep redirects safe.

requests applies ``auth`` once, after preparing the body and before urllib3 adds ``Host``; it
never re-applies it to redirects, whose copies keep every header but ``Authorization``. So the
adapter (1) signs the prepared URL, headers and final body bytes, rewriting the URL into the
exact form it signed, and (2) hooks responses: a redirect strips our headers from the request
before requests copies it (nothing of ours reaches another origin), and a same-origin hop that
API Gateway then refuses is signed for its new URL and sent once more.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from apigw_iam_auth import _sigv4
from apigw_iam_auth._body import hash_seekable, is_seekable
from apigw_iam_auth.errors import UnsignableRequestError

if TYPE_CHECKING:
    import requests

    from apigw_iam_auth.signer import SigV4Signer

__all__ = ["RedirectGuard", "sign_prepared"]


_FORBIDDEN = 403


def sign_prepared(
    signer: SigV4Signer, prepared: requests.PreparedRequest, *, presign: bool, expires: int
) -> None:
    """Sign ``prepared`` in place: by header, or by rewriting its URL into presigned form."""
    method = prepared.method or "GET"
    url = prepared.url or ""
    body_hash = _final_body_hash(prepared)
    for name in _sigv4.SIGNING_HEADER_NAMES:
        prepared.headers.pop(name, None)
    headers = [(name, _text(value)) for name, value in prepared.headers.items()]
    if presign:
        prepared.url = signer.presign(method, url, headers, expires, payload_hash=body_hash)
        return
    signed = signer.sign(method, url, headers, payload_hash=body_hash)
    prepared.url = signed.url
    for name, value in signed.headers.items():
        if name.lower() in _sigv4.SIGNING_HEADER_NAMES:
            prepared.headers[name] = value


def _text(value: str | bytes) -> str:
    # requests accepts bytes header values and sends them as they are (latin-1 on the wire).
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _final_body_hash(prepared: requests.PreparedRequest) -> str:
    """Hash the bytes requests will send, buffering only bodies that cannot be re-read."""
    body: Any = prepared.body
    if body is None or body in (b"", ""):
        return _sigv4.EMPTY_SHA256
    if isinstance(body, str):
        body = body.encode("utf-8")
        _replace_body(prepared, body)
    if isinstance(body, bytes | bytearray | memoryview):
        return _sigv4.payload_hash(bytes(body))
    if is_seekable(body):
        return hash_seekable(body)
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
    if callable(getattr(body, "read", None)):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return b"".join(
        chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk) for chunk in body
    )


def _replace_body(prepared: requests.PreparedRequest, body: bytes) -> None:
    prepared.body = body
    prepared.headers.pop("Transfer-Encoding", None)
    prepared.headers["Content-Length"] = str(len(body))


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(scheme)


class RedirectGuard:
    """A response hook that keeps one signed request's credentials on its own origin.

    requests shares a request's hooks with the copies it makes for redirects, so the guard
    sees every hop of the chain that started with the request it was registered on.
    """

    def __init__(
        self,
        signer: SigV4Signer,
        prepared: requests.PreparedRequest,
        *,
        presign: bool,
        expires: int,
    ) -> None:
        """Remember the origin and the requests this guard signed."""
        self._signer = signer
        self._presign = presign
        self._expires = expires
        self._origin = _origin(prepared.url or "")
        self._signed: weakref.WeakSet[requests.PreparedRequest] = weakref.WeakSet({prepared})

    def __call__(self, response: requests.Response, **send_kwargs: Any) -> requests.Response:  # noqa: ANN401 - requests' send kwargs
        """Strip our headers before a redirect; re-sign a same-origin hop that was refused."""
        request = response.request
        if request in self._signed:
            if response.is_redirect:
                for name in _sigv4.SIGNING_HEADER_NAMES:
                    request.headers.pop(name, None)
            return response
        if response.status_code != _FORBIDDEN or _origin(request.url or "") != self._origin:
            return response
        return self._resend_signed(response, send_kwargs)

    def _resend_signed(
        self, response: requests.Response, send_kwargs: dict[str, Any]
    ) -> requests.Response:
        """Sign the redirected request requests built, and send it again (like digest auth)."""
        import requests.utils  # noqa: PLC0415 - requests is an optional dependency

        retry = response.request.copy()
        if retry.body is not None and getattr(retry, "_body_position", None) is not None:
            requests.utils.rewind_body(retry)
        sign_prepared(self._signer, retry, presign=self._presign, expires=self._expires)
        self._signed.add(retry)
        _ = response.content  # release the connection of the refused hop
        response.close()
        resent: requests.Response = response.connection.send(retry, **send_kwargs)
        resent.history.append(response)
        resent.request = retry
        return resent
