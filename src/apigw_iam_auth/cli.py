"""The ``apigw-iam-auth`` command: presign links, make signed calls, serve and demo offline.

Exit codes: 0 success; 1 an HTTP error status from ``call`` or a failed ``demo`` step;
2 a usage, configuration or credentials error (message on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from apigw_iam_auth.errors import ApiGwIamAuthError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

PROG = "apigw-iam-auth"
EXIT_OK, EXIT_HTTP_ERROR, EXIT_USAGE = 0, 1, 2
_HTTP_ERROR_STATUS = 400


def _aws_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("AWS options")
    group.add_argument("--region", help="AWS region (default: read off the API's hostname)")
    group.add_argument("--profile", help="profile from ~/.aws/config (default: AWS_PROFILE)")
    group.add_argument("--service", default="execute-api", help="signing name (execute-api)")
    return parent


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        msg = f"header must look like 'Name: value', got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return name.strip(), value.strip()


def _build_parser() -> argparse.ArgumentParser:
    aws = _aws_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Call and presign AWS API Gateway APIs protected by IAM (SigV4) auth.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    presign = commands.add_parser(
        "presign", parents=[aws], help="print a presigned URL", description="Print a presigned URL."
    )
    presign.add_argument("url")
    presign.add_argument("--method", default="GET", help="HTTP method the link is for (GET)")
    presign.add_argument("--expires", type=int, default=900, help="seconds, 1..604800 (900)")
    presign.add_argument("-H", "--header", type=_header, action="append", default=[])

    call = commands.add_parser(
        "call",
        parents=[aws],
        help="send a signed request and print the response",
        description="Send a signed request and print the response body (like curl).",
    )
    call.add_argument("method")
    call.add_argument("url")
    call.add_argument("-H", "--header", type=_header, action="append", default=[])
    call.add_argument("-d", "--data", help="request body; @FILE reads it from FILE")
    call.add_argument("--presign", action="store_true", help="sign in the URL, not a header")
    call.add_argument("--expires", type=int, default=900, help="presigned lifetime (900)")
    call.add_argument("-i", "--include", action="store_true", help="print status and headers")

    serve = commands.add_parser(
        "serve",
        help="run a local server that authenticates like API Gateway with IAM auth",
        description="Run a local server that verifies SigV4 like API Gateway and echoes requests.",
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--region", default="us-east-1")
    serve.add_argument("--credentials", type=Path, help="file of known keys (default: env)")
    serve.add_argument("--policy", type=Path, help="IAM policy JSON to evaluate per request")

    commands.add_parser(
        "demo",
        help="run an offline end-to-end demo against an in-process server",
        description="Start a local IAM-auth server and show signed calls accepted and rejected.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also the console script entry)."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "presign":
            return _presign(args, sys.stdout)
        if args.command == "call":
            return _call(args, sys.stdout, sys.stderr)
        if args.command == "serve":
            return _serve(args)
        return _demo(sys.stdout)
    except (ApiGwIamAuthError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _presign(args: argparse.Namespace, out: TextIO) -> int:
    from apigw_iam_auth.presign import presign_url  # noqa: PLC0415 - fast --help

    url = presign_url(
        args.url,
        method=args.method,
        expires=args.expires,
        region=args.region,
        service=args.service,
        profile=args.profile,
        headers=args.header,
    )
    print(url, file=out)
    return EXIT_OK


def _call(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import httpx  # noqa: PLC0415 - fast --help

    from apigw_iam_auth.auth import ApiGwIamAuth  # noqa: PLC0415
    from apigw_iam_auth.diagnostics import redact  # noqa: PLC0415

    body: bytes | None = None
    if args.data is not None:
        body = Path(args.data[1:]).read_bytes() if args.data.startswith("@") else args.data.encode()
    auth = ApiGwIamAuth(
        region=args.region,
        service=args.service,
        profile=args.profile,
        presign=args.presign,
        expires=args.expires,
    )
    with httpx.Client(auth=auth, timeout=30.0) as client:
        try:
            response = client.request(
                args.method.upper(), args.url, headers=args.header, content=body
            )
        except httpx.HTTPError as exc:
            # httpx puts the URL in its messages: a presigned one is a credential.
            print(f"{PROG}: error: {type(exc).__name__}: {redact(str(exc))}", file=err)
            return EXIT_HTTP_ERROR
        except (httpx.InvalidURL, UnicodeError) as exc:  # the request could not be built
            print(f"{PROG}: error: {type(exc).__name__}: {redact(str(exc))}", file=err)
            return EXIT_USAGE
    if args.include:
        print(f"{response.http_version} {response.status_code} {response.reason_phrase}", file=out)
        for name, value in response.headers.multi_items():
            print(f"{name}: {value}", file=out)
        print(file=out)
    out.write(response.text)
    if response.text and not response.text.endswith("\n"):
        out.write("\n")
    if response.status_code >= _HTTP_ERROR_STATUS:
        print(f"{PROG}: HTTP {response.status_code}", file=err)
        return EXIT_HTTP_ERROR
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from apigw_iam_auth.server._http import (  # noqa: PLC0415 - fast --help
        IamAuthServer,
        keys_from_env,
        load_keys,
        load_policy,
    )

    keys = load_keys(args.credentials) if args.credentials else keys_from_env()
    policy = load_policy(args.policy) if args.policy else None
    server = IamAuthServer(args.host, args.port, region=args.region, keys=keys, policy=policy)
    print(
        f"{PROG}: {len(keys)} known key(s), region {args.region}"
        f"{', policy ' + str(args.policy) if policy else ''}; Ctrl-C stops",
        file=sys.stderr,
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(on_ready=lambda url: print(f"listening on {url}", flush=True))
    return EXIT_OK


def _demo(out: TextIO) -> int:
    from apigw_iam_auth.server._demo import run_demo  # noqa: PLC0415 - fast --help

    return EXIT_OK if run_demo(out) else EXIT_HTTP_ERROR
