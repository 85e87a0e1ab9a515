"""Loopback stand-ins for the places botocore fetches temporary credentials from.

``CredentialServer`` answers, on 127.0.0.1:

* ``GET /creds``: the ECS/EKS container credentials endpoint (aim
  ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` at ``server.container_url``);
* ``POST /``: STS ``AssumeRole`` and ``AssumeRoleWithWebIdentity`` (aim ``AWS_ENDPOINT_URL_STS``
  at ``server.sts_url``). ``AssumeRole`` requests must carry a SigV4 signature made with a key
  registered in ``server.secrets`` (the source profile's), checked with botocore.

Every answer is a new generation of credentials: key ``ASIAGEN000001``, ``ASIAGEN000002``...,
each with its own secret and token, expiring ``lifetime`` after ``clock()``. ``secrets`` maps
every key handed out to its secret, so a test can check that a signature verifies with the
secret of the key it names (no torn pairs). ``calls`` counts answers per route, and
``"arrived"`` the ``/creds`` requests received (before any delay or hold); ``wait_for_calls``
waits for a count without sleeping. ``delay`` makes each answer take that
long (cut short when the server stops); ``hold``, an Event, holds ``/creds`` answers until set.

``verify`` recomputes a SigV4 header signature with botocore's ``SigV4Auth`` only.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["CredentialServer", "FakeClock", "LiveKeys", "VerificationError", "running", "verify"]

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>\w+)"
)


class FakeClock:
    """A settable aware UTC clock, shared by the server, botocore and the signer in a test."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(timezone.utc).replace(microsecond=0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


def real_clock() -> datetime:
    return datetime.now(timezone.utc)


class VerificationError(AssertionError):
    """A signature that botocore does not reproduce with the secret of the key it names."""


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    secrets: Mapping[str, str],
    body: bytes = b"",
) -> str:
    """Check a header-signed request with botocore; return the access key it was signed with."""
    lowered = {name.lower(): value for name, value in headers.items()}
    match = _AUTH.fullmatch(lowered.get("authorization", ""))
    if match is None:
        raise VerificationError(f"no SigV4 Authorization header in {sorted(lowered)}")
    key = match["key"]
    if key not in secrets:
        raise VerificationError(f"unknown access key {key}")
    signed_names = match["signed"].split(";")
    request = AWSRequest(
        method=method,
        url=url,
        headers={name: lowered[name] for name in signed_names},
        data=body,
    )
    request.context["timestamp"] = lowered["x-amz-date"]
    credentials = ReadOnlyCredentials(key, secrets[key], lowered.get("x-amz-security-token"))
    auth = SigV4Auth(credentials, match["service"], match["region"])
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if expected != match["sig"]:
        raise VerificationError(f"signature by {key} does not verify; canonical:\n{canonical}")
    return key


# The longest a held /creds answer waits for the test to release it.
_HOLD_GUARD = 60.0


class CredentialServer:
    """Container credentials endpoint and STS on one loopback port; see the module docstring."""

    def __init__(
        self,
        *,
        lifetime: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = real_clock,
        delay: float = 0.0,
    ) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self.delay = delay
        self.status = 200  # what /creds answers; anything else is an error body
        self.hold: threading.Event | None = None  # when set to an Event, /creds waits for it
        self.secrets: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.calls: Counter[str] = Counter()
        self._generation = itertools.count(1)
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self  # type: ignore[attr-defined]
        # A short poll interval makes stop() prompt (shutdown waits for the next poll).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def container_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/creds"

    @property
    def sts_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self.hold is not None:  # a request still held (a test that failed first) ends too
            self.hold.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def wait_for_calls(self, route: str, count: int, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.calls[route] >= count, timeout):
                raise AssertionError(f"{route} saw {self.calls[route]} calls, wanted {count}")

    def issue(self) -> dict[str, str]:
        """Mint the next generation of credentials and remember its secret."""
        number = next(self._generation)
        key = f"ASIAGEN{number:06d}"
        generation = {
            "AccessKeyId": key,
            "SecretAccessKey": f"gen{number}-secret-{'s' * 24}",
            "Token": f"gen{number}-token-{'t' * 24}",
            "Expiration": (self.clock() + self.lifetime).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.secrets[key] = generation["SecretAccessKey"]
        self.tokens[key] = generation["Token"]
        return generation

    def _count(self, route: str) -> None:
        with self._changed:
            self.calls[route] += 1
            self._changed.notify_all()

    def _pause(self) -> None:
        if self.delay:
            self._stopping.wait(self.delay)  # a deliberately slow endpoint


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")  # so clients close their socket, not GC
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        owner: CredentialServer = self.server.owner
        owner._count("arrived")
        owner._pause()
        if owner.hold is not None:  # bounded: a test that never releases it fails, not hangs
            owner.hold.wait(_HOLD_GUARD)
        if self.path != "/creds":
            self._send(404, b"not found", "text/plain")
            return
        if owner.status != 200:
            owner._count("container")
            self._send(owner.status, b'{"message": "credentials unavailable"}', "application/json")
            return
        body = json.dumps(owner.issue()).encode()
        owner._count("container")
        self._send(200, body, "application/json")

    def do_POST(self) -> None:
        owner: CredentialServer = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        params = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        action = params.get("Action", "")
        if action == "AssumeRole":
            try:
                source = verify(
                    "POST",
                    f"http://{self.headers['Host']}{self.path}",
                    dict(self.headers.items()),
                    owner.secrets,
                    body,
                )
            except VerificationError as exc:
                self._send(403, _sts_error("SignatureDoesNotMatch", str(exc)), "text/xml")
                return
            owner.calls[f"sts-source:{source}"] += 1
        elif action != "AssumeRoleWithWebIdentity":
            self._send(400, _sts_error("InvalidAction", action), "text/xml")
            return
        owner._pause()
        generation = owner.issue()
        owner._count(action)
        self._send(200, _sts_response(action, params, generation), "text/xml")


def _sts_response(action: str, params: Mapping[str, str], generation: Mapping[str, str]) -> bytes:
    role = params.get("RoleArn", "arn:aws:iam::123456789012:role/test")
    session = params.get("RoleSessionName", "session")
    assumed = role.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")
    return f"""<{action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <{action}Result>
    <Credentials>
      <AccessKeyId>{generation["AccessKeyId"]}</AccessKeyId>
      <SecretAccessKey>{generation["SecretAccessKey"]}</SecretAccessKey>
      <SessionToken>{generation["Token"]}</SessionToken>
      <Expiration>{generation["Expiration"]}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROATEST:{session}</AssumedRoleId>
      <Arn>{assumed}/{session}</Arn>
    </AssumedRoleUser>
  </{action}Result>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</{action}Response>""".encode()


def _sts_error(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>0</RequestId></ErrorResponse>"
    ).encode()


class LiveKeys(Mapping[str, tuple[str, "str | None"]]):
    """The keys ``endpoint`` handed out, and the ``fixed`` ones: what a verifying server reads."""

    def __init__(
        self, endpoint: CredentialServer, fixed: Mapping[str, tuple[str, str | None]]
    ) -> None:
        self._endpoint, self._fixed = endpoint, fixed

    def __getitem__(self, key: str) -> tuple[str, str | None]:
        if key in self._fixed:
            return self._fixed[key]
        return self._endpoint.secrets[key], self._endpoint.tokens[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._fixed, *self._endpoint.secrets])

    def __len__(self) -> int:
        return len(self._fixed) + len(self._endpoint.secrets)


@contextlib.contextmanager
def running(**options: Any) -> Iterator[CredentialServer]:
    """A started :class:`CredentialServer`, stopped (socket closed) on exit."""
    server = CredentialServer(**options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
