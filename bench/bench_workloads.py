"""Benchmark: the workloads of "One lean signing path", ours and every installed peer, one run.

Run ``python bench/bench_workloads.py`` (about 16 minutes on 2 busy cores; ``--quick`` for a
rough pass in about a minute, ``--token`` to sign with a session token, ``--profile`` for a
cProfile of our W2 requests path, ``--profile "W3:httpx sync"`` for another row). Needs the
``bench`` extra (httpx2, aiohttp and their peers httpx2-aws-auth and aiohttp-aws-auth among
it). It is a report, not a test: it always exits 0. Everything runs in this one process (the
memory part also starts a child, see ``bench_adapters.py`` part 3).

Workloads (host ``abc123.execute-api.ap-northeast-1.amazonaws.com``, stage ``/prod``):

* **W1** the same GET repeated (``/prod/items/99999999``);
* **W2** a GET of a new path each call (``/prod/items/{n}``);
* **W3** a GET with a new query value each call (``/prod/items?id={n}&q=a%20b``);
* **W4** a POST of a JSON body of about 1 KiB (``Content-Type: application/json``; 1,000 to
  1,049 bytes, naming the item, so its length and Content-Length change from call to call) to
  a new path each call (``/prod/items/{n}``);
* **W5** presigning a new URL each call (``/prod/items/{n}``).

``n`` comes from one counter for the whole run (8 digits throughout), so every call of W2-W5
-- across implementations, repeats and the verification passes -- signs a URL never signed
before: no cache keyed by URL can help anyone. W1 gives every call a fresh request for the one
URL. Credentials are static (``AKIDEXAMPLE``), without a session token unless ``--token`` (a
1,000-character token, as STS hands out). The clock is each implementation's own (real time).

What is timed: **the cost the auth adds to a request**, i.e. the median time per call of
signing minus the median time per call of the same loop without signing, in µs. That
includes what the auth leaves for the client to do when it sends the request and reads the
response (response hooks, httpcore's trace events, the flow's answer to a response), so
those steps are run in every timed call, for every implementation and the baseline alike.
Requests are built *outside* the timing -- a list of N distinct requests per implementation
and repeat, built just before its timed loop -- because building a new URL costs the client
far more than signing it and would drown the difference. The timed loop runs over that list:

* **requests**: the requests are what ``requests.Session`` hands to ``auth`` (its default
  headers merged): one ``session.prepare_request(...)`` per workload as a template, then per
  call ``template.copy()`` with the call's URL (the template's own URL form, checked to be what
  ``prepare_request`` makes of it) and a new hooks dict (``copy()`` shares the template's).
  Timed: ``auth(prepared)``, then the request's response hooks on a ready 200 response, as
  ``Session.send`` runs them (``dispatch_hook`` with its send arguments; ours is the redirect
  guard, the peers have none); baseline: ``identity(prepared)`` and the same. Peers:
  aws-requests-auth (``AWSRequestsAuth``), requests-aws4auth (``AWS4Auth``) and botocore: a
  requests auth that builds an ``AWSRequest`` from the prepared request, calls
  ``SigV4Auth.add_auth`` and copies the signing headers back (building the ``AWSRequest`` is
  part of that peer's cost).
* **httpx sync**: ``client.build_request(...)`` of a real ``httpx.Client`` (default headers,
  timeout extension). Timed, as httpx's ``_send_handling_auth`` drives the flow: ``flow =
  auth.sync_auth_flow(request); signed = next(flow)``; then httpcore's trace steps of sending
  ``signed`` on a kept-alive HTTP/1.1 connection (the httpcore request ``HTTPTransport`` makes
  of it, and a ``Trace`` of httpcore's own around each of the five steps that open one:
  ours hangs its redirect guard on the trace extension, which these call); then
  ``flow.send(response)`` with a ready 200 response, and ``flow.close()``. Baseline: the same
  with an auth whose flow only yields the request (httpx's ``NoAuth``: what a client without
  auth runs anyway). Peers: httpx-auth (``AWS4Auth``) and httpx-aws-auth (``AwsSigV4Auth``).
* **httpx async**: the same requests and steps (``async with`` the traces, ``asend``,
  ``aclose``), inside ONE ``asyncio.run`` around the whole timed loop.
  Both httpx peers run through ``httpx.Auth``'s generic async flow, so both take part.
* **httpx2 sync** and **httpx2 async**: the same as httpx, with ``httpx2.Client().build_request``
  and an ``httpx2.Auth`` baseline (httpx2 runs the flows of its own ``Auth`` only). Peer:
  httpx2-aws-auth (``AwsSigV4Auth``, an ``httpx2.Auth`` with ``auth_flow`` only: async through
  ``httpx2.Auth``'s generic flow). httpx-auth and httpx-aws-auth subclass ``httpx.Auth``, which
  httpx2 does not drive. Rows left out where httpx2 cannot be imported (Python 3.10).
* **aiohttp** (3.12+ client middlewares): the requests are the ``ClientRequest`` objects a real
  ``aiohttp.ClientSession`` builds, captured: ``session.request(method, url, headers=...,
  data=body, middlewares=(capture,))`` where ``capture`` raises the request it is handed, so
  nothing connects (aiohttp's clean-up on that exception closes the body payload, a no-op for
  bytes). They carry what the session puts there before any middleware runs: Host, Accept,
  Accept-Encoding, User-Agent, Content-Length, the body as a ``BytesPayload``, the call's
  tracer list. The session, and the timing, run on one event loop of their own, kept for the
  run (a request keeps the loop it was built on). Timed, per request, what a session with one
  middleware runs: ``await build_client_middlewares(handler, (middleware,))(request)``, with
  ``handler`` a stub standing in for the session's connect-and-send: it returns a ready
  object with ``status = 200`` (all either middleware reads of a response), no connection, no
  I/O. Baseline: ``await handler(request)``, what a session without middlewares runs; so the
  net figure is the whole cost of adding the middleware, aiohttp's per-request chain included
  (a fraction of a µs, the same for both). Ours is the ``ApiGwIamAuth`` object itself as the
  middleware (``auth(request, handler)``); peer: aiohttp-aws-auth (``AwsSigV4Auth``).
* **minimal** (a reference row in every client row, without ``--token``): the minimal signer
  below as an auth of that client, through its public API (requests: ``headers.update``; httpx
  and httpx2: an ``Auth`` whose flow updates ``request.headers``; aiohttp: a middleware), so the
  table shows how near its goal the least an auth does comes in each client.
* **SigV4Signer.sign** (W2): ``signer.sign("GET", url)`` over pre-made URL strings, against a
  minimal stdlib signer written here (``MinimalSigner``: host and x-amz-date only, path and
  query as written, signing key cached per day, clock read per call) and, for reference,
  botocore ``SigV4Auth.add_auth`` on pre-built ``AWSRequest`` objects. With no caller headers
  our full header set is host and x-amz-date too; the row "ours + requests' headers" passes
  the four headers a ``requests.Session`` adds (``accept`` among them is signed). The
  minimal signer is the issue's mark, not a floor: the row "minimal + our shortcuts"
  (``ShortcutMinimalSigner``) takes the three shortcuts ours does (the date, the key's HMAC
  pads once a day, the empty body's hash) and shows how far below it the least work goes.
  Baseline: identity.
* **presign** (W5): ``SigV4Signer.presign("GET", url)``; botocore ``SigV4QueryAuth.add_auth``
  on pre-built ``AWSRequest`` objects (their construction is NOT timed, which favours
  botocore); ``presign_url(url, region=...)`` with the default credential chain (this process
  sets ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_EC2_METADATA_DISABLED=true`` and
  points the config and credentials files at ``os.devnull``, so the chain resolves from env);
  and ``presign_url`` with a ``(key, secret)`` tuple. Baseline: identity.

Harness: a repeat is N calls of each implementation (``--calls``, 20,000; ``--quick`` 2,000),
made as chunks of 1,000 (``--chunk``): chunk after chunk, every implementation of the row in
turn, the order rotating, so load from other processes (which comes and goes within a second
on a shared machine) hits all alike. Each chunk's requests are built just before it runs; the
garbage collector is collected, then disabled while the chunk is timed. The time per call of
a repeat is the sum of its chunks over N; the figure reported is the median over the repeats
(``--repeats``, 5; ``--quick`` 3), with min-max in the detail lines. An implementation whose
repeat would take longer than ``--budget`` seconds (3; ``--quick`` 1) gets fewer calls per
repeat, that many seconds' worth, never below 100 (none of today's does, at 20,000 calls).
Ratios are peer ÷ ours on the net figures; "best peer" is the fastest peer whose output
verified. Goals (the table's last column, and a PASS/MISS line each): requests, httpx sync and
async at least 2x the best peer (3x on W1); httpx2 sync, httpx2 async and aiohttp at least 2x
httpx2-aws-auth and aiohttp-aws-auth on every workload (their issue's target).

Verification: before its timing, every implementation of every row signs 8 requests built the
same way, and each is checked by ``tests/aws_server.py``'s ``verify`` -- botocore's ``SigV4Auth``
steps recomputing the signature from the request as it would go on the wire (target as
sent, the headers listed in ``SignedHeaders``, the body; the query read the way API Gateway
reads it), importing nothing of ours. requests: the prepared URL, headers (plus the Host that
urllib3 adds) and body; httpx and httpx2: ``url.raw_path``, ``headers.raw`` and ``content``;
aiohttp: ``url.raw_path_qs`` (the request line ``ClientRequest.send`` writes), the headers
(plus the ``Content-Type: application/octet-stream`` that ``send`` adds to a POST without
one) and the payload's bytes; presigned URLs: a GET of the URL with its Host. During the
timing, the first and last request of every chunk signed in place (requests, httpx, httpx2,
aiohttp) are verified too, after the chunk. A peer whose output fails is shown as "wrong" and
left out of the ratios. For our implementations the pass before timing also counts calls of
the core's signing step (``_sigv4._hmac_hex``, or ``sign_parts``/``sign`` as the core
evolves): on W1 it shows that every one of the 8 signatures is computed, none reused.

``--with-build`` times the client rows (W1-W4) another way: each call builds its request and
then signs it, against a baseline that builds and runs no auth. The net figure is still the
cost the auth adds, but with the processor's caches as building a request leaves them (as in
a client, where sending and reading a response come between two signatures), not warm from the
previous signature of a chunk. It shrinks every ratio whose client builds expensively: httpx's
``build_request`` leaves every auth, ours, the peers' and the minimal signer's, 5 to 7 µs
slower than it is in a warm chunk, and the same µs added to both sides of a ratio. Verified:
the 8 requests before timing (the timed calls keep nothing to verify).

Memory: part 3 of ``bench_adapters.py`` (a 100 MiB file body through requests and httpx
under ``tracemalloc``, and the ``ru_maxrss`` growth in a child), imported from there.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import cProfile
import gc
import hashlib
import hmac
import importlib
import itertools
import logging
import math
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp_aws_auth
import aws_requests_auth.aws_auth
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import httpx_auth
import httpx_aws_auth
import requests
import requests.hooks
import requests_aws4auth
from aiohttp.client_middlewares import build_client_middlewares
from bench_sign import ACCESS_KEY, JSON_1K, REGION, SECRET_KEY, SERVICE, SESSION_TOKEN

from apigw_iam_auth import ApiGwIamAuth, SigV4Signer, presign_url
from apigw_iam_auth import _sigv4 as core

try:  # in the bench extra: without httpx2 its rows are left out, and the report says so
    import httpx2
    import httpx2_aws_auth
except ImportError:
    httpx2 = None
    httpx2_aws_auth = None

API = "https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod"
HOST = urlsplit(API).netloc
VERIFY_CALLS = 8
MIN_CALLS = 100
# Every call of W2-W5 takes the next n: a URL never signed before in this run (8 digits).
_COUNTER = itertools.count(10_000_000)
REPEATED_N = 99_999_999  # W1's one URL: beyond the counter's reach

Call = Callable[[Any], Any]


@dataclass(frozen=True)
class Workload:
    """One request pattern; ``pattern`` has ``{n}`` where each call's number goes."""

    key: str
    title: str
    method: str
    pattern: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    repeated: bool = False

    def urls(self, count: int) -> list[str]:
        """``count`` URLs: the one URL (W1) or each with a number not used before."""
        if self.repeated:
            return [self.pattern.format(n=REPEATED_N)] * count
        return [self.pattern.format(n=n) for n in itertools.islice(_COUNTER, count)]

    def body_of(self, url: str) -> bytes | None:
        """The body sent to ``url`` (W4's): JSON naming the item, 1,000 to 1,049 bytes.

        Its length, and so its Content-Length, changes from call to call as real bodies' do:
        a client's headers are not the same twice in a row.
        """
        if self.body is None:
            return None
        n = int(url.rsplit("/", 1)[1])
        return b'{"id":%d,"notes":"%s"}' % (n, b"x" * (1023 - n % 50))


JSON = (("Content-Type", "application/json"),)
W1 = Workload("W1", "same GET repeated", "GET", API + "/items/{n}", repeated=True)
W2 = Workload("W2", "GET, new path each call", "GET", API + "/items/{n}")
W3 = Workload("W3", "GET, new query value each call", "GET", API + "/items?id={n}&q=a%20b")
W4 = Workload(
    "W4", "POST 1 KiB JSON, new path each call", "POST", API + "/items/{n}", JSON_1K, JSON
)
W5 = Workload("W5", "presign a new URL each call", "GET", API + "/items/{n}")
CLIENT_WORKLOADS = (W1, W2, W3, W4)
CLIENTS = ("requests", "httpx sync", "httpx async", "httpx2 sync", "httpx2 async", "aiohttp")


# --- what goes on the wire, for the verifier -----------------------------------------------------


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _with_host(headers: list[tuple[str, str]], url: str) -> tuple[tuple[str, str], ...]:
    """The headers plus the Host the HTTP client adds when none is set (urllib3 does)."""
    if not any(name.lower() == "host" for name, _ in headers):
        headers = [("Host", urlsplit(url).netloc), *headers]
    return tuple(headers)


def wire_requests(prepared: requests.PreparedRequest, _result: object) -> Any:
    url = prepared.url or ""
    headers = [(_text(k), _text(v)) for k, v in prepared.headers.items()]
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    return prepared.method or "", _target(url), _with_host(headers, url), body


def wire_httpx(request: httpx.Request, _result: object) -> Any:
    headers = tuple((_text(k), _text(v)) for k, v in request.headers.raw)
    return request.method, request.url.raw_path.decode("ascii"), headers, request.content


def wire_aiohttp(request: aiohttp.ClientRequest, _result: object) -> Any:
    """The request line aiohttp writes (``url.raw_path_qs``), its headers and body bytes.

    Plus the ``Content-Type: application/octet-stream`` that ``ClientRequest.send`` adds to a
    POST/PUT/PATCH without one, after the middlewares (unsigned: shown to the verifier anyway).
    """
    headers = [(str(k), v) for k, v in request.headers.items()]
    if request.method in request.POST_METHODS and "Content-Type" not in request.headers:
        headers.append(("Content-Type", "application/octet-stream"))
    body = request.body
    data = b"" if isinstance(body, bytes) else body.decode("latin-1").encode("latin-1")
    return request.method, request.url.raw_path_qs, tuple(headers), data


def wire_signed(_url: str, signed: Any) -> Any:
    headers = [(k, v) for k, v in signed.headers.items()]
    return signed.method, _target(signed.url), _with_host(headers, signed.url), signed.body or b""


def wire_presigned(_url: str, presigned: str) -> Any:
    return "GET", _target(presigned), _with_host([], presigned), b""


def wire_botocore(request: botocore.awsrequest.AWSRequest, _result: object) -> Any:
    headers = [(k, _text(v)) for k, v in request.headers.items()]
    body = request.data or b""
    body = body.encode() if isinstance(body, str) else body
    return request.method, _target(request.url), _with_host(headers, request.url), body


# --- implementations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """One implementation in one row: how to build its inputs, the call timed, how to verify.

    ``kind`` is "ours", "peer", "reference" (the minimal signer), "baseline" or "info" (our
    other public entry points, compared with ours in a target but not a peer).
    """

    name: str
    kind: str
    build: Callable[[list[str]], list[Any]]
    call: Call
    wire: Callable[[Any, Any], Any] | None
    is_async: bool = False
    # The loop an async call runs on (aiohttp: the loop its requests were built on); None: a
    # new one per chunk (``asyncio.run``).
    loop: asyncio.AbstractEventLoop | None = None

    @property
    def in_place(self) -> bool:
        """Signs the request it is given (requests, httpx/httpx2, aiohttp): verifiable after."""
        return self.wire in {wire_requests, wire_httpx, wire_aiohttp}

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` to its end on this implementation's loop."""
        if self.loop is not None:
            return self.loop.run_until_complete(coroutine)
        return asyncio.run(coroutine)


@dataclass
class Settings:
    """What the run was asked for."""

    calls: int
    repeats: int
    budget_s: float
    token: str | None
    chunk: int
    verifier: Any
    with_build: bool = False  # each call builds its request too (``--with-build``)

    @property
    def creds(self) -> tuple[str, ...]:
        return (
            (ACCESS_KEY, SECRET_KEY) if self.token is None else (ACCESS_KEY, SECRET_KEY, self.token)
        )


def _identity(item: Any) -> Any:
    return item


class _NoAuth(httpx.Auth):
    """The httpx baseline: the flow a client without auth runs (httpx's own NoAuth)."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        yield request


# What httpcore does with a request's ``trace`` extension while sending it on a kept-alive
# HTTP/1.1 connection: a Trace around each step, each calling the extension when it starts and
# ends (httpcore/_sync/http11.py; the body and close steps read it from the same request).
_TRACED_STEPS = ("send_request_headers", "send_request_body", "receive_response_headers")
_TRACED_BODY_STEPS = ("receive_response_body", "response_closed")


def _hop_of(core: Any, request: Any) -> Any:
    """The httpcore request ``HTTPTransport.handle_request`` makes of ``request``."""
    url = request.url
    return core.Request(
        method=request.method,
        url=core.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        extensions=request.extensions,
    )


def _send_steps(package: Any) -> tuple[Callable[[Any], None], Callable[[Any], Any], Any]:
    """The send-time work of ``package`` that depends on the auth, sync and async; a response.

    The trace events of one request (``_TRACED_STEPS``) run through the package's own httpcore
    ``Trace``: ours hangs its redirect guard there, the others add nothing, and the baseline
    pays the rest. The response (a ready 200, read by no flow but its status and history) is
    what the flow is then sent, as httpx's ``_send_handling_auth`` does.
    """
    core = importlib.import_module(_CORE_OF[package.__name__])
    trace_type = importlib.import_module(f"{core.__name__}._trace").Trace
    logger = logging.getLogger(f"{core.__name__}.http11")

    def replay(request: Any) -> None:
        hop = _hop_of(core, request)
        kwargs = {"request": hop}
        for name in _TRACED_STEPS:
            with trace_type(name, logger, hop, kwargs):
                pass
        for name in _TRACED_BODY_STEPS:
            with trace_type(name, logger, hop):
                pass

    async def replay_async(request: Any) -> None:
        hop = _hop_of(core, request)
        kwargs = {"request": hop}
        for name in _TRACED_STEPS:
            async with trace_type(name, logger, hop, kwargs):
                pass
        for name in _TRACED_BODY_STEPS:
            async with trace_type(name, logger, hop):
                pass

    response = package.Response(200, request=package.Request("GET", "https://" + HOST + "/"))
    return replay, replay_async, response


_CORE_OF = {"httpx": "httpcore", "httpx2": "httpcore2"}


def _sync_step(auth: httpx.Auth, package: Any = httpx) -> Call:
    flow_of = auth.sync_auth_flow
    replay, _, response = _send_steps(package)

    def step(request: httpx.Request) -> httpx.Request:
        flow = flow_of(request)
        signed = next(flow)
        replay(signed)
        with suppress(StopIteration):
            flow.send(response)
        flow.close()
        return signed

    return step


def _async_step(auth: httpx.Auth, package: Any = httpx) -> Call:
    flow_of = auth.async_auth_flow
    _, replay, response = _send_steps(package)

    async def step(request: httpx.Request) -> httpx.Request:
        flow = flow_of(request)
        signed = await flow.__anext__()
        await replay(signed)
        with suppress(StopAsyncIteration):
            await flow.asend(response)
        await flow.aclose()
        return signed

    return step


# What requests.Session.send passes on to the response hooks (its adapter's send arguments).
_SEND_KWARGS = {"stream": False, "timeout": None, "verify": True, "cert": None, "proxies": {}}


def _requests_step(auth: Call) -> Call:
    """``auth(prepared)``, then the response hooks ``Session.send`` runs on a 200 response."""
    response = requests.Response()
    response.status_code = 200
    dispatch = requests.hooks.dispatch_hook

    def step(prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        signed = auth(prepared)
        response.request = signed
        dispatch("response", signed.hooks, response, **_SEND_KWARGS)
        return signed

    return step


class BotocoreRequestsAuth:
    """A requests auth on botocore: AWSRequest from the prepared request, add_auth, copy back."""

    def __init__(self, token: str | None) -> None:
        creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, token)
        self._auth = botocore.auth.SigV4Auth(creds, SERVICE, REGION)

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        request = botocore.awsrequest.AWSRequest(
            method=prepared.method,
            url=prepared.url,
            headers=dict(prepared.headers),
            data=prepared.body,
        )
        self._auth.add_auth(request)
        headers = prepared.headers
        for name in ("X-Amz-Date", "X-Amz-Security-Token", "Authorization"):
            if name in request.headers:
                headers[name] = request.headers[name]
        return prepared


def _plain_parts(url: str) -> tuple[str, str, str]:
    """Host, path (without its leading ``/``) and query pieces sorted as written: all W2 needs."""
    _, _, rest = url.partition("://")
    host, _, rest = rest.partition("/")
    path, _, query = rest.partition("?")
    return host, path, "&".join(sorted(query.split("&"))) if query else ""


class MinimalSigner:
    """The least a SigV4 header signer does: host and x-amz-date, path and query as written.

    No path normalisation or encoding, the query pieces sorted as written, the signing key
    cached per day, the clock read once per call. Correct for the plain URLs of W2.
    """

    def __init__(self, access_key: str, secret_key: str, region: str, service: str) -> None:
        self._access_key = access_key
        self._secret = ("AWS4" + secret_key).encode()
        self._tail = f"/{region}/{service}/aws4_request"
        self._keys: dict[str, bytes] = {}

    def _key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = hmac.digest(self._secret, day.encode(), "sha256")
            for part in self._tail[1:].split("/"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._keys = {day: key}
        return key

    def sign(self, method: str, url: str, body: bytes = b"") -> dict[str, str]:
        host, path, query = _plain_parts(url)
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = amz_date[:8]
        canonical = (
            f"{method}\n/{path}\n{query}\nhost:{host}\nx-amz-date:{amz_date}\n\n"
            f"host;x-amz-date\n{hashlib.sha256(body).hexdigest()}"
        )
        scope = day + self._tail
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.digest(self._key(day), to_sign.encode(), "sha256").hex()
        return {
            "Host": host,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
                f"SignedHeaders=host;x-amz-date, Signature={signature}"
            ),
        }


class ShortcutMinimalSigner(MinimalSigner):
    """:class:`MinimalSigner` with the three shortcuts ours takes: a floor, not the issue's mark.

    X-Amz-Date written from ``time.time()`` with the day's date kept, the HMAC key's pads
    absorbed once per day (each signature resumes two SHA-256 states), the empty body's hash a
    constant. Same output as :class:`MinimalSigner`.
    """

    _EMPTY = hashlib.sha256(b"").hexdigest()

    def __init__(self, access_key: str, secret_key: str, region: str, service: str) -> None:
        super().__init__(access_key, secret_key, region, service)
        self._day = -1
        self._date = ""
        self._pads: tuple[Any, Any] = (None, None)

    def sign(self, method: str, url: str, body: bytes = b"") -> dict[str, str]:
        host, path, query = _plain_parts(url)
        day, seconds = divmod(int(time.time()), 86400)
        if day != self._day:
            self._date = time.strftime("%Y%m%d", time.gmtime(day * 86400))
            key = self._key(self._date).ljust(64, b"\x00")
            self._pads = (
                hashlib.sha256(bytes(b ^ 0x36 for b in key)),
                hashlib.sha256(bytes(b ^ 0x5C for b in key)),
            )
            self._day = day
        hours, rest_of_hour = divmod(seconds, 3600)
        amz_date = f"{self._date}T{hours:02d}{rest_of_hour // 60:02d}{rest_of_hour % 60:02d}Z"
        body_hash = hashlib.sha256(body).hexdigest() if body else self._EMPTY
        canonical = (
            f"{method}\n/{path}\n{query}\nhost:{host}\nx-amz-date:{amz_date}\n\n"
            f"host;x-amz-date\n{body_hash}"
        )
        scope = self._date + self._tail
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        inner, outer = self._pads[0].copy(), self._pads[1].copy()
        inner.update(to_sign.encode())
        outer.update(inner.digest())
        return {
            "Host": host,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
                f"SignedHeaders=host;x-amz-date, Signature={outer.hexdigest()}"
            ),
        }


def _wire_minimal(url: str, headers: dict[str, str]) -> Any:
    return "GET", _target(url), tuple(headers.items()), b""


# The minimal signer inside each client: what the least a SigV4 auth can do costs there (read
# the URL, method and body, sign, set the headers), so a client row shows how near its goal
# any auth could come. A reference, not a peer: it signs host and x-amz-date only.


def _minimal() -> MinimalSigner:
    return MinimalSigner(ACCESS_KEY, SECRET_KEY, REGION, SERVICE)


class MinimalRequestsAuth:
    """The minimal signer as a requests auth."""

    def __init__(self) -> None:
        self._sign = _minimal().sign

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body or b""
        body = body.encode() if isinstance(body, str) else body
        prepared.headers.update(self._sign(prepared.method or "", prepared.url or "", body))
        return prepared


def _minimal_auth_flow(sign: Callable[..., dict[str, str]], request: Any) -> Iterator[Any]:
    request.headers.update(sign(request.method, str(request.url), request.content))
    yield request


class MinimalHttpxAuth(httpx.Auth):
    """The minimal signer as an httpx auth (async through ``httpx.Auth``'s generic flow)."""

    def __init__(self) -> None:
        self._sign = _minimal().sign

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        return _minimal_auth_flow(self._sign, request)


def _minimal_middleware() -> Callable[[Any, Any], Any]:
    """The minimal signer as an aiohttp middleware (bytes bodies: ``BytesPayload._value``)."""
    sign = _minimal().sign

    async def middleware(request: aiohttp.ClientRequest, handler: Any) -> Any:
        body = request.body
        data = body if isinstance(body, bytes) else body._value  # noqa: SLF001
        request.headers.update(sign(request.method, str(request.url), data))
        return await handler(request)

    return middleware


# --- builders: the requests each call gets, made outside the timing --------------------------

_SESSION = requests.Session()
_HTTPX_CLIENT = httpx.Client()


def _requests_builder(workload: Workload) -> Callable[[list[str]], list[Any]]:
    first = workload.pattern.format(n=REPEATED_N)
    request = requests.Request(workload.method, first, headers=dict(workload.headers))
    request.data = workload.body or []
    template = _SESSION.prepare_request(request)
    if template.url != first:
        raise RuntimeError(f"requests prepares {first} as {template.url}; fix the pattern")
    hooks = requests.hooks.default_hooks

    def build(urls: list[str]) -> list[Any]:
        items = []
        for url in urls:
            prepared = template.copy()
            prepared.url = url
            prepared.hooks = hooks()
            body = workload.body_of(url)
            if body is not None:
                prepared.body = body
                prepared.headers["Content-Length"] = str(len(body))
            items.append(prepared)
        return items

    return build


def _httpx_builder(
    workload: Workload, client: Any = _HTTPX_CLIENT
) -> Callable[[list[str]], list[Any]]:
    """``client.build_request`` of an ``httpx.Client`` (or an ``httpx2.Client``)."""
    method, headers, body_of = workload.method, dict(workload.headers), workload.body_of
    build_request = client.build_request
    return lambda urls: [
        build_request(method, u, headers=headers, content=body_of(u)) for u in urls
    ]


def _list(urls: list[str]) -> list[Any]:
    return urls


def _aws_requests(method: str) -> Callable[[list[str]], list[Any]]:
    request_type = botocore.awsrequest.AWSRequest
    return lambda urls: [request_type(method=method, url=u) for u in urls]


def _requests_impls(workload: Workload, settings: Settings) -> list[Impl]:
    build, token = _requests_builder(workload), settings.token
    ours = ApiGwIamAuth(region=REGION, credentials=settings.creds)
    peers: dict[str, Call] = {
        "aws-requests-auth": aws_requests_auth.aws_auth.AWSRequestsAuth(
            aws_access_key=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_host=HOST,
            aws_region=REGION,
            aws_service=SERVICE,
            aws_token=token,
        ),
        "requests-aws4auth": requests_aws4auth.AWS4Auth(
            ACCESS_KEY, SECRET_KEY, REGION, SERVICE, session_token=token
        ),
        "botocore": BotocoreRequestsAuth(token),
    }
    return [
        Impl("baseline", "baseline", build, _requests_step(_identity), None),
        Impl("ours", "ours", build, _requests_step(ours), wire_requests),
        *(
            Impl(name, "peer", build, _requests_step(auth), wire_requests)
            for name, auth in peers.items()
        ),
        *_references(settings, build, _requests_step(MinimalRequestsAuth()), wire_requests),
    ]


def _references(settings: Settings, build: Any, call: Call, wire: Any, **how: Any) -> list[Impl]:
    """The minimal signer's row in a client, where it can sign (no session token)."""
    if settings.token is not None:
        return []
    return [Impl("minimal", "reference", build, call, wire, **how)]


def _httpx_impls(workload: Workload, settings: Settings, *, is_async: bool) -> list[Impl]:
    build, token = _httpx_builder(workload), settings.token
    step = _async_step if is_async else _sync_step
    peers: dict[str, httpx.Auth] = {
        "httpx-auth": httpx_auth.AWS4Auth(
            ACCESS_KEY, SECRET_KEY, REGION, SERVICE, security_token=token
        ),
        "httpx-aws-auth": httpx_aws_auth.AwsSigV4Auth(
            httpx_aws_auth.AwsCredentials(ACCESS_KEY, SECRET_KEY, token),
            region=REGION,
            service=SERVICE,
        ),
    }
    ours = ApiGwIamAuth(region=REGION, credentials=settings.creds)
    return [
        Impl("baseline", "baseline", build, step(_NoAuth()), None, is_async),
        Impl("ours", "ours", build, step(ours), wire_httpx, is_async),
        *(Impl(n, "peer", build, step(a), wire_httpx, is_async) for n, a in peers.items()),
        *_references(settings, build, step(MinimalHttpxAuth()), wire_httpx, is_async=is_async),
    ]


# --- httpx2 and aiohttp ----------------------------------------------------------------------

_HTTPX2_CLIENT = None if httpx2 is None else httpx2.Client()


def _httpx2_no_auth() -> Any:
    """The httpx2 baseline: httpx2 runs an auth's flows only if it is an ``httpx2.Auth``."""

    class NoAuth2(httpx2.Auth):
        def auth_flow(self, request: Any) -> Iterator[Any]:
            yield request

    return NoAuth2()


def _httpx2_impls(workload: Workload, settings: Settings, *, is_async: bool) -> list[Impl]:
    build = _httpx_builder(workload, _HTTPX2_CLIENT)
    step = partial(_async_step if is_async else _sync_step, package=httpx2)
    peer = httpx2_aws_auth.AwsSigV4Auth(
        httpx2_aws_auth.AwsCredentials(ACCESS_KEY, SECRET_KEY, settings.token),
        region=REGION,
        service=SERVICE,
    )
    ours = ApiGwIamAuth(region=REGION, credentials=settings.creds)
    return [
        Impl("baseline", "baseline", build, step(_httpx2_no_auth()), None, is_async),
        Impl("ours", "ours", build, step(ours), wire_httpx, is_async),
        Impl("httpx2-aws-auth", "peer", build, step(peer), wire_httpx, is_async),
        *_references(settings, build, step(_minimal_httpx2_auth()), wire_httpx, is_async=is_async),
    ]


def _minimal_httpx2_auth() -> Any:
    """The minimal signer as an ``httpx2.Auth`` (httpx2 runs the flows of its own Auth only)."""
    sign = _minimal().sign

    class MinimalHttpx2Auth(httpx2.Auth):
        def auth_flow(self, request: Any) -> Iterator[Any]:
            return _minimal_auth_flow(sign, request)

    return MinimalHttpx2Auth()


class _Captured(Exception):  # noqa: N818 - not an error: how the capturing middleware returns
    """Raised by the capturing middleware, with the request the session built."""

    def __init__(self, request: aiohttp.ClientRequest) -> None:
        super().__init__()
        self.request = request


async def _capture(request: aiohttp.ClientRequest, _handler: Any) -> Any:
    raise _Captured(request)


class AiohttpSession:
    """One ``aiohttp.ClientSession`` on an event loop of its own, kept for the whole run.

    It builds the aiohttp rows' requests: ``session.request(...)`` with a middleware that
    raises the ``ClientRequest`` it is handed, before any connection is made. Their calls are
    then timed on the same loop (a request keeps the loop it was built on).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession = self.loop.run_until_complete(self._open())

    @staticmethod
    async def _open() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def builder(self, workload: Workload) -> Callable[[list[str]], list[Any]]:
        method, headers, body_of = workload.method, dict(workload.headers), workload.body_of
        request, capture = self._session.request, (_capture,)

        async def built(url: str) -> aiohttp.ClientRequest:
            try:
                data = body_of(url)
                await request(method, url, headers=headers, data=data, middlewares=capture)
            except _Captured as captured:
                return captured.request
            raise RuntimeError("the aiohttp session sent a request past the capture")

        async def build(urls: list[str]) -> list[Any]:
            return [await built(url) for url in urls]

        def build_on_loop(urls: list[str]) -> list[Any]:
            return self.loop.run_until_complete(build(urls))

        build_on_loop.one_async = built  # type: ignore[attr-defined] - for --with-build
        return build_on_loop

    def close(self) -> None:
        self.loop.run_until_complete(self._session.close())
        self.loop.close()


_AIOHTTP: list[AiohttpSession] = []  # made when the first aiohttp row is, closed at exit


def _aiohttp_session() -> AiohttpSession:
    if not _AIOHTTP:
        _AIOHTTP.append(AiohttpSession())
        atexit.register(_AIOHTTP[0].close)
    return _AIOHTTP[0]


class _Answer:
    """What the stub handler returns in place of a response: all a middleware reads of it."""

    status = 200


_ANSWER = _Answer()


async def _stub_handler(_request: aiohttp.ClientRequest) -> Any:
    """The session's connect-and-send handler, replaced: no connection, no I/O."""
    return _ANSWER


def _middleware_step(middleware: Callable[[Any, Any], Any]) -> Call:
    """What a session with one middleware runs per request: the chain built, then awaited."""
    middlewares = (middleware,)

    def step(request: aiohttp.ClientRequest) -> Any:
        return build_client_middlewares(_stub_handler, middlewares)(request)

    return step


def _aiohttp_impls(workload: Workload, settings: Settings) -> list[Impl]:
    session = _aiohttp_session()
    build, loop = session.builder(workload), session.loop
    ours = ApiGwIamAuth(region=REGION, credentials=settings.creds)
    peer = aiohttp_aws_auth.AwsSigV4Auth(
        aiohttp_aws_auth.AwsCredentials(ACCESS_KEY, SECRET_KEY, settings.token),
        region=REGION,
        service=SERVICE,
    )
    calls: dict[str, tuple[str, Call, Any]] = {
        "baseline": ("baseline", _stub_handler, None),
        "ours": ("ours", _middleware_step(ours), wire_aiohttp),
        "aiohttp-aws-auth": ("peer", _middleware_step(peer), wire_aiohttp),
    }
    minimal = _middleware_step(_minimal_middleware())
    return [
        *(
            Impl(name, kind, build, call, wire, is_async=True, loop=loop)
            for name, (kind, call, wire) in calls.items()
        ),
        *_references(settings, build, minimal, wire_aiohttp, is_async=True, loop=loop),
    ]


def _sign_impls(settings: Settings) -> list[Impl]:
    signer = SigV4Signer(credentials=settings.creds, region=REGION)
    sign = signer.sign
    minimal = MinimalSigner(ACCESS_KEY, SECRET_KEY, REGION, SERVICE).sign
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, settings.token)
    header_auth = botocore.auth.SigV4Auth(creds, SERVICE, REGION)
    client_headers = dict(_SESSION.headers)  # what requests adds: user-agent, accept, ...
    impls = [
        Impl("baseline", "baseline", _list, _identity, None),
        Impl("ours", "ours", _list, lambda url: sign("GET", url), wire_signed),
        Impl(
            "ours + requests' headers",
            "info",
            _list,
            lambda url: sign("GET", url, headers=client_headers),
            wire_signed,
        ),
        Impl("botocore", "peer", _aws_requests("GET"), header_auth.add_auth, wire_botocore),
    ]
    if settings.token is None:  # the minimal signer signs host and x-amz-date only
        floor = ShortcutMinimalSigner(ACCESS_KEY, SECRET_KEY, REGION, SERVICE).sign
        impls += [
            Impl("minimal", "reference", _list, lambda url: minimal("GET", url), _wire_minimal),
            Impl(
                "minimal + our shortcuts",
                "info",
                _list,
                lambda url: floor("GET", url),
                _wire_minimal,
            ),
        ]
    return impls


def _presign_impls(settings: Settings) -> list[Impl]:
    signer = SigV4Signer(credentials=settings.creds, region=REGION)
    presign = signer.presign
    creds = settings.creds
    botocore_creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, settings.token)
    query_auth = botocore.auth.SigV4QueryAuth(botocore_creds, SERVICE, REGION, expires=900)
    return [
        Impl("baseline", "baseline", _list, _identity, None),
        Impl("ours", "ours", _list, lambda url: presign("GET", url), wire_presigned),
        Impl(
            "presign_url (key, secret)",
            "info",
            _list,
            lambda url: presign_url(url, region=REGION, credentials=creds),
            wire_presigned,
        ),
        Impl(
            "presign_url default chain",
            "info",
            _list,
            lambda url: presign_url(url, region=REGION),
            wire_presigned,
        ),
        Impl("botocore", "peer", _aws_requests("GET"), query_auth.add_auth, wire_botocore),
    ]


def with_build(impl: Impl) -> Impl:
    """``impl`` with every call building its own request first (``--with-build``).

    The call is then what a client's loop runs per request: build, sign. The baseline builds
    and runs no auth, so the net figure is again the cost the auth adds, now measured with the
    processor's caches as building a request leaves them, not warm from signing the previous
    request of a chunk. The call returns the request, signed in place, for the verifier.
    """
    build, call, wire = impl.build, impl.call, impl.wire
    build_one_async = getattr(build, "one_async", None)
    built_then_called: Call
    if build_one_async is not None:  # aiohttp: a request is built on the session's loop

        async def built_then_called(url: str) -> Any:
            request = await build_one_async(url)
            await call(request)
            return request

    elif impl.is_async:

        async def built_then_called(url: str) -> Any:
            request = build([url])[0]
            await call(request)
            return request

    else:

        def built_then_called(url: str) -> Any:
            request = build([url])[0]
            call(request)
            return request

    verified = None if wire is None else (lambda _url, request: wire(request, None))
    return replace(impl, build=_list, call=built_then_called, wire=verified)


@dataclass(frozen=True)
class Row:
    """A workload through one client (or entry point) and the implementations compared."""

    workload: Workload
    client: str
    impls: list[Impl]


def rows(settings: Settings, only: set[str] | None = None) -> list[Row]:
    """Every row of the report, in print order."""
    result = []
    for workload in CLIENT_WORKLOADS:
        result.append(Row(workload, "requests", _requests_impls(workload, settings)))
        result.append(Row(workload, "httpx sync", _httpx_impls(workload, settings, is_async=False)))
        result.append(Row(workload, "httpx async", _httpx_impls(workload, settings, is_async=True)))
        if httpx2 is not None:
            sync, asynchronous = (
                _httpx2_impls(workload, settings, is_async=is_async) for is_async in (False, True)
            )
            result.append(Row(workload, "httpx2 sync", sync))
            result.append(Row(workload, "httpx2 async", asynchronous))
        result.append(Row(workload, "aiohttp", _aiohttp_impls(workload, settings)))
    result.append(Row(W2, "SigV4Signer.sign", _sign_impls(settings)))
    result.append(Row(W5, "presign", _presign_impls(settings)))
    if only:
        result = [r for r in result if r.workload.key in only or r.client in only]
    if settings.with_build:
        result = [
            Row(r.workload, r.client, [with_build(i) for i in r.impls])
            for r in result
            if r.client in CLIENTS
        ]
    return result


# --- verification ----------------------------------------------------------------------------


def _verifier() -> Any:
    """``tests/aws_server.py`` (botocore only, nothing of ours), imported from the tests folder."""
    tests = Path(__file__).resolve().parent.parent / "tests"
    if str(tests) not in sys.path:
        sys.path.append(str(tests))
    return importlib.import_module("aws_server")


# Functions of the core that each produce one signature per call, innermost first. The core is
# being tuned, so whichever of them exist are counted; the largest count is the answer.
_CORE_SIGNING_STEPS = ("_hmac_hex", "signature", "sign_parts", "sign")


@contextmanager
def counting_core() -> Iterator[dict[str, int]]:
    """Count calls of the core's signing steps (every signature our signer computes).

    The signing keys made while counting hold the counting wrapper as their signing step:
    they are dropped on the way out, so no timed signature runs through it.
    """
    counts = dict.fromkeys(_CORE_SIGNING_STEPS, 0)
    originals = {name: getattr(core, name) for name in _CORE_SIGNING_STEPS if hasattr(core, name)}

    def counted(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(core, name, counted(name, original))
    core._keys.cache_clear()  # noqa: SLF001 - keys made before hold the uncounted step
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(core, name, original)
        core._keys.cache_clear()  # noqa: SLF001 - keys made here hold the counting wrapper


def _computed(counts: dict[str, int]) -> str:
    name = max(counts, key=lambda n: counts[n])
    if counts[name] == 0:
        return "signatures computed: not countable (no known core step was called)"
    return f"{counts[name]} signatures computed (calls of _sigv4.{name})"


def _run_calls(impl: Impl, items: list[Any]) -> tuple[list[Any], list[float]]:
    """Each item's result, and each call's seconds."""
    clock = time.perf_counter
    results, seconds = [], []
    if not impl.is_async:
        for item in items:
            start = clock()
            results.append(impl.call(item))
            seconds.append(clock() - start)
        return results, seconds

    async def run() -> None:
        for item in items:
            start = clock()
            results.append(await impl.call(item))
            seconds.append(clock() - start)

    impl.run(run())
    return results, seconds


@dataclass(frozen=True)
class Check:
    """The verifier's verdict on one implementation in one row."""

    ok: bool | None  # None: a baseline, nothing to verify
    detail: str
    per_call_s: float  # median seconds of one call in this pass, to size the timing


def verify_one(settings: Settings, wire: Any) -> str | None:
    """None when the verifier reproduces the signature of ``wire``, else why it refused it."""
    aws_server = settings.verifier
    method, target, headers, body = wire
    try:
        aws_server.verify(
            aws_server.ReceivedRequest(method, target, headers, body),
            credentials={ACCESS_KEY: (SECRET_KEY, settings.token)},
            region=REGION,
            service=SERVICE,
            now=datetime.now(timezone.utc),
        )
    except aws_server.VerificationError as exc:
        return f"{exc.error_type}: {exc.message.splitlines()[0][:120]}"
    return None


def check(impl: Impl, workload: Workload, settings: Settings) -> Check:
    """Sign ``VERIFY_CALLS`` requests with ``impl`` and have the verifier recompute each."""
    items = impl.build(workload.urls(VERIFY_CALLS))
    with counting_core() as computed:
        try:
            results, seconds = _run_calls(impl, items)
        except Exception as exc:  # noqa: BLE001 - a peer failing is a finding, not a crash
            return Check(ok=False, detail=f"raised {type(exc).__name__}: {exc}", per_call_s=0.0)
    elapsed = statistics.median(seconds)
    if impl.wire is None:
        return Check(ok=None, detail="", per_call_s=elapsed)
    failures = [
        problem
        for item, result in zip(items, results, strict=True)
        if (problem := verify_one(settings, impl.wire(item, result))) is not None
    ]
    if failures:
        detail = f"{len(failures)}/{len(items)} refused; {failures[0]}"
        return Check(ok=False, detail=detail, per_call_s=elapsed)
    detail = f"{len(items)}/{len(items)} verified"
    if impl.kind == "ours":
        detail += f", {_computed(computed)}"
    return Check(ok=True, detail=detail, per_call_s=elapsed)


# --- timing ----------------------------------------------------------------------------------


def _timed_sync(call: Call, items: list[Any]) -> int:
    clock = time.perf_counter_ns
    start = clock()
    for item in items:
        call(item)
    return clock() - start


async def _timed_async(call: Call, items: list[Any]) -> int:
    clock = time.perf_counter_ns
    start = clock()
    for item in items:
        await call(item)
    return clock() - start


def time_once(impl: Impl, items: list[Any]) -> int:
    """ns for one call per item, garbage collector collected first and off during the loop."""
    gc.collect()
    gc.disable()
    try:
        if impl.is_async:
            return impl.run(_timed_async(impl.call, items))
        return _timed_sync(impl.call, items)
    finally:
        gc.enable()


@dataclass(frozen=True)
class Timing:
    """Per-call samples (ns) of one implementation, one per repeat, and its verdict."""

    impl: Impl
    calls: int
    samples: list[float]
    check: Check
    sampled: int = 0  # timed requests verified afterwards (first and last of every chunk)
    refused: int = 0

    @property
    def ok(self) -> bool | None:
        """The verifier's verdict on the pass before timing and on the timed samples."""
        if self.check.ok is None:
            return None
        return self.check.ok and not self.refused

    @property
    def detail(self) -> str:
        detail = self.check.detail
        if self.sampled:
            detail += f"; timed requests: {self.sampled - self.refused}/{self.sampled} verified"
        return detail

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000


def measure(row: Row, settings: Settings) -> dict[str, Timing]:
    """Verify, then time every implementation of ``row``, interleaved chunk by chunk.

    A repeat is ``calls`` calls of each implementation, made as chunks of ``settings.chunk``
    calls: chunk after chunk, each implementation in turn (the order rotating), so that load
    from other processes, which comes and goes within a second, hits every implementation
    alike. Each chunk's requests are built just before it is timed; when the implementation
    signs them in place, the first and last of the chunk are verified after the timing.
    """
    checks = {impl.name: check(impl, row.workload, settings) for impl in row.impls}
    timed = [
        i for i in row.impls if not (checks[i.name].ok is False and not checks[i.name].per_call_s)
    ]
    sizes = {}
    for impl in timed:
        per_call = checks[impl.name].per_call_s
        affordable = int(settings.budget_s / per_call) if per_call > 0 else settings.calls
        sizes[impl.name] = max(MIN_CALLS, min(settings.calls, affordable))
    chunk = settings.chunk
    samples: dict[str, list[float]] = {impl.name: [] for impl in row.impls}
    sampled, refused = dict.fromkeys(sizes, 0), dict.fromkeys(sizes, 0)
    for _ in range(settings.repeats):
        total = dict.fromkeys(sizes, 0)
        for index in range(0, settings.calls, chunk):
            shift = (index // chunk) % len(timed)
            for impl in timed[shift:] + timed[:shift]:
                count = min(chunk, sizes[impl.name] - index)
                if count <= 0:
                    continue
                items = impl.build(row.workload.urls(count))
                total[impl.name] += time_once(impl, items)
                if impl.in_place and impl.wire is not None:
                    for item in {id(items[0]): items[0], id(items[-1]): items[-1]}.values():
                        sampled[impl.name] += 1
                        if verify_one(settings, impl.wire(item, None)) is not None:
                            refused[impl.name] += 1
                del items
        for name, ns in total.items():
            samples[name].append(ns / sizes[name])
    return {
        impl.name: Timing(
            impl,
            sizes.get(impl.name, 0),
            samples[impl.name],
            checks[impl.name],
            sampled.get(impl.name, 0),
            refused.get(impl.name, 0),
        )
        for impl in row.impls
    }


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """A measured row: net µs per implementation (None when it could not be timed)."""

    row: Row
    timings: dict[str, Timing]

    def net(self, name: str) -> float | None:
        timing = self.timings.get(name)
        if timing is None or not timing.samples:
            return None
        return timing.median_us - self.timings["baseline"].median_us

    def ok(self, name: str) -> bool:
        timing = self.timings.get(name)
        return timing is not None and timing.ok is True

    def ratio(self, name: str, versus: str = "ours") -> float | None:
        """``name`` ÷ ``versus`` (ours unless said), on the net figures."""
        mine, other = self.net(versus), self.net(name)
        if mine is None or other is None or mine <= 0:
            return None
        return other / mine

    def best_peer(self, versus: str = "ours") -> tuple[str, float] | None:
        """The fastest peer whose output verified, and its ratio to ours (or to ``versus``)."""
        valid = [
            (self.net(t.impl.name), t.impl.name)
            for t in self.timings.values()
            if t.impl.kind == "peer" and self.ok(t.impl.name) and self.net(t.impl.name) is not None
        ]
        if not valid or not self.ok(versus):
            return None
        _, name = min(valid)
        ratio = self.ratio(name, versus)
        return None if ratio is None else (name, ratio)


def print_detail(result: Result) -> None:
    """Every implementation of a row: gross median, spread, net, ratio, verdict."""
    row = result.row
    print(f"\n{row.workload.key} {row.workload.title} -- {row.client}", flush=True)
    for timing in result.timings.values():
        name = timing.impl.name
        if not timing.samples:
            print(f"  {name:27} not timed: {timing.detail}")
            continue
        low, high = min(timing.samples) / 1000, max(timing.samples) / 1000
        net = result.net(name)
        ratio = result.ratio(name)
        verdict = {True: "ok", False: "WRONG", None: "-"}[timing.ok]
        shown = ratio is not None and timing.impl.kind not in {"ours", "baseline"}
        print(
            f"  {name:27} {timing.median_us:9.2f} µs  ({low:.2f}-{high:.2f}, "
            f"{timing.calls} calls)  net {net:8.2f}"
            + (f"  {ratio:6.2f}x ours" if shown else "")
            + f"  {verdict} {timing.detail}"
        )


PEER_COLUMNS = (
    "aws-requests-auth",
    "requests-aws4auth",
    "botocore",
    "httpx-auth",
    "httpx-aws-auth",
    "httpx2-aws-auth",
    "aiohttp-aws-auth",
)


def _cell(result: Result, name: str) -> str:
    net = result.net(name)
    if name not in result.timings:
        return "-"
    if net is None:
        return "error"
    text = f"{net:.1f}"
    if not result.ok(name):
        return f"{text} (wrong)"
    return text


def _two_places(ratio: float, *, down: bool = True) -> str:
    """A ratio to two places, away from its goal: 1.996 reads 1.99, as its verdict against 2 says.

    Down for a goal of at least (the table's), up for one of at most.
    """
    hundredths = math.floor(ratio * 100) if down else math.ceil(ratio * 100)
    return f"{hundredths / 100:.2f}"


@dataclass(frozen=True)
class Target:
    """One goal of the issue, met or not."""

    label: str
    value: float | None
    goal: float
    at_least: bool

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.goal if self.at_least else self.value <= self.goal

    def line(self) -> str:
        value = "n/a" if self.value is None else _two_places(self.value, down=self.at_least)
        op = ">=" if self.at_least else "<="
        return (
            f"{'PASS' if self.passed else 'MISS'}  {self.label}: {value} (goal {op} {self.goal:g})"
        )


# The clients of "the aiohttp and httpx2 paths join the table": their issue sets one goal, at
# least 2x the peer (aiohttp-aws-auth, httpx2-aws-auth), for every workload.
JOINED_CLIENTS = ("httpx2 sync", "httpx2 async", "aiohttp")


def client_goal(workload: Workload, client: str) -> float:
    if client in JOINED_CLIENTS:
        return 2.0
    return 3.0 if workload.repeated else 2.0


def print_markdown(results: list[Result]) -> None:
    """The table for the README: net µs added per call; best verified peer ÷ ours."""
    head = [
        "workload",
        "client",
        "ours",
        *PEER_COLUMNS,
        "minimal signer",
        "best peer ÷ ours",
        "best peer ÷ minimal",
        "goal",
    ]
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * 2 + "---:|" * (len(head) - 3) + "---|")
    for result in results:
        row = result.row
        if row.client not in CLIENTS:
            continue
        best, ceiling = result.best_peer(), result.best_peer("minimal")
        goal = client_goal(row.workload, row.client)
        verdict = "-" if best is None else ("PASS" if best[1] >= goal else "MISS")
        cells = [
            f"{row.workload.key} {row.workload.title}",
            row.client,
            _cell(result, "ours") if result.ok("ours") else f"{_cell(result, 'ours')} (NOT OK)",
            *(_cell(result, name) for name in PEER_COLUMNS),
            _cell(result, "minimal"),
            "-" if best is None else f"{_two_places(best[1])}x ({best[0]})",
            "-" if ceiling is None else f"{_two_places(ceiling[1])}x",
            f"≥ {goal:g}x {verdict}",
        ]
        print("| " + " | ".join(cells) + " |")
    print("\n| entry point | workload | implementation | µs added per call | ÷ ours | verified |")
    print("|---|---|---|---:|---:|---|")
    for result in results:
        row = result.row
        if row.client in CLIENTS:
            continue
        for timing in result.timings.values():
            name = timing.impl.name
            if timing.impl.kind == "baseline":
                continue
            ratio = result.ratio(name)
            cells = [
                row.client,
                f"{row.workload.key} {row.workload.title}",
                name,
                _cell(result, name),
                "1" if name == "ours" else ("-" if ratio is None else f"{ratio:.2f}"),
                {True: "yes", False: "WRONG", None: "-"}[timing.ok],
            ]
            print("| " + " | ".join(cells) + " |")


def targets(results: list[Result], memory: list[Any]) -> list[Target]:
    """Every target of the issue, computed from this run."""
    found = []
    for result in results:
        row = result.row
        if row.client in CLIENTS:
            best = result.best_peer()
            label = f"{row.workload.key} {row.client}: best verified peer ÷ ours"
            if best is not None:
                label += f" ({best[0]})"
            found.append(
                Target(
                    label,
                    None if best is None else best[1],
                    client_goal(row.workload, row.client),
                    at_least=True,
                )
            )
        elif row.client == "SigV4Signer.sign" and "minimal" in result.timings:
            minimal, mine = result.net("minimal"), result.net("ours")
            value = None if minimal is None or mine is None or minimal <= 0 else mine / minimal
            found.append(Target("W2 SigV4Signer.sign ÷ minimal signer", value, 1.5, at_least=False))
        elif row.client == "presign":
            found.append(
                Target(
                    "W5 presign_url (default chain) ÷ SigV4Signer.presign",
                    result.ratio("presign_url default chain"),
                    2.0,
                    at_least=False,
                )
            )
            found.append(
                Target(
                    "W5 botocore SigV4QueryAuth ÷ SigV4Signer.presign",
                    result.ratio("botocore"),
                    6.0,
                    at_least=True,
                )
            )
    found.extend(
        Target(
            f"100 MiB file body, {m.what}: added peak MiB (tracemalloc)",
            m.peak_mib,
            4.0,
            at_least=False,
        )
        for m in memory
        if m.rewound is not None
    )
    found.extend(
        Target(
            f"100 MiB file body, {m.what}: maxrss growth MiB (child)",
            m.maxrss_mib,
            4.0,
            at_least=False,
        )
        for m in memory
        if m.rewound is not None and m.maxrss_mib is not None
    )
    return found


def print_targets(results: list[Result], memory: list[Any]) -> None:
    print("\ntargets:")
    for target in targets(results, memory):
        print("  " + target.line())
    for m in memory:
        if m.rewound is not None:
            fine = m.rewound and bool(m.ok)
            print(f"  {'PASS' if fine else 'MISS'}  {m.what}: file rewound, signature verifies")
    ours_wrong = [
        f"{r.row.workload.key} {r.row.client} {t.impl.name}"
        for r in results
        for t in r.timings.values()
        if t.impl.kind in {"ours", "info"} and t.ok is not True
    ]
    print(
        f"  {'MISS' if ours_wrong else 'PASS'}  every output of ours verifies"
        + (f" (not: {'; '.join(ours_wrong)})" if ours_wrong else "")
    )


# --- profile, environment, main --------------------------------------------------------------


def profile(settings: Settings, calls: int, spec: str) -> None:
    """cProfile ours on one row, ``WORKLOAD:CLIENT`` (e.g. ``W2:requests``, ``W3:httpx async``)."""
    key, _, client = spec.partition(":")
    row = next((r for r in rows(settings) if r.workload.key == key and r.client == client), None)
    if row is None:
        names = ", ".join(f"{r.workload.key}:{r.client}" for r in rows(settings))
        print(f"no row {spec!r}; choose from {names}")
        return
    impl = next(i for i in row.impls if i.kind == "ours")
    _run_calls(impl, impl.build(row.workload.urls(1)))  # warm: imports, caches, first origin
    items = impl.build(row.workload.urls(calls))

    async def run_async() -> None:
        for item in items:
            await impl.call(item)

    profiler = cProfile.Profile()
    profiler.enable()
    if impl.is_async:
        impl.run(run_async())
    else:
        for item in items:
            impl.call(item)
    profiler.disable()
    print(f"cProfile of ours on {spec}, {calls} calls (times include profiler overhead):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def use_env_credentials(token: str | None) -> None:
    """The default chain of this process finds static keys in env and nothing else."""
    os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    if token is None:
        os.environ.pop("AWS_SESSION_TOKEN", None)
    else:
        os.environ["AWS_SESSION_TOKEN"] = token
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _versions() -> str:
    dists = (
        "apigw-iam-auth",
        "requests",
        "httpx",
        "httpx2",
        "aiohttp",
        "botocore",
        "aws-requests-auth",
        "requests-aws4auth",
        "httpx-auth",
        "httpx-aws-auth",
        "httpx2-aws-auth",
        "aiohttp-aws-auth",
    )
    return ", ".join(f"{d} {_version(d)}" for d in dists)


def main(argv: list[str] | None = None) -> int:
    """Parse options, verify and time every row, print the report; exit 0 whatever the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 calls x 3 repeats")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per repeat (20,000)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats (5)")
    parser.add_argument("--budget", type=float, default=3.0, help="max seconds per repeat")
    parser.add_argument("--chunk", type=int, default=1000, help="calls per interleaved chunk")
    parser.add_argument("--token", action="store_true", help="sign with a session token")
    parser.add_argument("--only", action="append", help="only rows of this workload or client")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 100 MiB body part")
    parser.add_argument(
        "--with-build",
        action="store_true",
        help="time building each request with its signing (client rows only; see the docstring)",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="W2:requests",
        metavar="WORKLOAD:CLIENT",
        help="cProfile ours on one row instead (default W2:requests)",
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)  # peers call datetime.utcnow()
    token = SESSION_TOKEN if args.token else None
    use_env_credentials(token)
    calls, repeats, budget = (
        (2_000, 3, 1.0) if args.quick else (args.calls, args.repeats, args.budget)
    )
    settings = Settings(calls, repeats, budget, token, args.chunk, _verifier(), args.with_build)
    if args.profile:
        profile(settings, calls, args.profile)
        return 0
    print(f"python {sys.version.split()[0]}; {_versions()}")
    if httpx2 is None:
        print("httpx2 or httpx2-aws-auth not importable (pip install '.[bench]'): no httpx2 rows")
    print(
        f"{calls} calls x {repeats} repeats per implementation (median per call), "
        f"session token: {'yes' if token else 'no'}, load average {os.getloadavg()[0]:.2f}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    started = time.perf_counter()
    results = []
    for row in rows(settings, set(args.only) if args.only else None):
        result = Result(row, measure(row, settings))
        print_detail(result)
        results.append(result)
    memory: list[Any] = []
    if not args.skip_memory and not args.only:
        import bench_adapters  # noqa: PLC0415 - its part 3, only when asked for

        print("\nsigning a 100 MiB file body (bench_adapters.py part 3)", flush=True)
        with tempfile.TemporaryDirectory() as directory:
            memory = bench_adapters.measure_memory(bench_adapters.make_file(directory))
        bench_adapters.print_memory(memory)
    print(
        f"\nµs added to building the request, per call (median of {repeats} x {calls}"
        f"{'; each call builds its request, then signs it' if args.with_build else ''}); "
        f"{time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.2f}"
    )
    print_markdown(results)
    print_targets(results, memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
