"""httpx's and httpx2's AsyncClient on trio, their other event loop: the same signing as on asyncio.

What the async auth flow does off the loop -- a credential load, reading the configured region,
hashing a large body, botocore's early refresh -- goes to trio's worker threads there (there is
no asyncio loop to lend one), and one credential load still serves every task waiting for it.
The tests run on trio (anyio's pytest plugin), with real clients against the verifying server
on 127.0.0.1 and botocore's container provider aimed at a loopback credential endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import threading
import urllib.request
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import botocore.credentials
import botocore.session
import pytest
import trio
import trio.testing
from aws_isolation import isolate_aws
from aws_server import DEFAULT_CREDENTIALS
from credential_servers import FakeClock, LiveKeys, running
from forking import HANG_GUARD
from integration_cases import LONG_TERM, NEEDS_HTTPX2, REGION

from apigw_iam_auth import (
    ApiGwIamAuth,
    BotocoreProvider,
    CallableProvider,
    Credentials,
    CredentialsProvider,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator
    from types import ModuleType

    from aws_server import AwsServer
    from credential_servers import CredentialServer

pytestmark = pytest.mark.anyio

FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
BIG = 2 * 1024 * 1024  # over the 1 MiB hashed inline: hashed in a worker thread


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on trio."""
    return "trio"


@pytest.fixture(params=(pytest.param("httpx"), pytest.param("httpx2", marks=NEEDS_HTTPX2)))
def client(request) -> ModuleType:
    """The client package: httpx or httpx2 (the same API), whose AsyncClient sends."""
    return importlib.import_module(request.param)


@pytest.fixture
def aws_env(tmp_path, monkeypatch):
    """botocore sees only what a test sets: no AWS_* environment, no ~/.aws, no IMDS."""
    isolate_aws(tmp_path, monkeypatch)


def fetched_from(endpoint: CredentialServer) -> Callable[[], Credentials]:
    """A plain function fetching credentials from ``endpoint`` (blocking I/O)."""

    def fetch() -> Credentials:
        with urllib.request.urlopen(endpoint.container_url, timeout=10) as response:  # noqa: S310
            body = json.loads(response.read())
        return Credentials(body["AccessKeyId"], body["SecretAccessKey"], body["Token"])

    return fetch


@contextlib.contextmanager
def endpoint_for(aws_server: AwsServer, *, held: bool = False, **options: Any) -> Iterator[Any]:
    """A loopback credential endpoint whose keys ``aws_server`` verifies; ``held``: its
    answers wait until the test sets ``endpoint.hold``.
    """
    with running(**options) as endpoint:
        if held:
            endpoint.hold = threading.Event()
        aws_server.credentials = LiveKeys(endpoint, DEFAULT_CREDENTIALS)
        yield endpoint


async def get(client: ModuleType, auth: ApiGwIamAuth, url: str, **kwargs: Any) -> dict[str, Any]:
    """The verifying server's JSON echo of one signed request (fails with its 403 if refused)."""
    async with client.AsyncClient(auth=auth, trust_env=False) as session:
        response = await session.request("POST" if kwargs else "GET", url, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.usefixtures("aws_env")
async def test_the_default_chain_and_the_configured_region_are_read_off_trios_loop(
    client, aws_server: AwsServer, monkeypatch
):
    """``ApiGwIamAuth()`` as on AWS compute: botocore's chain finds the container endpoint and
    the region comes from ``AWS_REGION`` (a loopback host names none), both read in a worker
    thread. asyncio's ``to_thread`` found no loop here and raised a bare ``RuntimeError``.
    """
    with endpoint_for(aws_server) as endpoint:
        monkeypatch.setenv(FULL_URI, endpoint.container_url)
        monkeypatch.setenv("AWS_REGION", REGION)
        received = await get(client, ApiGwIamAuth(), aws_server.url("/prod/pets"))
    assert received["access_key"] == "ASIAGEN000001"
    assert endpoint.calls["container"] == 1


async def async_chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


@pytest.mark.parametrize("kind", ["bytes", "async iterator"])
async def test_a_body_over_a_mebibyte_is_hashed_in_a_worker_thread(client, aws_server, kind):
    """A body above 1 MiB is hashed beside the loop, as on asyncio, and signed as sent."""
    data = bytes(range(256)) * (BIG // 256)
    content = data if kind == "bytes" else async_chunks(data)
    auth = ApiGwIamAuth(region=REGION, credentials=LONG_TERM)
    received = await get(client, auth, aws_server.url("/prod/upload"), content=content)
    assert received["body_sha256"] == hashlib.sha256(data).hexdigest()


def provider_of(source: str, endpoint: CredentialServer, monkeypatch) -> Any:
    """A provider that loads from ``endpoint``: botocore's chain, a function, an async one."""
    if source == "container":
        monkeypatch.setenv(FULL_URI, endpoint.container_url)
        return BotocoreProvider()
    fetch = fetched_from(endpoint)
    if source == "function":
        return CallableProvider(fetch)

    async def fetch_async() -> Credentials:  # asyncio code: runs on a loop of its own
        return await asyncio.to_thread(fetch)

    return CallableProvider(fetch_async)


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("source", ["container", "function", "async function"])
async def test_a_held_credential_load_leaves_trio_running_and_serves_every_task(
    client, aws_server, monkeypatch, source
):
    """50 tasks wait for their first credentials while the endpoint holds the one load: trio
    runs this test's own steps meanwhile (a load on the loop's thread would stop them), and
    that single load serves all 50. An async credentials function, written for asyncio, runs
    on a loop of its own in the worker thread.
    """
    statuses: list[str] = []
    with endpoint_for(aws_server, held=True) as endpoint:
        auth = ApiGwIamAuth(region=REGION, credentials=provider_of(source, endpoint, monkeypatch))

        async def call(number: int) -> None:
            received = await get(client, auth, aws_server.url(f"/prod/t{number}"))
            statuses.append(received["access_key"])

        async with trio.open_nursery() as nursery:
            for number in range(50):
                nursery.start_soon(call, number)
            await trio.to_thread.run_sync(endpoint.wait_for_calls, "arrived", 1)
            assert statuses == []  # every task is still waiting for the held load
            endpoint.hold.set()
        loads = endpoint.calls["container"]
    assert statuses == ["ASIAGEN000001"] * 50
    assert loads == 1


@pytest.mark.usefixtures("aws_env")
async def test_botocores_early_refresh_starts_in_a_thread_and_no_task_waits_for_it(
    client, aws_server, monkeypatch
):
    """In botocore's advisory window (15 minutes before expiry) a refresh starts beside the
    loop and requests go on with the current keys, still valid, as on asyncio; it used to
    raise ``RuntimeError`` (no asyncio loop to queue the refresh on).
    """
    clock = FakeClock()
    with endpoint_for(aws_server, clock=clock) as endpoint:
        monkeypatch.setenv(FULL_URI, endpoint.container_url)
        credentials = botocore.session.Session().get_credentials()
        assert isinstance(credentials, botocore.credentials.RefreshableCredentials)
        credentials._time_fetcher = clock  # botocore's own hook for a clock
        auth = ApiGwIamAuth(region=REGION, credentials=credentials)
        url = aws_server.url("/prod/pets")
        assert (await get(client, auth, url))["access_key"] == "ASIAGEN000001"
        endpoint.hold = threading.Event()
        clock.advance(timedelta(minutes=46))  # 14 minutes left: botocore's advisory window
        try:
            assert (await get(client, auth, url))["access_key"] == "ASIAGEN000001"
            # The refresh reached the endpoint, where it is held, while the request went on.
            await trio.to_thread.run_sync(endpoint.wait_for_calls, "arrived", 2)
        finally:
            endpoint.hold.set()


class OwnProvider(CredentialsProvider):
    """A user's provider with only ``get()``: the base class's ``aget`` runs it in a thread."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def get(self) -> Credentials:
        self.threads.append(threading.get_ident())
        return Credentials(*LONG_TERM)


async def test_a_providers_own_get_runs_in_a_worker_thread_inside_a_chain(client, aws_server):
    """A provider class of the user's own, first in a list (a chain), is asked off trio's
    thread (the base ``aget`` of :class:`CredentialsProvider`) and signs.
    """
    own = OwnProvider()
    auth = ApiGwIamAuth(region=REGION, credentials=[own, ("AKIDUNUSED", "unused-secret")])
    received = await get(client, auth, aws_server.url("/prod/pets"))
    assert received["access_key"] == LONG_TERM[0]
    assert own.threads
    assert threading.get_ident() not in own.threads


@pytest.mark.usefixtures("aws_env")
async def test_a_task_cancelled_while_it_waits_for_a_held_load_lets_go_at_once(client, aws_server):
    """Cancelled while the endpoint holds its credential load, a task ends at once, as on
    asyncio: it waits on trio, not in a thread trio cannot cancel. The load goes on and
    serves the next request.
    """
    with endpoint_for(aws_server, held=True) as endpoint:
        auth = ApiGwIamAuth(region=REGION, credentials=CallableProvider(fetched_from(endpoint)))
        with trio.fail_after(HANG_GUARD), trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(get, client, auth, aws_server.url("/prod/cancelled"))
                await trio.to_thread.run_sync(endpoint.wait_for_calls, "arrived", 1)
                scope.cancel()
        assert scope.cancelled_caught
        assert endpoint.calls["container"] == 0  # the load is still held
        endpoint.hold.set()
        received = await get(client, auth, aws_server.url("/prod/next"))
        loads = endpoint.calls["container"]
    assert received["access_key"] == "ASIAGEN000001"
    assert loads == 1


@pytest.mark.usefixtures("aws_env")
async def test_tasks_waiting_for_a_held_load_hold_none_of_trios_threads(client, aws_server):
    """60 tasks wait for one held load and hold no worker thread: trio lends 40 at a time, and
    its DNS lookups need them too. Only the load itself runs in one.
    """
    statuses: list[str] = []
    limiter = trio.to_thread.current_default_thread_limiter()
    with endpoint_for(aws_server, held=True) as endpoint:
        auth = ApiGwIamAuth(region=REGION, credentials=CallableProvider(fetched_from(endpoint)))

        async def call(number: int) -> None:
            received = await get(client, auth, aws_server.url(f"/prod/w{number}"))
            statuses.append(received["access_key"])

        async with trio.open_nursery() as nursery:
            for number in range(60):
                nursery.start_soon(call, number)
            await trio.to_thread.run_sync(endpoint.wait_for_calls, "arrived", 1)
            await trio.testing.wait_all_tasks_blocked()
            borrowed = limiter.borrowed_tokens
            endpoint.hold.set()
        loads = endpoint.calls["container"]
    assert borrowed == 1  # the load's own thread
    assert statuses == ["ASIAGEN000001"] * 60
    assert loads == 1


def test_a_trio_guest_run_on_an_asyncio_loop_takes_trios_route(client, aws_server):
    """trio run as a guest on an asyncio loop (``start_guest_run``), where asyncio's running
    loop is visible to trio's tasks: the flow asks sniffio which library runs the task, as
    httpx does, and waits for the credential load on trio, not on asyncio's futures.
    """
    auth = ApiGwIamAuth(region=REGION, credentials=CallableProvider(lambda: LONG_TERM))
    url = aws_server.url("/prod/guest")

    async def host() -> Any:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[Any] = loop.create_future()
        trio.lowlevel.start_guest_run(
            get,
            client,
            auth,
            url,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=finished.set_result,
        )
        return (await asyncio.wait_for(finished, HANG_GUARD)).unwrap()

    assert asyncio.run(host())["access_key"] == LONG_TERM[0]
