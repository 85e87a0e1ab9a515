"""Adapter rules that mutation testing of the adapters found no test pinning down.

Each test sends real requests over loopback to ``aws_server.py`` (botocore verifies every
signature) through a real client, and names the rule it holds the adapter to.
"""

from __future__ import annotations

import gc
import importlib
import io
import os
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

import aiohttp
import httpx
import pytest
import requests
from aws_server import running_server
from integration_cases import (
    LONG_TERM,
    NEEDS_HTTPX2,
    SESSION,
    leaked,
    make_auth,
    redirect_url,
    sha256,
)

from apigw_iam_auth import UnsignableRequestError, _aiohttp

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on asyncio (aiohttp's loop)."""
    return "asyncio"


# httpx2 is absent only in CI's lowest cell (see NEEDS_HTTPX2): its cases skip there alone.
HTTPX2 = pytest.param("httpx2", marks=NEEDS_HTTPX2)


def _query(target: str) -> dict[str, list[str]]:
    return parse_qs(target.partition("?")[2])


async def test_aiohttp_presigned_url_carries_the_configured_expiry(aws_server):
    """``expires=`` reaches the aiohttp middleware's presigned query, not the 900 s default."""
    auth = make_auth(presign=True, expires=60)
    async with (
        aiohttp.ClientSession(middlewares=(auth,)) as session,
        session.get(aws_server.url("/prod/pets")) as response,
    ):
        assert response.status == 200
    (record,) = aws_server.requests
    assert record.verified
    assert _query(record.target)["X-Amz-Expires"] == ["60"]


def _tolerant_skewed_server():
    """A server whose clock is 10 minutes ahead but which accepts signatures 30 minutes off."""
    return running_server(clock_offset=timedelta(minutes=10), max_skew=timedelta(minutes=30))


@pytest.mark.parametrize("client", ["aiohttp", "httpx-async"])
async def test_async_clients_take_no_clock_from_a_successful_head(client):
    """Only a 403 is a refusal: a HEAD answered 200 by a server whose clock is 10 minutes off
    (but which tolerates it) neither moves the signing clock nor sends the request again."""
    auth = make_auth()
    with _tolerant_skewed_server() as server:
        url = server.url("/prod/pets")
        if client == "aiohttp":
            async with (
                aiohttp.ClientSession(middlewares=(auth,)) as session,
                session.head(url) as response,
            ):
                assert response.status == 200
        else:
            async with httpx.AsyncClient(auth=auth, trust_env=False) as session:
                assert (await session.head(url)).status_code == 200
        assert [(record.status, record.verified) for record in server.requests] == [(200, True)]
    assert auth.signer.clock_offset == timedelta(0)


@pytest.mark.parametrize("client", ["requests", "httpx", HTTPX2])
def test_sync_clients_take_no_clock_from_a_successful_head(client):
    """As for the async clients: a 200 to a HEAD is no clock-skew refusal, whatever its Date."""
    auth = make_auth()
    with _tolerant_skewed_server() as server:
        url = server.url("/prod/pets")
        if client == "requests":
            assert requests.head(url, auth=auth, timeout=10).status_code == 200
        else:
            package = importlib.import_module(client)
            with package.Client(auth=auth, trust_env=False) as session:
                assert session.head(url).status_code == 200
        assert [(record.status, record.verified) for record in server.requests] == [(200, True)]
    assert auth.signer.clock_offset == timedelta(0)


async def test_aiohttp_redirect_to_another_host_name_on_the_same_port_goes_unsigned(aws_server):
    """An origin is scheme, host and port: ``localhost`` is another origin than ``127.0.0.1``
    even where both reach the same server on the same port, so that hop carries nothing of ours.
    """
    target = f"http://localhost:{aws_server.port}/prod/elsewhere"
    start = aws_server.url("/redirect?" + urlencode({"to": target, "status": 302}))
    auth = make_auth(credentials=SESSION)
    async with (
        aiohttp.ClientSession(middlewares=(auth,)) as session,
        session.get(start) as response,
    ):
        assert response.status == 403
        assert [hop.status for hop in response.history] == [302]
    first, hop = aws_server.requests
    assert first.verified
    assert (hop.target, hop.verified, leaked(hop)) == ("/prod/elsewhere", False, [])


@pytest.mark.parametrize("kind", ["file", "bytes-io"])
async def test_aiohttp_seekable_body_cut_by_the_callers_content_length_is_signed_as_cut(
    aws_server, tmp_path, kind
):
    """A Content-Length shorter than a file (or BytesIO) cuts what aiohttp sends: the hash is
    of those first bytes, not of the file to its end."""
    data = b"abcdefgh" * 1000
    path = tmp_path / "body.bin"
    path.write_bytes(data)
    auth = make_auth()
    with path.open("rb") if kind == "file" else io.BytesIO(data) as body:
        async with (
            aiohttp.ClientSession(middlewares=(auth,)) as session,
            session.post(
                aws_server.url("/prod/cut"), data=body, headers={"Content-Length": "4"}
            ) as response,
        ):
            assert response.status == 200
    (record,) = aws_server.requests
    assert (record.verified, record.body_sha256) == (True, sha256(b"abcd"))


async def test_aiohttp_a_chain_that_left_its_origin_is_forgotten_with_its_responses(aws_server):
    """Marking a chain as gone elsewhere keeps the link to its first response: once the
    responses are gone, so is the chain's entry (no entry per cross-origin redirect leaks)."""
    with running_server() as other:
        start = redirect_url(aws_server, other.url("/prod/elsewhere"), 302)
        async with (
            aiohttp.ClientSession(middlewares=(make_auth(credentials=SESSION),)) as session,
            session.get(start) as response,
        ):
            assert (response.status, len(response.history)) == (403, 1)
        del response
    gc.collect()
    assert _aiohttp._chains == {}


async def test_aiohttp_a_pipe_as_the_first_part_of_a_form_is_refused_naming_the_part(aws_server):
    """The part check covers every part, the first one too: the refusal names the part that
    can be read only once, not the whole form."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"piped")
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        form = aiohttp.MultipartWriter("form-data")
        form.append(pipe)
        form.append(b"two")
        async with aiohttp.ClientSession(middlewares=(make_auth(),)) as session:
            with pytest.raises(UnsignableRequestError, match="a part of this multipart body"):
                await session.post(aws_server.url("/prod/b"), data=form)
    assert aws_server.request_count == 0


@pytest.mark.parametrize("package", ["httpx", HTTPX2])
def test_httpx_redirect_between_two_ipv6_ports_goes_unsigned(package):
    """Two ports of ``[::1]`` are two origins: the hop to the other one carries nothing of
    ours (an IPv6 host is compared in one spelling, never as no host at all)."""
    client = importlib.import_module(package)
    with running_server(host="::1") as home, running_server(host="::1") as other:
        start = redirect_url(home, other.url("/prod/elsewhere"), 307)
        auth = make_auth(credentials=SESSION)
        with client.Client(auth=auth, trust_env=False, follow_redirects=True) as session:
            response = session.post(start, content=b"x")
        arrived = other.requests
    assert (response.status_code, [hop.status_code for hop in response.history]) == (403, [307])
    assert home.requests[0].verified
    assert [leaked(record) for record in arrived] == [[]]


def test_requests_a_request_signed_again_by_another_auth_is_guarded_by_that_auth_alone(
    aws_server,
):
    """Signing a prepared request again replaces the earlier auth's response guard: the
    refused same-origin redirect hop is signed by the newest auth (whose keys verify), not
    first by the one it replaced (whose secret is wrong)."""
    replaced = make_auth(credentials=(LONG_TERM[0], "not-the-secret"))
    newest = make_auth()
    start = redirect_url(aws_server, aws_server.url("/prod/moved"), 302)
    with requests.Session() as session:
        prepared = newest(replaced(session.prepare_request(requests.Request("GET", start))))
        response = session.send(prepared)
    assert response.status_code == 200
    assert len(prepared.hooks["response"]) == 1


def test_requests_body_of_an_unsupported_type_is_refused_naming_the_type(aws_server):
    """requests passes a body it cannot encode (an int) on as it is: the auth refuses it by
    its type, before anything is sent, rather than trying to read it as a stream."""
    with pytest.raises(UnsignableRequestError, match="cannot sign a request body of type int"):
        requests.post(aws_server.url("/prod/x"), data=12345, auth=make_auth(), timeout=10)
    assert aws_server.request_count == 0


@pytest.mark.parametrize("client", ["requests", "httpx", HTTPX2])
def test_a_refusal_by_another_origin_never_moves_the_clock(aws_server, client):
    """A HEAD redirected to another origin whose clock is 10 minutes off comes back refused
    (it went unsigned): that origin's Date is not ours to correct the clock by, and the
    request is not sent again."""
    auth = make_auth()
    with running_server(clock_offset=timedelta(minutes=10)) as other:
        start = redirect_url(aws_server, other.url("/prod/elsewhere"), 302)
        if client == "requests":
            response = requests.head(start, auth=auth, allow_redirects=True, timeout=10)
        else:
            package = importlib.import_module(client)
            with package.Client(auth=auth, trust_env=False, follow_redirects=True) as session:
                response = session.head(start)
        assert response.status_code == 403
        assert [leaked(record) for record in other.requests] == [[]]
    assert aws_server.request_count == 1
    assert auth.signer.clock_offset == timedelta(0)
