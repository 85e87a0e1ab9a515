"""A local HTTP server that authenticates like API Gateway with IAM authorization.

Develop and test against an IAM-protected API offline: the server verifies header-signed and
presigned requests over the exact bytes it received (:func:`~apigw_iam_auth.server.verify_request`),
optionally evaluates an IAM policy for ``execute-api:Invoke``, answers failures with API
Gateway's 403 bodies and ``x-amzn-ErrorType`` headers, and echoes accepted requests as JSON.

Known keys come from a credentials file (:func:`load_keys`) or the server's own environment
(:func:`keys_from_env`). Standard library only (``http.server``): HTTP/1.1 with keep-alive,
``Content-Length`` and chunked request bodies, one thread per connection.

Every request answered gets one line at INFO on the ``apigw_iam_auth.server.access`` logger and
one :class:`RequestRecord` in :attr:`IamAuthServer.requests`, both written before the response
is sent (a client that has its answer can read the record). The line, with the record attached
to the log record as ``request_record``::

    127.0.0.1 "GET /prod/pets?type=dog" 200 <request-id> accepted AKIDEXAMPLE
    127.0.0.1 "GET /prod/pets" 403 <request-id> refused MissingAuthenticationTokenException:
        Missing Authentication Token; likely cause: the request is not signed: ...

(one line; wrapped here). The request id is the response's ``x-amzn-RequestId``. Signatures and
session tokens in the request-target are redacted; the reason is the log-safe form of the 403
message and the likely cause comes from the verifier (:attr:`VerificationError.likely_cause`).
"""

from __future__ import annotations

import codecs
import configparser
import contextlib
import errno
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.errors import MissingHeaderBodySeparatorDefect
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from apigw_iam_auth._models import Credentials
from apigw_iam_auth._region import check_region, mistyped_region, partition_of
from apigw_iam_auth._sigv4 import payload_hash
from apigw_iam_auth._uri import parse_query
from apigw_iam_auth.diagnostics import redact
from apigw_iam_auth.errors import FailureKind, InvalidConfigError, NoCredentialsError
from apigw_iam_auth.server._policy import Decision, api_arn, denial, invoke_arn, parse_policy
from apigw_iam_auth.server._verify import (
    BAD_REQUEST,
    DEFAULT_ACCOUNT_ID,
    DEFAULT_MAX_SKEW,
    SECRET_QUERY,
    KnownKey,
    VerificationError,
    is_key_id_shaped,
    repr_with,
    signing_config,
    verify_request,
)
from apigw_iam_auth.signer import utc_now

if TYPE_CHECKING:
    import io
    from collections.abc import Callable
    from email.message import Message
    from types import TracebackType

    from typing_extensions import Self  # typing.Self needs Python 3.11

__all__ = [
    "ACCESS_LOGGER",
    "IamAuthServer",
    "Reply",
    "RequestRecord",
    "keys_from_env",
    "load_keys",
    "load_policy",
]

_log = logging.getLogger("apigw_iam_auth.server")
# One INFO line per request answered (the command line shows it unless --quiet).
ACCESS_LOGGER = "apigw_iam_auth.server.access"
_access = logging.getLogger(ACCESS_LOGGER)

_OK = HTTPStatus.OK.value
_TOO_LARGE = HTTPStatus.REQUEST_ENTITY_TOO_LARGE.value
_SERVER_ERROR = HTTPStatus.INTERNAL_SERVER_ERROR.value
_INTERNAL_ERROR_BODY = b'{"message":"Internal server error"}'  # API Gateway's own 500
# API Gateway's payload limit; larger bodies get its 413 answer instead of filling memory.
_MAX_BODY = 10 * 1024 * 1024
_MAX_RECORDS = 1000  # requests kept in IamAuthServer.requests by default, oldest dropped first
# Control characters, and the surrogate escapes U+DC80..U+DCFF of bytes that are not UTF-8.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\udc80-\udcff]")
_DECIMAL = re.compile(r"[0-9]+")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_API_ID = re.compile(r"[^/:\s]+")  # one segment of the API's ARN
_MAX_PORT = 65535
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# The longest chunk-size or trailer line read (chunk extensions and trailers are not verified).
_MAX_CHUNK_LINE = 8192
_MAX_TRAILERS = 100  # as http.server's limit of header fields
_POLL_SECONDS = 0.05  # how quickly stop() is noticed by the accept loop
_DRAIN_SECONDS = 5  # how long stop() waits for requests in flight to be answered
_IDLE_SECONDS = 60  # idle keep-alive connections are closed after this
# The API a policy file's execute-api:/... resources stand for is not known until a server
# uses it: any API, for checking the file alone.
_ANY_API = api_arn("*", "*", "*", partition="*")


def _key(
    section: Mapping[str, Any], where: str, spelled: Callable[[str], str] = str
) -> tuple[str, KnownKey] | None:
    """The key a credentials file's section holds, if any.

    ``spelled`` names a field as the user set it: ``str.upper`` for the environment
    (``aws_account_id`` is ``AWS_ACCOUNT_ID`` there).
    """
    access = section.get("aws_access_key_id")
    if not access:
        return None
    secret = section.get("aws_secret_access_key")
    if not secret:
        raise InvalidConfigError(
            f"{where} has {spelled('aws_access_key_id')} but no {spelled('aws_secret_access_key')}"
        )
    return str(access), KnownKey(
        secret_key=str(secret),
        token=str(section["aws_session_token"]) if section.get("aws_session_token") else None,
        account_id=_account_id(
            section.get("aws_account_id"), str(access), where, spelled("aws_account_id")
        ),
    )


def _account_id(value: object, access: str, where: str, name: str) -> str:
    """Checked here: a wrong account id only shows later, in ARNs and unmatched policies."""
    account = str(value or DEFAULT_ACCOUNT_ID)
    if _ACCOUNT_ID.fullmatch(account):
        return account
    hint = (
        " (it holds a comment: a '; comment' after a value is part of the value, so put it on "
        "a line of its own)"
        if ";" in account or "#" in account
        else ""
    )
    raise InvalidConfigError(
        f"{where}: {name} of key {access} must be 12 digits, such as 123456789012{hint}"
    )


def load_keys(path: str | os.PathLike[str]) -> dict[str, KnownKey]:
    """Read the access keys the server accepts from a credentials file.

    Two formats, told apart by the first character. INI, exactly like ``~/.aws/credentials``::

        [default]
        aws_access_key_id = AKIDEXAMPLE
        aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
        ; optional: requests must then carry this token
        aws_session_token = ...
        ; optional: used in ARNs and policy decisions (12 digits)
        aws_account_id = 123456789012

    or JSON with the same field names, as an object of sections or a list::

        {"default": {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "..."}}

    Comments go on lines of their own: like botocore, the parser keeps a ``; comment`` after a
    value as part of the value. Sections without ``aws_access_key_id`` (SSO or role profiles)
    are skipped.
    """
    file = Path(path)
    text = _read_text(file, "credentials file")
    sections: list[tuple[str, Mapping[str, Any]]]
    try:
        data = json.loads(text)
    except ValueError as exc:
        if text.lstrip().startswith("{"):
            raise _json_error(exc, f"credentials file {file}") from None
        data = None  # an INI file never parses as JSON
    if data is not None:
        sections = _json_sections(data, file)
    else:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(file))
        except configparser.Error as exc:
            raise _ini_error(exc, f"credentials file {file}") from None
        sections = [(name, parser[name]) for name in parser.sections()]
    keys: dict[str, KnownKey] = {}
    first_section: dict[str, str] = {}
    for name, section in sections:
        found = _key(section, f"credentials file {file} [{name}]")
        if found is None:
            continue
        key_id, known = found
        if key_id in keys and keys[key_id] != known:  # one of them would be refused unexplained
            raise InvalidConfigError(
                f"credentials file {file}: [{first_section[key_id]}] and [{name}] give access "
                f"key {key_id} different secrets, tokens or accounts; keep one of them"
            )
        keys[key_id] = known
        first_section.setdefault(key_id, name)
    if not keys:
        raise InvalidConfigError(f"credentials file {file} holds no aws_access_key_id entries")
    return keys


def _read_text(file: Path, what: str) -> str:
    """A file's text as UTF-8, with or without the byte order mark some editors write first."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidConfigError(f"cannot read {what} {file}: {exc.strerror}") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidConfigError(
            f"{what} {file} is not UTF-8 text (line {line}): save it as UTF-8"
        ) from None


# The parsers' own messages quote the offending line, and in a credentials file that line may
# hold a secret key ("aws_secret_access_key wJalr..." without its "="): only line numbers are
# said, with what is wrong there.


def _json_error(exc: ValueError, where: str) -> InvalidConfigError:
    if not isinstance(exc, json.JSONDecodeError):
        return InvalidConfigError(f"{where} is not valid JSON")
    # "Invalid \\escape: 'x'" quotes what it read; "Invalid control character at" ends in "at"
    problem = exc.msg.partition(":")[0].removesuffix(" at")
    return InvalidConfigError(
        f"{where} is not valid JSON: {problem} at line {exc.lineno} column {exc.colno}"
    )


def _ini_error(exc: configparser.Error, where: str) -> InvalidConfigError:
    if isinstance(exc, configparser.MissingSectionHeaderError):
        said = f"line {exc.lineno} comes before any [section] header"
    elif isinstance(exc, configparser.ParsingError):
        numbers = ", ".join(str(number) for number, _ in exc.errors)
        lines = f"lines {numbers} are" if len(exc.errors) > 1 else f"line {numbers} is"
        said = f"{lines} not 'name = value' or '[section]' (not shown: may hold a secret)"
    elif isinstance(exc, configparser.DuplicateSectionError):
        said = f"line {exc.lineno} repeats a [section] header given before"
    elif isinstance(exc, configparser.DuplicateOptionError):
        said = f"line {exc.lineno} repeats a name already set in its section"
    else:
        said = type(exc).__name__
    return InvalidConfigError(f"{where} is not valid INI: {said}")


def _json_sections(data: object, file: Path) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(data, (dict, list)):
        data = None
    items = list(data.items()) if isinstance(data, dict) else list(enumerate(data or [], 1))
    if not items or not all(isinstance(value, dict) for _, value in items):
        raise InvalidConfigError(
            f"credentials file {file} must hold a JSON object or list of objects with "
            "aws_access_key_id and aws_secret_access_key"
        )
    return [(str(name), value) for name, value in items]


def keys_from_env(environ: Mapping[str, str] | None = None) -> dict[str, KnownKey]:
    """The one key in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/``AWS_SESSION_TOKEN``,
    ``AWS_ACCOUNT_ID``): the server accepts calls signed with the caller's own environment.
    """  # noqa: D205 - the summary names the variables it reads
    env = os.environ if environ is None else environ
    found = _key(
        {
            "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": env.get("AWS_SESSION_TOKEN"),
            "aws_account_id": env.get("AWS_ACCOUNT_ID"),
        },
        "the environment",
        str.upper,
    )
    if found is None:
        raise NoCredentialsError(
            "no known keys: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the server, "
            "or give it keys (keys= in Python, --credentials FILE on the command line)"
        )
    return dict([found])


def load_policy(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate an IAM policy document (JSON) for the server's ``policy=``."""
    file = Path(path)
    text = _read_text(file, "policy file")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _json_error(exc, f"policy file {file}") from None
    parse_policy(document, api=_ANY_API)
    return cast("dict[str, Any]", document)


@dataclass(frozen=True, slots=True)
class Reply:
    """One response: status, JSON body and, for failures, the ``x-amzn-ErrorType``.

    The rest is for the access log, never sent: who signed an accepted request, and for a
    refusal the log-safe reason and its likely cause.
    """

    status: int
    body: bytes = field(repr=False)  # a mismatch quotes the canonical request, token and all
    error_type: str | None = None
    access_key: str | None = None
    reason: str | None = None
    likely_cause: str | None = None

    def __repr__(self) -> str:
        """The fields, the body by its length only."""
        return repr_with(self, body=f"<{len(self.body)} bytes>")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the server answered, as its access-log line tells it.

    ``target`` is the request-target as received and ``path`` its path, both with signatures
    and session tokens redacted; ``reason`` (the log-safe refusal message, None when accepted)
    and ``likely_cause`` say why a request was refused; ``access_key`` who signed an accepted
    one; ``request_id`` is the ``x-amzn-RequestId`` the client received.
    """

    method: str
    path: str
    target: str
    status: int
    request_id: str
    client: str
    access_key: str | None = None
    error_type: str | None = None
    reason: str | None = None
    likely_cause: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the request was authenticated (and authorized) and answered 200."""
        return self.status == _OK

    def __str__(self) -> str:
        """The access-log line."""
        return (
            f'{self.client} "{self.method} {self.target}" {self.status} {self.request_id} '
            f"{self.outcome}"
        )

    @property
    def outcome(self) -> str:
        """``accepted <key>``, ``refused <ErrorType>: <reason>; likely cause: ...`` or the like."""
        if self.accepted:
            return f"accepted {self.access_key}"
        if self.status >= _SERVER_ERROR:
            return f"failed: {self.reason}; likely cause: {self.likely_cause}"
        kind = f" {self.error_type}" if self.error_type else ""
        return f"refused{kind}: {self.reason}; likely cause: {self.likely_cause}"


class IamAuthServer:
    """A loopback HTTP server that accepts only requests signed like API Gateway expects.

    >>> with IamAuthServer(keys={"AKIDEXAMPLE": KnownKey("secret")}) as server:  # doctest: +SKIP
    ...     url = server.url + "/prod/pets"

    ``keys`` maps access key ids to :class:`KnownKey` (default: :func:`keys_from_env`).
    ``policy`` is an IAM policy document evaluated for ``execute-api:Invoke`` on
    ``arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{METHOD}/{path}``, the stage
    being the first path segment; resources written in API Gateway's ``execute-api:/...``
    shorthand stand for that API, as when API Gateway saves the policy. ``service`` is the one
    the server impersonates (its scope and payload rule, see :func:`verify_request`):
    ``execute-api`` or e.g. ``vpc-lattice-svcs``.
    ``clock`` is read once per request (and once at construction, to check it returns an aware
    datetime); inject one in tests. The last ``max_records`` requests answered are kept in
    :attr:`requests`, and each is logged in one line at INFO on the
    ``apigw_iam_auth.server.access`` logger (signatures and tokens redacted).
    ``port=0`` picks a free port; a port in use raises
    :class:`~apigw_iam_auth.errors.InvalidConfigError` naming it.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        region: str = "us-east-1",
        keys: Mapping[str, KnownKey] | None = None,
        policy: Mapping[str, Any] | None = None,
        api_id: str = "local",
        account_id: str = DEFAULT_ACCOUNT_ID,
        service: str = "execute-api",
        clock: Callable[[], datetime] = utc_now,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
        max_records: int = _MAX_RECORDS,
    ) -> None:
        """Validate everything now; nothing listens until :meth:`start` or :meth:`serve_forever`.

        A mistyped region (``us-east1``, the zone ``us-east-1a``) is refused as the signer refuses
        it, naming the region meant: nothing would ever verify. A name like no region (``local``)
        stays allowed, as botocore signs for any.
        """
        if isinstance(region, str) and mistyped_region(region):
            check_region(region)  # raises the signer's own message
        signing_config(region, service)  # a bad region or service fails here, not per request
        if policy is not None and service != "execute-api":
            raise InvalidConfigError(
                f"policy= evaluates execute-api:Invoke, but this server impersonates {service}; "
                "drop the policy or use service='execute-api'"
            )
        _check_address(host, port)
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 0:
            raise InvalidConfigError("max_records must be a whole number of requests, 0 or more")
        self._keys = _checked_keys(keys) if keys is not None else keys_from_env()
        _check_settings(api_id, account_id, clock, max_skew)
        # Worked out here, where reading botocore's partition data costs no request anything.
        self._partition = partition_of(region)
        self._policy = (
            parse_policy(policy, api=api_arn(region, account_id, api_id, self._partition))
            if policy is not None
            else None
        )
        self._host, self._port = host, port
        self.region = region
        self.service = service
        self.api_id = api_id
        self.account_id = account_id
        self.clock = clock
        self._max_skew = max_skew
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        # Set once serve_forever() has closed the server it ran: stop() waits for it.
        self._served: threading.Event | None = None
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._records_lock = threading.Lock()

    def __repr__(self) -> str:
        """Settings only; never keys.

        ``?`` stands for what a construction that failed never set: a traceback shows the
        half-built object too.
        """
        state = vars(self)
        keys = state.get("_keys")
        return (
            f"IamAuthServer(url={self._url_or_none() if '_httpd' in state else None!r}, "
            f"region={state.get('region', '?')!r}, service={state.get('service', '?')!r}, "
            f"keys={'?' if keys is None else len(keys)}, "
            f"policy={state.get('_policy') is not None})"
        )

    @property
    def requests(self) -> tuple[RequestRecord, ...]:
        """The requests answered so far (the last ``max_records``), oldest first.

        Each is recorded before its response is sent: once a client has its answer, the
        record is here. Safe to read from any thread.
        """
        with self._records_lock:
            return tuple(self._records)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far (e.g. between tests sharing one server)."""
        with self._records_lock:
            self._records.clear()

    def _answered(
        self, client: str, method: str | None, target: str | None, reply: Reply, request_id: str
    ) -> None:
        """Record one answered request and write its access-log line."""
        shown = _shown_target(target or "-")
        record = RequestRecord(
            method=method or "-",
            path=_shown(_path_of(target)) if target else "-",
            target=shown,
            status=reply.status,
            request_id=request_id,
            client=client,
            access_key=reply.access_key,
            error_type=reply.error_type,
            reason=None if reply.status == _OK else _shown(reply.reason or "-"),
            likely_cause=reply.likely_cause,
        )
        with self._records_lock:
            self._records.append(record)
        if _access.isEnabledFor(logging.INFO):
            _access.info("%s", record, extra={"request_record": record})

    @property
    def url(self) -> str:
        """``http://host:port`` of the listening socket (after :meth:`start`)."""
        url = self._url_or_none()
        if url is None:
            raise RuntimeError("the server is not listening; call start() first")
        return url

    def _url_or_none(self) -> str | None:
        if self._httpd is None:
            return None
        host, port = self._httpd.server_name, self._httpd.server_port
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}"

    def start(self) -> Self:
        """Bind and serve in a background thread; returns self (see also ``with``)."""
        with self._lock:
            if self._httpd is not None:
                raise RuntimeError("the server is already running")
            httpd = self._bind()
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name=f"IamAuthServer {self._url_or_none()}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self, on_ready: Callable[[str], object] | None = None) -> None:
        """Bind and serve in the calling thread until :meth:`stop` or KeyboardInterrupt.

        ``on_ready`` is called with :attr:`url` once the socket listens (e.g. to print it).
        """
        with self._lock:
            if self._httpd is not None:
                raise RuntimeError("the server is already running")
            httpd = self._bind()
            served = self._served = threading.Event()
        try:
            if on_ready is not None:
                on_ready(self.url)
            httpd.serve_forever(poll_interval=_POLL_SECONDS)
        finally:
            self._close(httpd)
            with self._lock:
                if self._served is served:
                    self._served = None
            served.set()

    def stop(self) -> None:
        """Stop accepting, end idle keep-alive connections, answer requests in flight, release.

        Requests in flight get their answers (stop() waits up to 5 s for them, then leaves them
        to finish in the background); a body still being uploaded ends where it stopped.
        """
        with self._lock:
            httpd, thread, served = self._httpd, self._thread, self._served
            self._thread = None  # _served stays until closed: every stop() call waits for it
        if httpd is None:
            return
        httpd.shutdown()
        if thread is not None:
            thread.join()
            self._close(httpd)
        elif served is not None:  # serve_forever() closes it in its own thread: wait for that
            served.wait()

    def _close(self, httpd: _HttpServer) -> None:
        httpd.close_connections()
        httpd.server_close()
        busy = httpd.wait_for_connections(_DRAIN_SECONDS)
        if busy:
            _log.warning(
                "stopped with %d connection(s) busy after %d s; they finish in the background",
                busy,
                _DRAIN_SECONDS,
            )
        with self._lock:
            if self._httpd is httpd:
                self._httpd = None

    def __enter__(self) -> Self:
        """Start serving in the background."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop and release everything."""
        self.stop()

    def _bind(self) -> _HttpServer:
        try:
            httpd = _HttpServer((self._host, self._port), self)
        except OSError as exc:
            raise _listen_error(self._host, self._port, exc) from exc
        if not _is_loopback(self._host):
            _log.warning(
                "serving on %s, not a loopback address: anyone who can reach it can call it",
                self._host,
            )
        self._httpd = httpd
        _log.info(
            "IAM-auth server on %s (%s in %s, %d known key(s), policy %s)",
            self._url_or_none(),
            self.service,
            self.region,
            len(self._keys),
            "on" if self._policy is not None else "off",
        )
        return httpd

    def handle(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> Reply:
        """Authenticate and authorize one received request; the HTTP layer only transports.

        ``now`` is the clock's reading for this request (the HTTP layer's, which its ``Date``
        header also shows); None reads the clock.
        """
        body_hash = payload_hash(body)  # hashed once: verified against, then echoed
        try:
            verified = verify_request(
                method,
                target,
                headers,
                body,
                payload_hash=body_hash,
                lookup=self._keys.get,
                region=self.region,
                service=self.service,
                now=self.clock() if now is None else now,
                max_skew=self._max_skew,
            )
            if self._policy is not None:
                arn = invoke_arn(
                    self.region,
                    self.account_id,
                    self.api_id,
                    method,
                    verified.path,
                    self._partition,
                )
                decision = self._policy.decide(
                    resource=arn,
                    principal_arn=verified.principal_arn,
                    account_id=verified.account_id,
                )
                if decision is not Decision.ALLOW:
                    raise denial(verified.principal_arn, arn, decision)
        except VerificationError as exc:
            return Reply(
                exc.status,
                exc.to_json().encode("utf-8"),
                exc.error_type,
                reason=str(exc).splitlines()[0],
                likely_cause=exc.likely_cause,
            )
        except InvalidConfigError as exc:  # the server's setup: SigV4a without its extra
            _log.error("cannot verify a request: %s", exc)
            return Reply(
                _SERVER_ERROR,
                _INTERNAL_ERROR_BODY,
                reason="Internal server error",
                likely_cause=f"the server's setup: {exc}",
            )
        echo = {
            "method": method,
            "path": verified.path,
            "query": [
                [_as_text(name), "<redacted>" if name in SECRET_QUERY else _as_text(value)]
                for name, value in verified.query
            ],
            "headers": [[name, _shown_header(name, value)] for name, value in headers],
            "body": {"length": len(body), "sha256": body_hash},
            "caller": {
                "access_key": verified.access_key,
                "account_id": verified.account_id,
                "arn": verified.principal_arn,
                "signature_location": verified.location.value,
                "signed_headers": list(verified.signed_headers),
            },
        }
        return Reply(
            _OK, json.dumps(echo, indent=2).encode("utf-8"), access_key=verified.access_key
        )


def _shown_header(name: str, value: str) -> str:
    if name.lower() == "x-amz-security-token":
        return "<redacted>"
    return redact(_as_text(value))


def _as_text(received: str) -> str:
    r"""Text for the echo: bytes that are not UTF-8 shown escaped (``\xe9``), valid JSON text."""
    return received.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _path_of(target: str) -> str:
    """The path of an origin-form (``/p?q``) or absolute-form request-target."""
    if target.startswith("/"):
        return target.partition("?")[0]
    try:
        return urlsplit(target).path or "/"
    except ValueError:
        return target.partition("?")[0]


def _shown(text: str) -> str:
    """Text from the request fit for one log line: secrets redacted, control bytes escaped."""
    return _UNPRINTABLE.sub(_byte_escape, redact(text))


def _without_query_secrets(text: str, request_line: str) -> str:
    """http.server's refusal of a request line, which quotes it: its query's secrets redacted.

    :func:`redact` alone misses a token under an encoded name (see :func:`_shown_target`).
    A line quoted with escapes (a control character in it) is not quoted at all.
    """
    if "?" not in request_line:
        return text
    if request_line not in text:
        return text.partition(" (")[0]
    words = request_line.split(" ")
    return text.replace(request_line, " ".join(_shown_target(word) for word in words))


def _shown_target(target: str) -> str:
    """A request-target for the log: :func:`_shown`, after the query's secrets are redacted.

    The verifier decodes parameter names, so it takes a token or signature under any spelling
    of its name (``X-Amz-Security%2DToken``), which :func:`redact` does not know: each query
    parameter whose decoded name is a secret's has its value redacted here first. So is an
    ``X-Amz-Credential`` that does not start with an access key id (a swapped secret key).
    """
    path, mark, query = target.partition("?")
    if not mark:
        return _shown(target)
    pieces = []
    for piece in query.split("&"):
        name, equals, _ = piece.partition("=")
        decoded = parse_query(piece) if equals else ()  # () for an empty name
        secret = bool(decoded) and (
            decoded[0][0] in SECRET_QUERY
            or (
                decoded[0][0] == "X-Amz-Credential"
                and not is_key_id_shaped(decoded[0][1].partition("/")[0])
            )
        )
        pieces.append(f"{name}=<redacted>" if secret else piece)
    return _shown(f"{path}?{'&'.join(pieces)}")


def _byte_escape(match: re.Match[str]) -> str:
    r"""``\xNN`` of the byte a control character or surrogate escape stands for."""
    return f"\\x{ord(match.group()) & 0xFF:02x}"


def _as_sent(target: str) -> str:
    """The request-target as the client wrote it, from http.server's Latin-1 reading of it.

    Clients send a raw non-ASCII path as UTF-8 (and sign it so); bytes that are not UTF-8 stay
    surrogate escapes, a path the verifier answers with its 400.
    """
    return target.encode("latin-1").decode("utf-8", "surrogateescape")


def _as_received(headers: Message) -> list[tuple[str, str]]:
    """The header fields as the client wrote them, from http.server's reading of them.

    http.server reads field lines as Latin-1 and keeps a folded value's line breaks and the
    spaces after it. A fold becomes one space (RFC 9112 section 5.2 allows it; AWS's own vector
    signs it so), the spaces and tabs around a value are not part of it (RFC 9112 section 5.1:
    ``X-Amz-Date: 20240501T120000Z `` is that date), and the bytes are read as UTF-8, as the
    request-target is (:func:`_as_sent`), so a value signed over its UTF-8 bytes verifies.
    """
    return [
        (_as_sent(name), _as_sent(_OBS_FOLD.sub(" ", value).strip(" \t")))
        for name, value in headers.items()
    ]


_OBS_FOLD = re.compile(r"\r?\n[ \t]+")


def _checked_keys(keys: object) -> dict[str, KnownKey]:
    """The keys as a dict; anything but access key ids mapped to KnownKey fails here.

    Checked now: the verifier's lookup only meets a wrong value at a request, as a 500.
    """
    if not isinstance(keys, Mapping):
        raise InvalidConfigError(
            f"keys must map access key ids to KnownKey, got {type(keys).__name__}"
        )
    for access, known in keys.items():
        if not isinstance(access, str) or not access:
            raise InvalidConfigError("keys must map access key ids (non-empty str) to KnownKey")
        if not isinstance(known, KnownKey):
            # The value's type only: a plain secret in its place must not reach an error message.
            raise InvalidConfigError(
                f"keys[{access!r}] must be a KnownKey, such as KnownKey(secret_key), "
                f"got {type(known).__name__}"
            )
        try:  # keys no client could sign with would answer every call with a 403
            Credentials(access, known.secret_key, known.token)
        except InvalidConfigError as exc:
            named = f"key {access}" if is_key_id_shaped(access) else "a key"
            raise InvalidConfigError(f"{named} of the server's keys: {exc}") from None
    return dict(keys)


def _check_settings(api_id: object, account_id: object, clock: object, max_skew: object) -> None:
    """Settings every request depends on: wrong ones would answer each request with a 500."""
    if not isinstance(api_id, str) or not _API_ID.fullmatch(api_id):
        raise InvalidConfigError(
            f"api_id must be an API id such as a1b2c3d4e5 (no '/', ':' or spaces), got {api_id!r}"
        )
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
        raise InvalidConfigError(
            f"account_id must be 12 digits, such as 123456789012, got {account_id!r}"
        )
    if not isinstance(max_skew, timedelta) or max_skew < timedelta(0):
        raise InvalidConfigError(f"max_skew must be a timedelta of zero or more, got {max_skew!r}")
    if not callable(clock):
        raise InvalidConfigError("clock must be a callable returning an aware datetime")
    now = clock()
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidConfigError(
            f"clock must return an aware datetime (e.g. datetime.now(timezone.utc)), got {now!r}"
        )


def _where(host: str, port: int) -> str:
    bare = host.strip("[]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _check_address(host: object, port: object) -> None:
    if not isinstance(host, str) or not host:
        raise InvalidConfigError("host must be an address such as 127.0.0.1, ::1 or localhost")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= _MAX_PORT:
        raise InvalidConfigError(
            f"port must be a whole number from 0 to {_MAX_PORT} (0 picks a free one), got {port!r}"
        )


def _listen_error(host: str, port: int, exc: OSError) -> InvalidConfigError:
    """Why the server cannot listen, naming the address and what to do instead."""
    where = f"cannot listen on {_where(host, port)}"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return InvalidConfigError(
            f"{where}: {host} is not an address of this machine; use 127.0.0.1 (or ::1)"
        )
    if exc.errno == errno.EADDRINUSE:
        return InvalidConfigError(
            f"{where}: port {port} is already in use (another server, or an earlier run still "
            "going); pick another port, or port 0 to let the system choose a free one"
        )
    if exc.errno == errno.EACCES:
        return InvalidConfigError(
            f"{where}: permission denied (ports below 1024 need privileges); pick a port "
            "above 1023, or port 0 to let the system choose a free one"
        )
    return InvalidConfigError(f"{where}: {exc.strerror or exc}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BadRequestError(Exception):
    """HTTP framing the server cannot read: answered at once, the connection closed."""

    def __init__(self, status: int, message: str, likely_cause: str) -> None:
        super().__init__(message)
        self.status = status
        self.likely_cause = likely_cause

    def reply(self) -> Reply:
        body = json.dumps({"message": str(self)}, separators=(",", ":")).encode()
        return Reply(
            self.status,
            body,
            error_type=_bad_request_type(self.status),
            reason=str(self),
            likely_cause=self.likely_cause,
        )


def _bad_request_type(status: int) -> str | None:
    """A 400's ``x-amzn-ErrorType``, as the verifier types its request-line refusals."""
    return FailureKind.BAD_REQUEST.error_type if status == BAD_REQUEST else None


class _HttpServer(ThreadingHTTPServer):
    """Remembers open connections: stop() ends idle keep-alive ones and waits for busy ones."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's default of 5 refuses bursts of connections
    # Never share a port with another listener: a taken port must fail, not split the traffic.
    allow_reuse_port = False

    def __init__(self, address: tuple[str, int], app: IamAuthServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_changed = threading.Condition()
        super().__init__((address[0].strip("[]"), address[1]), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn); a local server needs none.
        TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:  # noqa: ANN401 - socketserver's signature
        with self._open_changed:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:  # noqa: ANN401 - socketserver's signature
        try:
            super().shutdown_request(request)
        finally:
            with self._open_changed:
                self._open.discard(request)
                self._open_changed.notify_all()

    def close_connections(self) -> None:
        """Shut the read side only, so that idle connections end and busy ones still answer.

        A handler waiting for the next request reads end of file and closes at once; one
        answering a request can still send its response.
        """
        with self._open_changed:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RD)
        if sockets:
            _log.debug("stopping: %d connection(s) open, waiting for their answers", len(sockets))

    def wait_for_connections(self, timeout: float) -> int:
        """Wait until every handler has closed its connection; how many are still open."""
        with self._open_changed:
            self._open_changed.wait_for(lambda: not self._open, timeout)
            return len(self._open)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ANN401, ARG002
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "apigw-iam-auth"
    # Answer at once: with Nagle on, a keep-alive response waits ~40 ms for the client's ACK.
    disable_nagle_algorithm = True
    sys_version = ""

    def version_string(self) -> str:
        """The ``Server`` header: our name alone (no Python version, no trailing space)."""
        return self.server_version

    timeout = _IDLE_SECONDS
    # Whether the connection ended inside the request's head, and whether a header line held a
    # bare CR or a NUL (see parse_request).
    _head_cut = False
    _control_in_head = False
    raw_requestline: bytes  # http.server's, set by handle_one_request (typeshed omits it)
    # The clock's reading for the request being answered: what it is verified at and what its
    # Date header says (the clock is read once per request).
    _now: datetime | None = None

    @property
    def app(self) -> IamAuthServer:
        return cast("_HttpServer", self.server).app

    def _handle(self) -> None:
        try:
            if self._head_cut:
                raise _incomplete("before the blank line that ends the headers", "head")
            self._check_header_lines()
            self._check_host()
            body = self._read_body()
        except _BadRequestError as exc:
            self.close_connection = True
            self._answer(exc.reply())
            return
        target = _as_sent(self.path)
        try:
            self._now = self.app.clock()
            reply = self.app.handle(
                self.command, target, _as_received(self.headers), body, now=self._now
            )
        except Exception:  # noqa: BLE001 - a bug answers 500 like API Gateway, not a dropped connection
            _log.exception(
                "internal error while handling %s %s", self.command, _shown_target(target)
            )
            reply = Reply(
                _SERVER_ERROR,
                _INTERNAL_ERROR_BODY,
                reason="Internal server error",
                likely_cause=f"a bug in the server: see the traceback logged on {_log.name}",
            )
        self._answer(reply)

    def _answer(self, reply: Reply) -> None:
        """Record and log the request, then send the reply: a client never sees it unrecorded."""
        request_id = str(uuid.uuid4())
        path: str | None = getattr(self, "path", None)  # None: the request line was unreadable
        self.app._answered(  # noqa: SLF001 - the server's own handler
            self.client_address[0] if self.client_address else "-",
            self.command,
            None if path is None else _as_sent(path),
            reply,
            request_id,
        )
        self._send(reply, request_id)

    # http.server dispatches on do_<METHOD>; every method API Gateway routes is handled alike.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle  # noqa: N815

    def _check_header_lines(self) -> None:
        """Refuse a header line that is not ``name: value`` (RFC 9112 section 5: answer 400).

        http.server's parser stops at such a line and reads the rest of the head as the start
        of the body: the headers after it (Authorization among them) would go unseen. (Other
        defects the email parser notes, such as a multipart type whose body it has not seen,
        say nothing about the head.)
        """
        if self._control_in_head:
            raise _BadRequestError(
                BAD_REQUEST,
                "Invalid header line",
                "a header line holds a CR not followed by LF, or a NUL (RFC 9110 section 5.5); "
                "http.server would read a bare CR as the end of the line, one line as two",
            )
        if any(
            isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in self.headers.defects
        ):
            raise _BadRequestError(
                BAD_REQUEST,
                "Invalid header line",
                "a header line is not 'name: value' (no colon, or a space in the name); the "
                "headers after it could not be read",
            )

    def _check_host(self) -> None:
        """Refuse a request without exactly one Host header, as API Gateway does.

        RFC 9112 section 3.2: a server MUST answer 400 to an HTTP/1.1 request that lacks Host
        and to any request with more than one (HTTP/1.0 may omit it).
        """
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            raise _BadRequestError(
                BAD_REQUEST,
                "Multiple Host headers",
                f"the request carries {len(hosts)} Host headers; HTTP allows one",
            )
        if not hosts and self.request_version != "HTTP/1.0":
            raise _BadRequestError(
                BAD_REQUEST,
                "Missing Host header",
                f"an {self.request_version} request must carry a Host header; a raw client "
                "left it out",
            )

    def _read_body(self) -> bytes:
        """The body, framed as RFC 9112 section 6.3 says, or a 400 that closes the connection.

        Where the framing is ambiguous, the end of this request (and so the start of the next
        on the connection) depends on which header a proxy in front believes: a request could
        hide in the body. So conflicting Content-Length values, and a Transfer-Encoding whose
        last coding is not chunked, are refused; a request with both Transfer-Encoding and
        Content-Length is read by the former and its connection closed after the answer.
        """
        codings = [  # a list's empty elements are ignored (RFC 9110 section 5.6.1)
            coding.strip().lower()
            for line in self.headers.get_all("Transfer-Encoding") or []
            for coding in line.split(",")
            if coding.strip()
        ]
        lengths = {  # "04" and "4" are one length
            _number_text(value)
            for line in self.headers.get_all("Content-Length") or []
            for value in line.split(",")
        }
        if codings:
            if codings[-1] != "chunked":
                raise _BadRequestError(
                    BAD_REQUEST,
                    "Invalid Transfer-Encoding",
                    f"the last transfer coding is {codings[-1]!r}, not chunked: the body's end "
                    "cannot be found",
                )
            if lengths:
                self.close_connection = True
            return self._read_chunked()
        if len(lengths) > 1:
            raise _BadRequestError(
                BAD_REQUEST,
                "Multiple Content-Length values",
                "the request carries different Content-Length values; HTTP allows one",
            )
        if not lengths:
            return b""
        (length,) = lengths  # without leading zeros (_number_text)
        if not _DECIMAL.fullmatch(length):  # not isdigit(): "²" is a digit to it
            raise _BadRequestError(
                BAD_REQUEST,
                "Invalid Content-Length",
                "the Content-Length header is not a plain decimal number",
            )
        # int() refuses over 4300 digits (ValueError, a dropped connection): any number longer
        # than the limit's is over it, so the length is compared before it is converted.
        if len(length) > len(str(_MAX_BODY)) or int(length) > _MAX_BODY:
            raise _too_large()
        size = int(length)
        body = self.rfile.read(size)
        if len(body) < size:
            raise _incomplete(f"after {len(body)} of {size} body bytes")
        return body

    def _read_chunked(self) -> bytes:
        """The chunks of a chunked body, framed strictly (RFC 9112 section 7.1).

        A line read in part, or data not followed by a line end, would let this server and a
        proxy in front disagree on where the body ends: both are refused. A bare LF ends a line
        anywhere a CRLF does.
        """
        chunks: list[bytes] = []
        total = 0
        while True:
            size_field = self._chunk_line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_field):  # int(x, 16) also takes "-1", "0x3"
                raise _bad_chunking("a chunk size of the chunked body is not plain hexadecimal")
            size = int(size_field, 16)
            if size == 0:
                self._skip_trailers()
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                raise _too_large()
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise _incomplete("inside the chunked body")
            self._line_end()
            chunks.append(chunk)

    def _line_end(self) -> None:
        """The line end after a chunk's data: CRLF, or a bare LF as the framing lines take."""
        end = self.rfile.read(1)
        if end == b"\r":
            end = self.rfile.read(1)
        if not end:
            raise _incomplete("inside the chunked body")
        if end != b"\n":
            raise _bad_chunking("a chunk's data is not followed by CRLF")

    def _skip_trailers(self) -> None:
        """The trailer fields after the last chunk: they carry nothing we verify."""
        for _ in range(_MAX_TRAILERS + 1):
            if self._chunk_line() in {b"\r\n", b"\n"}:
                return
        raise _bad_chunking(f"the chunked body ends with over {_MAX_TRAILERS} trailer fields")

    def _chunk_line(self) -> bytes:
        """One whole line of chunked framing (a size, a trailer field), read to its LF."""
        line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
        if not line.endswith(b"\n"):
            if len(line) > _MAX_CHUNK_LINE:
                raise _bad_chunking(
                    f"a line of the chunked framing is over {_MAX_CHUNK_LINE} bytes"
                )
            raise _incomplete("inside the chunked body")
        return line

    def _send(self, reply: Reply, request_id: str) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("x-amzn-RequestId", request_id)
        if reply.error_type is not None:
            self.send_header("x-amzn-ErrorType", reply.error_type)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header from the server's clock, the one signatures are judged by.

        The reading the request was verified at; where the clock failed (answered 500), the
        system's time.
        """
        del timestamp
        now = self._now
        if now is None:
            try:
                now = self.app.clock()
            except Exception:  # noqa: BLE001 - logged where the request was handled
                now = datetime.now(timezone.utc)
        return format_datetime(now.astimezone(timezone.utc), usegmt=True)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, 414, unknown method) as JSON, logged.

        A line http.server could not read leaves it taking the client for HTTP/0.9, which gets
        no status line: the refusal is written as HTTP/1.1, which the client speaks.
        """
        del explain
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            self.request_version = self.protocol_version
        text = message or HTTPStatus(code).phrase
        body = json.dumps({"message": text}, separators=(",", ":")).encode()
        self._answer(
            Reply(
                int(code),
                body,
                error_type=_bad_request_type(int(code)),
                reason=_without_query_secrets(text, getattr(self, "requestline", "")),
                likely_cause="the request line or headers are not HTTP/1.1 this server can read",
            )
        )

    def parse_request(self) -> bool:
        """http.server's, less HTTP/0.9: a GET line without a version is refused (400).

        http.server serves such a line as HTTP/0.9, whose answer has no status line or headers,
        a bare body; API Gateway speaks HTTP/1.1 and 2 only.
        """
        head = _LastLineRead(self.rfile)
        self.rfile = cast("io.BufferedIOBase", head)
        sent = self.raw_requestline
        swapped = _split_proof(sent)
        if swapped is not None:
            self.raw_requestline = swapped
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = head.file
            if swapped is not None:
                self.raw_requestline = sent
                self.requestline = self.requestline.translate(_NOT_SPLIT_TEXT)
        if swapped is not None:
            self.path = self.path.translate(_NOT_SPLIT_TEXT)
        # http.client.parse_headers ends the head at end of input as at its blank line: a
        # head cut short is answered as incomplete, as a body cut short is (RFC 9112 section 8).
        self._head_cut = head.last == b""
        self._control_in_head = head.control
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad request version")
            return False
        return True

    def handle_one_request(self) -> None:
        """http.server's, with nothing of the previous request's left: its path, its clock.

        http.server sets ``path`` only once it has read a request line; a line it cannot read
        on a keep-alive connection would otherwise be logged with the previous request's path.
        """
        vars(self).pop("path", None)
        self._now = None
        self._head_cut = False
        super().handle_one_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing: each request gets its access-log line from IamAuthServer instead."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 - http.server's signature
        _log.debug("%s %s", self.address_string(), _shown(format % args))


class _LastLineRead:
    """A request's ``rfile`` as the head is parsed, keeping the last line read (``b""``: EOF).

    And whether any line held a CR not ending it, or a NUL (``control``): http.client's
    parser reads a bare CR as a line end, so ``X-A: 1<CR>X-B: 2`` would be two headers.
    """

    __slots__ = ("control", "file", "last")

    def __init__(self, file: io.BufferedIOBase) -> None:
        self.file = file
        self.last = b""
        self.control = False

    def readline(self, limit: int = -1) -> bytes:
        line = self.last = self.file.readline(limit)
        content = line.removesuffix(b"\n").removesuffix(b"\r")
        if b"\r" in content or b"\0" in content:
            self.control = True
        return line


def _split_proof(line: bytes) -> bytes | None:
    """The request line with bytes 0x85 and 0xA0 of its target swapped for the parse, or None.

    http.server splits the line with ``str.split()`` over its Latin-1 reading, whose whitespace
    includes U+0085 and U+00A0: a raw UTF-8 path holding those bytes ("à" is C3 A0, "者"
    E8 80 85) would be cut in two. Swapped with 0xC0 and 0xC1, which no UTF-8 text holds (and
    back, in the path read), they are not. Only a line of three parts split at single spaces
    (RFC 9112 section 3), with the bytes in its target alone and no whitespace there once
    swapped (a target holding 0xC0 or 0xC1 is no UTF-8 anyway), is swapped: any refusal of the
    line then quotes nothing swapped. None: the line needs no swap, or http.server is to judge
    it as sent.
    """
    if b"\x85" not in line and b"\xa0" not in line:
        return None
    ending = line[len(line.rstrip(b"\r\n")) :]
    parts = line[: len(line) - len(ending)].split(b" ")
    if len(parts) != 3:  # noqa: PLR2004 - method, target, version
        return None
    method, target, version = parts
    swapped = target.translate(_NOT_SPLIT_BYTES)
    if b"\x85" in method + version or b"\xa0" in method + version:
        return None
    text = swapped.decode("latin-1")
    if text.split() != [text]:  # whitespace anywhere, at its end too (split() drops that)
        return None
    return b" ".join((method, swapped, version)) + ending


# Bytes 0x85 and 0xA0 swapped with 0xC0 and 0xC1 (an involution: applied twice, nothing
# changes), as bytes and as their Latin-1 text; see _split_proof.
_NOT_SPLIT_BYTES = bytes.maketrans(b"\x85\xc0\xa0\xc1", b"\xc0\x85\xc1\xa0")
_NOT_SPLIT_TEXT = str.maketrans("\x85\xc0\xa0\xc1", "\xc0\x85\xc1\xa0")


def _incomplete(where: str, part: str = "body") -> _BadRequestError:
    """A request cut short is answered, not verified.

    A body cut short could only seem tampered with; a head without its last lines would be
    checked over headers the client did not finish.
    """
    return _BadRequestError(
        BAD_REQUEST,
        f"Incomplete request {part}",
        f"the connection ended {where}: the client stopped sending, or the server was stopping",
    )


def _bad_chunking(why: str) -> _BadRequestError:
    return _BadRequestError(BAD_REQUEST, "Invalid chunked encoding", why)


def _too_large() -> _BadRequestError:
    return _BadRequestError(
        _TOO_LARGE,
        "Request Too Long",
        f"the body is over API Gateway's limit of {_MAX_BODY // 2**20} MiB",
    )


def _number_text(value: str) -> str:
    """A Content-Length element without spaces and leading zeros (any other text as it is)."""
    value = value.strip()
    return (value.lstrip("0") or "0") if _DECIMAL.fullmatch(value) else value
