"""Benchmark: microseconds per SigV4 signature, ours against botocore and the crypto floor.

Run ``python bench/bench_sign.py`` (``--quick`` for a short run, ``--profile get`` for a cProfile
of our signer on one case). It is a report, not a test: it always exits 0.

Method. Every implementation is measured in this one process on the same cases. A measurement
is ``timeit``-style: calibrate N so one repeat of N calls takes about ``--target`` seconds (0.15;
the 10 MiB body thus gets few calls per repeat), run ``--repeats`` (7) repeats with the garbage
collector off, interleaving the implementations of a case repeat by repeat, and report the median
time per call. The loop overhead (one Python call, ~30-50 ns) is included everywhere alike.

What one call does, per implementation:

* ``ours``: ``SigV4Signer.sign(method, url, headers=, body=, timestamp=FIXED)`` or ``.presign``.
  Everything from the raw URL to the signed headers / URL is inside the timing.
* ``botocore``: build a fresh ``AWSRequest(method, url, headers, data)`` and call
  ``SigV4Auth.add_auth`` (header) or ``SigV4QueryAuth.add_auth`` (presign). Request
  construction is INSIDE the timing, because our ``sign()`` also starts from method/url/headers/
  body. botocore reads the clock itself (it cannot be given a timestamp); that is its cost.
* ``floor``: the crypto a SigV4 signature cannot avoid: SHA-256 of the body (hashlib), SHA-256 of
  a representative canonical request (ours, for the same case), the string to sign, and one HMAC
  with a cached signing key (``hmac.digest``).
* ``sha256(body)``: raw ``hashlib.sha256(body).hexdigest()``; for the large body, our throughput
  is reported as a percentage of it.

Extending: append to ``IMPLEMENTATIONS`` an ``Impl(name, kind, factory)`` whose factory takes a
``Case`` and returns a zero-argument callable that signs it (or None when it does not apply),
e.g. the requests/httpx adapters or peer libraries (requests-aws4auth, aws-requests-auth).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import hashlib
import hmac
import itertools
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from apigw_iam_auth import SignatureLocation, SigV4Signer
from apigw_iam_auth._models import SignableRequest
from apigw_iam_auth._uri import parse_origin, parse_query, wire_parts

REGION = "ap-northeast-1"
SERVICE = "execute-api"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
# Real STS session tokens are base64 and run to about a thousand characters; their length and
# their '+', '/', '=' matter to presigning, where the token is percent-encoded into the query.
SESSION_TOKEN = base64.b64encode(hashlib.sha512(b"token").digest() * 12).decode()[:1000]
FIXED = datetime(2026, 5, 9, 12, 34, 56, tzinfo=timezone.utc)
EXPIRES = 900
API = "https://abc123.execute-api.ap-northeast-1.amazonaws.com/prod"
GET_URL = f"{API}/pets?limit=10&type=dog"
JSON_1K = (b'{"name":"rex","type":"dog","notes":"' + b"x" * 987 + b'"}')[:1024]
BODY_10M = bytes(range(256)) * (10 * 1024 * 1024 // 256)

Signature = Callable[[], object]


@dataclass(frozen=True)
class Case:
    """One request to sign, in the form every implementation starts from."""

    name: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    presign: bool
    token: str | None

    @property
    def big(self) -> bool:
        """Large-body cases get fewer repeats and a throughput line."""
        return self.body is not None and len(self.body) >= 1024 * 1024


def _cases() -> list[Case]:
    base = [
        ("get", "GET", GET_URL, (), None, False),
        (
            "post-1KiB",
            "POST",
            f"{API}/pets",
            (("Content-Type", "application/json"),),
            JSON_1K,
            False,
        ),
        (
            "post-10MiB",
            "PUT",
            f"{API}/blobs/1",
            (("Content-Type", "application/octet-stream"),),
            BODY_10M,
            False,
        ),
        ("presign", "GET", GET_URL, (), None, True),
    ]
    return [
        Case(name + suffix, method, url, headers, body, presign, token)
        for name, method, url, headers, body, presign in base
        for suffix, token in (("", None), ("+token", SESSION_TOKEN))
    ]


CASES = _cases()


# --- implementations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """A way to sign a case. ``kind``: "ours", "peer" (ratio peer/ours) or "floor" (ours/floor)."""

    name: str
    kind: str
    factory: Callable[[Case], Signature | None]


def _our_signer(case: Case) -> SigV4Signer:
    creds = (ACCESS_KEY, SECRET_KEY) if case.token is None else (ACCESS_KEY, SECRET_KEY, case.token)
    return SigV4Signer(credentials=creds, region=REGION)


def ours(case: Case) -> Signature:
    """Our public entry points, exactly as a user calls them."""
    signer = _our_signer(case)
    method, url, headers, body = case.method, case.url, dict(case.headers), case.body
    if case.presign:
        return lambda: signer.presign(
            method, url, headers=headers or None, expires=EXPIRES, timestamp=FIXED, body=body
        )
    return lambda: signer.sign(method, url, headers=headers, body=body, timestamp=FIXED)


def _botocore_auth(case: Case) -> botocore.auth.SigV4Auth:
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, case.token)
    if case.presign:
        return botocore.auth.SigV4QueryAuth(creds, SERVICE, REGION, expires=EXPIRES)
    return botocore.auth.SigV4Auth(creds, SERVICE, REGION)


def _botocore_request(case: Case) -> botocore.awsrequest.AWSRequest:
    return botocore.awsrequest.AWSRequest(
        method=case.method, url=case.url, headers=dict(case.headers), data=case.body
    )


def botocore_sigv4(case: Case) -> Signature:
    """botocore's pure-Python signer, fresh AWSRequest per call (construction timed)."""
    auth = _botocore_auth(case)
    method, url, headers, body = case.method, case.url, case.headers, case.body
    request_type = botocore.awsrequest.AWSRequest

    def sign() -> object:
        request = request_type(method=method, url=url, headers=dict(headers), data=body)
        auth.add_auth(request)
        return request

    return sign


def _signing_key(date: str) -> bytes:
    key = hmac.digest(f"AWS4{SECRET_KEY}".encode(), date.encode(), "sha256")
    for part in (REGION, SERVICE, "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def _canonical_request(case: Case) -> str:
    """Our canonical request for the case: the representative text the floor hashes."""
    origin, path, _, raw_query = wire_parts(case.url)
    request = SignableRequest(
        method=case.method,
        path=path,
        query=parse_query(raw_query),
        headers=(("Host", parse_origin(origin).host), *case.headers),
        payload_hash=hashlib.sha256(case.body or b"").hexdigest(),
    )
    location = SignatureLocation.QUERY if case.presign else SignatureLocation.HEADERS
    result = _our_signer(case).sign_request(
        request, location=location, expires=EXPIRES, timestamp=FIXED
    )
    return result.canonical_request


def crypto_floor(case: Case) -> Signature:
    """Unavoidable work: hash the body, hash the canonical request, one HMAC (cached key)."""
    canonical = _canonical_request(case)
    date_time = FIXED.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{date_time[:8]}/{REGION}/{SERVICE}/aws4_request"
    key = _signing_key(date_time[:8])
    body = case.body or b""
    sha256, digest = hashlib.sha256, hmac.digest

    def sign() -> object:
        sha256(body).hexdigest()
        digest_hex = sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{date_time}\n{scope}\n{digest_hex}"
        return digest(key, to_sign.encode(), "sha256").hex()

    return sign


def raw_body_hash(case: Case) -> Signature | None:
    """hashlib alone over the body: the ceiling for large-body throughput."""
    if not case.big:
        return None
    body, sha256 = case.body or b"", hashlib.sha256
    return lambda: sha256(body).hexdigest()


IMPLEMENTATIONS: list[Impl] = [
    Impl("ours", "ours", ours),
    Impl("botocore", "peer", botocore_sigv4),
    Impl("floor", "floor", crypto_floor),
    Impl("sha256(body)", "floor", raw_body_hash),
]


# --- timing ----------------------------------------------------------------------------------


def _run(fn: Signature, n: int) -> int:
    """Nanoseconds for ``n`` calls of ``fn``, garbage collector off (as timeit does)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            fn()
        return time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(fn: Signature, target_s: float) -> int:
    """N such that N calls of ``fn`` take about ``target_s`` seconds (after one warm-up call)."""
    fn()  # warm caches (signing key, config, regexes) the way a long-lived client has them
    target = target_s * 1e9
    n = 1
    while True:
        elapsed = _run(fn, n)
        if elapsed >= target * 0.8:
            return n
        n = max(n + 1, min(n * 10, round(n * target / max(elapsed, 1))))


def median_ns(fns: dict[str, Signature], target_s: float, repeats: int) -> dict[str, float]:
    """Median ns per call of each function over ``repeats`` repeats of its N calls.

    The repeats are interleaved (one repeat of each function in turn), so that drift in the
    machine's speed (frequency scaling, neighbours) hits every function alike and the ratios
    between them stay honest.
    """
    sizes = {name: calibrate(fn, target_s) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            samples[name].append(_run(fn, sizes[name]) / sizes[name])
    return {name: statistics.median(values) for name, values in samples.items()}


# --- sanity: both sides compute the same signature -------------------------------------------


def _same_signature(case: Case) -> bool:
    """botocore and ours agree when ours signs at botocore's timestamp (same work compared)."""
    request = _botocore_request(case)
    _botocore_auth(case).add_auth(request)
    when = datetime.strptime(request.context["timestamp"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=timezone.utc
    )
    signer = _our_signer(case)
    if case.presign:
        theirs = parse_qs(urlsplit(request.url).query)["X-Amz-Signature"][0]
        url = signer.presign(case.method, case.url, expires=EXPIRES, timestamp=when, body=case.body)
        mine = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
        return theirs == mine
    signed = signer.sign(
        case.method, case.url, headers=dict(case.headers), body=case.body, timestamp=when
    )
    return request.headers["Authorization"] == signed.headers["Authorization"]


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """Median microseconds per implementation for one case (None: not applicable)."""

    case: Case
    us: dict[str, float | None]
    same: bool


def measure(cases: list[Case], target_s: float, repeats: int) -> list[Row]:
    """Time every implementation on every case."""
    rows = []
    for case in cases:
        fns = {impl.name: impl.factory(case) for impl in IMPLEMENTATIONS}
        timed = median_ns({k: f for k, f in fns.items() if f is not None}, target_s, repeats)
        timings = {name: (timed[name] / 1000 if name in timed else None) for name in fns}
        rows.append(Row(case, timings, _same_signature(case)))
    return rows


def _ratio(row: Row, impl: Impl) -> float | None:
    mine, other = row.us["ours"], row.us[impl.name]
    if mine is None or other is None:
        return None
    return other / mine if impl.kind == "peer" else mine / other


def print_table(rows: list[Row]) -> None:
    """One line per case: µs per implementation, then speedups vs peers and cost vs floors."""
    others = [impl for impl in IMPLEMENTATIONS if impl.kind != "ours"]
    head = ["case"] + [f"{impl.name} µs" for impl in IMPLEMENTATIONS]
    head += [f"{i.name}/ours" if i.kind == "peer" else f"ours/{i.name}" for i in others]
    head.append("same sig")
    table = [head]
    for row in rows:
        cells = [row.case.name]
        cells += [_fmt(row.us[impl.name], "{:.2f}") for impl in IMPLEMENTATIONS]
        cells += [_fmt(_ratio(row, impl), "{:.2f}x") for impl in others]
        cells.append("yes" if row.same else "NO")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for line in table:
        first, *rest = line
        cells = [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
        print("  ".join([first.ljust(widths[0]), *cells]))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def print_targets(rows: list[Row]) -> None:
    """The performance goals, each with PASS or MISS."""
    print("\ntargets:")
    for row in rows:
        name, us = row.case.name, row.us
        ours_us, boto_us, floor_us = us["ours"], us["botocore"], us["floor"]
        if ours_us is None or boto_us is None or floor_us is None:
            continue
        checks: list[tuple[str, float, float, str]] = []
        if row.case.presign:
            checks.append(("presign speedup vs botocore", boto_us / ours_us, 10, ">="))
        elif row.case.method == "GET":
            checks.append(("header speedup vs botocore", boto_us / ours_us, 10, ">="))
            checks.append(("header cost vs floor", ours_us / floor_us, 2.5, "<="))
        if row.case.big and us["sha256(body)"] is not None:
            raw = us["sha256(body)"]
            size_mb = len(row.case.body or b"") / 1e6
            print(
                f"  {name}: ours {size_mb / ours_us * 1e6 / 1e3:.2f} GB/s, "
                f"hashlib {size_mb / raw * 1e6 / 1e3:.2f} GB/s"
            )
            checks.append(("throughput % of hashlib", raw / ours_us * 100, 95, ">="))
        for label, value, goal, op in checks:
            ok = value >= goal if op == ">=" else value <= goal
            print(f"  {'PASS' if ok else 'MISS'}  {name}: {label} {value:.2f} (goal {op} {goal})")


def profile(case_name: str, seconds: float) -> None:
    """cProfile our signer on one case and print where the time goes."""
    case = next((c for c in CASES if c.name == case_name), None)
    if case is None:
        print(f"unknown case {case_name!r}; choose from {', '.join(c.name for c in CASES)}")
        return
    fn = ours(case)
    n = calibrate(fn, seconds)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in itertools.repeat(None, n):
        fn()
    profiler.disable()
    print(f"cProfile of ours on {case.name}, {n} calls (times include profiler overhead):")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print the report; exit 0 whatever the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (rough numbers)")
    parser.add_argument("--target", type=float, default=0.15, help="seconds per repeat")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per measurement")
    parser.add_argument("--case", action="append", help="only these cases (repeatable)")
    parser.add_argument("--profile", metavar="CASE", help="cProfile ours on CASE instead")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, 1.0)
        return 0
    target, repeats = (0.02, 3) if args.quick else (args.target, args.repeats)
    cases = [c for c in CASES if not args.case or c.name in args.case]
    print(
        f"python {sys.version.split()[0]}, botocore {botocore.__version__}; "
        f"median of {repeats} repeats x ~{target}s; µs per signature",
        flush=True,
    )
    rows = measure(cases, target, repeats)
    print()
    print_table(rows)
    print_targets(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
