"""``apigw-iam-auth demo``: an offline, end-to-end tour against an in-process IAM-auth server.

Everything is real: a loopback HTTP server that verifies SigV4 like API Gateway, freshly
generated credentials, and real requests / httpx clients. Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import string
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING

import httpx

from apigw_iam_auth.auth import ApiGwIamAuth
from apigw_iam_auth.diagnostics import FORBIDDEN
from apigw_iam_auth.server._http import IamAuthServer
from apigw_iam_auth.server._verify import KnownKey
from apigw_iam_auth.signer import SigV4Signer, utc_now

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

__all__ = ["run_demo"]

REGION = "us-east-1"
_OK = HTTPStatus.OK.value
_SHOWN = 48  # characters of an error message shown per line


def _generated_credentials() -> tuple[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    access_key = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
    return access_key, secrets.token_urlsafe(30)


def _message(response: httpx.Response) -> str:
    try:
        body = json.loads(response.text)
    except ValueError:
        return response.text[:_SHOWN]
    text = str(body.get("message") or body.get("Message") or "")
    first = text.splitlines()[0] if text else ""
    return first if len(first) <= _SHOWN else first[: _SHOWN - 3] + "..."


def run_demo(out: TextIO) -> bool:
    """Run every step, print one line each, and return True when all behaved as expected."""
    access_key, secret_key = _generated_credentials()
    keys = {access_key: KnownKey(secret_key)}
    results: list[bool] = []

    def step(label: str, expected: int, call: Callable[[], httpx.Response]) -> None:
        response = call()
        passed = response.status_code == expected
        results.append(passed)
        note = "" if response.status_code == _OK else f"  {_message(response)}"
        mark = "ok  " if passed else "FAIL"
        print(f"  {mark} {label:<40} -> {response.status_code}{note}", file=out)

    def skip(client: str, why: str) -> None:
        print(f"  skip {client + ' steps':<40}    {why}", file=out)

    with IamAuthServer(region=REGION, keys=keys) as server:
        api = f"{server.url}/prod"
        print(f"Local IAM-auth server at {server.url} (region {REGION})", file=out)
        print(f"Generated credentials for this run: {access_key} / ****", file=out)
        credentials = (access_key, secret_key)
        auth = ApiGwIamAuth(region=REGION, credentials=credentials)
        presigned = ApiGwIamAuth(region=REGION, credentials=credentials, presign=True)
        signer = SigV4Signer(REGION, credentials=credentials)

        with httpx.Client(trust_env=False) as client:
            step(
                "httpx  header-signed GET",
                _OK,
                lambda: client.get(f"{api}/pets?type=dog", auth=auth),
            )
            step(
                "httpx  header-signed POST (JSON body)",
                _OK,
                lambda: client.post(f"{api}/pets", json={"name": "Rex"}, auth=auth),
            )
            step("httpx  presigned GET", _OK, lambda: client.get(f"{api}/pets", auth=presigned))
            step(
                "plain GET of a presigned link, no auth",
                _OK,
                lambda: client.get(signer.presign("GET", f"{api}/report?id=7", expires=300)),
            )
            _requests_steps(step, skip, api, auth, presigned)
            step("httpx  async header-signed GET", _OK, lambda: _async_get(f"{api}/pets", auth))
            _aiohttp_steps(step, skip, api, auth, presigned)

            signed = signer.sign("GET", f"{api}/pets/1")
            step(
                "tampered path (signed /pets/1, sent /2)",
                FORBIDDEN,
                lambda: client.get(f"{api}/pets/2", headers=dict(signed.headers)),
            )
            stale = signer.presign("GET", f"{api}/pets", expires=60, timestamp=_two_hours_ago())
            step("presigned link that expired", FORBIDDEN, lambda: client.get(stale))
            step("unsigned GET", FORBIDDEN, lambda: client.get(f"{api}/pets"))

    passed = all(results)
    verdict = "Demo passed" if passed else "Demo FAILED"
    print(
        f"{verdict}: {results.count(True)} of {len(results)} steps behaved like API Gateway.",
        file=out,
    )
    return passed


def _two_hours_ago() -> datetime:
    return utc_now() - timedelta(hours=2)


def _requests_steps(
    step: Callable[[str, int, Callable[[], httpx.Response]], None],
    skip: Callable[[str, str], None],
    api: str,
    auth: ApiGwIamAuth,
    presigned: ApiGwIamAuth,
) -> None:
    """The same calls through requests, when the optional requests extra is installed."""
    try:
        import requests  # noqa: PLC0415 - optional dependency
    except ImportError:
        skip(
            "requests",
            "requests is not installed: pip install '.[requests]' in a checkout",
        )
        return

    def via_requests(method: str, url: str, used: ApiGwIamAuth) -> httpx.Response:
        with requests.Session() as session:
            session.trust_env = False
            response = session.request(method, url, auth=used, timeout=10)
        return httpx.Response(response.status_code, content=response.content)

    step("requests header-signed GET", _OK, lambda: via_requests("GET", f"{api}/pets", auth))
    step(
        "requests presigned DELETE", _OK, lambda: via_requests("DELETE", f"{api}/pets/1", presigned)
    )


def _aiohttp_steps(
    step: Callable[[str, int, Callable[[], httpx.Response]], None],
    skip: Callable[[str, str], None],
    api: str,
    auth: ApiGwIamAuth,
    presigned: ApiGwIamAuth,
) -> None:
    """The same auth object as an aiohttp middleware, when the aiohttp extra is installed."""
    extra = "pip install '.[aiohttp]' in a checkout"
    try:
        import aiohttp  # noqa: PLC0415 - optional dependency
    except ImportError:
        skip("aiohttp", f"aiohttp is not installed: {extra}")
        return
    if _release(aiohttp.__version__) < _AIOHTTP_MIDDLEWARES:  # another package brought it
        skip("aiohttp", f"aiohttp {aiohttp.__version__} predates the 3.12.14 we need: {extra}")
        return

    def via_aiohttp(
        method: str, url: str, used: ApiGwIamAuth, body: bytes | None
    ) -> httpx.Response:
        async def call() -> httpx.Response:
            async with (
                aiohttp.ClientSession(middlewares=(used,), trust_env=False) as session,
                session.request(method, url, data=body) as response,
            ):
                return httpx.Response(response.status, content=await response.read())

        return asyncio.run(call())

    step(
        "aiohttp middleware POST (bytes body)",
        _OK,
        lambda: via_aiohttp("POST", f"{api}/pets", auth, b'{"name": "Tom"}'),
    )
    step(
        "aiohttp presigned GET",
        _OK,
        lambda: via_aiohttp("GET", f"{api}/pets?limit=2", presigned, None),
    )


# Client middlewares with the payload API the adapter uses (the aiohttp extra's floor).
_AIOHTTP_MIDDLEWARES = (3, 12, 14)


def _release(version: str) -> tuple[int, ...]:
    """``3.12.14`` (or ``3.13.0rc1``, ``3.14.0.dev0``) as (3, 12, 14): its first three numbers."""
    return tuple(int(number) for number in re.findall(r"[0-9]+", version)[:3])


def _async_get(url: str, auth: ApiGwIamAuth) -> httpx.Response:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
            return await client.get(url)

    return asyncio.run(get())
