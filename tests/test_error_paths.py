"""Refusals and guards that no other test reaches: each proves what a caller sees and can fix.

Requests go over loopback to the verifying server (``aws_server.py``, botocore's verdict);
refusals are checked by exception type and by the words of the message that say what to fix.
"""

from __future__ import annotations

import importlib.metadata
import io
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import httpx
import pytest
import requests
from aws_isolation import isolate_aws
from aws_server import (
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_ACCESS_KEY,
    SESSION_SECRET_KEY,
    SESSION_TOKEN,
    running_server,
)
from integration_cases import LONG_TERM, REGION, make_auth, sha256

import apigw_iam_auth
from apigw_iam_auth import (
    ApiGwIamAuth,
    Credentials,
    InvalidConfigError,
    SignableRequest,
    SigV4Signer,
    UnsignableRequestError,
)
from apigw_iam_auth._models import SigningConfig
from apigw_iam_auth._sigv4 import EMPTY_SHA256
from apigw_iam_auth._skew import server_time_from_refusal

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from aws_server import AwsServer

API_HOST = "abc123.execute-api.us-east-1.amazonaws.com"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session that ignores proxy settings and ~/.netrc."""
    with requests.Session() as sess:
        sess.trust_env = False
        yield sess


@pytest.fixture
def anyio_backend() -> str:
    """The httpx test runs on asyncio, as the other adapter tests do."""
    return "asyncio"


def _signer(**kwargs: object) -> SigV4Signer:
    return SigV4Signer(REGION, credentials=(ACCESS_KEY, SECRET_KEY), **kwargs)  # type: ignore[arg-type]


# -- SigV4Signer: construction and sign_request ------------------------------------------------


def test_a_clock_that_is_not_callable_is_refused_at_construction() -> None:
    """Passing a datetime where a clock function belongs fails at once, naming the fix, rather
    than at the first request."""
    with pytest.raises(InvalidConfigError, match="clock must be a callable"):
        SigV4Signer(REGION, credentials=LONG_TERM, clock=datetime.now(timezone.utc))  # type: ignore[arg-type]


def test_sign_request_refuses_anything_but_a_signable_request() -> None:
    """A plain tuple shaped like a SignableRequest is refused by type, naming the type wanted,
    instead of being signed field by field in whatever order it happens to hold."""
    parts = ("GET", "/", (), (("host", API_HOST),), EMPTY_SHA256)
    with pytest.raises(InvalidConfigError, match="request must be a SignableRequest, got tuple"):
        _signer().sign_request(parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param(["a=1"], [("host", API_HOST)], id="query-of-strings"),
        pytest.param([], [("host", API_HOST, "extra")], id="header-triple"),
    ],
)
def test_sign_request_refuses_query_or_headers_that_are_not_pairs(
    query: list[object], headers: list[object]
) -> None:
    """A query given as "a=1" strings (not (name, value) pairs) is refused with the shape
    expected, not unpacked into nonsense and signed."""
    request = SignableRequest("GET", "/", query, headers, EMPTY_SHA256)  # type: ignore[arg-type]
    with pytest.raises(UnsignableRequestError, match=r"\(name, value\) pairs"):
        _signer().sign_request(request)


def test_the_table_of_hosts_stays_bounded_and_signs_alike_after_it_is_emptied() -> None:
    """A crawler signing for ever more hosts keeps at most 256 in memory; a host forgotten
    when the table is emptied is signed exactly as before."""
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    signer = _signer()
    first = signer.sign("GET", "https://h0.example/p", timestamp=now)
    for number in range(1, 300):
        signer.sign("GET", f"https://h{number}.example/p", timestamp=now)
        assert len(signer._origins) <= 256
    again = signer.sign("GET", "https://h0.example/p", timestamp=now)
    assert again.headers == first.headers


# -- Host headers that name no region ------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/p", f"https://{API_HOST}/p"], ids=["no-region", "region"]
)
def test_repeated_host_headers_are_refused_by_name(url: str) -> None:
    """Two Host headers are refused as such (HTTP allows one), not joined into a Host that
    names no host and then reported as a missing region or sent for a 400."""
    signer = SigV4Signer(None, credentials=LONG_TERM)
    with pytest.raises(UnsignableRequestError, match="more than one Host header"):
        signer.sign("GET", url, headers=[("Host", API_HOST), ("host", "other.example")])


def test_an_httpx_request_with_two_host_headers_is_refused_before_sending(
    aws_server: AwsServer,
) -> None:
    """httpx holds headers as a list, so a caller can set Host twice: the auth refuses the
    request by naming the repeat (h11 would refuse it later, as a protocol error), and
    nothing reaches the server. (aiohttp keeps the last Host set.)"""
    hosts = [("Host", "api.example.com"), ("Host", "other.example")]
    with (
        httpx.Client(auth=make_auth(), trust_env=False) as client,
        pytest.raises(UnsignableRequestError, match="more than one Host header"),
    ):
        client.get(aws_server.url("/prod/a"), headers=hosts)
    assert aws_server.request_count == 0


def test_a_stream_to_a_custom_host_without_region_is_refused_then_fixed_by_aws_region(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_server: AwsServer,
    session: requests.Session,
) -> None:
    """A streamed upload whose Host header is a custom domain, with no region anywhere, is refused
    by the signer with the fix (region= or AWS_REGION) and nothing is sent; once AWS_REGION is
    set, the same auth object signs the next upload (the failed read is not kept)."""
    isolate_aws(tmp_path, monkeypatch)
    auth = ApiGwIamAuth(credentials=LONG_TERM)
    headers = {"Host": "api.example.com"}
    with pytest.raises(InvalidConfigError, match=r"region=.*AWS_REGION"):
        session.put(aws_server.url("/prod/a"), data=iter([b"chunk"]), headers=headers, auth=auth)
    assert aws_server.request_count == 0

    monkeypatch.setenv("AWS_REGION", REGION)
    response = session.put(
        aws_server.url("/prod/a"), data=iter([b"chunk"]), headers=headers, auth=auth, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["body_sha256"] == sha256(b"chunk")


# -- Credentials, SigningConfig and what their reprs show ----------------------------------------


def test_an_empty_session_token_counts_as_none(
    aws_server: AwsServer, session: requests.Session
) -> None:
    """AWS_SESSION_TOKEN="" (an unset variable exported empty) means long-term keys: no empty
    X-Amz-Security-Token is signed or sent, and the server accepts the request."""
    credentials = Credentials(ACCESS_KEY, SECRET_KEY, "")
    assert credentials.token is None
    auth = ApiGwIamAuth(region=REGION, credentials=credentials)
    response = session.get(aws_server.url("/prod/pets"), auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    [record] = aws_server.requests
    assert "x-amz-security-token" not in {name.lower() for name, _ in record.headers}


@pytest.mark.parametrize(
    ("region_set", "match"),
    [
        pytest.param((), "non-empty tuple", id="empty"),
        pytest.param(["us-east-1"], "non-empty tuple", id="list"),
        pytest.param(("us east 1",), "region names or '\\*', got 'us east 1'", id="spaces"),
        pytest.param((1,), "region names or '\\*', got 1", id="not-str"),
    ],
)
def test_signing_config_refuses_a_malformed_region_set(region_set: object, match: str) -> None:
    """The core's scope refuses a region set it could not write into X-Amz-Region-Set, naming
    the bad entry, instead of signing a header AWS would reject."""
    with pytest.raises(InvalidConfigError, match=match):
        SigningConfig(REGION, region_set=region_set)  # type: ignore[arg-type]


def test_reprs_of_a_signed_request_show_no_secret() -> None:
    """Logging or printing a signed request (or its signing result) shows neither the
    signature, the session token nor the query, only names and the path."""
    signer = SigV4Signer(
        REGION, credentials=(SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
    )
    signed = signer.sign("GET", f"https://{API_HOST}/prod/pets?secret-ish=1")
    assert signed.signing is not None
    signature = signed.headers["Authorization"].rsplit("Signature=", 1)[1]
    shown = [repr(signed), repr(signed.signing)]
    assert repr(signed) == f"SignedRequest(method='GET', url='https://{API_HOST}/prod/pets')"
    assert "Authorization" in repr(signed.signing)
    assert "X-Amz-Security-Token" in repr(signed.signing)
    for text in shown:
        assert SESSION_TOKEN not in text
        assert signature not in text
        assert SESSION_SECRET_KEY not in text
        assert "secret-ish" not in text


# -- requests: a body changed after signing, and a file body refused for the clock ----------------


def _send_with_body_swapped(
    server: AwsServer, session: requests.Session, body: object, auth: ApiGwIamAuth | None = None
) -> int:
    """POST b"signed", signed; replace the prepared body with ``body``; send; the status."""
    request = requests.Request(
        "POST", server.url("/prod/pets"), data=b"signed", auth=auth or make_auth()
    )
    prepared = session.prepare_request(request)
    prepared.body = body  # after auth ran: requests has no hook in between
    return session.send(prepared, timeout=10).status_code


def test_requests_body_swapped_for_a_str_after_signing_is_named(
    aws_server: AwsServer, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A str body put on the prepared request after auth ran (sent as UTF-8) is compared as
    those bytes: the 403 that follows is blamed on the changed body, at WARNING."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth")
    assert _send_with_body_swapped(aws_server, session, "swapped") == 403
    assert "body was changed after it was signed" in caplog.text


def test_requests_same_body_as_str_refused_for_another_reason_is_not_blamed(
    aws_server: AwsServer, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    """The signed bytes put back as the equal str are what was signed: a 403 for a wrong
    secret is not blamed on the body (a false lead would hide the real cause)."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth")
    wrong_secret = make_auth(credentials=(ACCESS_KEY, "not-the-secret"))
    assert _send_with_body_swapped(aws_server, session, "signed", wrong_secret) == 403
    assert "body was changed" not in caplog.text


def test_requests_body_swapped_for_a_stream_is_refused_without_a_guess(
    aws_server: AwsServer, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A stream swapped in after signing cannot be read again to compare: the 403 comes back
    as a response (no crash in the hook, no warning that could be wrong)."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth")
    assert _send_with_body_swapped(aws_server, session, io.BytesIO(b"swapped")) == 403
    assert "body was changed" not in caplog.text


def test_requests_file_body_refused_for_the_clock_is_rewound_and_sent_again(
    tmp_path: Path, session: requests.Session
) -> None:
    """A seekable file upload refused for clock skew is re-signed at the corrected time and
    sent again from where it started: the caller gets the 200 and the whole file arrives."""
    path = tmp_path / "upload.bin"
    path.write_bytes(b"0123456789" * 100)
    auth = make_auth()
    with running_server(clock_offset=timedelta(minutes=10)) as server, path.open("rb") as file:
        response = session.put(server.url("/prod/a"), data=file, auth=auth, timeout=10)
        statuses = [record.status for record in server.requests]
    assert (response.status_code, statuses) == (200, [403, 200])
    assert response.json()["body_sha256"] == sha256(b"0123456789" * 100)


# -- httpx: a Host header naming no region on an async stream ------------------------------------


@pytest.mark.anyio
async def test_httpx_async_stream_to_a_custom_host_without_region_is_refused_then_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_server: AwsServer
) -> None:
    """An AsyncClient streaming to a custom Host with no region configured is refused with the
    fix before anything is sent; once AWS_REGION is set, the same client and auth succeed."""
    isolate_aws(tmp_path, monkeypatch)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk"

    auth = ApiGwIamAuth(credentials=LONG_TERM)
    headers = {"Host": "api.example.com"}
    async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
        with pytest.raises(InvalidConfigError, match=r"region=.*AWS_REGION"):
            await client.put(aws_server.url("/prod/a"), content=chunks(), headers=headers)
        assert aws_server.request_count == 0
        monkeypatch.setenv("AWS_REGION", REGION)
        response = await client.put(aws_server.url("/prod/a"), content=chunks(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["body_sha256"] == sha256(b"chunk")


# -- clock skew: a HEAD refusal with a Date that cannot be read ---------------------------------


@pytest.mark.parametrize("date", ["not a date", "Thu, 01 Jan 2026 12:06:00"], ids=["junk", "naive"])
def test_a_head_refusal_with_an_unreadable_date_is_not_taken_for_skew(date: str) -> None:
    """A body-less HEAD 403 tells the clock only through its Date: a junk or zone-less Date
    moves nothing (a wrong correction would break every later request)."""
    signer = _signer()
    at = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    signed = signer.sign("HEAD", f"https://{API_HOST}/p", timestamp=at)
    assert signed.signing is not None
    assert server_time_from_refusal(403, b"", date, signed.signing) is None


# -- the package itself ----------------------------------------------------------------------------


def test_version_and_dir_of_the_package() -> None:
    """``apigw_iam_auth.__version__`` is the installed distribution's version, and dir() lists
    the public names (what tab completion offers), not the lazily imported modules."""
    assert apigw_iam_auth.__version__ == importlib.metadata.version("apigw-iam-auth")
    listed = dir(apigw_iam_auth)
    assert listed == sorted(apigw_iam_auth.__all__)
    assert {"ApiGwIamAuth", "SigV4Signer", "presign_url"} <= set(listed)
    with pytest.raises(AttributeError, match="no attribute 'SigV4signer'"):
        _ = apigw_iam_auth.SigV4signer  # type: ignore[attr-defined]
