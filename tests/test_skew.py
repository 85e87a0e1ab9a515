"""Clock-skew correction: a wrong local clock is corrected from API Gateway's refusal, once."""

import logging
import os
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import requests
from aws_server import ACCESS_KEY, SECRET_KEY, running_server
from integration_cases import redirect_url

from apigw_iam_auth import ApiGwIamAuth
from apigw_iam_auth._skew import server_time_from_refusal

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
async def test_streamed_httpx_body_is_never_replayed():
    """An httpx body from a generator cannot be sent twice, so a skew refusal is not retried."""
    auth = make_auth()

    async def chunks():
        yield b"once"

    with running_server(clock_offset=timedelta(minutes=10)) as server:
        async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
            response = await client.post(server.url("/prod/a"), content=chunks())
        count = server.request_count
    # The async stream was buffered for hashing, so it is in memory: one retry is allowed.
    assert (response.status_code, count) == (200, 2)


def test_sync_generator_body_with_httpx_is_not_retried():
    """A sync generator body streamed by httpx is refused once and not sent a second time."""
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
    assert server_time_from_refusal(403, body, date) == expected


def test_other_refusals_are_not_skew():
    """A signature mismatch or a non-403 never looks like clock skew."""
    assert server_time_from_refusal(403, '{"message":"Missing Authentication Token"}', None) is None
    assert server_time_from_refusal(500, "Signature expired: x", None) is None


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
    async with httpx.AsyncClient(auth=auth, trust_env=False) as session:
        return (await session.head(url)).status_code


@pytest.mark.anyio
@pytest.mark.parametrize("skew", SKEWS, ids=["server-ahead", "server-behind"])
@pytest.mark.parametrize("client", CLIENTS)
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


def test_an_empty_refusal_within_the_window_is_not_skew():
    """An empty 403 whose Date is within 5 minutes of the time signed is another refusal."""
    signed_at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    date = "Thu, 01 Jan 2026 12:04:00 GMT"
    assert server_time_from_refusal(403, b"", date, signed_at) is None
    assert server_time_from_refusal(403, b"", date) is None  # nothing signed to compare with
