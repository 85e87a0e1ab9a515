"""The ``apigw-iam-auth`` command: signed calls like curl, presigned links, a local server.

Exit status: 0 success; 1 the request failed (an HTTP error status, no connection, a timeout)
or a ``demo`` step failed; 2 a usage, configuration or credentials error, or output that cannot
be written (a full disk; a binary body, which curl too keeps off a terminal unless told ``-o -``);
70 a bug (reported in one line: please report it); 130 interrupted (Ctrl-C); 141 the output
was closed early (``| head``), as if ended by SIGPIPE. Errors are one line on stderr, in terms of
this command's flags, with tokens and signatures redacted; never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import itertools
import json
import logging
import math
import os
import platform
import re
import shlex
import socket
import ssl
import sys
import urllib.request
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, NoReturn, Protocol, TextIO, cast
from urllib.parse import urljoin, urlsplit

from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth._sigv4 import check_expires
from apigw_iam_auth.diagnostics import (
    explain_signature_mismatch,
    parse_signature_mismatch,
    readable_refusal,
    redact,
)
from apigw_iam_auth.errors import SEE_CAUSE, ApiGwIamAuthError, InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
    from typing import TypeAlias

    from _typeshed import SupportsWrite
    from urllib3.response import BaseHTTPResponse

    from apigw_iam_auth._models import SigningResult
    from apigw_iam_auth.signer import SigV4Signer

    # -v's view of a request just before it is sent: method, URL, every header.
    _OnWire: TypeAlias = Callable[[str, str, Iterable[tuple[str, str]]], None]
    _Send: TypeAlias = Callable[
        ["_Outgoing", float, _OnWire, "_Trust"], contextlib.AbstractContextManager["_Response"]
    ]

__all__ = ["main"]

PROG = "apigw-iam-auth"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a writer `head` closed on

DEFAULT_EXPIRES = 900
DEFAULT_TIMEOUT = 60.0  # seconds; API Gateway's own integration timeout is 29 s by default
# A day: a wait per connect or read, plenty for a long poll, and far from what the clients'
# deadlines overflow at (a platform's time_t: 1e10 s raised OverflowError).
MAX_TIMEOUT = 86400.0
_HTTP_ERROR_STATUS = 400
_REDIRECT_STATUS = 300
_FORBIDDEN = 403
_CHUNK = 64 * 1024
_MAX_PRETTY = 8 * 1024 * 1024  # larger JSON goes to the terminal as it comes
_MAX_LABEL = 63  # RFC 1035 2.3.4: octets in one label of a host name
_ACCESS_LOGGER = "apigw_iam_auth.server.access"

# RFC 9110 5.6.2: a header name or method is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A method as typed on a command line: letters, perhaps joined by hyphens (every registered
# method, VERSION-CONTROL included). Any other token may be a key or password typed in the
# wrong place, and a method is sent on the request line.
_METHOD_WORD = re.compile(r"[A-Za-z]{1,32}(?:-[A-Za-z]{1,32}){0,3}")
# What is quoted of a malformed -H: a name followed by a space ("Authorization Bearer ..."),
# shaped as header names are (words of letters joined by hyphens, X-Api-Key, Content-MD5), never
# a lone word or one with digits inside, which may be the value itself (a key, a password).
_LEADING_NAME = re.compile(r"([A-Za-z]{1,32}(?:-[A-Za-z][A-Za-z0-9]{0,31}){0,4})\s")
# How a body is framed on the wire (RFC 9112 6): the HTTP client's to write, never -H's.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
# Headers the signer writes (and drops from -H): where each comes from instead.
_SIGNING_HEADER_SOURCES = {
    "authorization": "it is the signature this command writes (no other scheme goes with it)",
    "x-amz-date": "it is the time of signing",
    "x-amz-security-token": "it comes with the credentials (AWS_SESSION_TOKEN, or --profile)",
    "x-amz-content-sha256": (
        "it is the body's hash (or UNSIGNED-PAYLOAD, with --payload unsigned)"
    ),
    "x-amz-region-set": "it names the regions of --region-set",
}
_JSON_TYPE = re.compile(r"(?i)^\s*application/(?:[\w.+-]*\+)?json\s*(?:;|$)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_STRERROR = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class _CliError(Exception):
    """An error already phrased for the command line; ``status`` is the exit status."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


class _OutputClosedError(Exception):
    """Whoever read our standard output stopped reading (``| head``)."""


# --- argument types --------------------------------------------------------------------------


def _seconds(text: str) -> float:
    """``900``, ``2.5``, ``90s``, ``15m``, ``1h``, ``7d`` or ``1h30m`` as seconds.

    Here and in every argument type, the message names what is expected, never what was
    typed: argparse puts the option's name before it, and a value may be a mistyped secret.
    """
    spoken = text.strip().lower()
    try:
        return float(spoken) if not _DURATION.fullmatch(spoken) else _sum_parts(spoken)
    except ValueError:
        msg = "not a duration: give seconds (900) or a number with s, m, h or d "
        msg += "(90s, 15m, 1h, 7d, 1h30m)"
        raise argparse.ArgumentTypeError(msg) from None


def _sum_parts(text: str) -> float:
    return sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))


def _expires(text: str) -> int:
    seconds = _seconds(text)
    if not math.isfinite(seconds) or seconds != int(seconds):
        msg = "must be a whole number of seconds (900, 15m, 1h)"
        raise argparse.ArgumentTypeError(msg)
    try:
        return check_expires(int(seconds))  # the signer's range, one rule
    except InvalidConfigError:  # told in the option's units, not as the seconds converted
        msg = "must be from 1s to 7d (900, 15m, 1h, 7d)"
        raise argparse.ArgumentTypeError(msg) from None


def _timeout(text: str) -> float:
    seconds = _seconds(text)
    if not 0 < seconds <= MAX_TIMEOUT:
        msg = "must be more than 0 seconds and at most 1d (30, 2.5, 1m)"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:  # noqa: PLR2004 - TCP
        msg = "must be a port number from 0 to 65535 (0 picks a free one)"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _region_set(text: str) -> list[str]:
    """``us-east-1,eu-west-1`` (spaces allowed around the commas) or ``*``, each name checked.

    Checked here, so that a wrong name is blamed on --region-set, not on --region.
    """
    from apigw_iam_auth._region import check_region, region_names  # noqa: PLC0415

    names = region_names(text)
    if not names:
        msg = "give region names separated by commas ('us-east-1,eu-west-1'), or '*'"
        raise argparse.ArgumentTypeError(msg)
    if "*" in names:
        if len(names) > 1:
            msg = "'*' already means every region: give it alone"
            raise argparse.ArgumentTypeError(msg)
        return names
    checked: list[str] = []
    try:
        checked.extend(check_region(name) for name in names)
    except InvalidConfigError as exc:
        # The library quotes the name; said here by its position ("did you mean" stays).
        hint = str(exc).partition(" is not an AWS region")[2]
        msg = f"name {len(checked) + 1} of {len(names)} is not an AWS region{hint}"
        raise argparse.ArgumentTypeError(msg) from None
    return checked


def _header(text: str) -> tuple[str, str | None]:
    """``Name: value``; as with curl, ``Name;`` sends an empty value and ``Name:`` (nothing
    after the colon) none at all: a header the client sends by default (Accept, User-Agent,
    Accept-Encoding, Connection) is left out. That one comes back with the value None.
    """  # noqa: D205 - the summary is the three forms
    name, sep, value = text.partition(":")
    if not sep and text.endswith(";"):
        name, sep, value = text[:-1], ";", ""
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name):
        # Only a leading name is quoted: what follows may be a token or a password.
        leading = _LEADING_NAME.match(text.strip())
        where = f" for the header starting {leading[1]!r}" if leading else " (value not shown)"
        raise argparse.ArgumentTypeError(f"expected 'Name: value'{where}")
    if not value.isascii():
        msg = (
            f"the value of {name!r} is not ASCII: HTTP sends header values as bytes that "
            "API Gateway reads as ASCII, so percent-encode or base64 it"
        )
        raise argparse.ArgumentTypeError(msg)
    if any((ch < " " and ch != "\t") or ch == "\x7f" for ch in value):
        msg = f"the value of {name!r} contains a control character"
        raise argparse.ArgumentTypeError(msg)
    source = _SIGNING_HEADER_SOURCES.get(name.lower())
    if source is not None and (sep != ":" or value):  # 'Name:' is refused where it is read
        msg = f"{name} is written by the signer: leave it out; {source}"
        raise argparse.ArgumentTypeError(msg)
    if name.lower() in _FRAMING_HEADERS:
        # Sent as given, beside the client's own framing, it made the request wait forever.
        msg = f"{name} is worked out from -d (how the body is framed): leave it out"
        raise argparse.ArgumentTypeError(msg)
    if sep == ":" and not value:
        if name.lower() == "host":
            msg = (
                "'Host:' cannot leave Host out: it is always sent and signed "
                "('Host: NAME' sends another)"
            )
            raise argparse.ArgumentTypeError(msg)
        return name, None
    return name, value


class _VersionAction(argparse.Action):
    """``--version``, worked out only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        del kwargs
        super().__init__(option_strings, dest, nargs=0, help="print versions and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> NoReturn:
        del namespace, values, option_string
        with _writing_stdout():
            print(_version_line(), file=_stdout(), flush=True)
        parser.exit()


def _stdout() -> TextIO:
    """sys.stdout, which is None when the command was started without one (``>&-``)."""
    if sys.stdout is None:
        raise _CliError("cannot write to stdout: it is closed")
    return sys.stdout


@contextlib.contextmanager
def _writing_stdout() -> Iterator[None]:
    """Text printed to stdout; a failure to write it (a full disk) said in one line."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader went away: main() ends quietly
    except OSError as exc:
        _silence_stdout()  # what is left in its buffer must not fail again at exit
        raise _CliError(f"cannot write to stdout: {exc.strerror or exc}") from None


def _installed(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _version_line() -> str:
    used = [f"Python {platform.python_version()}"]
    used += [
        f"{name} {found}"
        for name in ("botocore", "requests" if _installed("requests") else "httpx")
        if (found := _installed(name))
    ]
    return f"{PROG} {_installed('apigw-iam-auth') or 'unknown'} ({', '.join(used)})"


# --- the parser ------------------------------------------------------------------------------

# argparse messages that quote what was typed, and the same said without it.
_QUOTING_MESSAGES = (
    (
        re.compile(r"(?s)(argument \S+?): invalid choice: .*\(choose from (.*)\)"),
        r"\1: must be one of \2",
    ),
    (re.compile(r"(?s)(argument \S+?): ignored explicit argument .*"), r"\1 takes no value"),
    (re.compile(r"(?s)(argument \S+?): invalid (\S+) value: .*"), r"\1: not a valid \2 value"),
    (
        re.compile(r"(?s)ambiguous option: ([^=\s]*).*? could match"),
        r"ambiguous option \1 could match",
    ),
    (re.compile(r"(?s)unrecognized arguments: .*"), "unrecognized arguments (not shown)"),
)
# argparse's word for curl-style clustered flags (-vk) where a letter is no flag of ours.
_FLAG_CLUSTER = re.compile(r"argument -[A-Za-z]/\S+: ignored explicit argument '([A-Za-z]{1,4})'")
_WEB = ("http://", "https://")
# curl's spellings of what this command spells otherwise.
_CURL_OPTIONS = {"--head": "-X HEAD", "-I": "-X HEAD"}
# awscurl's spellings (and the like): keys typed on a command line end up in shell history.
_CREDENTIAL_OPTIONS = frozenset(
    {"access_key", "secret_key", "security_token", "session_token"}
    | {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line that never quotes a value typed on the command line.

    argparse's own errors print the usage block, then echo unknown arguments and rejected
    values verbatim: awscurl's ``--secret_key KEY``, a stray presigned link's signature, curl's
    ``--data-raw 'password=...'`` would all reach the terminal and its scrollback.
    """

    # The top parser's command names (its subparsers' ``choices``), filled as each is added.
    commands: Collection[str] = ()

    def parse_command_line(self, argv: Sequence[str] | None) -> argparse.Namespace:
        """``parse_args``, but unknown arguments are named by their option names, never values.

        awscurl's key options are refused before argparse reads anything: the value typed after
        one may start with ``-`` and would be parsed as an option of ours (a secret ``-Hxyz``
        becomes a malformed header, and its text part of an error message).
        """
        words = sys.argv[1:] if argv is None else list(argv)
        given = words[: words.index("--")] if "--" in words else words
        keys = [word for word in given if _is_credential_option(word)]
        if keys:
            command = next((word for word in given if word in self.commands), None)
            self.fail(_unknown_arguments(keys), command)
        self._check_awscurl_habits(given)
        args, unknown = self.parse_known_args(words)
        if unknown and hasattr(args, "target") and not any(map(_is_option, unknown)):
            # call POST -d DATA URL: argparse takes only the words before the first option as
            # positionals; the rest join them in order, checked as one METHOD URL.
            args.target += unknown
            unknown = []
        if unknown:
            self.fail(_unknown_arguments(unknown), getattr(args, "command", None))
        return args

    def _check_awscurl_habits(self, words: Sequence[str]) -> None:
        """Refuse awscurl's habits, saying what to type instead.

        Options before the command, no command (a URL alone), or awscurl's ``--data-binary``
        flag, which would take the URL for the body.
        """
        command = next((word for word in words if word in self.commands), None)
        first = words[0] if words else ""
        urls = sum("://" in word for word in words)
        if first != command and first not in {"", "-h", "--help", "--version"}:
            if command is not None:
                self.fail(f"options go after the command: {self.prog} {command} [options]", command)
            if (first.startswith("-") or "://" in first) and urls:
                prog = self.prog
                self.fail(f"name the command first: {prog} call URL, or {prog} presign URL")
        for option, value in itertools.pairwise(words):
            if option == "--data-binary" and urls == 1 and value.lower().startswith(_WEB):
                self.fail(
                    "--data-binary takes the body, as curl's does: -d and --data-binary both "
                    "send it byte for byte (awscurl's --data-binary flag is not needed)",
                    command,
                )

    def error(self, message: str) -> NoReturn:
        """The hook argparse calls, for this parser and every command's (they share the class)."""
        cluster = _FLAG_CLUSTER.fullmatch(message)
        if cluster is not None:  # -vk: the unknown -k is to blame, not -v
            known = self._option_string_actions
            unknown = [f"-{letter}" for letter in cluster[1] if f"-{letter}" not in known]
            if unknown:
                self.fail(_unknown_arguments(unknown))
        for pattern, replacement in _QUOTING_MESSAGES:
            message = pattern.sub(replacement, message)
        self.fail(message)

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        """The help, written here since argparse ignores a failure to write it (exit 2 then).

        ``--help > /dev/full`` would otherwise exit 0 having shown nothing, and with stdout
        closed (``>&-``) argparse sends the help to stderr instead.
        """
        with _writing_stdout():
            (_stdout() if file is None else file).write(self.format_help())
            if file is None:
                _stdout().flush()  # where a full device says so

    def fail(self, message: str, command: str | None = None) -> NoReturn:
        """Exit 2 with one line (no usage block) pointing at the help to read."""
        helped = f"{self.prog} {command}" if command else self.prog
        line = " ".join(redact(message).split())
        # Not through argparse's exit(message): on Python 3.10 it fails where stderr is closed.
        _note(f"{PROG}: error: {line} (see '{helped} --help')")
        self.exit(EXIT_USAGE)


def _unknown_arguments(words: Sequence[str]) -> str:
    """What to say of arguments nobody asked for: their option names, and what to use instead."""
    names = list(dict.fromkeys(_option_name(word) for word in words if _is_option(word)))
    if not names:
        count = len(words)
        return f"{count} unexpected argument{'s' if count > 1 else ''} (not shown: may be secret)"
    shown = [
        f"{name} (use {_CURL_OPTIONS[name]})" if name in _CURL_OPTIONS else name for name in names
    ]
    said = f"unknown option{'s' if len(names) > 1 else ''} {', '.join(shown)}"
    if any(_is_credential_option(name) for name in names):
        said += (
            ": keys never go on the command line (shell history, ps); set AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or use --profile"
        )
    return said


def _is_credential_option(word: str) -> bool:
    name = _option_name(word)
    return name.startswith("--") and name[2:].replace("-", "_").lower() in _CREDENTIAL_OPTIONS


def _is_option(word: str) -> bool:
    return len(word) > 1 and word.startswith("-") and not word[1:2].isspace()


def _option_name(word: str) -> str:
    """``--name=value`` as ``--name``; ``-xVALUE`` as ``-x``: the value may be a secret."""
    return word.partition("=")[0] if word.startswith("--") else word[:2]


_EXIT_STATUSES = """\
exit status: 0 done; 1 the request failed (HTTP 400 or above, no connection, a timeout);
2 a usage, configuration or credentials error, or output that cannot be written (a full disk,
a binary body to a terminal); 70 a bug (reported in one line: please report it); 130
interrupted (serve, which Ctrl-C stops, exits 0); 141 the output was closed early (| head).
Run 'apigw-iam-auth COMMAND --help' for each command's options.
"""

_CALL_EXAMPLES = """\
examples:
  apigw-iam-auth call https://abc123.execute-api.eu-west-1.amazonaws.com/prod/pets
  apigw-iam-auth call -X POST -H 'Content-Type: application/json' -d @pet.json URL
  echo '{"name": "Rex"}' | apigw-iam-auth call URL -d @- | jq .
  apigw-iam-auth call URL --dry-run        # print the signed request as a curl command

The region comes from --region, else the API's hostname, else AWS_REGION, else the profile's
region. Credentials come from botocore's chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
--profile or AWS_PROFILE (aws configure, aws sso login), or an instance, task or pod role.
JSON is pretty-printed on a terminal and passed through byte for byte elsewhere. A binary body
(one holding a NUL byte) is not written to a terminal, as with curl: the command stops, exit 2;
save it with -o FILE, or show it anyway with -o -.
"""

_PRESIGN_EXAMPLES = """\
examples:
  apigw-iam-auth presign --expires 1h https://abc123.execute-api.eu-west-1.amazonaws.com/prod/report
  apigw-iam-auth presign -d @order.json -H 'Content-Type: application/json' URL   # a POST link

Whoever holds the link can make that call until it expires: treat it as a credential. Headers
given with -H are signed and must be sent with the link; with -d the link accepts exactly that
body (and is for POST unless -X says otherwise). Temporary credentials cap the lifetime.
"""

_SERVE_EPILOG = """\
known keys (--credentials FILE), an INI file like ~/.aws/credentials:
  [default]
  aws_access_key_id = AKIDEXAMPLE
  aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
  ; optional: requests must then carry this token
  aws_session_token = ...
  ; optional: used in ARNs and policy decisions (12 digits)
  aws_account_id = 123456789012
or JSON with the same fields, an object of sections or a list:
  {"default": {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "..."}}
Sections without aws_access_key_id (SSO or role profiles) are skipped. Without --credentials the
server knows one key: its own AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN,
AWS_ACCOUNT_ID).

Each request is logged on stderr (method, path, status), signatures and tokens redacted.
"""


def _aws_options() -> _Parser:
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("AWS options")
    group.add_argument(
        "--region",
        help="signing region (default: read off the API's hostname, else AWS_REGION, "
        "else the profile's region; unused with --region-set)",
    )
    group.add_argument("--profile", help="profile of ~/.aws/config (default: AWS_PROFILE)")
    group.add_argument(
        "--service",
        default="execute-api",
        help="signing name (default: the service the hostname names, e.g. lambda for a "
        "function URL, else execute-api)",
    )
    group.add_argument(
        "--region-set",
        type=_region_set,
        metavar="REGIONS",
        help="sign with SigV4a for these regions: 'us-east-1,eu-west-1' or '*' "
        "(multi-region APIs; needs the sigv4a extra)",
    )
    group.add_argument(
        "--payload",
        choices=("signed", "unsigned"),
        help="sign the body's SHA-256 or UNSIGNED-PAYLOAD (default: as the service wants; "
        "VPC Lattice takes only unsigned)",
    )
    return parent


def _request_options(
    *, method_help: str, expires_help: str, verbose_help: str, header_help: str
) -> _Parser:
    """The request a command signs: the same flags, as curl spells them, for call and presign."""
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("request options")
    group.add_argument(
        "-X", "--request", "--method", dest="method", metavar="METHOD", help=method_help
    )
    group.add_argument(
        "-H",
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help=header_help,
    )
    group.add_argument(
        "-d",
        "--data",
        "--data-binary",
        action="append",
        metavar="DATA",
        help="the body, sent byte for byte: text, @FILE or @- (stdin); implies POST; "
        "given more than once, the pieces are joined with '&' as curl joins them",
    )
    group.add_argument("--expires", type=_expires, metavar="DURATION", help=expires_help)
    group.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    return parent


def _build_parser() -> _Parser:
    aws = _aws_options()
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,  # curl's --head must not be taken for --header
        description="Call and presign AWS API Gateway APIs protected by IAM (SigV4) auth.",
        epilog=_EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = commands.choices

    request = _request_options(
        method_help="HTTP method (default: GET, or POST with -d)",
        expires_help="with --presign: how long the signature holds, as 900, 15m, 1h or 7d "
        "(default 15m)",
        verbose_help="show on stderr the canonical request, the string to sign, the request "
        "sent and the response's headers (signatures and tokens redacted)",
        header_help="a header to send and sign (repeatable); as with curl, 'NAME;' sends it "
        "empty and 'NAME:' leaves out one sent by default (Accept, User-Agent)",
    )
    call = commands.add_parser(
        "call",
        allow_abbrev=False,
        parents=[request, aws],
        help="send a signed request and print the response, like curl",
        description="Send a SigV4-signed request and print the response body, like curl.",
        usage="%(prog)s [METHOD] URL [options]",
        epilog=_CALL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument(
        "target", nargs="+", metavar="URL", help="the URL to call ('call METHOD URL' works too)"
    )
    sending = call.add_argument_group("sending options")
    sending.add_argument(
        "--presign", action="store_true", help="sign in the URL's query string, not a header"
    )
    sending.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT,
        metavar="DURATION",
        help="give up on connecting or on a read after this long "
        f"(default {DEFAULT_TIMEOUT:g}s, at most 1d)",
    )
    sending.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate, as curl -k (the request is still "
        "signed); to trust a private CA instead, set AWS_CA_BUNDLE or the profile's ca_bundle",
    )
    sending.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: print the signed request as a curl command (it holds the "
        "signature: treat it as a credential)",
    )
    output = call.add_argument_group("output options")
    output.add_argument(
        "-i", "--include", action="store_true", help="print the status line and headers too"
    )
    output.add_argument(
        "-o", "--output", metavar="FILE", help="write the body to FILE ('-': stdout)"
    )

    presign = commands.add_parser(
        "presign",
        allow_abbrev=False,
        parents=[
            _request_options(
                method_help="HTTP method of the link (default: GET, or POST with -d)",
                expires_help="how long the link works: 900, 15m, 1h, 7d (default 15m, at most 7d)",
                verbose_help="show the canonical request and string to sign on stderr",
                header_help="a header to sign, which whoever opens the link must send "
                "(repeatable); 'NAME;' signs it empty",
            ),
            aws,
        ],
        help="print a presigned URL",
        description="Print a presigned URL: a link that makes one signed call until it expires.",
        epilog=_PRESIGN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    presign.add_argument("url", metavar="URL", help="the URL the link calls")

    serve = commands.add_parser(
        "serve",
        allow_abbrev=False,
        help="run a local server that authenticates like API Gateway with IAM auth",
        description="Run a local server that verifies SigV4 like API Gateway and echoes requests.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8080, help="0 picks a free one (8080)")
    serve.add_argument("--region", default="us-east-1", help="region it expects (us-east-1)")
    serve.add_argument(
        "--service",
        default="execute-api",
        help="service it impersonates: execute-api, lambda, vpc-lattice-svcs... (execute-api)",
    )
    serve.add_argument(
        "--credentials", type=Path, metavar="FILE", help="file of known keys (format below)"
    )
    serve.add_argument(
        "--policy", type=Path, metavar="FILE", help="IAM policy JSON to evaluate per request"
    )
    serve.add_argument(
        "--api-id",
        default="local",
        help="the API's id in the ARNs the policy is matched against (local)",
    )
    serve.add_argument(
        "--account-id",
        default="123456789012",
        help="the API's account in those ARNs (123456789012)",
    )
    serve.add_argument("-q", "--quiet", action="store_true", help="no access log on stderr")

    commands.add_parser(
        "demo",
        allow_abbrev=False,
        help="run an offline end-to-end demo against an in-process server",
        description="Start a local IAM-auth server and show signed calls accepted and rejected.",
    )
    return parser


# --- entry point -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also the console script entry)."""
    try:
        args = _build_parser().parse_command_line(argv)
        with _library_log(verbose=getattr(args, "verbose", False)):
            return _run(args)
    except (_OutputClosedError, BrokenPipeError):  # BrokenPipeError: --help into `| head`
        _silence_stdout()
        return EXIT_OUTPUT_CLOSED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - even a bug ends in one line, never a traceback
        message, status = _explained(exc)
        _error(message)
        return status


def _run(args: argparse.Namespace) -> int:
    if args.command == "call":
        return _call(args, _Output.stdout())
    if args.command == "presign":
        return _presign(args, _Output.stdout())
    if args.command == "serve":
        return _serve(args)
    return _demo()


def _with_cause(exc: ApiGwIamAuthError) -> str:
    """The message, the chained exception it points to said in place (no traceback here)."""
    message, cause = str(exc), exc.__cause__
    if cause is None:
        return message
    named = type(cause).__name__
    pointer = f"{named} {SEE_CAUSE}"  # perhaps followed by what to do about it
    if pointer not in message:
        return message
    return message.replace(pointer, f"{named}: {redact(str(cause))}", 1)


def _explained(exc: Exception) -> tuple[str, int]:
    """The one line to print for an error, and the exit status."""
    if isinstance(exc, _CliError):  # may quote what was typed: a presigned URL, a header
        return redact(str(exc)), exc.status
    if isinstance(exc, ApiGwIamAuthError):
        return _in_flags(_with_cause(exc)), EXIT_USAGE
    return (
        f"unexpected {type(exc).__name__}: {redact(str(exc))} (a bug: please report it)",
        EXIT_BUG,
    )


def _error(message: str) -> None:
    """One line, whatever the message holds (a library's text may span several)."""
    _note(f"{PROG}: error: {' '.join(message.split())}")


def _note(text: str) -> None:
    """A line on stderr; none at all where stderr is closed (print would take stdout)."""
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing left to tell
        print(text, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush cannot fail loudly."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def _library_log(*, verbose: bool) -> Iterator[None]:
    """The library's warnings (INFO too with -v) on stderr, prefixed like our own messages."""
    logger = logging.getLogger("apigw_iam_auth")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FlagsFormatter(f"{PROG}: %(message)s"))
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


class _FlagsFormatter(logging.Formatter):
    """The library's log lines as :func:`_in_flags` words its errors."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return _in_flags(super().formatMessage(record))


# The library speaks to Python callers; on the command line the same advice names flags.
_FLAGS = {
    "region": "--region",
    "region_set": "--region-set",
    "profile": "--profile",
    "service": "--service",
    "expires": "--expires",
    "method": "-X",
    "headers": "-H",
    "body": "-d",
    "timeout": "--timeout",
    "api_id": "--api-id",
    "account_id": "--account-id",
}
_ARGUMENT_NAMES = "|".join(_FLAGS)
# Where the keys came from, as the library names it (credentials.py): method= is botocore's
# provider there, not an HTTP method.
_KEYS_SOURCE = re.compile(r"\bBotocoreCredentials\(method='([^']*)'\)")
_CREDENTIALS_ARGUMENT = re.compile(
    r",?\s*(?:or\s+)?(?:pass\s+)?credentials=\([^)]*\)(?:\s+or\s+a\s+provider\s+function)?"
)
_CALL_FORM = re.compile(rf"\b[A-Za-z_]\w*\(((?:{_ARGUMENT_NAMES})=[^()]*)\)")
_ARGUMENT = re.compile(rf"(?<![\w-])({_ARGUMENT_NAMES})=('<[^>]*>'|'[^']*'|\"[^\"]*\"|[^\s,;:)]*)")
# "region must be ...", "region 'x' is not ...": the subject of the sentence is the flag.
_ARGUMENT_SUBJECT = re.compile(rf"(?<![\w-])({_ARGUMENT_NAMES})(?= must\b| '[^']*' is\b)")
# "(keys= in Python, --credentials FILE on the command line)", "(presign=False; on the command
# line, call without --presign)", or "(--region on the command line)" beside a Python call.
_COMMAND_LINE_ASIDE = re.compile(r"\s*\(([^()]*)\bon the command line\b([^()]*)\)")


def _in_flags(message: str) -> str:
    """A library message with its Python arguments (``region=``...) turned into our flags."""
    message = _COMMAND_LINE_ASIDE.sub(_command_line_half, message)
    if "AWS_ACCESS_KEY_ID" in message:
        message = _CREDENTIALS_ARGUMENT.sub("", message)
    else:
        message = _CREDENTIALS_ARGUMENT.sub(
            " or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile", message
        )
    message = _KEYS_SOURCE.sub(r"the credentials from botocore's '\1' provider", message)
    message = _CALL_FORM.sub(r"\1", message)
    message = _ARGUMENT.sub(_flag_and_value, message)
    message = _ARGUMENT_SUBJECT.sub(lambda m: _FLAGS[m[1]], message)
    message = re.sub(r"^url\b", "URL", message)
    return redact(message)


def _command_line_half(aside: re.Match[str]) -> str:
    """What an aside says for the command line; nothing where the flag is named beside it."""
    before, after = aside[1].strip(), aside[2].strip(" ,;")
    if after:
        return f" ({after})"
    shell = re.split(r"[,;]\s*", before)[-1]
    return "" if shell == before else f" ({shell})"


def _flag_and_value(match: re.Match[str]) -> str:
    value = match[2].strip("'\"")
    if value == "None" and match[1] == "profile":  # BotocoreProvider(profile=None): no flag
        return "the default profile"
    if value == "*":  # as typed at a shell, which would expand it bare
        value = "'*'"
    return f"{_FLAGS[match[1]]} {value}" if value and value != "None" else _FLAGS[match[1]]


# --- output ----------------------------------------------------------------------------------


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...
    def flush(self) -> object: ...
    def isatty(self) -> bool: ...
    def close(self) -> object: ...


class _Output:
    """Binary output that turns a reader gone away into :class:`_OutputClosedError`."""

    def __init__(self, stream: _Writable, *, name: str, closes: bool = False) -> None:
        self._stream = stream
        self._name = name
        self._closes = closes
        self.last_byte = b"\n"

    @classmethod
    def stdout(cls) -> _Output:
        """Standard output; started without one (``>&-``), what is written to it fails."""
        if sys.stdout is None:
            return cls(_NoStdout(), name="stdout")
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:  # a text-only stdout (an embedding program's StringIO)
            return cls(_TextAsBinary(sys.stdout), name="stdout")
        return cls(buffer, name="stdout")

    @property
    def missing(self) -> bool:
        """True for the stdout of a command started without one."""
        return isinstance(self._stream, _NoStdout)

    def begin(self) -> None:
        """The body is about to be written (a file drops what it held before)."""

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._writing():
            self._stream.write(data)
        self.last_byte = data[-1:]

    def flush(self) -> None:
        with self._writing():
            self._stream.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._closes:
                with self._writing():  # a file closes by writing what it still holds
                    self._stream.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except BrokenPipeError:
            raise _OutputClosedError from None
        except OSError as exc:
            raise _CliError(f"cannot write to {self._name}: {exc.strerror or exc}") from None


class _FileOutput(_Output):
    """-o FILE, opened for appending until the answer arrives: then its old content goes.

    A file this command created is removed again if no answer arrived (as curl leaves none).
    """

    def __init__(self, stream: BinaryIO, *, name: str, created: bool) -> None:
        super().__init__(stream, name=name, closes=True)
        self._created = created
        self._begun = False

    def begin(self) -> None:
        self._begun = True
        with contextlib.suppress(OSError):  # a FIFO or a device: nothing of it to drop
            cast("BinaryIO", self._stream).truncate(0)  # appending: the next write is at 0

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._created and not self._begun:
                with contextlib.suppress(OSError):  # gone or moved already: nothing to undo
                    Path(self._name).unlink()


class _NoStdout:
    """The stdout of a command started without one: writing fails, as to a closed file."""

    def write(self, data: bytes, /) -> object:
        del data
        raise OSError(errno.EBADF, "it is closed")

    def flush(self) -> object:
        return None

    def isatty(self) -> bool:
        return False

    def close(self) -> object:
        return None


class _TextAsBinary:
    """Bytes written to a text stream, decoded as UTF-8."""

    def __init__(self, text: TextIO) -> None:
        self._text = text

    def write(self, data: bytes, /) -> object:
        return self._text.write(data.decode("utf-8", "replace"))

    def flush(self) -> object:
        return self._text.flush()

    def isatty(self) -> bool:
        return self._text.isatty()

    def close(self) -> object:
        return None


# --- request building ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Body:
    data: bytes
    file: str | None = None  # the path it was read from (-d @FILE), for the curl command


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A request signed and ready to send (or to print as a curl command)."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: _Body | None
    signing: SigningResult | None
    left_out: tuple[str, ...] = ()  # -H 'Name:': a client's default header not to send


def _read_body(pieces: list[str] | None) -> _Body | None:
    """The body -d gives; curl's users expect ``-d a=1 -d b=2`` to send ``a=1&b=2``."""
    if pieces is None:
        return None
    bodies = [_read_piece(piece) for piece in pieces]
    if len(bodies) == 1:
        return bodies[0]  # keeps the file it came from, for --dry-run's curl command
    return _Body(b"&".join(body.data for body in bodies))


def _read_piece(data: str) -> _Body:
    if data == "@-":
        if sys.stdin is None:
            raise _CliError("-d @- reads the body from stdin, but there is no stdin")
        try:
            return _Body(sys.stdin.buffer.read())
        except OSError as exc:
            raise _CliError(f"cannot read -d @- (stdin): {exc.strerror or exc}") from None
    if data.startswith("@"):
        path = Path(data[1:])
        try:
            # --dry-run names the file the bytes came from: @/dev/stdin redirected from a file
            # is that file; a pipe (@/dev/stdin, a shell's @<(cmd)) is read once, so inlined.
            source = Path(os.path.realpath(path))
            return _Body(path.read_bytes(), file=str(source) if source.is_file() else None)
        except OSError as exc:
            raise _CliError(f"cannot read -d {data}: {exc.strerror or exc}") from None
    # Arguments the OS gave as undecodable bytes come back as those bytes.
    return _Body(data.encode("utf-8", "surrogateescape"))


def _method_and_url(args: argparse.Namespace, body: _Body | None) -> tuple[str, str]:
    words: list[str] = args.target
    if len(words) > 2:  # noqa: PLR2004 - [METHOD] URL
        raise _CliError(f"call takes one URL, got {len(words)} words: call [METHOD] URL")
    given = words[0] if len(words) == 2 else None  # noqa: PLR2004 - METHOD URL
    url = words[-1].strip()  # pasted with a space after it, it would be sent as %20
    if given is not None and "://" in given:  # not quoted: it may be a presigned link
        raise _CliError("a URL stands where the METHOD goes: call [METHOD] URL, one URL")
    if given is not None and not _METHOD_WORD.fullmatch(given):
        raise _CliError("the word before the URL is not an HTTP method: call [METHOD] URL")
    if given is not None and args.method and given.upper() != args.method.upper():
        raise _CliError("two methods given (before the URL and with -X): keep one")
    return _method(args.method or given, body), url


def _check_host(url: str) -> None:
    """Refuse a host name no client can look up (``abc..execute-api``, a label over 63 letters).

    Both clients find out only when connecting, each with an error of its own (urllib3's
    LocationParseError, the 'idna' codec's UnicodeError).
    """
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:  # the signer says what is wrong with this URL
        return
    if not host or ":" in host or not host.isascii():  # IPv6; a Unicode name the signer checks
        return
    labels = host.removesuffix(".").split(".")  # "example.com." is a name written in full
    why = None
    if "" in labels:
        why = "an empty label (two dots in a row, or a dot first)"
    elif any(len(label) > _MAX_LABEL for label in labels):
        why = f"a label longer than {_MAX_LABEL} characters"
    if why is not None:
        raise _CliError(f"the URL cannot be sent: its host {host} has {why}")


def _method(given: str | None, body: _Body | None) -> str:
    if given is not None and not _METHOD_WORD.fullmatch(given):
        raise _CliError("-X takes an HTTP method, letters such as GET or PATCH")
    return (given or ("POST" if body is not None else "GET")).upper()


def _signer(args: argparse.Namespace) -> SigV4Signer:
    from apigw_iam_auth.signer import SigV4Signer  # noqa: PLC0415 - the CLI's one signer

    return SigV4Signer(
        region=args.region,
        service=args.service,
        profile=args.profile,
        payload=args.payload,
        region_set=args.region_set,
    )


def _headers_and_left_out(
    given: list[tuple[str, str | None]],
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """-H's headers to send, and the names given as ``Name:``, to leave out."""
    headers = [(name, value) for name, value in given if value is not None]
    if sum(name.lower() == "cookie" for name, _ in headers) > 1:
        # Repeats go out as one header, joined with ',' as signed: to a server, one cookie.
        raise _CliError("give the cookies in one -H 'Cookie: a=1; b=2', as a browser sends them")
    left_out = tuple(dict.fromkeys(name for name, value in given if value is None))
    return headers, left_out


def _sign(
    signer: SigV4Signer,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: _Body | None,
    *,
    presign: bool,
    expires: int,
    explain: bool,
    left_out: tuple[str, ...] = (),
) -> _Outgoing:
    data = body.data if body is not None else None
    if presign:
        link, signing = _presigned(signer, method, url, headers, data, expires, explain=explain)
        return _Outgoing(method, link, tuple(headers), body, signing, left_out)
    signed = signer.sign(method, url, headers=headers, body=data)
    sent = tuple(signed.headers.items())
    return _Outgoing(signed.method, signed.url, sent, body, signed.signing, left_out)


def _check_left_out(request: _Outgoing) -> None:
    """A name given as ``Name:`` that the request itself sends: signed, or given with a value."""
    sent = {name.lower(): name for name, _ in request.headers}
    for name in request.left_out:
        if name.lower() in sent:
            raise _CliError(
                f"-H '{name}:' leaves out a header this request sends (the signature's, or "
                "given with another -H): keep one"
            )


def _presigned(
    signer: SigV4Signer,
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    expires: int,
    *,
    explain: bool,
) -> tuple[str, SigningResult | None]:
    """The presigned URL, and with ``explain`` the strings it was signed from (for -v).

    One signature, on the signer's own route (as :meth:`SigV4Signer.presign` makes it): the
    strings shown are those of the link printed.
    """
    from apigw_iam_auth._sigv4 import payload_hash  # noqa: PLC0415

    check_expires(expires)  # before credentials, as presign(): a typo costs no chain
    link, _, _, signing = signer._sign_for_wire(  # noqa: SLF001 - the adapters' route
        method,
        url,
        tuple(headers),
        payload_hash(body or b""),
        location=SignatureLocation.QUERY,
        expires=expires,
    )
    return link, signing if explain else None


# --- the commands ----------------------------------------------------------------------------


def _presign(args: argparse.Namespace, out: _Output) -> int:
    headers, left_out = _headers_and_left_out(args.header)
    if left_out:
        raise _CliError(
            f"-H '{left_out[0]}:' leaves a header out of a request, and presign sends none: "
            f"give it a value, or drop that -H"
        )
    body = _read_body(args.data)
    signer = _signer(args)
    asked = DEFAULT_EXPIRES if args.expires is None else args.expires
    link, signing = _presigned(
        signer,
        _method(args.method, body),
        args.url.strip(),  # as call reads it: a pasted space after it is no part of it
        headers,
        body.data if body is not None else None,
        asked,
        explain=args.verbose,
    )
    if args.verbose:
        _show_signing(signing)
    granted = _LINK_EXPIRES.search(link)
    if granted is not None and int(granted[1]) < asked:  # said whether or not -v
        _note(
            f"{PROG}: the link holds for {granted[1]}s, not the {asked}s asked: the session "
            "credentials signing it expire then"
        )
    out.write(link.encode("ascii", "backslashreplace") + b"\n")
    out.flush()
    return EXIT_OK


# The lifetime a presigned link was given (capped to its credentials' remaining life).
_LINK_EXPIRES = re.compile(r"[?&]X-Amz-Expires=([0-9]+)(?:&|$)")


def _call(args: argparse.Namespace, out: _Output) -> int:
    if args.expires is not None and not args.presign:
        raise _CliError("--expires is the lifetime of a presigned request: add --presign")
    body = _read_body(args.data)
    method, url = _method_and_url(args, body)
    if url.lower().startswith(("ws://", "wss://")):
        raise _CliError(
            "call sends HTTP requests; for a WebSocket API make a link with "
            "`apigw-iam-auth presign URL` and open it with a WebSocket client"
        )
    _check_host(url)
    headers, left_out = _headers_and_left_out(args.header)
    signer = _signer(args)
    trust = _trust(args.insecure, args.profile, url)

    def sign() -> _Outgoing:
        return _sign(
            signer,
            method,
            url,
            headers,
            body,
            presign=args.presign,
            expires=DEFAULT_EXPIRES if args.expires is None else args.expires,
            explain=args.verbose,
            left_out=left_out,
        )

    request = sign()
    _check_left_out(request)
    if args.verbose:
        _show_signing(request.signing)
    if args.dry_run:
        out.write(_curl_command(request, trust).encode("utf-8", "surrogateescape") + b"\n")
        out.flush()
        return EXIT_OK
    out = _open_output(args.output, out)  # an unwritable -o is found before anything is sent
    try:
        return _exchange(args, signer, request, sign, out, trust)
    finally:
        out.close()


# How the server's certificate is checked: False (-k), True (the client's own trust store, which
# REQUESTS_CA_BUNDLE or SSL_CERT_FILE may name), or the path of a CA bundle to trust instead.
_Trust = bool | str


def _trust(insecure: bool, profile: str | None, url: str) -> _Trust:
    """-k, else botocore's CA bundle (``AWS_CA_BUNDLE``, the profile's ``ca_bundle``), else True.

    The AWS CLI and SDKs trust that bundle (a PEM file, or a directory of hashed certificates,
    as urllib3 takes it) for every AWS endpoint; a corporate proxy that re-signs TLS needs it
    here too. It is read before anything is sent, so either client refuses a bad one alike.
    """
    if insecure:
        return False
    if not url.lower().startswith("https://"):
        return True
    from apigw_iam_auth._botocore import ca_bundle  # noqa: PLC0415 - botocore only for https

    bundle = ca_bundle(profile)
    if bundle is None:
        return True
    set_by = "AWS_CA_BUNDLE" if os.environ.get("AWS_CA_BUNDLE") else "the profile's ca_bundle"
    if not Path(bundle).exists():
        raise _CliError(f"the CA bundle {bundle} ({set_by}) does not exist; fix it, or unset it")
    _context(bundle, set_by)
    return bundle


def _exchange(
    args: argparse.Namespace,
    signer: SigV4Signer,
    request: _Outgoing,
    sign: Callable[[], _Outgoing],
    out: _Output,
    trust: _Trust,
) -> int:
    """Send; after a clock-skew refusal, correct the clock and send once more, like the adapters."""
    from apigw_iam_auth._skew import server_time_from_refusal  # noqa: PLC0415 - adapters' rule

    send = _backend()
    on_wire = _show_request if args.verbose else _ignore_request
    for attempt in (1, 2):
        with send(request, args.timeout, on_wire, trust) as response:
            refused: bytes | None = None
            if response.status == _FORBIDDEN:
                # An endless or large refusal (no small Content-Length) is not read: it streams
                # out as any body, and tells the clock only where it answers a HEAD.
                if _small_refusal(response):
                    refused = b"".join(response.chunks)
                server_time = server_time_from_refusal(
                    refused, response.header("date"), request.signing
                )
                if server_time is not None and attempt == 1:
                    signer.correct_clock(server_time)
                    request = sign()
                    if args.verbose:
                        _note("* refused for clock skew: signed again with the server's time")
                        _show_signing(request.signing)
                    continue
                if refused is not None:
                    replayed = response._replace(chunks=iter((refused,)))
                    return _deliver(args, request, replayed, refused, out)
            return _deliver(args, request, response, refused, out)
    raise AssertionError  # pragma: no cover - the second attempt always returns


def _small_refusal(response: _Response) -> bool:
    """Whether a 403's body is read whole, to explain it or find the server's clock."""
    length = response.header("content-length")
    return readable_refusal({} if length is None else {"Content-Length": length})


def _deliver(
    args: argparse.Namespace,
    request: _Outgoing,
    response: _Response,
    refused: bytes | None,
    out: _Output,
) -> int:
    if args.verbose:
        _show_response(response)
    out.begin()
    try:
        if args.include:
            out.write(_head(response).encode("latin-1", "replace"))
        _write_body(out, response, shown_as_asked=args.output is not None)
    finally:
        out.flush()  # the body before the notes below, on a terminal
    if response.status < _HTTP_ERROR_STATUS:
        location = response.header("location")
        if location is not None and response.status >= _REDIRECT_STATUS:
            _note(
                f"{PROG}: HTTP {response.status} {response.reason}: not following it to "
                f"{redact(urljoin(request.url, location))} (a new URL needs a new signature: "
                "call it)"
            )
        return EXIT_OK
    error_type = response.header("x-amzn-errortype")
    kind = f" ({error_type.partition(':')[0]})" if error_type else ""
    _note(f"{PROG}: HTTP {response.status} {response.reason}{kind}".rstrip())
    if refused is not None and parse_signature_mismatch(refused) is not None:
        explained = None
        if args.verbose and request.signing is not None:
            explained = explain_signature_mismatch(refused, request.signing)
        _note(explained or f"{PROG}: -v shows what was signed, and where it differs")
    return EXIT_FAILED


def _write_body(out: _Output, response: _Response, *, shown_as_asked: bool) -> None:
    """The body to ``out``; on a terminal JSON re-indented and, unless -o - asked, no binary."""
    chunks = response.chunks
    if out.isatty() and not shown_as_asked:  # -o - shows anything, as with curl
        chunks = _text_only(chunks)
    if out.isatty() and _JSON_TYPE.match(response.header("content-type") or ""):
        _write_pretty(out, chunks)
    else:
        for chunk in chunks:
            out.write(chunk)
            out.flush()  # a streamed answer (events, logs) is read as it comes
    if out.isatty() and out.last_byte != b"\n":
        out.write(b"\n")  # the prompt on a line of its own


def _text_only(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The body's chunks, stopped at the first holding a NUL byte: binary, not for a terminal.

    curl's rule (its "Binary output can mess up your terminal"): control sequences in a binary
    body can reprogram the terminal, and its bytes are of no use read there.
    """
    for chunk in chunks:
        if b"\0" in chunk:
            raise _CliError(
                "the body is binary: not written to the terminal; save it with -o FILE, "
                "or show it anyway with -o -"
            )
        yield chunk


def _open_output(path: str | None, stdout: _Output) -> _Output:
    """Where the body goes, opened before the request is sent.

    A POST must not go out only to find -o unwritable. A file that exists keeps its content
    until an answer arrives (as with curl): a request that fails does not wipe it, and a file
    created here is removed again.
    """
    if path is None or path == "-":
        if stdout.missing:
            raise _CliError("cannot write to stdout: it is closed; give -o FILE")
        return stdout
    created = True
    try:
        try:
            stream = Path(path).open("xb")  # noqa: SIM115 - closed by _call
        except FileExistsError:
            created = False
            stream = Path(path).open("ab")  # noqa: SIM115 - closed by _call
    except OSError as exc:
        raise _CliError(f"cannot write -o {path}: {exc.strerror or exc}") from None
    return _FileOutput(stream, name=path, created=created)


def _write_pretty(out: _Output, chunks: Iterator[bytes]) -> None:
    """JSON for a person: indented, non-ASCII kept; anything unparsable as it came."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > _MAX_PRETTY:
            out.write(bytes(body))
            for rest in chunks:
                out.write(rest)
            return
    try:
        document = json.loads(
            body,
            parse_float=_exact_float,
            parse_int=_exact_int,
            parse_constant=_not_json,
            object_pairs_hook=_unique_keys,
        )
        pretty = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError too: a lone "\ud800" escape
        out.write(bytes(body))
        return
    out.write(pretty + b"\n")


# Re-indenting goes through Python values: where one would show the reader another value than
# the API sent (an amount rounded, a key's first value dropped), or the same value written
# otherwise (1e5, 1.10, -0), the body is shown as it came.


def _exact_float(text: str) -> float:
    """A JSON number as a float, refused unless the float prints exactly as it was written."""
    number = float(text)
    if repr(number) != text:
        raise ValueError(text)  # 12345678901234567890.5, 1e400, 1e5 or 1.10
    return number


def _exact_int(text: str) -> int:
    """A JSON integer, refused unless it prints as it was written (-0 prints as 0)."""
    number = int(text)
    if str(number) != text:
        raise ValueError(text)
    return number


def _not_json(constant: str) -> NoReturn:
    """NaN, Infinity and -Infinity: Python reads them, JSON has no such values."""
    raise ValueError(constant)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object whose keys are all different (a dict would keep only a repeated key's last)."""
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a repeated key")
    return document


def _head(response: _Response) -> str:
    """The status line and headers as ``curl -i`` prints them: as received, CRLF line ends."""
    lines = [f"{response.version} {response.status} {response.reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in response.headers]
    return "\r\n".join(lines) + "\r\n\r\n"


# --- -v --------------------------------------------------------------------------------------


def _show_signing(signing: SigningResult | None) -> None:
    if signing is None:
        _note("* (no signing strings to show)")
        return
    lines = ["* canonical request:"]
    lines += [f"*   {redact(line)}".rstrip() for line in signing.canonical_request.split("\n")]
    lines += ["* string to sign:"]
    lines += [f"*   {redact(line)}".rstrip() for line in signing.string_to_sign.split("\n")]
    _note("\n".join(lines))


def _show_request(method: str, url: str, headers: Iterable[tuple[str, str]]) -> None:
    target = url.split("://", 1)[-1]
    target = target[target.find("/") :] if "/" in target else "/"
    lines = [redact(f"> {method} {target} HTTP/1.1")]
    lines += [redact(f"> {name}: {value}") for name, value in headers]
    _note("\n".join([*lines, ">"]))


def _ignore_request(method: str, url: str, headers: Iterable[tuple[str, str]]) -> None:
    del method, url, headers


def _show_response(response: _Response) -> None:
    lines = [f"< {response.version} {response.status} {response.reason}".rstrip()]
    lines += [redact(f"< {name}: {value}") for name, value in response.headers]
    _note("\n".join([*lines, "<"]))


# --- --dry-run -------------------------------------------------------------------------------


def _curl_command(request: _Outgoing, trust: _Trust = True) -> str:
    """A curl command line that sends exactly this signed request (needs curl 7.43 or later)."""
    body = request.body
    inferred = "POST" if body is not None else "GET"
    words = ["curl", "--globoff"]
    if trust is False:
        words.append("--insecure")
    elif trust is not True:
        words += ["--cacert", shlex.quote(trust)]
    if request.method == "HEAD" and body is None:
        words.append("--head")
    elif request.method != inferred:
        words += ["-X", request.method]
    lines = [" ".join([*words, shlex.quote(request.url)])]
    names = {name.lower() for name, _ in request.headers} | {n.lower() for n in request.left_out}
    for name, value in request.headers:
        lines.append(f"-H {shlex.quote(f'{name}: {value}' if value else f'{name};')}")
    lines += [f"-H {shlex.quote(f'{name}:')}" for name in request.left_out]
    if body is not None:
        if "content-type" not in names:
            lines.append("-H 'Content-Type:'")  # curl would add a form type of its own
        lines.append(_curl_data(body))
    return " \\\n  ".join(lines)


def _curl_data(body: _Body) -> str:
    if body.file is not None:
        return f"--data-binary {shlex.quote('@' + body.file)}"
    try:
        text = body.data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\x00" not in text:
        return f"--data-raw {shlex.quote(text)}"  # --data-raw: no @file reading, no stripping
    _note(f"{PROG}: the body is binary: pipe the same bytes into this command's stdin")
    return "--data-binary @-"


# --- sending ---------------------------------------------------------------------------------


class _Response(NamedTuple):
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    chunks: Iterator[bytes]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


def _backend() -> _Send:
    """Send with requests when it is installed, else with httpx (a dependency)."""
    try:
        import requests  # noqa: F401, PLC0415 - optional dependency
    except ImportError:
        return _via_httpx
    return _via_requests


def _user_agent() -> str:
    return f"{PROG}/{_installed('apigw-iam-auth') or 'unknown'}"


def _default_headers() -> dict[str, str]:
    """What every request carries unless -H says otherwise.

    ``Accept-Encoding: identity``: the body is written as the server sent it, like curl without
    --compressed; both backends would otherwise ask for gzip and decode it, so -o would get
    other bytes than were sent, and a mislabelled body would fail to decode.
    """
    return {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}


def _joined(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers as a dict, repeated names joined with ',' (the same meaning in HTTP and SigV4).

    Names in any case are one name: ``X-Tag`` and ``x-tag`` go out as one header, in the first
    spelling, as they were signed (as two keys, requests would send only the last).
    """
    joined: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for name, value in headers:
        first = spelling.setdefault(name.lower(), name)
        joined[first] = f"{joined[first]},{value}" if first in joined else value
    return joined


@contextlib.contextmanager
def _via_requests(
    request: _Outgoing,
    timeout: float,
    on_wire: _OnWire,
    trust: _Trust,
) -> Iterator[_Response]:
    import requests  # noqa: PLC0415 - optional dependency
    import urllib3  # noqa: PLC0415 - requests' own transport
    from urllib3.util import SKIP_HEADER  # noqa: PLC0415 - requests' own transport

    def exactly_as_signed(prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        # After requests prepared the URL: it must go out in the form that was signed.
        prepared.url = request.url
        sent = [(name, value) for name, value in prepared.headers.items() if value != SKIP_HEADER]
        on_wire(prepared.method or request.method, request.url, sent)
        return prepared

    # -H 'Name:': None drops a session default; urllib3 adds Accept-Encoding and User-Agent
    # itself unless told to skip them.
    left_out: dict[str, str | None] = {
        name: SKIP_HEADER if name.lower() in {"accept-encoding", "user-agent"} else None
        for name in request.left_out
    }

    class NoRedirects(requests.Session):
        """A session that never follows a redirect, so it leaves a 3xx's body unread.

        Even with ``allow_redirects=False``, requests reads a redirect's body (looking for the
        next hop) before returning it, and ``raw`` is then empty.
        """

        def resolve_redirects(self, *_: object, **__: object) -> Iterator[requests.Response]:
            yield from ()

    with NoRedirects() as session, warnings.catch_warnings():
        if trust is False:  # -k: as curl's, without urllib3's warning on every call
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        session.headers.update(_default_headers())
        try:
            response = session.request(
                request.method,
                request.url,
                headers={**_joined(request.headers), **left_out},
                data=request.body.data if request.body is not None else None,
                auth=exactly_as_signed,  # also keeps ~/.netrc from replacing Authorization
                timeout=timeout,
                verify=trust,
                allow_redirects=False,
                stream=True,
            )
        except (requests.RequestException, urllib3.exceptions.LocationValueError) as exc:
            raise _failure(exc, request.url, timeout) from None
        with response:
            raw_version = getattr(response.raw, "version", 11)
            yield _Response(
                response.status_code,
                response.reason or "",
                {10: "HTTP/1.0", 20: "HTTP/2"}.get(raw_version, "HTTP/1.1"),
                list(response.raw.headers.items()),
                _guarded(
                    _as_it_arrives(response.raw),
                    (requests.RequestException, urllib3.exceptions.HTTPError),
                    request,
                    timeout,
                ),
            )


def _as_it_arrives(raw: BaseHTTPResponse) -> Iterator[bytes]:
    """A requests body as the server sent it (not decoded), each piece as soon as it arrives.

    ``stream()`` calls ``read(amt)``, which waits for ``amt`` bytes or the end of a body framed
    by Content-Length or by closing the connection; ``read1`` (urllib3 2.3 and later) returns
    what has arrived. Older urllib3 streams as it can: a chunked body chunk by chunk.
    """
    if not hasattr(raw, "read1"):  # urllib3 before 2.3
        yield from raw.stream(_CHUNK, decode_content=False)
        return
    while data := raw.read1(_CHUNK, decode_content=False):
        yield data


@contextlib.contextmanager
def _via_httpx(
    request: _Outgoing,
    timeout: float,
    on_wire: _OnWire,
    trust: _Trust,
) -> Iterator[_Response]:
    import httpx  # noqa: PLC0415 - only when requests is missing

    verify: bool | ssl.SSLContext = trust if isinstance(trust, bool) else _context(trust)
    try:
        client = httpx.Client(timeout=timeout, headers=_default_headers(), verify=verify)
    except ImportError as exc:  # a SOCKS proxy in the environment, and no socksio
        if _SOCKS not in str(exc):
            raise
        raise _no_socks(request.url, "httpx") from None
    with client:
        try:
            built = client.build_request(
                request.method,
                request.url,
                headers=_joined(request.headers),
                content=request.body.data if request.body is not None else None,
            )
            for name in request.left_out:  # -H 'Name:'
                built.headers.pop(name, None)
            sent = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in built.headers.raw
            ]
            on_wire(built.method, str(built.url), sent)  # as written: names in their case, in order
            response = client.send(built, stream=True)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError) as exc:
            # UnicodeError: a host name the 'idna' codec refuses when connecting
            raise _failure(exc, request.url, timeout) from None
        raw_headers = response.headers.raw  # each name as the server spelled it
        try:
            yield _Response(
                response.status_code,
                response.reason_phrase,
                response.http_version,
                [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers],
                _guarded(response.iter_raw(), httpx.HTTPError, request, timeout),  # as they arrive
            )
        finally:
            response.close()


def _context(bundle: str, set_by: str = "") -> ssl.SSLContext:
    """Trust ``bundle`` (httpx takes a context; a path is deprecated since 0.28)."""
    is_dir = Path(bundle).is_dir()
    try:
        return ssl.create_default_context(
            cafile=None if is_dir else bundle, capath=bundle if is_dir else None
        )
    except (ssl.SSLError, OSError) as exc:
        named = f"{bundle} ({set_by})" if set_by else bundle
        raise _CliError(f"the CA bundle {named} holds no certificate to trust: {exc}") from None


def _guarded(
    chunks: Iterator[bytes],
    errors: type[Exception] | tuple[type[Exception], ...],
    request: _Outgoing,
    timeout: float,
) -> Iterator[bytes]:
    """The body's chunks; a connection lost on the way becomes our error."""
    try:
        yield from chunks
    except errors as exc:
        raise _failure(exc, request.url, timeout) from None


def _failure(exc: Exception, url: str, timeout: float) -> _CliError:
    """One line naming the origin (never the URL: a presigned one is a credential)."""
    scheme, _, rest = url.partition("://")
    origin = f"{scheme}://{re.split(r'[/?#]', rest, maxsplit=1)[0]}"
    name = type(exc).__name__
    if "Timeout" in name:  # requests' and httpx's ConnectTimeout, ReadTimeout, ...
        doing = "connect to" if "Connect" in name else "get a response from"
        return _CliError(f"could not {doing} {origin} within {timeout:g}s (--timeout)", EXIT_FAILED)
    if name == "InvalidSchema" and _SOCKS in str(exc):  # requests: "Missing dependencies..."
        return _no_socks(url, "requests")
    if name in _UNSENDABLE or isinstance(exc, UnicodeError):
        return _CliError(f"the URL cannot be sent: {redact(str(exc))}", EXIT_USAGE)
    chain = _causes(exc)
    root = chain[-1]
    if isinstance(root, OSError) and root.strerror:
        reason = root.strerror
    else:
        found = _STRERROR.search(str(root))
        reason = found[1].strip() if found else redact(str(root)) or type(root).__name__
    if any(isinstance(link, ssl.SSLCertVerificationError) for link in chain):
        reason = (
            f"{reason} (to trust a private CA or a proxy's, set AWS_CA_BUNDLE or the profile's "
            "ca_bundle to its PEM file; -k skips the check)"
        )
    if any(type(link).__name__ in _NOT_CONNECTED for link in chain):
        proxy = _proxy_for(url) if _maybe_proxied(chain) else None
        if proxy is not None:  # the only connection made is the one to the proxy
            proxy_origin, set_by, host = proxy
            return _CliError(
                f"cannot reach the proxy {proxy_origin} that {set_by} for {scheme}:// "
                f"URLs: {reason} (NO_PROXY={host} would bypass it for this host)",
                EXIT_FAILED,
            )
        return _CliError(f"cannot reach {origin}: {reason}", EXIT_FAILED)
    return _CliError(f"the request to {origin} failed: {reason}", EXIT_FAILED)


def _no_socks(url: str, package: str) -> _CliError:
    """A SOCKS proxy is set for ``url`` and ``package`` has no SOCKS support installed."""
    proxy = _proxy_for(url)
    if proxy is None:  # set some other way than urllib reads: say what the client said
        return _CliError(
            f"a SOCKS proxy is set, and SOCKS support is not installed: "
            f"pip install '{package}[socks]'",
            EXIT_USAGE,
        )
    proxy_origin, set_by, host = proxy
    scheme = url.partition("://")[0].lower()
    return _CliError(
        f"cannot use the SOCKS proxy {proxy_origin} that {set_by} for {scheme}:// URLs: SOCKS "
        f"support is not installed (pip install '{package}[socks]'; NO_PROXY={host} would "
        "bypass the proxy for this host)",
        EXIT_USAGE,
    )


# In requests' and httpx's messages when a SOCKS proxy is set and their SOCKS extra is missing.
_SOCKS = "SOCKS"


def _maybe_proxied(chain: list[BaseException]) -> bool:
    """Whether the connection that failed may have been the one to a proxy.

    requests says so (urllib3's ``ProxyError``: "Unable to connect to proxy"), and without it
    went straight to the API (its ``NO_PROXY`` also takes CIDR blocks, ``127.0.0.0/8``, which
    urllib's rule does not). httpx does not say: it reads the environment as urllib does,
    CIDR blocks not bypassed, so :func:`_proxy_for` decides.
    """
    if any(type(link).__name__ == "ProxyError" for link in chain):
        return True
    return type(chain[0]).__module__.partition(".")[0] != "requests"


def _proxy_for(url: str) -> tuple[str, str, str] | None:
    """The proxy both backends send ``url`` through, if any: its origin, who set it, the host.

    Who set it reads as a sentence's subject and verb: "HTTPS_PROXY sets".

    They read proxies as ``urllib.request.getproxies`` does (``<scheme>_proxy`` or
    ``all_proxy``, either case, less the hosts of ``no_proxy``). The origin is shown without
    the user and password a proxy URL may hold.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxies = urllib.request.getproxies()
    key = parts.scheme.lower() if parts.scheme.lower() in proxies else "all"
    proxy = proxies.get(key)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    netloc = proxy_parts.netloc.rpartition("@")[2]
    named = [name for name in os.environ if name.lower() == f"{key}_proxy"]
    set_by = f"{' or '.join(sorted(named))} sets" if named else "the system's proxy settings set"
    return f"{proxy_parts.scheme}://{netloc}", set_by, host


# A URL the client refuses to send (requests', urllib3's and httpx's names).
_UNSENDABLE = frozenset(
    {"InvalidURL", "MissingSchema", "InvalidSchema", "UnsupportedProtocol"}
    | {"LocationParseError", "LocationValueError"}
)
# Failures before a connection existed (requests/urllib3's and httpx's names for them).
_NOT_CONNECTED = frozenset(
    {"ConnectError", "NewConnectionError", "NameResolutionError", "ConnectionRefusedError"}
)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps, down to the reason the OS or TLS gave ("Connection refused").

    requests nests it in arguments (ConnectionError > MaxRetryError > NewConnectionError >
    OSError), httpx in a chain of causes; their own messages quote the URL, never shown.
    """
    chain = [exc]
    while len(chain) < 16:  # noqa: PLR2004 - deeper is a cycle, or not worth reading
        inner = exc.__cause__ or getattr(exc, "reason", None) or exc.__context__
        if inner is None and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException) or inner in chain:
            break
        chain.append(inner)
        exc = inner
    return chain


# --- serve and demo --------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from apigw_iam_auth.server import (  # noqa: PLC0415 - the server side, only for serve
        IamAuthServer,
        keys_from_env,
        load_keys,
        load_policy,
    )

    keys = load_keys(args.credentials) if args.credentials else keys_from_env()
    policy = load_policy(args.policy) if args.policy else None
    server = IamAuthServer(
        args.host,
        args.port,
        region=args.region,
        service=args.service,
        keys=keys,
        policy=policy,
        api_id=args.api_id,
        account_id=args.account_id,
    )
    banner = f"{len(keys)} known key(s), region {args.region}"
    if policy:
        banner += f", policy {args.policy} for API {args.api_id} of account {args.account_id}"

    def ready(url: str) -> None:
        if not args.quiet:
            _note(f"{PROG}: {banner}; Ctrl-C stops")
        print(f"listening on {url}", flush=True)

    with _access_log(enabled=not args.quiet), contextlib.suppress(KeyboardInterrupt):
        try:
            server.serve_forever(on_ready=ready)
        except (OSError, ApiGwIamAuthError) as exc:
            cause = exc if isinstance(exc, OSError) else exc.__cause__
            if not isinstance(cause, OSError):
                raise
            raise _listen_error(cause, args.host, args.port) from None
    return EXIT_OK


def _listen_error(exc: OSError, host: str, port: int) -> _CliError:
    where = f"cannot listen on {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return _CliError(
            f"{where}: port {port} is already in use; stop what listens there, or pick another "
            "with --port (--port 0 picks a free one)"
        )
    if exc.errno == errno.EACCES:
        return _CliError(f"{where}: permission denied; use --port 1024 or above (or --port 0)")
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return _CliError(f"{where}: {host} is not an address of this machine; use --host 127.0.0.1")
    return _CliError(f"{where} (--host, --port): {exc.strerror or exc}")


@contextlib.contextmanager
def _access_log(*, enabled: bool) -> Iterator[None]:
    """One line per request on stderr, as the server formats it (redacted there)."""
    logger = logging.getLogger(_ACCESS_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    previous = logger.level, logger.propagate
    if enabled:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # printed once, not again by the library handler
    try:
        yield
    finally:
        if enabled:
            logger.removeHandler(handler)
            logger.setLevel(previous[0])
            logger.propagate = previous[1]


def _demo() -> int:
    from apigw_iam_auth.server._demo import run_demo  # noqa: PLC0415 - the server side

    with _writing_stdout():
        passed = run_demo(_stdout())
    return EXIT_OK if passed else EXIT_FAILED
