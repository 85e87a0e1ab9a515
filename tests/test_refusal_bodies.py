"""A 403 whose body is endless or large is handed back unread, as the client would without us.

The adapters read a refusal's body to explain it (and to find a clock-skew refusal), but only
when its ``Content-Length`` says it is small: API Gateway's refusals are a few hundred bytes
with a length, while an event stream or a streaming function URL may refuse with a body that
never ends. Reading it whole would block ``client.stream()`` for good, or buffer megabytes.
The server here answers 403, sends the first piece of such a body, and then holds the
connection open until the test ends.
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import threading
from typing import TYPE_CHECKING

import aiohttp
import pytest
import requests
from integration_cases import LONG_TERM, NEEDS_HTTPX2

from apigw_iam_auth import ApiGwIamAuth

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio

READ_TIMEOUT = 10  # seconds: a client reading the held body fails by this, instead of hanging
HEADS = {
    "endless-chunked": b"Transfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n",
    "ten-megabytes": b"Content-Length: 10485760\r\n\r\n" + b"x" * 1024,
}


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio."""
    return "asyncio"


@pytest.fixture(params=list(HEADS))
def refusing(request: pytest.FixtureRequest) -> Iterator[str]:
    """A loopback server whose 403 body starts and then waits; yields its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()
    held: list[socket.socket] = []
    wire = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/event-stream\r\n" + HEADS[request.param]

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the test has ended
                return
            held.append(connection)  # the rest of the body never comes; closed at the end
            head = b""
            while b"\r\n\r\n" not in head and (data := connection.recv(65536)):
                head += data
            connection.sendall(wire)

    thread = threading.Thread(target=serve, name="refusing server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/prod/events"
    finally:
        done.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        # After the thread: the client may have its answer before the thread is done with it.
        thread.join(timeout=READ_TIMEOUT)
        for connection in held:
            connection.close()


def auth() -> ApiGwIamAuth:
    return ApiGwIamAuth(region="us-east-1", credentials=LONG_TERM)


def test_requests_returns_the_refusal_unread(refusing):
    """requests with stream=True gets its 403 at once: the response hook does not read it."""
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(refusing, auth=auth(), stream=True, timeout=READ_TIMEOUT)
        with response:
            assert response.status_code == 403


@pytest.mark.parametrize("package", ["httpx", pytest.param("httpx2", marks=NEEDS_HTTPX2)])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_httpx_stream_returns_the_refusal_unread(refusing, package, is_async):
    """client.stream() hands back the 403 at once, its body left to the caller."""
    client = importlib.import_module(package)
    if is_async:
        async with (
            client.AsyncClient(trust_env=False, timeout=READ_TIMEOUT) as session,
            session.stream("GET", refusing, auth=auth()) as response,
        ):
            assert response.status_code == 403
    else:
        with (
            client.Client(trust_env=False, timeout=READ_TIMEOUT) as session,
            session.stream("GET", refusing, auth=auth()) as response,
        ):
            assert response.status_code == 403


async def test_aiohttp_returns_the_refusal_unread(refusing):
    """The middleware hands back the 403 without reading a body of unknown or large length."""
    timeout = aiohttp.ClientTimeout(sock_read=READ_TIMEOUT)
    async with (
        aiohttp.ClientSession(middlewares=(auth(),), timeout=timeout) as session,
        session.get(refusing) as response,
    ):
        assert response.status == 403
