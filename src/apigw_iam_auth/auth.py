"""``ApiGwIamAuth``: one auth object for requests, httpx, httpx2 (sync and async) and aiohttp."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import httpx

from apigw_iam_auth import _aiohttp, _httpx, _requests
from apigw_iam_auth._httpx_redirects import left_our_origin, needs_resign
from apigw_iam_auth._models import DEFAULT_UNSIGNED_HEADERS, checked_flag
from apigw_iam_auth._sigv4 import check_expires, unsigned_payload_needs_a_header
from apigw_iam_auth._skew import corrected_after_refusal
from apigw_iam_auth.diagnostics import FORBIDDEN, readable_refusal
from apigw_iam_auth.errors import InvalidConfigError
from apigw_iam_auth.signer import Clock, CredentialsSource, Payload, SigV4Signer, utc_now

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Generator, Iterable

    import httpx2
    import requests
    from aiohttp import ClientRequest, ClientResponse
    from aiohttp.client_middlewares import ClientHandlerType

    from apigw_iam_auth._models import SigningResult

__all__ = ["ApiGwIamAuth"]


class AuthSettings(NamedTuple):
    """How an auth object signs: what each adapter is handed, and keeps to sign a retry."""

    signer: SigV4Signer
    presign: bool
    expires: int
    correct_clock_skew: bool


# httpx2 uses an auth object's flows only if it is an instance of its own ``Auth`` (anything
# else is called as a plain function): the base is ``httpx.Auth``, joined by ``httpx2.Auth``
# where httpx2 is installed (where it is absent nothing is imported). Both bases define the
# same flow protocol, which :class:`ApiGwIamAuth` overrides.
if TYPE_CHECKING:  # what type checkers see: both clients' Auth, so either takes the object

    class _AuthBase(httpx.Auth, httpx2.Auth):  # type: ignore[misc]
        """Both clients' ``Auth``: httpx2's Request has the same API as httpx's.

        The flows are typed for httpx's, and marked as overriding httpx2's anyway.
        """

elif importlib.util.find_spec("httpx2") is None:
    _AuthBase = httpx.Auth
else:
    import httpx2

    _AuthBase = type("_HttpxAuth", (httpx.Auth, httpx2.Auth), {"__slots__": ()})


class ApiGwIamAuth(_AuthBase):
    """Sign requests to IAM-protected API Gateway APIs (and Lambda function URLs).

    One object serves every client: ``auth=`` with requests (``requests.get(url, auth=auth)``),
    httpx and httpx2 (``httpx.Client(auth=auth)``, ``httpx.AsyncClient(auth=auth)``), and a
    client middleware for aiohttp 3.12.14+ (``aiohttp.ClientSession(middlewares=(auth,))``, or per
    request). ``region`` and ``credentials`` are read as :class:`SigV4Signer` reads them: by
    default, the region off the host or from the configuration, and botocore's default chain.
    ``presign=True`` moves the signature into the URL's query string instead of the
    ``Authorization`` header, valid for ``expires`` seconds.

    When API Gateway refuses a signature because this machine's clock is off by more than
    five minutes, the signing clock is corrected from the response's ``Date`` and the request
    is signed and sent once more (``correct_clock_skew=False`` turns this off); later requests
    use the correction. Bodies that cannot be replayed are never retried.

    The object holds no per-request state: share it across threads, sessions and tasks.
    """

    def __init__(
        self,
        region: str | None = None,
        *,
        service: str = "execute-api",
        credentials: CredentialsSource = None,
        profile: str | None = None,
        presign: bool = False,
        expires: int = 900,
        clock: Clock = utc_now,
        correct_clock_skew: bool = True,
        unsigned_headers: Iterable[str] = DEFAULT_UNSIGNED_HEADERS,
        add_content_sha256_header: bool = False,
        payload: Payload | None = None,
        region_set: str | Iterable[str] | None = None,
    ) -> None:
        """Validate everything now; no credentials are loaded until the first request.

        ``payload`` and ``region_set`` (SigV4a) are as in :class:`SigV4Signer`.
        """
        expires = check_expires(expires)
        presign = checked_flag("presign", presign)
        correct_clock_skew = checked_flag("correct_clock_skew", correct_clock_skew)
        if presign and payload == "unsigned":
            raise InvalidConfigError(
                f"presign=True cannot sign payload='unsigned': "
                f"{unsigned_payload_needs_a_header(service)}; sign with headers (presign=False) "
                "or drop payload='unsigned'"
            )
        self._signer = SigV4Signer(
            region,
            service=service,
            credentials=credentials,
            profile=profile,
            clock=clock,
            unsigned_headers=unsigned_headers,
            add_content_sha256_header=add_content_sha256_header,
            payload=payload,
            region_set=region_set,
        )
        self._settings = AuthSettings(self._signer, presign, expires, correct_clock_skew)

    def __repr__(self) -> str:
        """Settings only; never credentials."""
        return (
            f"ApiGwIamAuth(signer={self._signer!r}, presign={self._settings.presign}, "
            f"expires={self._settings.expires})"
        )

    @property
    def signer(self) -> SigV4Signer:
        """The :class:`SigV4Signer` doing the work, for signing outside an HTTP client."""
        return self._signer

    @overload
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest: ...

    @overload
    def __call__(
        self, request: ClientRequest, handler: ClientHandlerType
    ) -> Awaitable[ClientResponse]: ...

    def __call__(self, request: Any, handler: Any = None) -> Any:
        """Sign for requests (``auth=``); given a ``handler``, act as an aiohttp middleware."""
        if handler is not None:
            return _aiohttp.middleware(self._settings, request, handler)
        signed_url = request.url or ""
        _requests.sign_prepared(self._settings, request)
        guard = _requests.ResponseGuard(self._settings, signed_url, request)
        hooks = request.hooks["response"]
        if hooks:  # a request signed twice keeps one guard: the newest
            hooks[:] = [hook for hook in hooks if not isinstance(hook, _requests.ResponseGuard)]
        hooks.append(guard)
        return request

    def sync_auth_flow(  # type: ignore[override]  # httpx2's too: see _AuthBase
        self,
        request: httpx.Request,  # type: ignore[override]
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign for a sync ``httpx.Client``; credentials are resolved on this thread."""
        if left_our_origin(request):  # a redirect to another origin, sent on by hand
            yield _httpx.unsigned(request)
            return
        body_hash = _httpx.body_hash_sync(request, self._signer)
        skew_retry = self._settings.correct_clock_skew
        while True:  # each turn sends a new hop: httpx's max_redirects ends a chain
            signing = _httpx.sign_request(self._settings, request, body_hash, None, is_async=False)
            response = yield request
            if _refused_by_origin(response, request) and readable_refusal(response.headers):
                response.read()
            retry = self._retry(response, request, signing, skew_retry=skew_retry)
            if retry is None:
                return
            if retry is request:  # the clock was corrected: once per call
                skew_retry = False
            else:  # a redirect hop of the same origin, refused unsigned
                body_hash = _httpx.body_hash_sync(retry, self._signer)
            request = retry

    async def async_auth_flow(  # type: ignore[override]  # httpx2's too: see _AuthBase
        self,
        request: httpx.Request,  # type: ignore[override]
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign for an ``httpx.AsyncClient``; credential refreshes run off the event loop."""
        if left_our_origin(request):  # a redirect to another origin, sent on by hand
            yield _httpx.unsigned(request)
            return
        signer = self._signer
        provider = signer._credentials  # noqa: SLF001 - the adapters' provider
        if signer._configured is None:  # noqa: SLF001 - read off the loop, see the method
            await signer._read_configured_region_off_loop()  # noqa: SLF001
        # An in-memory body (nearly every request) is hashed without a coroutine.
        body_hash = _httpx.small_body_hash(request) or await _httpx.body_hash_async(request, signer)
        skew_retry = self._settings.correct_clock_skew
        while True:  # each turn sends a new hop: httpx's max_redirects ends a chain
            credentials = await provider.aget()
            if signer._configured is None:  # noqa: SLF001 - read off the loop, see the method
                await signer._read_configured_region_off_loop()  # noqa: SLF001
            signing = _httpx.sign_request(
                self._settings, request, body_hash, credentials, is_async=True
            )
            response = yield request
            if _refused_by_origin(response, request) and readable_refusal(response.headers):
                await response.aread()
            retry = self._retry(response, request, signing, skew_retry=skew_retry)
            if retry is None:
                return
            if retry is request:
                skew_retry = False
            else:
                if signer._configured is None:  # noqa: SLF001 - read off the loop, see the method
                    await signer._read_configured_region_off_loop()  # noqa: SLF001
                body_hash = await _httpx.body_hash_async(retry, signer)
            request = retry

    def _retry(
        self,
        response: httpx.Response,
        request: httpx.Request,
        signing: SigningResult,
        *,
        skew_retry: bool,
    ) -> httpx.Request | None:
        """The request to sign and send once more after ``response``, if any.

        A same-origin redirect hop refused unsigned (each hop of a chain in turn), or, when
        ``skew_retry`` allows, ``request`` itself after a clock-skew refusal.
        """
        if needs_resign(response, request):
            return response.request
        if not _refused_by_origin(response, request):
            return None
        if corrected_after_refusal(
            self._signer,
            response.content if readable_refusal(response.headers) else None,
            response.headers.get("Date"),
            signing,
            correct=skew_retry,  # correct_clock_skew, and no retry made for the clock yet
            resend=_httpx.is_replayable(request),
        ):
            return request
        return None


def _refused_by_origin(response: httpx.Response, request: httpx.Request) -> bool:
    return response.status_code == FORBIDDEN and response.request is request
