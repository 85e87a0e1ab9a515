"""``ApiGwIamAuth``: one auth object for requests and httpx (sync and async)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from apigw_iam_auth import _httpx, _requests
from apigw_iam_auth._models import DEFAULT_UNSIGNED_HEADERS
from apigw_iam_auth._sigv4 import MAX_EXPIRES
from apigw_iam_auth.errors import InvalidConfigError
from apigw_iam_auth.signer import Clock, SigV4Signer, utc_now

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator, Iterable

    import requests

__all__ = ["ApiGwIamAuth"]


class ApiGwIamAuth(httpx.Auth):
    """Sign requests to IAM-protected API Gateway APIs (and Lambda function URLs).

    Use it as ``auth=`` with requests (``requests.get(url, auth=auth)``) or httpx
    (``httpx.Client(auth=auth)``, ``httpx.AsyncClient(auth=auth)``). ``region=None`` reads the
    region off the API's hostname; pass it for custom domains. ``credentials=None`` uses
    botocore's default chain (env, profile, SSO, assume-role, container, IMDS), honouring
    ``profile``. ``presign=True`` moves the signature into the URL's query string instead of
    the ``Authorization`` header, valid for ``expires`` seconds.

    The object holds no per-request state: share it across threads, sessions and tasks.
    """

    def __init__(
        self,
        region: str | None = None,
        service: str = "execute-api",
        credentials: object = None,
        profile: str | None = None,
        presign: bool = False,
        expires: int = 900,
        *,
        clock: Clock = utc_now,
        unsigned_headers: Iterable[str] = DEFAULT_UNSIGNED_HEADERS,
        add_content_sha256_header: bool = False,
    ) -> None:
        """Validate everything now; no credentials are loaded until the first request."""
        if isinstance(expires, bool) or not isinstance(expires, int):
            raise InvalidConfigError(f"expires must be an int number of seconds, got {expires!r}")
        if not 1 <= expires <= MAX_EXPIRES:
            raise InvalidConfigError(
                f"expires must be between 1 and {MAX_EXPIRES} seconds (7 days), got {expires}"
            )
        self._signer = SigV4Signer(
            credentials,
            region,
            service,
            profile=profile,
            clock=clock,
            unsigned_headers=unsigned_headers,
            add_content_sha256_header=add_content_sha256_header,
        )
        self._presign = bool(presign)
        self._expires = expires

    def __repr__(self) -> str:
        """Settings only; never credentials."""
        return (
            f"ApiGwIamAuth(signer={self._signer!r}, presign={self._presign}, "
            f"expires={self._expires})"
        )

    @property
    def signer(self) -> SigV4Signer:
        """The :class:`SigV4Signer` doing the work, for signing outside an HTTP client."""
        return self._signer

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Sign a requests ``PreparedRequest`` (the requests ``auth=`` protocol)."""
        _requests.sign_prepared(self._signer, request, presign=self._presign, expires=self._expires)
        if not any(isinstance(hook, _requests.RedirectGuard) for hook in request.hooks["response"]):
            request.register_hook(  # type: ignore[no-untyped-call]
                "response",
                _requests.RedirectGuard(
                    self._signer, request, presign=self._presign, expires=self._expires
                ),
            )
        return request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign for a sync ``httpx.Client``; credentials are resolved on this thread."""
        _httpx.sign_request(
            self._signer,
            request,
            _httpx.body_hash_sync(request),
            presign=self._presign,
            expires=self._expires,
            is_async=False,
        )
        response = yield request
        if _httpx.needs_resign(response, request):
            retry = response.request
            response.read()
            _httpx.sign_request(
                self._signer,
                retry,
                _httpx.body_hash_sync(retry),
                presign=self._presign,
                expires=self._expires,
                is_async=False,
            )
            yield retry

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Sign for an ``httpx.AsyncClient``; credential refreshes run off the event loop."""
        provider = self._signer.credentials_provider
        _httpx.sign_request(
            self._signer,
            request,
            await _httpx.body_hash_async(request),
            presign=self._presign,
            expires=self._expires,
            credentials=await provider.aget(),
            is_async=True,
        )
        response = yield request
        if _httpx.needs_resign(response, request):
            retry = response.request
            await response.aread()
            _httpx.sign_request(
                self._signer,
                retry,
                await _httpx.body_hash_async(retry),
                presign=self._presign,
                expires=self._expires,
                credentials=await provider.aget(),
                is_async=True,
            )
            yield retry
