"""Clock-skew correction: a wrong local clock is corrected from API Gateway's refusal, once."""

import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import aiohttp
import httpx
import pytest
import requests
from aws_server import ACCESS_KEY, SECRET_KEY, running_server
from integration_cases import redirect_url

from apigw_iam_auth import ApiGwIamAuth, SigV4Signer
from apigw_iam_auth._models import SigningResult
from apigw_iam_auth._skew import corrected_after_refusal, server_time_from_refusal
from apigw_iam_auth.diagnostics import MAX_REFUSAL_BYTES

REGION = "us-east-1"
SKEWS = [timedelta(minutes=10), timedelta(minutes=-10)]
CLIENTS = ["requests", "httpx", "httpx-async"]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_auth(**kwargs) -> ApiGwIamAuth:
    return ApiGwIamAuth(region=REGION, credentials=(ACCESS_KEY, SECRET_KEY), **kwargs)


async def call(client: str, auth: ApiGwIamAuth, url: str, **kwargs):
    """Send one POST with the named client, redirects followed; return (status, history length)."""
    if client == "requests":
        with requests.Session() as session:
            session.trust_env = False
            response = session.post(url, auth=auth, timeout=10, **kwargs)
    elif client == "httpx":
        with httpx.Client(auth=auth, trust_env=False, follow_redirects=True) as session:
            response = session.post(url, **kwargs)
    else:
        async with httpx.AsyncClient(auth=auth, trust_env=False, follow_redirects=True) as session:
            response = await session.post(url, **kwargs)
    return response.status_code, len(response.history)


@pytest.mark.anyio
@pytest.mark.parametrize("skew", SKEWS, ids=["server-ahead", "server-behind"])
@pytest.mark.parametrize("client", CLIENTS)
async def test_first_call_is_corrected_and_later_calls_need_no_retry(client, skew):
    """Against a server 10 min off, call one retries once and succeeds; call two goes straight."""
    auth = make_auth()
    with running_server(clock_offset=skew) as server:
        first = await call(client, auth, server.url("/prod/a"), **content_or_data(client, b"x"))
        second = await call(client, auth, server.url("/prod/b"))
        statuses = [record.status for record in server.requests]
    assert first == (200, 1)
    assert second == (200, 0)
    assert statuses == [403, 200, 200]
    assert abs(auth.signer.clock_offset - skew) < timedelta(seconds=5)


def content_or_data(client: str, body: bytes) -> dict[str, bytes]:
    return {"data": body} if client == "requests" else {"content": body}


@pytest.mark.anyio
@pytest.mark.parametrize("client", CLIENTS)
async def test_correction_can_be_turned_off(client):
    """With correct_clock_skew=False the refusal is returned as is and nothing is retried."""
    auth = make_auth(correct_clock_skew=False)
    with running_server(clock_offset=timedelta(minutes=-10)) as server:
        status = await call(client, auth, server.url("/prod/a"))
        count = server.request_count
    assert status == (403, 0)
    assert count == 1
    assert auth.signer.clock_offset == timedelta(0)


@pytest.mark.anyio
async def test_an_async_generator_body_is_buffered_and_sent_again_after_a_skew_refusal():
    """An async generator body is read once to be hashed: the retry sends that copy."""
    auth = make_auth()

    async def chunks():
        yield b"once"

    with running_server(clock_offset=timedelta(minutes=10)) as server:
        async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
            response = await client.post(server.url("/prod/a"), content=chunks())
        count = server.request_count
    # The async stream was buffered for hashing, so it is in memory: one retry is allowed.
    assert (response.status_code, count) == (200, 2)


def test_a_sync_generator_body_with_httpx_is_buffered_and_sent_again():
    """A sync generator body is read once to be hashed: the retry sends that copy."""
    auth = make_auth()
    with (
        running_server(clock_offset=timedelta(minutes=10)) as server,
        httpx.Client(auth=auth, trust_env=False) as client,
    ):
        response = client.post(server.url("/prod/a"), content=iter([b"a", b"b"]))
        count = server.request_count
    assert (response.status_code, count) == (200, 2)


def test_requests_body_read_from_a_pipe_is_buffered_and_replayed():
    """A stream read once (a pipe, stdin) is buffered for its hash: the retry sends the copy."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"piped body")
    os.close(write_end)
    auth = make_auth()
    with (
        os.fdopen(read_end, "rb") as pipe,
        running_server(clock_offset=timedelta(minutes=10)) as server,
        requests.Session() as session,
    ):
        session.trust_env = False
        response = session.post(server.url("/prod/a"), data=pipe, auth=auth, timeout=10)
        statuses = [record.status for record in server.requests]
    assert (response.status_code, statuses) == (200, [403, 200])
    assert response.json()["body_length"] == len(b"piped body")


def test_httpx_file_body_refused_for_the_clock_corrects_it_for_the_next_request(tmp_path):
    """A file httpx streams cannot be sent twice: its refusal is returned, but the clock is
    corrected, so the next upload is signed right the first time."""
    path = tmp_path / "upload.bin"
    path.write_bytes(b"0123456789")
    auth = make_auth()
    with (
        running_server(clock_offset=timedelta(minutes=10)) as server,
        httpx.Client(auth=auth, trust_env=False) as client,
    ):
        with path.open("rb") as file:
            first = client.put(server.url("/prod/a"), content=file)
        with path.open("rb") as file:
            second = client.put(server.url("/prod/b"), content=file)
        statuses = [record.status for record in server.requests]
    assert (first.status_code, second.status_code, statuses) == (403, 200, [403, 200])
    assert abs(auth.signer.clock_offset - timedelta(minutes=10)) < timedelta(seconds=5)


@pytest.mark.anyio
@pytest.mark.parametrize("client", CLIENTS)
async def test_same_origin_redirect_hop_refused_for_the_clock_is_corrected(client):
    """An open route redirects to a signed one: the hop, signed for its URL, is refused for the
    clock; the clock is corrected and the hop sent once more."""
    auth = make_auth()
    with running_server(clock_offset=timedelta(minutes=10)) as server:
        start = redirect_url(server, server.url("/prod/dest"), 302, "redirect-unsigned")
        status, _ = await call(client, auth, start)
        statuses = [record.status for record in server.requests]
    assert status == 200
    assert statuses == [302, 403, 403, 200]  # unsigned hop, signed hop (clock), corrected
    assert abs(auth.signer.clock_offset - timedelta(minutes=10)) < timedelta(seconds=5)


@pytest.mark.anyio
@pytest.mark.parametrize("client", CLIENTS)
async def test_retry_happens_at_most_once_per_request(client, caplog):
    """If the corrected retry is refused again, the refusal is returned: no loop, and no
    second correction (nor a note that the request could not be sent again: it was)."""
    auth = make_auth()
    with (
        running_server(clock=_runaway_clock()) as server,
        caplog.at_level(logging.INFO, logger="apigw_iam_auth"),
    ):
        status = await call(client, auth, server.url("/prod/a"))
        count = server.request_count
    assert status == (403, 1)
    assert count == 2
    corrections = [r for r in caplog.records if "clock skew" in r.getMessage()]
    assert len(corrections) == 1
    assert "cannot be sent again" not in caplog.text


def _runaway_clock():
    """A server clock that jumps 20 minutes each time it is read: every attempt is skewed."""
    start = datetime.now(timezone.utc)
    reads = iter(range(1, 1_000_000))
    return lambda: start + timedelta(minutes=20 * next(reads))


@pytest.mark.parametrize(
    ("message", "date", "expected"),
    [
        (
            (
                "Signature expired: 20170212T175938Z is now earlier than 20170215T145534Z"
                " (20170215T150034Z - 5 min.)"
            ),
            "Wed, 15 Feb 2017 15:00:35 GMT",
            datetime(2017, 2, 15, 15, 0, 35, tzinfo=timezone.utc),
        ),
        (
            (
                "Signature not yet current: 20170215T160000Z is still later than 20170215T150534Z"
                " (20170215T150034Z + 5 min.)"
            ),
            None,
            datetime(2017, 2, 15, 15, 0, 34, tzinfo=timezone.utc),
        ),
    ],
)
def test_server_time_is_read_from_date_or_message(message, date, expected):
    """The Date header is preferred; the time quoted in API Gateway's message is the fallback."""
    body = '{"message":"' + message + '"}'
    assert server_time_from_refusal(body, date) == expected


def test_other_refusals_are_not_skew():
    """A signature mismatch never looks like clock skew."""
    assert server_time_from_refusal('{"message":"Missing Authentication Token"}', None) is None


def test_correction_is_undone_once_the_local_clock_is_fixed():
    """After NTP fixes a slow clock, one refusal resets the offset to zero; no lasting lockout."""
    offset = {"value": timedelta(minutes=-10)}  # the local clock starts 10 minutes slow
    auth = make_auth(clock=lambda: datetime.now(timezone.utc) + offset["value"])
    with running_server() as server, requests.Session() as session:
        session.trust_env = False
        first = session.get(server.url("/prod/a"), auth=auth, timeout=10)
        corrected = auth.signer.clock_offset
        offset["value"] = timedelta(0)  # the machine's clock is right again
        second = session.get(server.url("/prod/b"), auth=auth, timeout=10)
        third = session.get(server.url("/prod/c"), auth=auth, timeout=10)
        statuses = [record.status for record in server.requests]
    assert abs(corrected - timedelta(minutes=10)) < timedelta(seconds=5)
    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 200)
    assert statuses == [403, 200, 403, 200, 200]
    assert auth.signer.clock_offset == timedelta(0)


async def head(client: str, auth: ApiGwIamAuth, url: str) -> int:
    """Send one HEAD with the named client; return the final status."""
    if client == "requests":
        with requests.Session() as session:
            session.trust_env = False
            return session.head(url, auth=auth, timeout=10).status_code
    if client == "httpx":
        with httpx.Client(auth=auth, trust_env=False) as session:
            return session.head(url).status_code
    if client == "aiohttp":
        async with aiohttp.ClientSession(middlewares=(auth,)) as session, session.head(url) as sent:
            return sent.status
    async with httpx.AsyncClient(auth=auth, trust_env=False) as session:
        return (await session.head(url)).status_code


@pytest.mark.anyio
@pytest.mark.parametrize("skew", SKEWS, ids=["server-ahead", "server-behind"])
@pytest.mark.parametrize("client", [*CLIENTS, "aiohttp"])
async def test_a_head_request_is_corrected_although_its_refusal_has_no_body(client, skew):
    """A HEAD's 403 cannot quote "Signature expired": its Date, more than 5 minutes from the
    time signed, says the clock is off all the same.
    """
    auth = make_auth()
    with running_server(clock_offset=skew) as server:
        status = await head(client, auth, server.url("/prod/a"))
        statuses = [record.status for record in server.requests]
    assert status == 200
    assert statuses == [403, 200]
    assert abs(auth.signer.clock_offset - skew) < timedelta(seconds=5)


def _signing(method: str, at: datetime) -> SigningResult:
    signer = SigV4Signer(region=REGION, credentials=(ACCESS_KEY, SECRET_KEY))
    signed = signer.sign(method, "https://a.execute-api.us-east-1.amazonaws.com/p", timestamp=at)
    assert signed.signing is not None
    return signed.signing


def test_a_refusal_without_the_message_is_skew_only_for_a_head_past_the_window():
    """A body-less 403 tells the clock only for a HEAD, whose answer never has a body, and only
    with a Date more than 5 minutes from the time signed; another method's empty or unread 403
    (None) is not API Gateway's about the clock, which always says so.
    """
    signed_at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    within, beyond = "Thu, 01 Jan 2026 12:04:00 GMT", "Thu, 01 Jan 2026 12:06:00 GMT"
    head, post = _signing("HEAD", signed_at), _signing("POST", signed_at)
    six_minutes_on = signed_at + timedelta(minutes=6)
    assert server_time_from_refusal(b"", within, head) is None
    assert server_time_from_refusal(b"", beyond, head) == six_minutes_on
    assert server_time_from_refusal(None, beyond, head) == six_minutes_on
    assert server_time_from_refusal(b"", beyond, post) is None
    assert server_time_from_refusal(None, beyond, post) is None
    assert server_time_from_refusal(b"", beyond) is None  # nothing signed to compare with


class _LateBackend(BaseHTTPRequestHandler):
    """A backend behind the gateway refusing a POST itself: empty, or chunked (a stream)."""

    protocol_version = "HTTP/1.1"
    posts: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posts.append(self.path)
        self.send_response(403)
        if self.path == "/chunked":
            body = b'{"message":"order 42 belongs to another customer"}'
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        else:
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


async def _post(client: str, auth: ApiGwIamAuth, url: str) -> int:
    body = b'{"pay": 100}'
    if client == "aiohttp":
        async with (
            aiohttp.ClientSession(middlewares=(auth,)) as session,
            session.post(url, data=body) as response,
        ):
            await response.read()
            return response.status
    return (await call(client, auth, url, **content_or_data(client, body)))[0]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/empty", "/chunked"])
@pytest.mark.parametrize("client", [*CLIENTS, "aiohttp"])
async def test_a_backend_refusal_answered_late_is_not_taken_for_the_clock(client, path):
    """A POST the backend refused with its own 403, empty or chunked, answered more than 5
    minutes after signing (a long Lambda function URL call; here a clock 6 minutes slow), is
    returned as it is: sent once, the clock left alone.
    """
    auth = make_auth(clock=lambda: datetime.now(timezone.utc) - timedelta(minutes=6))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LateBackend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _LateBackend.posts.clear()
    try:
        status = await _post(client, auth, f"http://127.0.0.1:{server.server_address[1]}{path}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert (status, _LateBackend.posts) == (403, [path])
    assert auth.signer.clock_offset == timedelta(0)


# An API Gateway clock-skew refusal, and the server time it tells.
SKEW_REFUSAL = (
    '{"message":"Signature expired: 20170215T144034Z is now earlier than 20170215T145534Z'
    ' (20170215T150034Z - 5 min.)"}'
)
SKEW_TIME = datetime(2017, 2, 15, 15, 0, 34, tzinfo=timezone.utc)
SIGNED_AT = SKEW_TIME
API_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets"


def test_a_refusal_body_that_is_not_utf8_is_still_read_for_the_clock():
    """A refusal body that is not UTF-8 throughout is still read for the server's time."""
    body = b"\xff\xfe" + SKEW_REFUSAL.encode()
    assert server_time_from_refusal(body, None) == SKEW_TIME


def test_a_refusal_of_exactly_max_refusal_bytes_is_read():
    """A refusal of exactly MAX_REFUSAL_BYTES is read; one byte more is not."""
    body = SKEW_REFUSAL.encode()
    exact = body + b" " * (MAX_REFUSAL_BYTES - len(body))
    assert len(exact) == MAX_REFUSAL_BYTES
    assert server_time_from_refusal(exact, None) == SKEW_TIME
    assert server_time_from_refusal(exact + b" ", None) is None


def test_a_head_refusal_counts_for_the_clock_only_beyond_five_minutes():
    """A HEAD's refusal tells the clock only beyond 5 minutes: exactly 5 is within the window."""
    signer = SigV4Signer(credentials=(ACCESS_KEY, SECRET_KEY), region="us-east-1")
    signing = signer.sign("HEAD", API_URL, timestamp=SIGNED_AT).signing
    at = lambda delta: format_datetime(SIGNED_AT + delta, usegmt=True)  # noqa: E731
    assert server_time_from_refusal(None, at(timedelta(minutes=5)), signing) is None
    assert server_time_from_refusal(None, at(-timedelta(minutes=5)), signing) is None
    late = SIGNED_AT + timedelta(minutes=5, seconds=1)
    assert server_time_from_refusal(None, at(timedelta(minutes=5, seconds=1)), signing) == late


def test_a_skew_refusal_that_cannot_be_resent_corrects_the_clock_and_says_so(caplog):
    """A skew refusal of a request that cannot be sent again corrects the clock and says so at
    INFO, on our logger; one that can be sent again says nothing of the kind."""
    signer = SigV4Signer(
        credentials=(ACCESS_KEY, SECRET_KEY), region="us-east-1", clock=lambda: SIGNED_AT
    )
    signing = signer.sign("POST", API_URL, body=b"x").signing
    server = SIGNED_AT + timedelta(minutes=10)
    date = format_datetime(server, usegmt=True)
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth"):
        resend = corrected_after_refusal(
            signer, SKEW_REFUSAL, date, signing, correct=True, resend=False
        )
    assert resend is False
    assert signer.clock_offset == timedelta(minutes=10)
    notes = [r for r in caplog.records if "cannot be sent again" in r.getMessage()]
    assert [(r.name, r.levelno) for r in notes] == [("apigw_iam_auth", logging.INFO)]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth"):
        assert corrected_after_refusal(
            signer, SKEW_REFUSAL, date, signing, correct=True, resend=True
        )
    assert not [r for r in caplog.records if "cannot be sent again" in r.getMessage()]
