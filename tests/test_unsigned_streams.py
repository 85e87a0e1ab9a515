"""Where no body hash is signed (VPC Lattice's ``UNSIGNED-PAYLOAD``), streams are not read first.

Every other request has its body hashed before it is sent, which for a generator means reading
it whole. Lattice signs ``UNSIGNED-PAYLOAD`` instead, so each client must send a stream as it
comes: the generator's chunks are pulled only once the request is on its way (after the last
hook or middleware before sending), the body is not buffered into a ``Content-Length`` one,
and a payload that can be read only once is sent rather than refused. The server is the
shipped verifier impersonating ``vpc-lattice-svcs`` over loopback.
"""

from __future__ import annotations

import hashlib
import importlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import aiohttp
import aiohttp.payload
import pytest
import requests
from integration_cases import LONG_TERM, NEEDS_HTTPX2

from apigw_iam_auth import ApiGwIamAuth
from apigw_iam_auth.server import IamAuthServer, KnownKey, verify_request

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    import httpx

pytestmark = pytest.mark.anyio

LATTICE = "vpc-lattice-svcs"
REGION = "us-west-2"
CHUNKS = (b"first chunk,", b"second chunk,", b"last chunk")
BODY = b"".join(CHUNKS)
SENT = "sent"  # what the last hook before sending writes among the pulled chunks


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio."""
    return "asyncio"


@pytest.fixture(scope="module")
def lattice():
    """The shipped verifier as VPC Lattice: it takes UNSIGNED-PAYLOAD and nothing else."""
    with IamAuthServer(
        region=REGION, keys={LONG_TERM[0]: KnownKey(LONG_TERM[1])}, service=LATTICE
    ) as srv:
        yield srv


def lattice_auth(payload: str | None) -> ApiGwIamAuth:
    """An auth for the loopback Lattice service; None lets the service decide (unsigned)."""
    return ApiGwIamAuth(region=REGION, service=LATTICE, credentials=LONG_TERM, payload=payload)  # type: ignore[arg-type]


def chunks(events: list[str]) -> Iterator[bytes]:
    for chunk in CHUNKS:
        events.append(chunk.decode())
        yield chunk


async def async_chunks(events: list[str]) -> AsyncIterator[bytes]:
    for chunk in CHUNKS:
        events.append(chunk.decode())
        yield chunk


def received(echo: dict[str, Any]) -> tuple[dict[str, str], str]:
    """The headers the server received (lowercase names) and the SHA-256 of the body."""
    return {name.lower(): value for name, value in echo["headers"]}, echo["body"]["sha256"]


PAYLOADS = (
    pytest.param("unsigned", id="payload-unsigned"),
    pytest.param(None, id="service-default"),
)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_requests_streams_a_generator_unread(lattice, payload):
    """requests sends the generator chunked, as without auth: it was not drained to be hashed."""
    with requests.Session() as session:
        session.trust_env = False
        events: list[str] = []
        response = session.post(
            f"{lattice.url}/upload", data=chunks(events), auth=lattice_auth(payload), timeout=10
        )
    assert response.status_code == 200, response.text
    headers, body_sha256 = received(response.json())
    assert headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in headers
    assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert body_sha256 == hashlib.sha256(BODY).hexdigest()


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("package", ["httpx", pytest.param("httpx2", marks=NEEDS_HTTPX2)])
async def test_httpx_pulls_the_stream_only_when_sending(lattice, payload, is_async, package):
    """httpx's (and httpx2's) request hook runs after the auth flow, before any chunk is pulled."""
    client = importlib.import_module(package)
    events: list[str] = []

    def before_sending(_request: httpx.Request) -> None:
        events.append(SENT)

    async def before_sending_async(request: httpx.Request) -> None:
        before_sending(request)

    url, auth = f"{lattice.url}/upload", lattice_auth(payload)
    if is_async:
        hooks = {"request": [before_sending_async]}
        async with client.AsyncClient(trust_env=False, event_hooks=hooks) as client:
            response = await client.post(url, content=async_chunks(events), auth=auth)
    else:
        with client.Client(trust_env=False, event_hooks={"request": [before_sending]}) as client:
            response = client.post(url, content=chunks(events), auth=auth)
    assert response.status_code == 200, response.text
    assert events == [SENT, *(chunk.decode() for chunk in CHUNKS)]
    assert received(response.json())[1] == hashlib.sha256(BODY).hexdigest()


class OneShot(aiohttp.payload.Payload):
    """A payload that can be written once and never read back (a socket or a pipe's stream)."""

    async def write(self, writer: Any) -> None:
        self._consumed = True
        await writer.write(self._value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._value).decode(encoding, errors)


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_aiohttp_streams_the_body_as_it_comes(lattice, payload):
    """An async generator is pulled after the middlewares and sent chunked; a one-shot is sent."""
    events: list[str] = []

    async def before_sending(request: aiohttp.ClientRequest, handler: Any) -> Any:
        events.append(SENT)
        return await handler(request)

    async with aiohttp.ClientSession(
        middlewares=(lattice_auth(payload), before_sending)
    ) as session:
        async with session.post(f"{lattice.url}/upload", data=async_chunks(events)) as response:
            assert response.status == 200, await response.text()
            headers, body_sha256 = received(await response.json())
        async with session.post(f"{lattice.url}/upload", data=OneShot(BODY)) as one_shot:
            assert one_shot.status == 200, await one_shot.text()
            assert received(await one_shot.json())[1] == hashlib.sha256(BODY).hexdigest()
    assert events[:2] == [SENT, CHUNKS[0].decode()]
    assert headers.get("transfer-encoding") == "chunked"
    assert body_sha256 == hashlib.sha256(BODY).hexdigest()


def test_a_host_header_naming_another_service_decides_whether_the_stream_is_read():
    """A Lattice URL sent with an execute-api Host is signed for execute-api, which signs the
    body's hash: the stream is read to hash it, and API Gateway's verifier accepts it.
    """
    url = "https://svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-west-2.on.aws/prod/upload"
    host = "abc123.execute-api.us-west-2.amazonaws.com"
    now = datetime.now(timezone.utc)
    prepared = requests.Request("POST", url, data=chunks([]), headers={"Host": host}).prepare()
    ApiGwIamAuth(credentials=LONG_TERM, clock=lambda: now)(prepared)
    assert prepared.body == BODY  # read (and buffered) to be hashed
    verified = verify_request(
        "POST",
        prepared.path_url,
        list(prepared.headers.items()),
        BODY,
        lookup={LONG_TERM[0]: KnownKey(LONG_TERM[1])}.get,
        region="us-west-2",
        now=now,
    )
    assert verified.access_key == LONG_TERM[0]


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_aiohttp_compresses_a_body_no_hash_is_signed_for(lattice, payload):
    """compress= changes the bytes after signing, which only matters where their hash is
    signed (refused there: tests/test_aiohttp.py): Lattice gets the compressed body.
    """
    async with (
        aiohttp.ClientSession(middlewares=(lattice_auth(payload),)) as session,
        session.post(f"{lattice.url}/upload", data=BODY * 100, compress="deflate") as response,
    ):
        assert response.status == 200, await response.text()
        headers, body_sha256 = received(await response.json())
    assert headers.get("content-encoding") == "deflate"
    assert body_sha256 != hashlib.sha256(BODY * 100).hexdigest()  # sent compressed
