"""Soak: many signed requests through ONE ApiGwIamAuth with rotating credentials; memory stays flat.

Run ``python bench/soak.py`` (100,000 requests), ``--quick`` (5,000) or ``--requests N``.
Not a test (it lives outside ``tests/``): it takes about a minute and exits 1 when a request
failed or the client's RSS grew by 5 MiB or more between the 10,000th request and the last.

* One ``ApiGwIamAuth`` is shared by ``--threads`` threads (default 4), each with its own
  keep-alive ``requests.Session``. Every request has a different path and query (every fourth
  is a POST with a JSON body), so any per-URL cache that were unbounded would show as growth.
* Credentials come from a plain function (``credentials=rotate``), the way rotating STS keys
  arrive: each call returns the next of ``KEY_COUNT`` key pairs with an expiry
  ``--lifetime-ms`` ahead, and ``CallableProvider`` calls it again halfway to that expiry.
  Rotation is therefore by time, not by request count (a result without an expiry would be kept
  for good). ``KEY_COUNT`` is above the signing-key cache's size, so that cache is evicted and
  refilled all along.
* The verifying server is :class:`apigw_iam_auth.server.IamAuthServer` in a child process that
  knows every key pair: the RSS measured is the client's alone, and the server gets its own
  core. Its RSS is printed too, for information.
* RSS is read from ``/proc/<pid>/statm`` after ``gc.collect()``, by the thread that completes
  the baseline request (the 10,000th, or a tenth of a shorter run) and the last one.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import multiprocessing
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from apigw_iam_auth import ApiGwIamAuth, Credentials
from apigw_iam_auth.server import IamAuthServer, KnownKey

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

REGION = "us-east-1"
KEY_COUNT = 200  # more than derive_signing_key's lru_cache (64)
BASELINE = 10_000
MAX_GROWTH = 5 * 1024 * 1024
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def key_pairs() -> list[tuple[str, str]]:
    """The same fake key pairs in both processes, derived from their index."""
    return [
        (f"AKIDSOAK{n:08d}", hashlib.sha256(f"soak-secret-{n}".encode()).hexdigest()[:40])
        for n in range(KEY_COUNT)
    ]


def rss(pid: int | str = "self") -> int:
    """Resident set size in bytes (second field of statm, in pages)."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def serve(conn: Connection) -> None:
    """Child process: serve until the parent sends anything down ``conn``."""
    keys = {access: KnownKey(secret) for access, secret in key_pairs()}
    with IamAuthServer(keys=keys, region=REGION) as server:
        conn.send(server.url)
        conn.recv()


class Rotation:
    """The credentials function: the next key pair on each call, expiring ``lifetime`` later."""

    def __init__(self, lifetime: timedelta) -> None:
        self._pairs = itertools.cycle(key_pairs())
        self._lifetime = lifetime
        self.calls = 0

    def __call__(self) -> Credentials:
        self.calls += 1
        access, secret = next(self._pairs)
        return Credentials(access, secret, expiry=datetime.now(timezone.utc) + self._lifetime)


@dataclass
class Run:
    """Shared progress of all worker threads."""

    total: int
    baseline_at: int
    tickets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    done: int = 0
    failures: int = 0
    failure_samples: list[str] = field(default_factory=list)
    rss_baseline: int = 0
    rss_end: int = 0
    server_rss: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def request_for(n: int, base: str) -> tuple[str, str, bytes | None]:
    """A different URL for every request; every fourth is a POST with a body."""
    url = f"{base}/prod/items/{n}/detail?page={n % 97}&q=soak%20{n}"
    if n % 4 == 0:
        return "POST", url, b'{"n": %d}' % n
    return "GET", url, None


def worker(run: Run, auth: ApiGwIamAuth, base: str, server_pid: int, rotation: Rotation) -> None:
    with requests.Session() as session:
        session.trust_env = False
        while (n := next(run.tickets)) <= run.total:
            method, url, body = request_for(n, base)
            problem = None
            try:
                response = session.request(method, url, data=body, auth=auth, timeout=30)
                if response.status_code != 200:
                    error = response.headers.get("x-amzn-ErrorType", "")
                    problem = f"#{n}: HTTP {response.status_code} {error}"
            except requests.RequestException as exc:
                problem = f"#{n}: {type(exc).__name__}"
            finished(run, problem, server_pid, rotation)


def finished(run: Run, problem: str | None, server_pid: int, rotation: Rotation) -> None:
    with run.lock:
        run.done += 1
        done = run.done
        if problem is not None:
            run.failures += 1
            if len(run.failure_samples) < 10:
                run.failure_samples.append(problem)
    if done in (run.baseline_at, run.total):
        gc.collect()
        sample = rss()
        server_sample = rss(server_pid)
        if done == run.baseline_at:
            run.rss_baseline, run.server_rss["baseline"] = sample, server_sample
        if done == run.total:
            run.rss_end, run.server_rss["end"] = sample, server_sample
    if done % max(run.total // 10, 1) == 0:
        elapsed = time.perf_counter() - run.started
        print(
            f"{done * 100 // run.total:4d}%  {done:>9,} requests  {done / elapsed:7,.0f} req/s  "
            f"rss {rss() / MIB:6.1f} MiB  failures {run.failures}  "
            f"credential loads {rotation.calls}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000, help="how many (100,000)")
    parser.add_argument("--quick", action="store_true", help="5,000 requests")
    parser.add_argument("--threads", type=int, default=4, help="client threads (4)")
    parser.add_argument(
        "--lifetime-ms", type=int, default=200, help="credential lifetime; reloaded at half"
    )
    args = parser.parse_args(argv)
    total = 5_000 if args.quick else args.requests
    if total < 10:
        parser.error("--requests must be at least 10")
    baseline_at = BASELINE if total >= 2 * BASELINE else total // 10

    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    server = context.Process(target=serve, args=(child_end,), name="soak-server")
    server.start()
    try:
        base = parent_end.recv()
        rotation = Rotation(timedelta(milliseconds=args.lifetime_ms))
        auth = ApiGwIamAuth(region=REGION, credentials=rotation)
        run = Run(total=total, baseline_at=baseline_at)
        print(
            f"soak: {total:,} requests, {args.threads} threads, one ApiGwIamAuth, "
            f"{KEY_COUNT} rotating key pairs (lifetime {args.lifetime_ms} ms), server {base}",
            flush=True,
        )
        threads = [
            threading.Thread(target=worker, args=(run, auth, base, server.pid, rotation))
            for _ in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - run.started
    finally:
        parent_end.send("stop")
        server.join(timeout=30)
        parent_end.close()

    growth = run.rss_end - run.rss_baseline
    server_growth = run.server_rss["end"] - run.server_rss["baseline"]
    print(f"requests:   {run.done:,} in {elapsed:.1f} s = {run.done / elapsed:,.0f} req/s")
    print(f"failures:   {run.failures}" + "".join(f"\n  {s}" for s in run.failure_samples))
    print(f"rotations:  {rotation.calls} credential loads")
    print(
        f"client rss: {run.rss_baseline / MIB:.2f} MiB at request {baseline_at:,}, "
        f"{run.rss_end / MIB:.2f} MiB at request {total:,}: growth {growth / MIB:+.2f} MiB "
        f"(limit {MAX_GROWTH / MIB:.0f})"
    )
    print(
        f"server rss: {run.server_rss['baseline'] / MIB:.2f} -> {run.server_rss['end'] / MIB:.2f}"
        f" MiB ({server_growth / MIB:+.2f}, for information)"
    )
    ok = run.failures == 0 and growth < MAX_GROWTH
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
