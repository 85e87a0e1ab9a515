"""Benchmark: ApiGwIamAuth through requests and httpx, against botocore and the peer libraries.

Run ``python bench/bench_adapters.py`` (``--quick`` for a short run, ``--profile requests`` or
``--profile httpx`` for a cProfile of our adapter on the GET). Needs the ``bench`` extra
(requests-aws4auth, aws-requests-auth, httpx-auth, httpx-aws-auth). It is a report, not a test:
it always exits 0. Everything runs in this one process, except the optional ``maxrss`` probe.

1. **Signing a GET** (``GET_URL`` from bench_sign.py, static credentials, with and without a
   session token), median µs per signature, ``timeit``-style with the harness of bench_sign.py
   (calibrated N per repeat, GC off, implementations interleaved repeat by repeat). What one call
   does, per client:

   * requests (ours, requests-aws4auth, aws-requests-auth): ``auth(fresh())`` where ``fresh()``
     is ``template.copy()`` of a PreparedRequest prepared once outside the timing, plus a new
     hooks dict (``copy()`` shares the template's hooks, so without it our per-request redirect
     guard would be registered once and then found, not built, on every later call). The copy is
     inside the timing for every implementation alike; the ``requests: fresh()`` row is its cost.
   * httpx (ours, httpx-auth, httpx-aws-auth): ``next(auth.sync_auth_flow(httpx.Request(...)))``:
     the request is built inside the timing for every implementation alike (an ``httpx.Request``
     is mutated by signing and cannot be copied); the ``httpx: Request()`` row is its cost.
   * botocore: a fresh ``AWSRequest`` and ``SigV4Auth.add_auth`` (as in bench_sign.py).

   Columns: the GET without and with a session token (the targets), and "distinct URLs",
   where every call signs a URL not seen for 100,000 calls (``/prod/pets/<n>``), so no cache
   kept per URL helps: the cost of a request our adapters see for the first time.

   Every call computes its signature: the signer keeps no per-request or per-URL state.
   ``bench_workloads.py`` measures the issue's workloads (new paths, queries, bodies, presigning)
   across requests, httpx sync and httpx async with pre-built requests; this part keeps the
   client's own per-call cost (copy or Request()) in view.

   ``net`` subtracts the client's fixed cost (fresh() or Request()) from the median. The target
   compares on a common footing: ``(peer net + fresh()) / (our requests net + fresh())``, i.e.
   every implementation carries the same requests copy as ours does; ``net/net`` is shown too.
   Every implementation's output is checked once with botocore (``ok`` column) so that only
   correct signatures are timed.

2. **Loopback round trip**: a stdlib HTTP/1.1 keep-alive server on 127.0.0.1 (a thread of this
   process, Nagle off) answers 200 "ok" without verifying. One ``requests.Session`` (and one
   ``httpx.Client``) sends GETs sequentially over one connection; its ``auth`` is switched
   request by request, in rotating order, between a no-op (the baseline; ``auth=None`` would
   make requests read ~/.netrc), "headers only" (constant signature-sized headers: the cost of
   carrying a signature, not of computing it), ours and the peers. Each request (send plus
   reading the body) is timed on its own; the median per variant and the % it adds over the
   baseline are reported, and the median time of the auth call itself inside the real send
   (code runs colder there than in part 1's tight loop, so it costs more).

3. **Peak memory signing a 100 MiB file body** (no network): a PreparedRequest with ``data=file``
   and an ``httpx.Request`` with ``content=file`` are signed by our auth under ``tracemalloc``
   (warm caches first); the peak above the level at start is reported. A control that reads the
   file whole shows the instrument sees 100 MiB. The file must be rewound afterwards and the
   signature must verify with botocore (which hashes the file itself). A child process reports
   the growth of ``ru_maxrss`` across the signature too (a high-water mark: a lower bound).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import http.server
import itertools
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aws_requests_auth
import aws_requests_auth.aws_auth
import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import httpx_auth
import httpx_aws_auth
import requests
import requests.hooks
import requests_aws4auth
from bench_sign import (
    ACCESS_KEY,
    GET_URL,
    REGION,
    SECRET_KEY,
    SERVICE,
    SESSION_TOKEN,
    calibrate,
    median_ns,
)

from apigw_iam_auth import ApiGwIamAuth

FIXED = datetime(2026, 5, 9, 12, 34, 56, tzinfo=timezone.utc)
MIB = 1024 * 1024
FILE_SIZE = 100 * MIB
PUT_URL = "https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod/blobs/1"
GET_PATH = "/prod/pets?limit=10&type=dog"

Signature = Callable[[], object]
# (method, url, headers) of a signed request, as it would go on the wire.
Signed = tuple[str, str, Mapping[str, str]]


def _creds(token: str | None) -> tuple[str, ...]:
    return (ACCESS_KEY, SECRET_KEY) if token is None else (ACCESS_KEY, SECRET_KEY, token)


def _ours(token: str | None, **kwargs: Any) -> ApiGwIamAuth:
    return ApiGwIamAuth(region=REGION, credentials=_creds(token), **kwargs)


# --- the implementations, per client -----------------------------------------------------------


def _requests_peers(token: str | None, host: str) -> dict[str, requests.auth.AuthBase]:
    """requests auth objects of the peers, configured for static credentials."""
    return {
        "requests-aws4auth": requests_aws4auth.AWS4Auth(
            ACCESS_KEY, SECRET_KEY, REGION, SERVICE, session_token=token
        ),
        "aws-requests-auth": aws_requests_auth.aws_auth.AWSRequestsAuth(
            aws_access_key=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            aws_host=host,
            aws_region=REGION,
            aws_service=SERVICE,
            aws_token=token,
        ),
    }


def _httpx_peers(token: str | None) -> dict[str, httpx.Auth]:
    """httpx auth objects of the peers, configured for static credentials."""
    return {
        "httpx-auth": httpx_auth.AWS4Auth(
            ACCESS_KEY, SECRET_KEY, REGION, SERVICE, security_token=token
        ),
        "httpx-aws-auth": httpx_aws_auth.AwsSigV4Auth(
            httpx_aws_auth.AwsCredentials(ACCESS_KEY, SECRET_KEY, token),
            region=REGION,
            service=SERVICE,
        ),
    }


@dataclass(frozen=True)
class Impl:
    """One way to sign the GET: ``client`` is requests, httpx, botocore or "-" (a fixed cost)."""

    name: str
    client: str
    sign: Signature
    signed: Callable[[object], Signed] | None  # how to read the result, None for a fixed cost


def _fresh_factory(
    template: requests.PreparedRequest, next_url: Callable[[], str] | None
) -> Callable[[], requests.PreparedRequest]:
    hooks = requests.hooks.default_hooks

    def fresh() -> requests.PreparedRequest:
        prepared = template.copy()
        prepared.hooks = hooks()
        if next_url is not None:
            prepared.url = next_url()
        return prepared

    return fresh


def _from_prepared(result: object) -> Signed:
    assert isinstance(result, requests.PreparedRequest)
    return result.method or "", result.url or "", dict(result.headers)


def _from_httpx(result: object) -> Signed:
    assert isinstance(result, httpx.Request)
    return result.method, str(result.url), dict(result.headers)


def _from_botocore(result: object) -> Signed:
    assert isinstance(result, botocore.awsrequest.AWSRequest)
    return result.method, result.url, dict(result.headers.items())


def _requests_sign(auth: Callable[[Any], object], fresh: Callable[[], object]) -> Signature:
    return lambda: auth(fresh())


def _httpx_sign(auth: httpx.Auth, next_url: Callable[[], str]) -> Signature:
    request_type = httpx.Request
    return lambda: next(auth.sync_auth_flow(request_type("GET", next_url())))


def _botocore_sign(token: str | None, next_url: Callable[[], str]) -> Signature:
    """botocore's SigV4Auth on a fresh AWSRequest per call (as bench_sign.py), any URL."""
    auth = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, token), SERVICE, REGION
    )
    request_type = botocore.awsrequest.AWSRequest

    def sign() -> object:
        request = request_type(method="GET", url=next_url())
        auth.add_auth(request)
        return request

    return sign


# "distinct URLs": every call signs a URL not seen for 100,000 calls (no per-URL cache helps),
# like a client walking /prod/pets/1, /prod/pets/2, ... The URL strings are made beforehand.
_DISTINCT_URLS = [f"{GET_URL.partition('?')[0]}/{n}?limit=10&type=dog" for n in range(100_000)]


def _url_supplier(distinct: bool) -> Callable[[], str]:
    if distinct:
        return itertools.cycle(_DISTINCT_URLS).__next__
    return itertools.repeat(GET_URL).__next__


def implementations(token: str | None, *, distinct: bool = False) -> list[Impl]:
    """Ours, botocore and the peers on the GET, plus the clients' fixed costs.

    ``distinct`` makes every call sign a URL of its own (``_DISTINCT_URLS``).
    """
    template = requests.Request("GET", GET_URL).prepare()
    next_url = _url_supplier(distinct)
    fresh = _fresh_factory(template, next_url if distinct else None)
    host = urlsplit(GET_URL).netloc
    ours = _ours(token)
    impls = [
        Impl("ours (requests)", "requests", _requests_sign(ours, fresh), _from_prepared),
        Impl("ours (httpx)", "httpx", _httpx_sign(ours, next_url), _from_httpx),
        Impl("botocore", "botocore", _botocore_sign(token, next_url), _from_botocore),
    ]
    impls += [
        Impl(name, "requests", _requests_sign(auth, fresh), _from_prepared)
        for name, auth in _requests_peers(token, host).items()
    ]
    impls += [
        Impl(name, "httpx", _httpx_sign(auth, next_url), _from_httpx)
        for name, auth in _httpx_peers(token).items()
    ]
    impls += [
        Impl("requests: fresh()", "-", fresh, None),
        Impl("httpx: Request()", "-", lambda: httpx.Request("GET", next_url()), None),
    ]
    return impls


# --- correctness: botocore recomputes each signature ------------------------------------------

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-f]{64})"
)


def botocore_accepts(signed: Signed, token: str | None, body: object = None) -> bool:
    """True when botocore, given the signed headers and their date, computes the same signature.

    The request is rebuilt with exactly the headers the signer listed (Host from the URL when
    the client adds it later), so botocore's header selection cannot differ; a seekable
    ``body`` is hashed by botocore in chunks.
    """
    method, url, headers = signed
    lower = {name.lower(): value for name, value in headers.items()}
    match = _AUTHORIZATION.fullmatch(lower.get("authorization", ""))
    if match is None or "x-amz-date" not in lower:
        return False
    host = urlsplit(url).netloc
    names = match["signed"].split(";")
    request = botocore.awsrequest.AWSRequest(
        method=method, url=url, headers={n: lower.get(n, host) for n in names}, data=body
    )
    request.context["timestamp"] = lower["x-amz-date"]
    auth = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, token), SERVICE, REGION
    )
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request) == match["sig"]


# --- 1. signing the GET ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignRow:
    """Median µs of one implementation with and without a session token, and its validity."""

    impl: str
    client: str
    us: dict[str, float]  # token label -> µs
    ok: bool | None


# Column label: (session token, distinct URLs). The targets of issue 3 are for the GET itself.
LABELS = {
    "no token": (None, False),
    "token": (SESSION_TOKEN, False),
    "distinct URLs": (None, True),
}
TARGET_LABELS = ("no token", "token")


def measure_signing(target_s: float, repeats: int) -> list[SignRow]:
    """Time every implementation on the GET, without then with a session token."""
    timings: dict[str, dict[str, float]] = {}
    valid: dict[str, bool | None] = {}
    clients: dict[str, str] = {}
    for label, (token, distinct) in LABELS.items():
        impls = implementations(token, distinct=distinct)
        for impl in impls:
            clients[impl.name] = impl.client
            if impl.signed is not None:
                ok = botocore_accepts(impl.signed(impl.sign()), token)
                valid[impl.name] = valid.get(impl.name, True) and ok
            else:
                valid[impl.name] = None
        ns = median_ns({impl.name: impl.sign for impl in impls}, target_s, repeats)
        for name, value in ns.items():
            timings.setdefault(name, {})[label] = value / 1000
    return [SignRow(name, clients[name], us, valid[name]) for name, us in timings.items()]


def _fixed_cost(rows: list[SignRow], client: str, label: str) -> float:
    by_name = {row.impl: row for row in rows}
    if client == "requests":
        return by_name["requests: fresh()"].us[label]
    if client == "httpx":
        return by_name["httpx: Request()"].us[label]
    return 0.0


def _net(rows: list[SignRow], row: SignRow, label: str) -> float:
    return row.us[label] - _fixed_cost(rows, row.client, label)


def signing_ratios(
    rows: list[SignRow], label: str, ours_name: str = "ours (requests)"
) -> dict[str, tuple[float, float]]:
    """Per peer: (common-footing ratio, net/net ratio) against our requests path."""
    ours = next(row for row in rows if row.impl == ours_name)
    copy = _fixed_cost(rows, "requests", label)
    ours_net = _net(rows, ours, label)
    result = {}
    for row in rows:
        if row.impl.startswith("ours") or row.client == "-":
            continue
        peer_net = _net(rows, row, label)
        result[row.impl] = ((peer_net + copy) / (ours_net + copy), peer_net / ours_net)
    return result


def print_signing(rows: list[SignRow]) -> None:
    """µs per implementation, net of the client's fixed cost, and each peer's ratio to ours."""
    ratios = {label: signing_ratios(rows, label) for label in LABELS}
    head = ["implementation", "client"]
    for label in LABELS:
        head += [f"{label} µs", "net", "peer/ours", "net/net"]
    head.append("ok")
    table = [head]
    for row in rows:
        cells = [row.impl, row.client]
        for label in LABELS:
            pair = ratios[label].get(row.impl)
            cells += [
                f"{row.us[label]:.2f}",
                "-" if row.client == "-" else f"{_net(rows, row, label):.2f}",
                "-" if pair is None else f"{pair[0]:.2f}x",
                "-" if pair is None else f"{pair[1]:.2f}x",
            ]
        cells.append("-" if row.ok is None else ("yes" if row.ok else "NO"))
        table.append(cells)
    _print_table(table, left=2)


# --- 2. loopback round trip -------------------------------------------------------------------


class _OkHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 "ok" on a keep-alive HTTP/1.1 connection; checks nothing."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms) and the round trip would measure TCP timers, not HTTP clients.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: object) -> None:
        """Quiet: a line per request would cost more than the request."""


@contextmanager
def ok_server() -> Iterator[str]:
    """A loopback server in its own process; yields its base URL.

    Out of process, like any real API: a server thread in this process would compete with
    the client for the GIL and inflate every Python-side cost, signing included.
    """
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-ok"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()


def serve_ok() -> None:
    """The child side of :func:`ok_server`: print the port, then serve until terminated."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OkHandler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


def _noop_requests(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Baseline auth for requests: the request unchanged (truthy, so ~/.netrc is not read)."""
    return request


class NoopHttpxAuth(httpx.Auth):
    """Baseline auth for httpx: the request unchanged."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        yield request


# What a signature puts on the wire, as constants: the cost of carrying the headers alone.
_STATIC_SIGNATURE = {
    "X-Amz-Date": "20260509T123456Z",
    "Authorization": (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260509/{REGION}/{SERVICE}/aws4_request, "
        f"SignedHeaders=accept;accept-encoding;host;user-agent;x-amz-date, Signature={'0' * 64}"
    ),
}


def _static_requests(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Adds signature-sized constant headers: what sending them costs, without signing."""
    request.headers.update(_STATIC_SIGNATURE)
    return request


class StaticHttpxAuth(httpx.Auth):
    """Adds signature-sized constant headers: what sending them costs, without signing."""

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers.update(_STATIC_SIGNATURE)
        yield request


class TimedRequestsAuth:
    """Wraps a requests auth and records how long each call takes inside a real send."""

    def __init__(self, inner: Callable[[Any], Any], samples: list[float]) -> None:
        self.inner = inner
        self.samples = samples

    def __call__(self, request: requests.PreparedRequest) -> Any:
        start = time.perf_counter_ns()
        result = self.inner(request)
        self.samples.append((time.perf_counter_ns() - start) / 1000)
        return result


class TimedHttpxAuth(httpx.Auth):
    """Wraps an httpx auth and records how long producing the first request takes."""

    def __init__(self, inner: httpx.Auth, samples: list[float]) -> None:
        self.inner = inner
        self.samples = samples
        self.requires_response_body = inner.requires_response_body

    def sync_auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        start = time.perf_counter_ns()
        flow = self.inner.sync_auth_flow(request)
        outgoing = next(flow)
        self.samples.append((time.perf_counter_ns() - start) / 1000)
        while True:
            response = yield outgoing
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return


def interleaved(
    variants: dict[str, Any],
    set_auth: Callable[[Any], None],
    send: Callable[[], None],
    n: int,
) -> dict[str, float]:
    """Median µs per request for each auth; one request of each in turn, order rotating.

    Interleaving request by request (not in blocks) keeps load from other processes, which
    comes and goes within milliseconds, off the comparison: it hits every variant alike.
    """
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    clock = time.perf_counter_ns
    for name in names:  # warm-up: connection open, caches filled
        set_auth(variants[name])
        for _ in range(20):
            send()
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for index in range(n):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                set_auth(variants[name])
                start = clock()
                send()
                samples[name].append((clock() - start) / 1000)
            if index % 256 == 255:
                gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


@dataclass(frozen=True)
class RoundTrip:
    """Median µs per loopback request, and per auth call inside it, for each auth of a client.

    "baseline" is the no-op auth; "headers only" adds constant signature-sized headers.
    """

    client: str
    us: dict[str, float]
    auth_us: dict[str, float]

    def added(self, name: str) -> float:
        """Percent ``name`` adds to the baseline round trip."""
        return (self.us[name] / self.us["baseline"] - 1) * 100


def _round_trip(
    client: str,
    variants: dict[str, Any],
    wrap: Callable[[Any, list[float]], Any],
    set_auth: Callable[[Any], None],
    send: Callable[[], None],
    n: int,
) -> RoundTrip:
    calls: dict[str, list[float]] = {name: [] for name in variants}
    wrapped = {name: wrap(auth, calls[name]) for name, auth in variants.items()}
    us = interleaved(wrapped, set_auth, send, n)
    return RoundTrip(client, us, {k: statistics.median(v) for k, v in calls.items()})


def measure_round_trips(n: int) -> list[RoundTrip]:
    """Loopback GETs with requests.Session and httpx.Client: no-op, ours and the peers."""
    results = []
    with ok_server() as base:
        url = base + GET_PATH
        host = urlsplit(base).netloc
        with requests.Session() as session:
            session.get(url, auth=_noop_requests).close()

            def send_requests() -> None:
                response = session.get(url)
                _ = response.content

            def set_requests_auth(auth: Any) -> None:
                session.auth = auth

            variants: dict[str, Any] = {
                "baseline": _noop_requests,
                "headers only": _static_requests,
                "ours": _ours(None),
                **_requests_peers(None, host),
            }
            results.append(
                _round_trip(
                    "requests", variants, TimedRequestsAuth, set_requests_auth, send_requests, n
                )
            )
        with httpx.Client() as client:

            def send_httpx() -> None:
                client.get(url).read()

            def set_httpx_auth(auth: Any) -> None:
                client.auth = auth

            variants = {
                "baseline": NoopHttpxAuth(),
                "headers only": StaticHttpxAuth(),
                "ours": _ours(None),
                **_httpx_peers(None),
            }
            results.append(
                _round_trip("httpx", variants, TimedHttpxAuth, set_httpx_auth, send_httpx, n)
            )
    return results


def print_round_trips(results: list[RoundTrip]) -> None:
    """µs per request, the % added over the no-op baseline, and the auth call's own time."""
    table = [["client", "auth", "µs/request", "added", "auth call µs"]]
    for result in results:
        for name, us in result.us.items():
            added = "-" if name == "baseline" else f"{result.added(name):+.1f}%"
            table.append([result.client, name, f"{us:.1f}", added, f"{result.auth_us[name]:.1f}"])
    _print_table(table, left=2)


# --- 3. peak memory for a 100 MiB file body ---------------------------------------------------


@dataclass(frozen=True)
class MemoryResult:
    """Added peak MiB of one signing, whether the file was rewound and the signature verified."""

    what: str
    peak_mib: float
    rewound: bool | None
    ok: bool | None
    maxrss_mib: float | None = None


def make_file(directory: str) -> Path:
    """A 100 MiB file of non-repeating-looking bytes, written in 1 MiB chunks."""
    path = Path(directory) / "body.bin"
    chunk = os.urandom(MIB)
    with path.open("wb") as handle:
        for index in range(FILE_SIZE // MIB):
            handle.write(index.to_bytes(8, "big") + chunk[8:])
    return path


def _warm(auth: ApiGwIamAuth) -> None:
    """Sign small PUTs once through both clients, so caches and imports are not counted."""
    auth(requests.Request("PUT", PUT_URL, data=b"x").prepare())
    next(auth.sync_auth_flow(httpx.Request("PUT", PUT_URL, content=b"x")))


def sign_file(client: str, auth: ApiGwIamAuth, handle: Any) -> Callable[[], Signed]:
    """A request with the open file as body, and a function signing it through ``client``."""
    if client == "requests":
        prepared = requests.Request("PUT", PUT_URL, data=handle).prepare()

        def sign_prepared() -> Signed:
            return _from_prepared(auth(prepared))

        return sign_prepared
    request = httpx.Request("PUT", PUT_URL, content=handle)

    def sign_httpx() -> Signed:
        flow = auth.sync_auth_flow(request)
        result = _from_httpx(next(flow))
        flow.close()
        return result

    return sign_httpx


def _traced_peak(fn: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - start) / MIB, result


def measure_memory(path: Path) -> list[MemoryResult]:
    """Peak memory added by signing the file body through each client (and a control)."""
    auth = _ours(None, clock=lambda: FIXED)
    _warm(auth)
    results = []
    for client in ("requests", "httpx"):
        with path.open("rb") as handle:
            sign = sign_file(client, auth, handle)
            peak, signed = _traced_peak(sign)
            rewound = handle.tell() == 0
            assert isinstance(signed, tuple)
            ok = botocore_accepts(signed, None, body=handle)
        rss = maxrss_in_child(client, path)
        results.append(MemoryResult(f"ours ({client})", peak, rewound, ok, rss))
    with path.open("rb") as handle:
        peak, _ = _traced_peak(handle.read)
    results.append(MemoryResult("control: file.read()", peak, None, None))
    return results


def _maxrss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


def rss_child(client: str, path: str) -> None:
    """In a child process: print how far one file signing raises the maxrss high-water mark."""
    auth = _ours(None, clock=lambda: FIXED)
    _warm(auth)
    with Path(path).open("rb") as handle:
        sign = sign_file(client, auth, handle)
        gc.collect()
        before = _maxrss_mib()
        sign()
        print(f"{_maxrss_mib() - before:.3f}")


def maxrss_in_child(client: str, path: Path) -> float | None:
    """Run :func:`rss_child` in a fresh interpreter; None if it fails."""
    done = subprocess.run(
        [sys.executable, __file__, "--rss-child", client, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    try:
        return float(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"  (maxrss child failed: {done.stderr.strip()[-300:]})")
        return None


def print_memory(results: list[MemoryResult]) -> None:
    """Added peak per signing, rewinding and botocore's verdict."""
    table = [["100 MiB file body", "tracemalloc peak", "maxrss growth", "rewound", "ok"]]
    table += [
        [
            r.what,
            f"{r.peak_mib:.2f} MiB",
            "-" if r.maxrss_mib is None else f"{r.maxrss_mib:.2f} MiB",
            _yes(r.rewound),
            _yes(r.ok),
        ]
        for r in results
    ]
    _print_table(table, left=1)


# --- report -----------------------------------------------------------------------------------


def _yes(flag: bool | None) -> str:
    return "-" if flag is None else ("yes" if flag else "NO")


def _print_table(table: list[list[str]], left: int) -> None:
    """Print rows with the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells).rstrip())


def _signing_checks(signing: list[SignRow]) -> list[tuple[str, float, float, str]]:
    checks = []
    for label in TARGET_LABELS if signing else ():
        for peer, (ratio, net) in signing_ratios(signing, label, "ours (requests)").items():
            name = f"GET ({label}): {peer}/ours (requests) [net/net {net:.2f}]"
            checks.append((name, ratio, 4.0, ">="))
    return checks


def _memory_checks(memory: list[MemoryResult]) -> list[tuple[str, float, float, str]]:
    checks = []
    for result in memory:
        if result.rewound is None:
            continue
        checks.append((f"{result.what}: added peak MiB (tracemalloc)", result.peak_mib, 4.0, "<="))
        if result.maxrss_mib is not None:
            checks.append((f"{result.what}: maxrss growth MiB", result.maxrss_mib, 4.0, "<="))
    return checks


def print_targets(
    signing: list[SignRow], trips: list[RoundTrip], memory: list[MemoryResult]
) -> None:
    """Every target of issue 3 with PASS or MISS."""
    limits = {"requests": 5.0, "httpx": 10.0}
    loopback = [
        (
            f"loopback {trip.client}: % added by signing",
            trip.added("ours"),
            limits[trip.client],
            "<=",
        )
        for trip in trips
    ]
    print("\ntargets:")
    for label, value, goal, op in _signing_checks(signing) + loopback + _memory_checks(memory):
        ok = value >= goal if op == ">=" else value <= goal
        print(f"  {'PASS' if ok else 'MISS'}  {label}: {value:.2f} (goal {op} {goal:g})")
    for result in memory:
        if result.rewound is not None:
            flags = result.rewound and bool(result.ok)
            print(f"  {'PASS' if flags else 'MISS'}  {result.what}: file rewound, signature ok")
    if signing:
        invalid = [row.impl for row in signing if row.ok is False]
        print(
            f"  {'MISS' if invalid else 'PASS'}  every timed signature verifies with botocore"
            + (f" (not: {', '.join(invalid)})" if invalid else "")
        )


def profile(client: str, seconds: float) -> None:
    """cProfile our adapter on the GET through one client (no token)."""
    impl = next(i for i in implementations(None) if i.name == f"ours ({client})")
    n = calibrate(impl.sign, seconds)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in itertools.repeat(None, n):
        impl.sign()
    profiler.disable()
    print(f"cProfile of {impl.name} on the GET, {n} calls (times include profiler overhead):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


def _versions() -> str:
    names = {
        "requests": requests.__version__,
        "httpx": httpx.__version__,
        "botocore": botocore.__version__,
    }
    from importlib.metadata import version  # noqa: PLC0415 - only for the header line

    for dist in ("requests-aws4auth", "aws-requests-auth", "httpx-auth", "httpx-aws-auth"):
        names[dist] = version(dist)
    return ", ".join(f"{k} {v}" for k, v in names.items())


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure the three parts, print the report; exit 0 whatever the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (rough numbers)")
    parser.add_argument("--target", type=float, default=0.15, help="seconds per timing repeat")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per signing timing")
    parser.add_argument("--requests", type=int, default=3000, help="loopback requests per auth")
    parser.add_argument("--profile", choices=("requests", "httpx"), help="cProfile ours instead")
    parser.add_argument(
        "--parts", default="123", help="which parts to run, e.g. 2 for the loopback only"
    )
    parser.add_argument("--rss-child", nargs=2, metavar=("CLIENT", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-ok", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_ok:
        serve_ok()
        return 0
    warnings.simplefilter("ignore", DeprecationWarning)  # peers call datetime.utcnow()
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    if args.profile:
        profile(args.profile, 1.0)
        return 0
    target, repeats = (0.02, 3) if args.quick else (args.target, args.repeats)
    n = 300 if args.quick else args.requests
    print(f"python {sys.version.split()[0]}; {_versions()}", flush=True)

    signing: list[SignRow] = []
    trips: list[RoundTrip] = []
    memory: list[MemoryResult] = []
    if "1" in args.parts:
        print(f"\n1. sign {GET_URL}: median µs of {repeats} repeats x ~{target}s", flush=True)
        signing = measure_signing(target, repeats)
        print_signing(signing)
    if "2" in args.parts:
        print(f"\n2. loopback GET, median µs of {n} requests per auth, interleaved", flush=True)
        trips = measure_round_trips(n)
        print_round_trips(trips)
    if "3" in args.parts:
        print("\n3. signing a 100 MiB file body (no network)", flush=True)
        with tempfile.TemporaryDirectory() as directory:
            memory = measure_memory(make_file(directory))
        print_memory(memory)

    print_targets(signing, trips, memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
