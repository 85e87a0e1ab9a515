"""What is re-signed where when a signed request is sent again.

A SigV4 header signature carries its time (``X-Amz-Date``); API Gateway accepts it for five
minutes either side of its own clock. Whether a second attempt gets a fresh signature depends
on whether it passes through the auth hook again or is re-sent as the same bytes:

| mechanism | re-signed? | why |
| --- | --- | --- |
| your retry loop (tenacity, stamina, `for`) around a call | yes | each call runs the auth again |
| urllib3 `Retry` on a requests `HTTPAdapter` | no (1) | urllib3 re-sends the same bytes |
| httpx `HTTPTransport(retries=N)` | not needed | only a failed connect is retried |
| httpx `client.send(stored_request)` | yes | `send` runs the auth flow again |
| requests `session.send(stored_prepared)` | after a 403 (2) | auth runs in `prepare` only |

(1) Fine within API Gateway's 5 minutes. A retry sent later is refused "Signature expired"; the
clock-skew path then signs it afresh and sends it once more (one extra round trip).
(2) The stale signature goes out and is refused; the clock-skew path re-signs it and sends it
once more, on every such send. Cheaper: call ``session.prepare_request`` again instead of
re-sending a stored ``PreparedRequest``.

Client and server share one injected clock that moves only when a test moves it, so "six
minutes later" is observable without sleeping. The server's request log records each attempt's
headers, so ``X-Amz-Date`` and ``Authorization`` can be compared between attempts.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
import pytest
import requests
from aws_server import ACCESS_KEY, SECRET_KEY, AwsServer, RequestRecord
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from apigw_iam_auth import ApiGwIamAuth

if TYPE_CHECKING:
    from collections.abc import Callable

REGION = "us-east-1"
START = datetime(2025, 1, 15, 12, 0, 0, tzinfo=timezone.utc)
LATER = timedelta(minutes=6)  # past API Gateway's 5-minute window
BODY = b'{"retry": "me"}'


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Clock:
    """A clock shared by client and server; it moves only when a test advances it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta = LATER) -> None:
        self.now += delta

    @property
    def amz(self) -> str:
        return self.now.strftime("%Y%m%dT%H%M%SZ")


class FlakyServer(AwsServer):
    """AwsServer whose first ``failures`` verified requests get a 503, as from a busy backend.

    The signature is checked first, so the log shows the 503 attempts as verified too;
    ``on_failure`` runs before each 503 (e.g. to move the clock, as a long backoff would).
    aws_server.py has no public hook for this, so ``_answer`` (where every reply is decided)
    is extended.
    """

    def __init__(
        self, *, failures: int = 1, on_failure: Callable[[], object] = lambda: None, **settings: Any
    ) -> None:
        super().__init__(**settings)
        self._failures = failures
        self._on_failure = on_failure

    def _answer(self, request):
        reply = super()._answer(request)
        if reply.status == 200 and self._failures > 0:
            self._failures -= 1
            self._on_failure()
            return dataclasses.replace(reply, status=503, body={"message": "Service Unavailable"})
        return reply


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def auth(clock):
    return ApiGwIamAuth(region=REGION, credentials=(ACCESS_KEY, SECRET_KEY), clock=clock)


def signing(record: RequestRecord) -> tuple[str, str]:
    """The (X-Amz-Date, Authorization) an attempt arrived with."""
    headers = {name.lower(): value for name, value in record.headers}
    return headers["x-amz-date"], headers["authorization"]


def outcome(records: list[RequestRecord]) -> list[tuple[int, bool]]:
    return [(record.status, record.verified) for record in records]


def requests_session(adapter: HTTPAdapter | None = None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    if adapter is not None:
        session.mount("http://", adapter)
    return session


def until_not_503(send: Callable[[], int], clock: Clock) -> int:
    """A user's retry loop: call, and on 503 wait (six minutes on ``clock``) and call again."""
    for _ in range(3):
        status = send()
        if status != 503:
            break
        clock.advance()
    return status


def assert_signed_afresh_each_time(records: list[RequestRecord]) -> None:
    assert outcome(records) == [(503, True), (503, True), (200, True)]
    dates = [signing(record)[0] for record in records]
    # Six minutes apart: a replay of the first signature would have been refused.
    assert dates == [(START + n * LATER).strftime("%Y%m%dT%H%M%SZ") for n in range(3)]
    assert len({signing(record)[1] for record in records}) == 3


@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_user_retry_loop_signs_each_attempt_afresh(client, auth, clock):
    """Each attempt of a user's retry loop is signed anew at its own time; every one verifies."""
    with FlakyServer(failures=2, clock=clock) as server:
        url = server.url("/prod/pets")
        if client == "requests":
            with requests_session() as session:
                status = until_not_503(
                    lambda: session.post(url, data=BODY, auth=auth, timeout=10).status_code, clock
                )
        else:
            with httpx.Client(auth=auth, trust_env=False) as http:
                status = until_not_503(lambda: http.post(url, content=BODY).status_code, clock)
        records = server.requests
    assert status == 200
    assert_signed_afresh_each_time(records)


@pytest.mark.anyio
async def test_user_retry_loop_with_async_client_signs_each_attempt_afresh(auth, clock):
    """Each attempt of a retry loop around AsyncClient.post is signed anew; every one verifies."""
    with FlakyServer(failures=2, clock=clock) as server:
        async with httpx.AsyncClient(auth=auth, trust_env=False) as http:
            for _ in range(3):
                status = (await http.post(server.url("/prod/pets"), content=BODY)).status_code
                if status != 503:
                    break
                clock.advance()
        records = server.requests
    assert status == 200
    assert_signed_afresh_each_time(records)


def test_urllib3_retry_resends_the_same_signature(auth, clock):
    """urllib3's Retry re-sends the prepared bytes: same X-Amz-Date and signature; it verifies."""
    retry = Retry(total=2, status_forcelist=[503], allowed_methods=None, backoff_factor=0)
    with (
        FlakyServer(failures=1, clock=clock) as server,
        requests_session(HTTPAdapter(max_retries=retry)) as session,
    ):
        response = session.post(server.url("/prod/pets"), data=BODY, auth=auth, timeout=10)
        records = server.requests
    assert (response.status_code, response.history) == (200, [])
    assert outcome(records) == [(503, True), (200, True)]
    assert signing(records[0]) == signing(records[1])
    assert signing(records[0])[0] == START.strftime("%Y%m%dT%H%M%SZ")


def test_urllib3_retry_after_the_window_is_resigned_by_the_skew_path(auth, clock):
    """A urllib3 retry landing over 5 min later is refused as expired, then re-signed once: 200."""
    retry = Retry(total=2, status_forcelist=[503], allowed_methods=None, backoff_factor=0)
    with (
        FlakyServer(failures=1, on_failure=clock.advance, clock=clock) as server,
        requests_session(HTTPAdapter(max_retries=retry)) as session,
    ):
        response = session.post(server.url("/prod/pets"), data=BODY, auth=auth, timeout=10)
        records = server.requests
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [403]
    assert outcome(records) == [(503, True), (403, False), (200, True)]
    assert records[1].message.startswith("Signature expired")
    assert signing(records[0]) == signing(records[1])  # urllib3's replay: stale
    assert signing(records[2])[0] == clock.amz  # the skew path's re-signature: fresh
    # Client and server clocks agree: the "correction" learned is nothing at all.
    assert auth.signer.clock_offset == timedelta(0)


def test_httpx_transport_retries_send_a_fresh_signature(auth, clock):
    """httpx.HTTPTransport(retries=2) works with the auth: one attempt, signed now, verified."""
    # httpx hands retries= to httpcore, whose only retry loop is HTTPConnection._connect
    # (`except (ConnectError, ConnectTimeout)`): it retries opening the TCP/TLS connection,
    # before a byte of the request is written, and the auth flow above it ran once, just
    # before. Nothing is ever replayed, so nothing can go out stale.
    transport = httpx.HTTPTransport(retries=2)
    with (
        FlakyServer(failures=0, clock=clock) as server,
        httpx.Client(auth=auth, transport=transport, trust_env=False) as client,
    ):
        response = client.post(server.url("/prod/pets"), content=BODY)
        records = server.requests
    assert response.status_code == 200
    assert outcome(records) == [(200, True)]
    assert signing(records[0])[0] == clock.amz


def test_httpcore_retries_only_failed_connects():
    """httpcore's retries= loop is in HTTPConnection._connect, around connect errors only."""
    connect = inspect.getsource(httpcore.HTTPConnection._connect)
    assert "retries_left" in connect
    assert "except (ConnectError, ConnectTimeout):" in connect
    assert "retries" not in inspect.getsource(httpcore.HTTPConnection.handle_request)
    assert "retries" not in inspect.getsource(httpcore.HTTP11Connection.handle_request)


def test_httpx_send_of_a_stored_request_resigns_it(auth, clock):
    """httpx Client.send() of a stored Request runs the auth flow again: fresh date, verified."""
    with FlakyServer(failures=0, clock=clock) as server:
        with httpx.Client(auth=auth, trust_env=False) as http:
            request = http.build_request("POST", server.url("/prod/pets"), content=BODY)
            first = http.send(request)
            clock.advance()
            second = http.send(request)
        records = server.requests
    assert_resent_with_fresh_signature(first, second, records, clock)


@pytest.mark.anyio
async def test_httpx_async_send_of_a_stored_request_resigns_it(auth, clock):
    """AsyncClient.send() of a stored Request runs the auth flow again: fresh date, verified."""
    with FlakyServer(failures=0, clock=clock) as server:
        async with httpx.AsyncClient(auth=auth, trust_env=False) as http:
            request = http.build_request("POST", server.url("/prod/pets"), content=BODY)
            first = await http.send(request)
            clock.advance()
            second = await http.send(request)
        records = server.requests
    assert_resent_with_fresh_signature(first, second, records, clock)


def assert_resent_with_fresh_signature(first, second, records, clock):
    assert (first.status_code, second.status_code, second.history) == (200, 200, [])
    assert outcome(records) == [(200, True), (200, True)]
    assert [signing(record)[0] for record in records] == [
        START.strftime("%Y%m%dT%H%M%SZ"),
        clock.amz,
    ]


def test_requests_send_of_a_stored_prepared_request_is_rescued_by_the_skew_path(auth, clock):
    """session.send(prepared) re-sends the old signature; the skew path re-signs the 403: 200."""
    with FlakyServer(failures=0, clock=clock) as server, requests_session() as session:
        prepared = session.prepare_request(
            requests.Request("POST", server.url("/prod/pets"), data=BODY, auth=auth)
        )
        first = session.send(prepared, timeout=10)
        clock.advance()
        second = session.send(prepared, timeout=10)
        records = server.requests
    assert first.status_code == 200
    assert second.status_code == 200
    assert [r.status_code for r in second.history] == [403]
    assert outcome(records) == [(200, True), (403, False), (200, True)]
    assert records[1].message.startswith("Signature expired")
    assert signing(records[1]) == signing(records[0])  # no auth on send(): the old signature
    assert signing(records[2])[0] == clock.amz
    assert auth.signer.clock_offset == timedelta(0)


def test_requests_stored_prepared_request_is_rescued_on_every_send(auth, clock):
    """Each stale send() of a stored PreparedRequest is re-signed once by the skew path."""
    with FlakyServer(failures=0, clock=clock) as server, requests_session() as session:
        prepared = session.prepare_request(
            requests.Request("POST", server.url("/prod/pets"), data=BODY, auth=auth)
        )
        statuses = [session.send(prepared, timeout=10).status_code]
        for _ in range(2):
            clock.advance()
            statuses.append(session.send(prepared, timeout=10).status_code)
        again = session.prepare_request(
            requests.Request("POST", server.url("/prod/pets"), data=BODY, auth=auth)
        )
        statuses.append(session.send(again, timeout=10).status_code)
        records = server.requests
    # One retry per send: the guard never retries a request it already re-sent, but a new
    # send() of the stored request is a new attempt.
    assert statuses == [200, 200, 200, 200]
    assert outcome(records) == [
        (200, True),
        (403, False),
        (200, True),
        (403, False),
        (200, True),
        (200, True),
    ]
