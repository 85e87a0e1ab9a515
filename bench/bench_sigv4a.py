"""Benchmark: µs per SigV4a signature, ours against awscrt (botocore's only SigV4a path).

Run ``python bench/bench_sigv4a.py`` (``--quick`` for a short run). It is a report, not a test:
it always exits 0. Needs awscrt (botocore's ``v4a`` auth exists only where it is installed).

Method: the harness of bench_sign.py, in this one process (calibrated N per repeat of about
``--target`` seconds, ``--repeats`` repeats, GC off, implementations interleaved repeat by
repeat, median per call). Three requests, each to a new path on every call (``/pets/{n}``, n
counted per row, as a REST client calls ``/items/1``, ``/items/2``, ...): the GET of
bench_sign.py, the same GET with a 1,000-character session token, and a POST of a 1 KiB JSON
body. Region set ``us-east-1,eu-west-1``; static credentials; every clock is the real one.
Every row, the fixed costs included, formats its next URL inside its timing.

What one call does:

* ``ours SigV4a (requests)``: ``auth(fresh())``, ``fresh()`` a copy of a PreparedRequest
  prepared once (as bench_adapters.py; the ``requests: fresh()`` row is the copy's cost).
* ``ours SigV4a (httpx)``: ``next(auth.sync_auth_flow(httpx.Request(...)))``, the request
  built inside the timing (the ``httpx: Request()`` row is its cost).
* ``ours SigV4a sign()``: ``SigV4Signer.sign(method, url, headers=, body=)``.
* ``ours SigV4 ...``: the same three with ``region=`` instead of ``region_set=`` (our SigV4
  figure, for scale).
* ``botocore v4a (awscrt)``: ``botocore.auth.AUTH_TYPE_MAPS["v4a"]`` (``CrtSigV4AsymAuth``) on
  a fresh ``AWSRequest`` per call, as botocore signs SigV4a: the reference of the target.
* ``awscrt aws_sign_request``: awscrt without botocore: a fresh ``HttpRequest`` per call and one
  signing config, waiting on the future. The CRT's own floor.
* ``botocore v4 SigV4Auth``: botocore's SigV4, for scale.
* ``floor: ECDSA sign``: ``cryptography``'s P-256 ECDSA signature of a string to sign with a
  key already derived: the crypto a SigV4a signature cannot avoid.

The ratio columns are ``botocore v4a (awscrt) µs / this row's µs``: above 1 the row is faster
than awscrt's signer for the same request. Every row's output is checked once with our
verifier (``apigw_iam_auth.server.verify_request``: ECDSA with the key derived from the
secret, the region set including eu-west-1; HMAC for the SigV4 rows): ``ok`` column.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import requests
import requests.hooks
from bench_sign import (
    ACCESS_KEY,
    API,
    JSON_1K,
    REGION,
    SECRET_KEY,
    SERVICE,
    SESSION_TOKEN,
    median_ns,
)

from apigw_iam_auth import ApiGwIamAuth, SigV4Signer
from apigw_iam_auth._models import SignedRequest
from apigw_iam_auth._sigv4a import derive_private_key, sign
from apigw_iam_auth.server import KnownKey, VerificationError, verify_request

REGION_SET = ("us-east-1", "eu-west-1")
SERVER_REGION = "eu-west-1"  # where the verifier stands: in the set
Signature = Callable[[], object]
# (method, request-target, headers, body) as a server would receive the signed request.
Wire = tuple[str, str, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Case:
    """One request to sign, to a new URL each call: ``url`` has an ``{n}`` to fill."""

    label: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes | None
    token: str | None


GET_PATTERN = f"{API}/pets/{{n}}?limit=10&type=dog"
CASES = (
    Case("GET", "GET", GET_PATTERN, (), None, None),
    Case("GET + token", "GET", GET_PATTERN, (), None, SESSION_TOKEN),
    Case(
        "POST 1 KiB",
        "POST",
        f"{API}/pets/{{n}}",
        (("Content-Type", "application/json"),),
        JSON_1K,
        None,
    ),
)


def _filled(pattern: str) -> Iterator[str]:
    """``pattern`` with n = 0, 1, 2, ...: a URL (or target) not signed before, per row."""
    return map(pattern.format_map, ({"n": n} for n in itertools.count()))


@dataclass(frozen=True)
class Impl:
    """One way to sign: ``sigv4a`` tells which verifier region applies; ``read`` gives the wire."""

    name: str
    client: str  # requests, httpx, signer, botocore, awscrt, or "-" for a fixed cost / floor
    sign: Signature
    read: Callable[[object], Wire] | None
    sigv4a: bool = False


def _creds(case: Case) -> tuple[str, ...]:
    return (ACCESS_KEY, SECRET_KEY) if case.token is None else (ACCESS_KEY, SECRET_KEY, case.token)


def _scope(*, sigv4a: bool) -> dict[str, Any]:
    return {"region_set": REGION_SET} if sigv4a else {"region": REGION}


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _with_host(url: str, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    pairs = list(headers.items())
    if not any(name.lower() == "host" for name, _ in pairs):
        pairs.insert(0, ("Host", urlsplit(url).netloc))  # requests adds it when sending
    return pairs


# --- our three entry points ---------------------------------------------------------------------


def _ours_requests(case: Case, *, sigv4a: bool) -> Impl:
    auth = ApiGwIamAuth(credentials=_creds(case), **_scope(sigv4a=sigv4a))
    template = requests.Request(
        case.method, case.url.format(n=0), headers=dict(case.headers), data=case.body
    ).prepare()
    hooks, urls = requests.hooks.default_hooks, _filled(case.url)

    def call() -> object:
        prepared = template.copy()
        prepared.url = next(urls)  # plain ASCII: already in the form prepare_url gives
        prepared.hooks = hooks()
        return auth(prepared)

    def read(result: object) -> Wire:
        assert isinstance(result, requests.PreparedRequest)
        url = result.url or ""
        body = result.body if isinstance(result.body, bytes) else b""
        return result.method or "", _target(url), _with_host(url, result.headers), body

    label = "SigV4a" if sigv4a else "SigV4"
    return Impl(f"ours {label} (requests)", "requests", call, read, sigv4a=sigv4a)


def _ours_httpx(case: Case, *, sigv4a: bool) -> Impl:
    auth = ApiGwIamAuth(credentials=_creds(case), **_scope(sigv4a=sigv4a))
    request_type = httpx.Request
    method, urls, headers, body = case.method, _filled(case.url), dict(case.headers), case.body

    def call() -> object:
        request = request_type(method, next(urls), headers=headers, content=body)
        return next(auth.sync_auth_flow(request))

    def read(result: object) -> Wire:
        assert isinstance(result, httpx.Request)
        return (
            result.method,
            result.url.raw_path.decode("ascii"),
            list(result.headers.items()),
            result.content,
        )

    label = "SigV4a" if sigv4a else "SigV4"
    return Impl(f"ours {label} (httpx)", "httpx", call, read, sigv4a=sigv4a)


def _ours_signer(case: Case, *, sigv4a: bool) -> Impl:
    signer = SigV4Signer(credentials=_creds(case), **_scope(sigv4a=sigv4a))
    method, urls, headers, body = case.method, _filled(case.url), dict(case.headers), case.body

    def call() -> object:
        return signer.sign(method, next(urls), headers=headers, body=body)

    def read(result: object) -> Wire:
        assert isinstance(result, SignedRequest)
        return (
            result.method,
            _target(result.url),
            _with_host(result.url, result.headers),
            result.body or b"",
        )

    label = "SigV4a" if sigv4a else "SigV4"
    return Impl(f"ours {label} sign()", "signer", call, read, sigv4a=sigv4a)


# --- awscrt and botocore ------------------------------------------------------------------------


def _botocore(case: Case, *, sigv4a: bool) -> Impl:
    credentials = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY, case.token)
    if sigv4a:
        auth = botocore.auth.AUTH_TYPE_MAPS["v4a"](credentials, SERVICE, ",".join(REGION_SET))
    else:
        auth = botocore.auth.SigV4Auth(credentials, SERVICE, REGION)
    request_type = botocore.awsrequest.AWSRequest
    method, urls, headers, body = case.method, _filled(case.url), case.headers, case.body

    def call() -> object:
        request = request_type(method=method, url=next(urls), headers=dict(headers), data=body)
        auth.add_auth(request)
        return request

    def read(result: object) -> Wire:
        assert isinstance(result, botocore.awsrequest.AWSRequest)
        return (
            result.method,
            _target(result.url),
            _with_host(result.url, dict(result.headers.items())),
            case.body or b"",
        )

    name = "botocore v4a (awscrt)" if sigv4a else "botocore v4 SigV4Auth"
    return Impl(name, "botocore", call, read, sigv4a=sigv4a)


def _awscrt(case: Case) -> Impl:
    from awscrt import auth as crt_auth  # noqa: PLC0415 - optional: only this row needs it
    from awscrt import http as crt_http  # noqa: PLC0415

    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4_ASYMMETRIC,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(
            ACCESS_KEY, SECRET_KEY, case.token
        ),
        region=",".join(REGION_SET),
        service=SERVICE,
    )
    targets = _filled(_target(case.url))
    headers = [("Host", urlsplit(case.url).netloc), *case.headers]
    body, method = case.body, case.method
    request_type, headers_type, sign_request = (
        crt_http.HttpRequest,
        crt_http.HttpHeaders,
        crt_auth.aws_sign_request,
    )

    def call() -> object:
        request = request_type(
            method, next(targets), headers_type(headers), BytesIO(body) if body else None
        )
        return sign_request(request, config).result()

    def read(result: object) -> Wire:
        assert isinstance(result, crt_http.HttpRequest)
        return method, result.path, list(result.headers), body or b""

    return Impl("awscrt aws_sign_request", "awscrt", call, read, sigv4a=True)


def _fixed_costs(case: Case) -> list[Impl]:
    template = requests.Request(
        case.method, case.url.format(n=0), headers=dict(case.headers), data=case.body
    ).prepare()
    hooks = requests.hooks.default_hooks
    method, headers, body = case.method, dict(case.headers), case.body
    fresh_urls, httpx_urls, aws_urls = (_filled(case.url) for _ in range(3))

    def fresh() -> object:
        prepared = template.copy()
        prepared.url = next(fresh_urls)
        prepared.hooks = hooks()
        return prepared

    aws_request = botocore.awsrequest.AWSRequest
    from awscrt import http as crt_http  # noqa: PLC0415 - optional, as in _awscrt

    targets = _filled(_target(case.url))
    crt_headers = [("Host", urlsplit(case.url).netloc), *case.headers]

    def crt_request() -> object:
        return crt_http.HttpRequest(
            method,
            next(targets),
            crt_http.HttpHeaders(crt_headers),
            BytesIO(body) if body else None,
        )

    key = derive_private_key(ACCESS_KEY, SECRET_KEY)
    string_to_sign = (
        "AWS4-ECDSA-P256-SHA256\n20260509T123456Z\n20260509/execute-api/aws4_request\n"
        "cf59db423e841c8b7e3444158185aa261b724a5c27cbe762676f3eed19f4dc02"
    )
    return [
        Impl("requests: fresh()", "-", fresh, None),
        Impl(
            "httpx: Request()",
            "-",
            lambda: httpx.Request(method, next(httpx_urls), headers=headers, content=body),
            None,
        ),
        Impl(
            "botocore: AWSRequest()",
            "-",
            lambda: aws_request(
                method=method, url=next(aws_urls), headers=dict(headers), data=body
            ),
            None,
        ),
        Impl("awscrt: HttpRequest()", "-", crt_request, None),
        Impl("floor: ECDSA sign", "-", lambda: sign(key, string_to_sign), None, sigv4a=True),
    ]


def implementations(case: Case) -> list[Impl]:
    """Every row for one request, ours first."""
    impls = []
    for sigv4a in (True, False):
        impls += [
            _ours_requests(case, sigv4a=sigv4a),
            _ours_httpx(case, sigv4a=sigv4a),
            _ours_signer(case, sigv4a=sigv4a),
        ]
    impls += [_botocore(case, sigv4a=True), _awscrt(case), _botocore(case, sigv4a=False)]
    return impls + _fixed_costs(case)


# --- correctness: our verifier ------------------------------------------------------------------


def verified(impl: Impl, case: Case) -> bool | None:
    """True when our verifier accepts one output of ``impl`` (None for a fixed cost)."""
    if impl.read is None:
        return None
    method, target, headers, body = impl.read(impl.sign())
    try:
        verify_request(
            method,
            target,
            headers,
            body,
            lookup={ACCESS_KEY: KnownKey(SECRET_KEY, token=case.token)}.get,
            region=SERVER_REGION if impl.sigv4a else REGION,
            now=datetime.now(timezone.utc),
        )
    except VerificationError as exc:
        print(f"  ! {impl.name} / {case.label}: refused: {exc}", file=sys.stderr)
        return False
    return True


# --- report -------------------------------------------------------------------------------------

REFERENCE = "botocore v4a (awscrt)"


def measure(
    target_s: float, repeats: int
) -> tuple[dict[str, dict[str, float]], dict[str, str], dict[str, str]]:
    """µs per call of every row for every case, each row's verdict, and each row's client."""
    timings: dict[str, dict[str, float]] = {}
    verdicts: dict[str, list[bool | None]] = {}
    clients: dict[str, str] = {}
    for case in CASES:
        impls = implementations(case)
        for impl in impls:
            clients[impl.name] = impl.client
            verdicts.setdefault(impl.name, []).append(verified(impl, case))
        ns = median_ns({impl.name: impl.sign for impl in impls}, target_s, repeats)
        for name, value in ns.items():
            timings.setdefault(name, {})[case.label] = value / 1000
    shown = {
        name: "-" if all(v is None for v in values) else ("yes" if all(values) else "NO")
        for name, values in verdicts.items()
    }
    return timings, shown, clients


# Each client's own request object, built inside its row's timing: subtracted for the net view.
FIXED_COST = {
    "requests": "requests: fresh()",
    "httpx": "httpx: Request()",
    "botocore": "botocore: AWSRequest()",
    "awscrt": "awscrt: HttpRequest()",
}


def net_timings(
    timings: dict[str, dict[str, float]], clients: dict[str, str]
) -> dict[str, dict[str, float]]:
    """Each signing row less its client's request object (sign() starts from strings: as is)."""
    net = {}
    for name, row in timings.items():
        client = clients[name]
        if client == "-":
            continue
        fixed = timings[FIXED_COST[client]] if client in FIXED_COST else None
        net[name] = {
            label: value - (fixed[label] if fixed is not None else 0.0)
            for label, value in row.items()
        }
    return net


def markdown(timings: dict[str, dict[str, float]], verdicts: dict[str, str]) -> str:
    """The table: µs per case, then awscrt's signer (via botocore) divided by each row."""
    labels = [case.label for case in CASES]
    head = ["implementation", *(f"{label} µs" for label in labels)]
    head += [f"CRT v4a ÷ row, {label}" for label in labels]
    head.append("verified")
    lines = [
        "| " + " | ".join(head) + " |",
        "| " + " | ".join(["---"] + ["---:"] * (2 * len(labels)) + ["---"]) + " |",
    ]
    reference = timings[REFERENCE]
    for name, row in timings.items():
        cells = [name, *(f"{row[label]:.1f}" for label in labels)]
        cells += [f"{reference[label] / row[label]:.2f}x" for label in labels]
        cells.append(verdicts.get(name, "-"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict_lines(
    timings: dict[str, dict[str, float]], net: dict[str, dict[str, float]]
) -> list[str]:
    """The issue's target, row by row: a SigV4a signature through our adapters beats awscrt's.

    Judged as measured (each client's request object inside its timing) and net of it.
    """
    lines = []
    for name in ("ours SigV4a (requests)", "ours SigV4a (httpx)", "ours SigV4a sign()"):
        for case in CASES:
            parts = []
            for view, table in (("as measured", timings), ("net", net)):
                ours, crt = table[name][case.label], table[REFERENCE][case.label]
                verdict = "met" if ours < crt else "MISSED"
                parts.append(f"{view} {ours:.1f} vs {crt:.1f} µs ({crt / ours:.2f}x, {verdict})")
            lines.append(f"- {name}, {case.label}: " + "; ".join(parts))
        sigv4 = name.replace("SigV4a", "SigV4")
        extra = [timings[name][c.label] - timings[sigv4][c.label] for c in CASES]
        lines.append(
            f"  SigV4a over our SigV4 on this route: +{min(extra):.1f} to +{max(extra):.1f} µs"
        )
    return lines


def _versions() -> str:
    from importlib.metadata import version  # noqa: PLC0415 - only for the header line

    names = ["botocore", "awscrt", "cryptography", "requests", "httpx"]
    return ", ".join(f"{name} {version(name)}" for name in names)


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print the table and the target's verdict; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (rough numbers)")
    parser.add_argument("--target", type=float, default=0.15, help="seconds per timing repeat")
    parser.add_argument("--repeats", type=int, default=7, help="repeats per timing")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import awscrt  # noqa: F401, PLC0415 - only to say it is missing
    except ImportError:
        print("awscrt is not installed: botocore has no SigV4a to compare with; nothing to do")
        return 0
    if "v4a" not in botocore.auth.AUTH_TYPE_MAPS:
        print(f"botocore {botocore.__version__} has no 'v4a' auth type; nothing to compare")
        return 0
    target, repeats = (0.02, 3) if args.quick else (args.target, args.repeats)
    print(f"python {sys.version.split()[0]}; {_versions()}")
    print(
        f"region set {','.join(REGION_SET)}; median µs per signature of {repeats} repeats "
        f"x ~{target}s; verified by apigw_iam_auth.server.verify_request\n",
        flush=True,
    )
    try:
        timings, verdicts, clients = measure(target, repeats)
    except Exception as exc:  # noqa: BLE001 - a report: say what broke, exit 0
        print(f"benchmark failed: {type(exc).__name__}: {exc}")
        return 0
    net = net_timings(timings, clients)
    print("As measured (each client's request object built inside the timing):\n")
    print(markdown(timings, verdicts))
    print(
        "\nNet of the client's request object (fresh(), Request(), AWSRequest(), HttpRequest()):\n"
    )
    print(markdown(net, verdicts))
    print()
    print("\n".join(verdict_lines(timings, net)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
