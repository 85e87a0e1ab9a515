"""Benchmark: the aiohttp middleware (ApiGwIamAuth's adapter) against aiohttp-aws-auth.

Run ``python bench/bench_aiohttp.py`` (``--quick`` for a short run). It is a report, not a test:
it always exits 0. Everything runs in this one process and on one event loop.

The peer, ``aiohttp-aws-auth`` (the only SigV4 middleware on PyPI), is in the ``bench`` extra;
here it stays optional: it is imported if installed, or found in a directory named by
``--peer-path`` / ``AIOHTTP_AWS_AUTH_PATH`` (e.g. ``pip install --no-deps --target /tmp/peer
aiohttp-aws-auth``). Without it the peer rows are left out and the report says so.

For the table of W1-W4 across every client, with the 2x goal against aiohttp-aws-auth, see
``bench_workloads.py``: there the requests are the ones a ``ClientSession`` builds, made
outside the timing, and every output timed is verified. Part 1 here builds a bare
``ClientRequest`` inside the timing instead (the ``no-op`` row subtracts it): a rougher figure.

1. **One middleware call** (no network): ``await middleware(ClientRequest(...), handler)`` with
   a handler that returns at once, static credentials. The ``ClientRequest`` is built inside the
   timing for every variant alike (signing mutates it); the ``no-op`` row, a middleware that
   only awaits the handler, is that fixed cost, and ``net`` subtracts it. Every call signs a URL
   not seen before (``/prod/pets/<n>?limit=10&type=dog``, n counting up), with and without a
   session token, and presigned (ours only: the peer has no query mode). Median µs per call
   over interleaved repeats with the garbage collector off, as in bench_sign.py.
2. **Loopback round trip**: one ``ClientSession`` sends GETs one after another over one
   keep-alive connection to a stdlib server on 127.0.0.1 (a thread of this process) that
   answers 200 without verifying; the middleware is switched request by request in rotating
   order between the no-op and the signers. Median ms per request, and what each adds.
3. **Peak memory hashing a file body** (no network): a ``ClientRequest`` whose ``data`` is an
   open 100 MiB file (16 MiB with ``--quick``) goes through each middleware under
   ``tracemalloc``; the peak above the level at start is reported.
4. **The event loop while credentials load**: 100 concurrent first requests through one
   ``ApiGwIamAuth`` (``ClientSession(middlewares=(auth,))``, to the part 2 server) while the
   container credentials endpoint (``tests/credential_servers.py``) takes 1 s to answer, with
   botocore's default chain and with a plain blocking function as the credentials source. A
   ticker task asks to wake every 5 ms; the longest it was woken late is the longest the loop
   was held (goal: under 50 ms, issue 11), beside the number of credential loads (goal: one).

Each signer's output is checked once against ``tests/aws_server.py`` (botocore recomputes the
signature from what arrived over a real socket): the ``ok`` column.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.server
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import botocore.session
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from aws_server import (
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_ACCESS_KEY,
    SESSION_SECRET_KEY,
    SESSION_TOKEN,
    running_server,
)
from credential_servers import running

from apigw_iam_auth import ApiGwIamAuth, Credentials, _aiohttp
from apigw_iam_auth.credentials import BotocoreProvider, CallableProvider

REGION = "us-east-1"
PATH = "/prod/pets/{n}?limit=10&type=dog"
Middleware = Callable[[aiohttp.ClientRequest, Any], Awaitable[Any]]


def _load_peer(path: str | None) -> Any:
    if path:
        sys.path.insert(0, path)
    try:
        import aiohttp_aws_auth  # noqa: PLC0415 - optional peer
    except ImportError:
        return None
    return aiohttp_aws_auth


def ours(*, token: bool, presign: bool = False) -> Middleware:
    """The adapter as aiohttp calls it, with an ApiGwIamAuth's settings."""
    credentials = (
        (SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
        if token
        else (ACCESS_KEY, SECRET_KEY)
    )
    auth = ApiGwIamAuth(region=REGION, credentials=credentials, presign=presign)

    async def middleware(request: aiohttp.ClientRequest, handler: Any) -> Any:
        return await _aiohttp.middleware(auth._settings, request, handler)  # noqa: SLF001

    return middleware


def peer(module: Any, *, token: bool) -> Middleware:
    if token:
        credentials = module.AwsCredentials(SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
    else:
        credentials = module.AwsCredentials(ACCESS_KEY, SECRET_KEY)
    middleware: Middleware = module.AwsSigV4Auth(credentials, region=REGION)
    return middleware


async def noop(request: aiohttp.ClientRequest, handler: Any) -> Any:
    return await handler(request)


def variants(module: Any) -> dict[str, Middleware]:
    found = {
        "no-op": noop,
        "ours": ours(token=False),
        "ours + token": ours(token=True),
        "ours presigned": ours(token=True, presign=True),
    }
    if module is not None:
        found["aiohttp-aws-auth"] = peer(module, token=False)
        found["aiohttp-aws-auth + token"] = peer(module, token=True)
    return found


# --- 1. one middleware call -------------------------------------------------------------------


class _Answer:
    status = 200


ANSWER = _Answer()


async def _handler(_: aiohttp.ClientRequest) -> _Answer:
    return ANSWER


async def _calls(middleware: Middleware, base: str, counter: Iterator[int], n: int) -> int:
    loop = asyncio.get_running_loop()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            url = URL(base + PATH.format(n=next(counter)))
            request = aiohttp.ClientRequest("GET", url, loop=loop)
            await middleware(request, _handler)
        return time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()


async def per_call(found: dict[str, Middleware], target_s: float, repeats: int) -> dict[str, float]:
    base, counter = "https://abc123.execute-api.us-east-1.amazonaws.com", itertools.count()
    sizes = {}
    for name, middleware in found.items():
        n = 1
        while (elapsed := await _calls(middleware, base, counter, n)) < target_s * 0.8e9:
            n = max(n + 1, min(n * 10, round(n * target_s * 1e9 / max(elapsed, 1))))
        sizes[name] = n
    samples: dict[str, list[float]] = {name: [] for name in found}
    for _ in range(repeats):
        for name, middleware in found.items():
            samples[name].append(await _calls(middleware, base, counter, sizes[name]) / sizes[name])
    return {name: statistics.median(values) for name, values in samples.items()}


# --- 2. loopback round trip -------------------------------------------------------------------


class _OkHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ARG002 - stdlib signature
        return


@contextmanager
def ok_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OkHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def round_trips(found: dict[str, Middleware], rounds: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in found}
    counter = itertools.count()
    names = list(found)
    with ok_server() as base:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            for round_ in range(rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    url = base + PATH.format(n=next(counter))
                    start = time.perf_counter_ns()
                    async with session.get(url, middlewares=(found[name],)) as response:
                        await response.read()
                    samples[name].append(time.perf_counter_ns() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


# --- 3. peak memory with a file body ----------------------------------------------------------


async def peak_memory(found: dict[str, Middleware], size: int) -> dict[str, int]:
    peaks = {}
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "body.bin"
        with path.open("wb") as out:
            chunk = os.urandom(1024 * 1024)
            for _ in range(size // len(chunk)):
                out.write(chunk)
        for name, middleware in found.items():
            with path.open("rb") as body:
                url = URL("https://abc123.execute-api.us-east-1.amazonaws.com/prod/upload")
                request = aiohttp.ClientRequest("PUT", url, data=body, loop=loop)
                await middleware(request, _handler)  # warm: imports, caches, the thread pool
            with path.open("rb") as body:
                request = aiohttp.ClientRequest("PUT", url, data=body, loop=loop)
                gc.collect()
                tracemalloc.start()
                start = tracemalloc.get_traced_memory()[0]
                await middleware(request, _handler)
                peaks[name] = tracemalloc.get_traced_memory()[1] - start
                tracemalloc.stop()
                del request
    return peaks


# --- 4. the event loop while credentials load -------------------------------------------------

TICK = 0.005  # seconds between the ticker's wake-ups
SLOW_ENDPOINT = 1.0  # seconds the credential endpoint takes to answer
MAX_STALL = 0.05  # issue 11's bound on how long the loop may go without running


@contextmanager
def _only_the_container_endpoint(url: str | None) -> Iterator[None]:
    """botocore's default chain finds ``url`` (None: nothing); the environment is restored."""
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as home:
        for name in [name for name in os.environ if name.startswith(("AWS_", "BOTO_"))]:
            del os.environ[name]
        os.environ.update(
            AWS_CONFIG_FILE=str(Path(home) / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(Path(home) / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        if url is not None:
            os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = url
        try:
            yield
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _blocking_fetch(url: str) -> Callable[[], Credentials]:
    """A plain function that fetches credentials with blocking I/O, as users write them."""

    def fetch() -> Credentials:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        return Credentials(body["AccessKeyId"], body["SecretAccessKey"], body["Token"])

    return fetch


async def loop_stalls(source: str, callers: int = 100) -> tuple[float, int, int]:
    """While a 1 s credential endpoint serves ``callers`` concurrent first requests: the
    longest the loop went without waking a ticker (beyond its TICK), the loads made, and the
    requests answered 200.
    """
    with _only_the_container_endpoint(None):
        botocore.session.Session().get_credentials()  # botocore's one-time imports, not timed
    with (
        running(delay=SLOW_ENDPOINT) as endpoint,
        ok_server() as base,
        _only_the_container_endpoint(endpoint.container_url),
    ):
        credentials = (
            BotocoreProvider()
            if source == "botocore container provider"
            else CallableProvider(_blocking_fetch(endpoint.container_url))
        )
        auth = ApiGwIamAuth(region=REGION, credentials=credentials)
        loop = asyncio.get_running_loop()
        stalls: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(TICK)
                now = loop.time()
                stalls.append(now - last - TICK)
                last = now

        async def call(session: aiohttp.ClientSession, n: int) -> int:
            async with session.get(base + PATH.format(n=n)) as response:
                await response.read()
                return response.status

        ticking = asyncio.create_task(ticker())
        connector = aiohttp.TCPConnector(limit=16)
        async with aiohttp.ClientSession(middlewares=(auth,), connector=connector) as session:
            statuses = await asyncio.gather(*(call(session, n) for n in range(callers)))
        done.set()
        await ticking
    return max(stalls), endpoint.calls["container"], statuses.count(200)


# --- correctness ------------------------------------------------------------------------------


async def verified(found: dict[str, Middleware]) -> dict[str, bool]:
    results = {}
    with running_server(region=REGION) as server:
        async with aiohttp.ClientSession() as session:
            for name, middleware in found.items():
                url = server.url(PATH.format(n=7))
                async with session.get(url, middlewares=(middleware,)) as response:
                    await response.read()
                    results[name] = response.status == 200
    return results


# --- report -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    target_s: float
    repeats: int
    rounds: int
    file_size: int


async def run(settings: Settings, module: Any) -> None:
    found = variants(module)
    print(f"aiohttp {aiohttp.__version__}, Python {sys.version.split()[0]}")
    if module is None:
        print("aiohttp-aws-auth: not installed, peer rows left out (see --peer-path)")
    ok = await verified(found)
    print("\n1. one middleware call, a new URL each call (µs, median)")
    times = await per_call(found, settings.target_s, settings.repeats)
    base = times["no-op"]
    print(f"{'':28} {'median':>8} {'net':>8} {'ok':>4}")
    for name, value in times.items():
        net = value - base
        mark = "-" if name == "no-op" else ("yes" if ok[name] else "NO")
        print(f"{name:28} {value / 1000:8.2f} {net / 1000:8.2f} {mark:>4}")
    _ratio(times, base, "ours", "aiohttp-aws-auth")
    _ratio(times, base, "ours + token", "aiohttp-aws-auth + token")

    print("\n2. loopback round trip, one keep-alive connection (ms per request, median)")
    trips = await round_trips(found, settings.rounds)
    for name, value in trips.items():
        added = value - trips["no-op"]
        print(f"{name:28} {value / 1e6:8.3f}  +{added / 1000:7.1f} µs")

    print(f"\n3. peak memory hashing a {settings.file_size >> 20} MiB file body (MiB above start)")
    peaks = await peak_memory(found, settings.file_size)
    for name, value in peaks.items():
        print(f"{name:28} {value / 2**20:8.2f}")

    print(
        f"\n4. the event loop while a {SLOW_ENDPOINT:.0f} s credential endpoint serves 100 "
        f"concurrent first requests (ours; goal: no stall over {MAX_STALL * 1000:.0f} ms, one load)"
    )
    for source in ("botocore container provider", "a blocking credentials function"):
        stall, loads, answered = await loop_stalls(source)
        verdict = "PASS" if stall <= MAX_STALL and loads == 1 and answered == 100 else "MISS"
        print(
            f"{source:34} longest stall {stall * 1000:6.1f} ms, {loads} load(s), "
            f"{answered}/100 answered  {verdict}"
        )


def _ratio(times: dict[str, float], base: float, mine: str, theirs: str) -> None:
    if theirs in times:
        print(f"  {theirs} / {mine} (net): {(times[theirs] - base) / (times[mine] - base):.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run, smaller file")
    parser.add_argument("--peer-path", default=os.environ.get("AIOHTTP_AWS_AUTH_PATH"))
    args = parser.parse_args(argv)
    if args.quick:
        settings = Settings(target_s=0.05, repeats=3, rounds=100, file_size=16 << 20)
    else:
        settings = Settings(target_s=0.15, repeats=7, rounds=1000, file_size=100 << 20)
    asyncio.run(run(settings, _load_peer(args.peer_path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
