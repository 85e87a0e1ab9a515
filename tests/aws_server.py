"""A loopback HTTP server that checks SigV4 the way API Gateway does, using botocore only.

Integration tests of the requests and httpx adapters send real requests here. The server
recomputes every signature with botocore's ``SigV4Auth`` steps (``canonical_request``,
``string_to_sign``, ``signature``) from the bytes it received -- the request-target as it stood
on the request line, the headers the client listed in ``SignedHeaders``, the raw body -- so a
test that passes proves our signer agrees with an independent implementation over a real
socket. Nothing from ``apigw_iam_auth`` is imported here, on purpose.

What the server does that botocore alone would not (each an API Gateway behaviour):

* The query is canonicalised as API Gateway reads it: every name and value is percent-decoded,
  with ``+`` read as a space (SIGV4_NOTES.md section 2), then re-encoded with the RFC 3986
  unreserved set, before botocore sorts it. A client that signs ``a=x+y`` verbatim therefore
  gets a 403 whose canonical string shows ``a=x%20y``, as it would from AWS.
* The path is the raw request-target path; botocore normalises and double-encodes it, which
  is what execute-api does (SIGV4_NOTES.md section 1).
* Headers that botocore never signs (user-agent, expect, transfer-encoding, ...) are hashed
  when the client listed them: a verifier must check what was signed, not what botocore would
  have signed (see ``_ListedHeadersSigV4``).
* Clock skew over 5 minutes, presigned expiry, credential scope, unknown keys and session
  tokens are refused with API Gateway's 403 bodies and ``x-amzn-ErrorType`` values
  (SIGV4_NOTES.md section 5); every response carries a ``Date`` from the server clock.
* A signed ``x-amz-content-sha256`` must be the body's real SHA-256: execute-api has no
  ``UNSIGNED-PAYLOAD`` (SIGV4_NOTES.md section 4), so that header is refused with a 400.

Routes: ``/redirect-unsigned?to=URL&status=302`` redirects without checking anything,
``/redirect?to=URL&status=307`` redirects only after the signature checks out,
``/slow?ms=N`` waits N ms (cut short when the server stops) and then answers as any other path.
Every other path answers a verified request with a JSON echo of what was received.

Use ``with running_server() as server:`` (or ``AwsServer(...)`` with ``start()``/``stop()``);
``server.url("/prod/pets")`` is the address to call, ``server.requests`` the log.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import socket
import socketserver
import ssl
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote_to_bytes

import trustme
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import ReadOnlyCredentials

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

__all__ = [
    "ACCESS_KEY",
    "DEFAULT_CREDENTIALS",
    "SECRET_KEY",
    "SESSION_ACCESS_KEY",
    "SESSION_SECRET_KEY",
    "SESSION_TOKEN",
    "AwsServer",
    "ReceivedRequest",
    "RequestRecord",
    "VerificationError",
    "Verified",
    "running_server",
    "verify",
]

# Fake credentials the server knows by default: one long-term key, one temporary key whose
# session token must come with it.
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_ACCESS_KEY = "ASIAEXAMPLESESSION"
SESSION_SECRET_KEY = "session/secret+EXAMPLEKEY"
SESSION_TOKEN = "FQoGZXIvYXdzEXAMPLE//token+with/slashes="
DEFAULT_CREDENTIALS: Mapping[str, tuple[str, str | None]] = {
    ACCESS_KEY: (SECRET_KEY, None),
    SESSION_ACCESS_KEY: (SESSION_SECRET_KEY, SESSION_TOKEN),
}

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=5)  # execute-api header auth, SIGV4_NOTES.md section 5
MAX_EXPIRES = 604800  # 7 days, SIGV4_NOTES.md section 6
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# x-amzn-ErrorType values API Gateway sends with its 403s (SIGV4_NOTES.md section 5).
MISSING_TOKEN = "MissingAuthenticationTokenException"
INCOMPLETE_SIGNATURE = "IncompleteSignatureException"
INVALID_SIGNATURE = "InvalidSignatureException"
UNRECOGNIZED_CLIENT = "UnrecognizedClientException"
BAD_REQUEST = "BadRequestException"

MISMATCH_INTRO = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."

_AMZ_DATE = re.compile(r"\d{8}T\d{6}Z")
_BAD_HOST_CHARS = frozenset("/?#@\\ \t")


def utc_now() -> datetime:
    """The real time, aware and in UTC: the default server clock."""
    return datetime.now(timezone.utc)


class VerificationError(Exception):
    """A request the gateway refuses: HTTP status, ``x-amzn-ErrorType`` and message."""

    def __init__(self, error_type: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ReceivedRequest:
    """What came over the socket: raw request-target, headers in order, raw body."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    @property
    def path(self) -> str:
        """The raw path of the request-target, as sent."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The raw query of the request-target, as sent (no leading ``?``)."""
        return self.target.partition("?")[2]

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` in the order received."""
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def joined_headers(self) -> dict[str, str]:
        """Lowercased names, repeated headers joined with ',' (as botocore joins them)."""
        joined: dict[str, list[str]] = {}
        for name, value in self.headers:
            joined.setdefault(name.lower(), []).append(value)
        return {name: ",".join(values) for name, values in joined.items()}


@dataclass(frozen=True)
class Verified:
    """A request whose signature botocore reproduced."""

    mode: str  # "header" or "query"
    access_key: str
    canonical_request: str
    string_to_sign: str


@dataclass(frozen=True)
class RequestRecord:
    """One line of the server's request log, for tests to inspect."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body_sha256: str
    status: int
    verified: bool
    auth_mode: str | None
    error_type: str | None
    message: str | None


@dataclass(frozen=True)
class _AuthParams:
    """The SigV4 elements of a request, from its Authorization header or its query."""

    mode: str
    algorithm: str
    credential: str
    signed_headers: str
    signature: str
    amz_date: str
    token: str | None
    expires: int | None  # query mode only
    query_pieces: tuple[str, ...]  # the raw query pieces that are signed (no X-Amz-Signature)


class _ListedHeadersSigV4(SigV4Auth):
    """botocore's ``SigV4Auth`` with its signing skip-list lifted.

    botocore's ``headers_to_sign`` drops user-agent, expect, transfer-encoding, x-amzn-trace-id
    and a few more, because *its* signer never signs them. A verifier must hash whatever the
    client listed, and the request handed to it carries only the listed headers, so selecting
    all of them is the only change; canonical headers, canonical request, string to sign and
    signature stay botocore's.
    """

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        """Every header of ``request`` (the caller put only the listed ones there)."""
        selected = HTTPHeaders()
        for name, value in request.headers.items():
            selected[name.lower()] = value
        return selected


def _decode_component(raw: str) -> bytes:
    """A query name or value as API Gateway reads it: ``+`` is a space, escapes decoded."""
    return unquote_to_bytes(raw.replace("+", " "))


def apigw_query(pieces: tuple[str, ...] | list[str]) -> str:
    """The query API Gateway canonicalises: each piece decoded and re-encoded, unsorted.

    botocore then splits this on '&' and sorts it by (name, value); since every piece is
    already in canonical encoding that sort gives the canonical query string.
    """
    encoded = []
    for piece in pieces:
        name, _, value = piece.partition("=")
        encoded.append(
            quote(_decode_component(name), safe="") + "=" + quote(_decode_component(value), safe="")
        )
    return "&".join(encoded)


def _query_pieces(query: str) -> list[str]:
    """The '&'-separated pieces of a raw query; empty pieces carry nothing and are dropped."""
    return [piece for piece in query.split("&") if piece]


def _piece_name(piece: str) -> str:
    return _decode_component(piece.partition("=")[0]).decode("utf-8", "replace")


def _piece_value(piece: str) -> str:
    return _decode_component(piece.partition("=")[2]).decode("utf-8", "replace")


def _amz(moment: datetime) -> str:
    return moment.strftime(AMZ_DATE_FORMAT)


def _parse_authorization(value: str, request: ReceivedRequest) -> _AuthParams:
    """Split ``AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..``."""
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for component in rest.split(","):
        item = component.strip()
        if not item:
            continue
        key, sep, val = item.partition("=")
        if not sep:
            raise VerificationError(
                INCOMPLETE_SIGNATURE,
                f"'{item}' not a valid key=value pair (missing equal-sign) in Authorization "
                f"header: '{value}'.",
            )
        fields[key.strip()] = val.strip()
    amz_dates = request.values("x-amz-date")
    dates = request.values("date")
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if not amz_dates and not dates:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        raise VerificationError(
            INCOMPLETE_SIGNATURE, " ".join([*problems, f"Authorization={value}"])
        )
    if amz_dates:
        amz_date = amz_dates[0]
    else:
        try:
            amz_date = _amz(parsedate_to_datetime(dates[0]).astimezone(timezone.utc))
        except (TypeError, ValueError):
            raise VerificationError(
                INCOMPLETE_SIGNATURE, f"Date header is not an HTTP date: '{dates[0]}'"
            ) from None
    tokens = request.values("x-amz-security-token")
    return _AuthParams(
        mode="header",
        algorithm=algorithm,
        credential=fields["Credential"],
        signed_headers=fields["SignedHeaders"],
        signature=fields["Signature"],
        amz_date=amz_date,
        token=tokens[0] if tokens else None,
        expires=None,
        query_pieces=tuple(_query_pieces(request.query)),
    )


_QUERY_AUTH_REQUIRED = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)


def _parse_query_auth(pieces: list[str]) -> _AuthParams:
    """Read the X-Amz-* parameters of a presigned URL; drop X-Amz-Signature from the rest."""
    found: dict[str, list[str]] = {}
    for piece in pieces:
        found.setdefault(_piece_name(piece), []).append(_piece_value(piece))
    if any(not found.get(name) for name in _QUERY_AUTH_REQUIRED):
        listed = ", ".join(f"'{name}'" for name in _QUERY_AUTH_REQUIRED)
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            f"AWS query-string parameters must include {listed}. "
            "Re-examine the query-string parameters.",
        )
    repeated = sorted(
        name
        for name in (*_QUERY_AUTH_REQUIRED, "X-Amz-Security-Token")
        if len(found.get(name, ())) > 1
    )
    if repeated:
        raise VerificationError(
            INCOMPLETE_SIGNATURE, f"Query-string parameters repeated: {', '.join(repeated)}."
        )
    raw_expires = found["X-Amz-Expires"][0]
    if not raw_expires.isdigit() or not 1 <= int(raw_expires) <= MAX_EXPIRES:
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES}, "
            f"got '{raw_expires}'.",
        )
    tokens = found.get("X-Amz-Security-Token")
    return _AuthParams(
        mode="query",
        algorithm=found["X-Amz-Algorithm"][0],
        credential=found["X-Amz-Credential"][0],
        signed_headers=found["X-Amz-SignedHeaders"][0],
        signature=found["X-Amz-Signature"][0],
        amz_date=found["X-Amz-Date"][0],
        token=tokens[0] if tokens else None,
        expires=int(raw_expires),
        query_pieces=tuple(p for p in pieces if _piece_name(p) != "X-Amz-Signature"),
    )


def _auth_params(request: ReceivedRequest) -> _AuthParams:
    """Find the request's authentication: header mode, query mode, or none."""
    authorizations = request.values("authorization")
    pieces = _query_pieces(request.query)
    in_query = {_piece_name(p) for p in pieces} & {"X-Amz-Algorithm", "X-Amz-Signature"}
    if authorizations and in_query:
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
            "Authorization header should be specified.",
        )
    if len(authorizations) > 1:
        raise VerificationError(INCOMPLETE_SIGNATURE, "Only one Authorization header is allowed.")
    if authorizations:
        return _parse_authorization(authorizations[0], request)
    if in_query:
        return _parse_query_auth(pieces)
    raise VerificationError(MISSING_TOKEN, "Missing Authentication Token")


def _check_scope(params: _AuthParams, region: str, service: str) -> tuple[str, datetime]:
    """Check algorithm, credential scope and date format; return the access key and time."""
    if params.algorithm != ALGORITHM:
        raise VerificationError(
            INCOMPLETE_SIGNATURE, f"Unsupported AWS 'algorithm': '{params.algorithm}'."
        )
    if not _AMZ_DATE.fullmatch(params.amz_date):
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            f"Date must be in ISO-8601 'basic format'. Got '{params.amz_date}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601",
        )
    try:
        signed_at = datetime.strptime(params.amz_date, AMZ_DATE_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            f"Date must be in ISO-8601 'basic format'. Got '{params.amz_date}'.",
        ) from None
    parts = params.credential.split("/")
    if len(parts) != 5:  # keyid/date/region/service/terminator
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{params.credential}'",
        )
    access_key, scope_date, scope_region, scope_service, terminator = parts
    problems = ""
    if scope_region != region:
        problems += f"Credential should be scoped to a valid region, not '{scope_region}'. "
    if scope_service != service:
        problems += f"Credential should be scoped to correct service: '{service}'. "
    if terminator != "aws4_request":
        problems += (
            f"Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{terminator}'. "
        )
    if problems:
        raise VerificationError(INVALID_SIGNATURE, problems)
    if scope_date != params.amz_date[:8]:
        raise VerificationError(
            INVALID_SIGNATURE,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{scope_date}' != '{params.amz_date[:8]}', from '{params.amz_date}'.",
        )
    return access_key, signed_at


def _check_time(
    params: _AuthParams, signed_at: datetime, now: datetime, max_skew: timedelta
) -> None:
    """Header mode: within ``max_skew`` of the server clock. Query mode: not yet expired."""
    if signed_at > now + max_skew:
        raise VerificationError(
            INVALID_SIGNATURE,
            f"Signature not yet current: {params.amz_date} is still later than "
            f"{_amz(now + max_skew)} ({_amz(now)} + {_minutes(max_skew)} min.)",
        )
    if params.expires is None and signed_at < now - max_skew:
        raise VerificationError(
            INVALID_SIGNATURE,
            f"Signature expired: {params.amz_date} is now earlier than "
            f"{_amz(now - max_skew)} ({_amz(now)} - {_minutes(max_skew)} min.)",
        )
    if params.expires is not None and now > signed_at + timedelta(seconds=params.expires):
        raise VerificationError(INVALID_SIGNATURE, "Request has expired")


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:g}"


def _check_content_sha256(request: ReceivedRequest) -> None:
    """A sent ``x-amz-content-sha256`` replaces the body hash, so it must be the body's hash."""
    actual = hashlib.sha256(request.body).hexdigest()
    for value in request.values("x-amz-content-sha256"):
        if value.strip().lower() != actual:
            raise VerificationError(
                BAD_REQUEST,
                "The provided 'x-amz-content-sha256' header does not match what was computed "
                "(execute-api signs the body itself; UNSIGNED-PAYLOAD is not accepted).",
                status=400,
            )


def verify(
    request: ReceivedRequest,
    *,
    credentials: Mapping[str, tuple[str, str | None]],
    region: str,
    service: str,
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
) -> Verified:
    """Check ``request`` as API Gateway would, recomputing the signature with botocore.

    Raises ``VerificationError`` carrying the gateway's status, error type and message.
    """
    hosts = request.values("host")
    if len(hosts) != 1 or not hosts[0] or _BAD_HOST_CHARS & set(hosts[0]):
        raise VerificationError(BAD_REQUEST, "Exactly one valid Host header is required.", 400)
    params = _auth_params(request)
    signed_names = params.signed_headers.split(";")
    if "host" not in signed_names:
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    access_key, signed_at = _check_scope(params, region, service)
    _check_time(params, signed_at, now, max_skew)
    if access_key not in credentials:
        raise VerificationError(UNRECOGNIZED_CLIENT, INVALID_TOKEN)
    secret, token = credentials[access_key]
    if params.token != token:
        raise VerificationError(UNRECOGNIZED_CLIENT, INVALID_TOKEN)
    _check_content_sha256(request)

    query = apigw_query(params.query_pieces)
    url = f"http://{hosts[0]}{request.path}" + (f"?{query}" if query else "")
    aws_request = AWSRequest(method=request.method, url=url, data=request.body)
    for name, value in request.headers:  # only the listed ones; repeats kept (HTTPHeaders)
        if name.lower() in signed_names:
            aws_request.headers[name] = value
    aws_request.context["timestamp"] = params.amz_date
    auth = _ListedHeadersSigV4(ReadOnlyCredentials(access_key, secret, token), service, region)
    found = auth.signed_headers(auth.headers_to_sign(aws_request))
    if found != params.signed_headers:
        raise VerificationError(
            INCOMPLETE_SIGNATURE,
            f"SignedHeaders '{params.signed_headers}' must name, lowercase, sorted and separated "
            f"by ';', headers the request carries; the request has '{found}' of them.",
        )
    canonical_request = auth.canonical_request(aws_request)
    string_to_sign = auth.string_to_sign(aws_request, canonical_request)
    expected = auth.signature(string_to_sign, aws_request)
    if not hmac.compare_digest(expected, params.signature):
        raise VerificationError(
            INVALID_SIGNATURE,
            f"{MISMATCH_INTRO}\n\nThe Canonical String for this request should have been\n"
            f"'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
        )
    return Verified(params.mode, access_key, canonical_request, string_to_sign)


@dataclass(frozen=True)
class _Reply:
    """A JSON answer, with what the log needs to know about it."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()
    verified: Verified | None = None
    error_type: str | None = None


def _route(path: str) -> str | None:
    """The test route a path names by its first segment, if any."""
    first = path.split("/")[1] if path.startswith("/") else ""
    return first if first in {"redirect", "redirect-unsigned", "slow"} else None


def _redirect(query: str) -> _Reply:
    params = parse_qs(query, keep_blank_values=True)
    location = params.get("to", [""])[0]
    status_text = params.get("status", ["302"])[0]
    if not location or not status_text.isdigit() or int(status_text) not in REDIRECT_STATUSES:
        return _Reply(
            400,
            {"message": "redirect needs ?to=<url>&status=301|302|303|307|308"},
            error_type=BAD_REQUEST,
        )
    return _Reply(int(status_text), {"location": location}, (("Location", location),))


class _BadRequestError(Exception):
    """The bytes on the wire were not an HTTP request we can read."""


class _Handler(BaseHTTPRequestHandler):
    """Reads one request at a time off a keep-alive connection and lets the server answer."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection is closed after this (seconds)
    # Answer at once: with Nagle on, a keep-alive response waits ~40 ms for the client's ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def handle_one_request(self) -> None:
        """Like the stdlib's, but for any method and with the raw request line kept."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:  # the stdlib's own limit
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            self._answer()
            self.wfile.flush()
        except OSError:  # timed out, reset, or shut down by stop(): this connection is done
            self.close_connection = True

    def _answer(self) -> None:
        # parse_request rewrites a leading '//' in self.path; the request line keeps the bytes.
        target = self.raw_requestline.decode("iso-8859-1").split()[1]
        try:
            _check_target(target)
            body = self._read_body()
        except _BadRequestError as exc:
            self.close_connection = True
            body = b""
            reply = _Reply(400, {"message": str(exc)}, error_type=BAD_REQUEST)
        else:
            received = ReceivedRequest(
                method=self.command,
                target=target,
                headers=tuple((name, _as_utf8(value)) for name, value in self.headers.items()),
                body=body,
            )
            reply = self.server.owner._answer(received)
        self.server.owner._record(self.command, target, self.headers.items(), body, reply)
        self._send(reply)

    def _read_body(self) -> bytes:
        encodings = [v.strip().lower() for v in self.headers.get_all("Transfer-Encoding", [])]
        if encodings:
            if encodings != ["chunked"]:
                raise _BadRequestError(f"unsupported Transfer-Encoding {encodings}")
            return self._read_chunked()
        lengths = self.headers.get_all("Content-Length", [])
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not lengths[0].strip().isdigit():
            raise _BadRequestError(f"bad Content-Length {lengths}")
        return self.rfile.read(int(lengths[0]))

    def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size_line = self.rfile.readline(65537).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise _BadRequestError(f"bad chunk size {size_line!r}") from None
            if size == 0:
                break
            chunks.append(self.rfile.read(size))
            if self.rfile.readline(3) != b"\r\n":
                raise _BadRequestError("chunk not followed by CRLF")
        while self.rfile.readline(65537) not in {b"\r\n", b"\n", b""}:
            pass  # trailer fields: read and ignored
        return b"".join(chunks)

    def _send(self, reply: _Reply) -> None:
        payload = json.dumps(reply.body, separators=(",", ":"), ensure_ascii=False).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if reply.error_type:
            self.send_header("x-amzn-ErrorType", reply.error_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header from the server clock (offset included), RFC 7231 format."""
        del timestamp
        return format_datetime(self.server.owner.now(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Stay quiet: the request log is ``AwsServer.requests``."""


def _check_target(target: str) -> None:
    if not target.startswith("/") or not target.isascii():
        raise _BadRequestError("the request-target must be an ASCII origin-form path")


def _as_utf8(value: str) -> str:
    """Header bytes arrive decoded as Latin-1; clients hash the UTF-8 bytes they send."""
    try:
        return value.encode("iso-8859-1").decode("utf-8")
    except UnicodeError:
        return value


class _HTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server that knows its live connections, so ``stop()`` can end them."""

    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    request_queue_size = 128  # socketserver's default of 5 refuses bursts of connections

    def __init__(self, address: tuple[str, int], owner: AwsServer, family: int) -> None:
        self.address_family = family
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's ``getfqdn`` reverse lookup (no DNS in tests)."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the connection, then serve it on its own thread."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection before it is closed (so it is never shut down twice)."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def end_connections(self) -> None:
        """Shut every open connection down: idle keep-alive readers wake up and exit."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


# The test CA of the servers that speak TLS (``AwsServer(tls=True)``); CLIENT_TLS trusts it.
_TEST_CA = trustme.CA()
SERVER_TLS = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
_TEST_CA.issue_cert("127.0.0.1", "::1", "localhost").configure_cert(SERVER_TLS)
CLIENT_TLS = ssl.create_default_context()
_TEST_CA.configure_trust(CLIENT_TLS)
# The same CA as PEM, for a client that trusts a file (requests' ``verify=``).
CLIENT_CA_PEM = _TEST_CA.cert_pem.bytes()


class AwsServer:
    """A loopback API Gateway stand-in that checks SigV4 with botocore.

    ``credentials`` maps access key to ``(secret, session token or None)``; a key with a token
    is accepted only with exactly that token. ``clock`` returns the time as an aware datetime;
    ``clock_offset`` is added to it and may be changed while the server runs, to make the
    server's clock disagree with the client's. ``tls=True`` serves https with a certificate
    of a test CA, which clients trust through :data:`CLIENT_TLS`.
    """

    def __init__(
        self,
        *,
        credentials: Mapping[str, tuple[str, str | None]] = DEFAULT_CREDENTIALS,
        region: str = "us-east-1",
        service: str = "execute-api",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = utc_now,
        clock_offset: timedelta = timedelta(0),
        max_skew: timedelta = MAX_SKEW,
        tls: bool = False,
    ) -> None:
        self.credentials = dict(credentials)
        self.tls = tls
        self.region = region
        self.service = service
        self.host = host
        self.clock = clock
        self.clock_offset = clock_offset
        self.max_skew = max_skew
        self._requested_port = port
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> AwsServer:
        """Bind and serve on a background thread; returns self."""
        if self._httpd is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._requested_port), self, family)
        if self.tls:  # each connection's handshake runs as it is accepted
            self._httpd.socket = SERVER_TLS.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"aws-server-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open connections and slow waits, join all threads, close sockets."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.end_connections()
        httpd.server_close()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> AwsServer:  # noqa: PYI034 - typing.Self needs Python 3.11
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses and clock -----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the server must be started)."""
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, ``http://[::1]:PORT``, or ``https://`` with TLS."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def url(self, path_and_query: str = "/") -> str:
        """An absolute URL on this server for ``path_and_query`` (which starts with '/')."""
        return self.base_url + path_and_query

    def now(self) -> datetime:
        """The server's time: ``clock() + clock_offset``, in UTC."""
        return (self.clock() + self.clock_offset).astimezone(timezone.utc)

    # -- request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first."""
        with self._log_lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests were answered."""
        with self._log_lock:
            return len(self._log)

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._log_lock:
            self._log.clear()

    # -- answering (called on handler threads) -----------------------------------------------

    def _answer(self, request: ReceivedRequest) -> _Reply:
        route = _route(request.path)
        if route == "slow":
            milliseconds = parse_qs(request.query).get("ms", ["0"])[0]
            if not milliseconds.isdigit():
                return _Reply(
                    400, {"message": "slow needs ?ms=<whole milliseconds>"}, error_type=BAD_REQUEST
                )
            self._stopping.wait(int(milliseconds) / 1000)
        if route == "redirect-unsigned":
            return _redirect(request.query)
        try:
            verified = verify(
                request,
                credentials=self.credentials,
                region=self.region,
                service=self.service,
                now=self.now(),
                max_skew=self.max_skew,
            )
        except VerificationError as exc:
            return _Reply(exc.status, {"message": exc.message}, error_type=exc.error_type)
        if route == "redirect":
            reply = _redirect(request.query)
        else:
            reply = _Reply(
                200,
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.joined_headers(),
                    "body_sha256": hashlib.sha256(request.body).hexdigest(),
                    "body_length": len(request.body),
                    "auth_mode": verified.mode,
                    "access_key": verified.access_key,
                    "canonical_request": verified.canonical_request,
                },
            )
        return _Reply(reply.status, reply.body, reply.headers, verified, reply.error_type)

    def _record(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        reply: _Reply,
    ) -> None:
        record = RequestRecord(
            method=method,
            target=target,
            headers=tuple(headers),
            body_sha256=hashlib.sha256(body).hexdigest(),
            status=reply.status,
            verified=reply.verified is not None,
            auth_mode=reply.verified.mode if reply.verified else None,
            error_type=reply.error_type,
            message=reply.body.get("message") if reply.error_type else None,
        )
        with self._log_lock:
            self._log.append(record)


@contextlib.contextmanager
def running_server(**settings: Any) -> Iterator[AwsServer]:
    """``with running_server(region="eu-west-1") as server:`` -- started, then stopped."""
    with AwsServer(**settings) as server:
        yield server
