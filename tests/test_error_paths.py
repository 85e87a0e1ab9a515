"""Refusals and guards that no other test reaches: each proves what a caller sees and can fix.

Requests go over loopback to the verifying server (``aws_server.py``, botocore's verdict);
refusals are checked by exception type and by the words of the message that say what to fix.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import logging
import re
import sys
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import botocore.session
import httpx
import pytest
import requests
from aws_isolation import direct_to_loopback, isolate_aws
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
    BotocoreProvider,
    CallableProvider,
    Credentials,
    CredentialsProvider,
    InvalidConfigError,
    NoCredentialsError,
    SignableRequest,
    SigV4Signer,
    UnsignableRequestError,
    cli,
)
from apigw_iam_auth._models import SigningConfig
from apigw_iam_auth._sigv4 import EMPTY_SHA256
from apigw_iam_auth._skew import server_time_from_refusal
from apigw_iam_auth.diagnostics import explain_signature_mismatch
from apigw_iam_auth.server import IamAuthServer, KnownKey

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from aws_server import AwsServer

pytest_plugins = ["pytester"]  # the plugin's own tests run in an inner pytest

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
    assert server_time_from_refusal(b"", date, signed.signing) is None


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


# -- credentials: providers refused at construction, and a chain driven asynchronously ----------


class _AsyncFrozen:
    """aiobotocore's credentials: get_frozen_credentials is a coroutine function there."""

    async def get_frozen_credentials(self) -> object:
        return None


def test_aiobotocore_credentials_are_refused_with_the_provider_to_write_instead() -> None:
    """aiobotocore's credentials look like botocore's, but their get_frozen_credentials must be
    awaited: they are refused when the auth is made, saying what to pass instead, rather than
    failing at the first request on a coroutine where keys were expected."""
    with pytest.raises(InvalidConfigError, match=r"aiobotocore.*pass an async def provider"):
        ApiGwIamAuth(region=REGION, credentials=_AsyncFrozen())


class _AsyncSession(botocore.session.Session):
    """aiobotocore's session: get_credentials is a coroutine function there."""

    async def get_credentials(self) -> object:  # type: ignore[override]
        return None


def test_an_aiobotocore_session_is_refused_with_the_provider_to_write_instead() -> None:
    """Its get_credentials() must be awaited: refused when the auth is made (given, in a list,
    or as a provider's session), not at the first request on a coroutine never awaited."""
    for credentials in (_AsyncSession(), [_AsyncSession()]):
        with pytest.raises(InvalidConfigError, match=r"aiobotocore.*awaits its get_credentials"):
            ApiGwIamAuth(region=REGION, credentials=credentials)
    with pytest.raises(InvalidConfigError, match=r"aiobotocore.*awaits its get_credentials"):
        BotocoreProvider(session=_AsyncSession())


@pytest.mark.parametrize("returned", [("AKIDSET", None), (None, "secret", "token")])
def test_a_provider_function_returning_a_key_unset_says_which(returned) -> None:
    """(key, None) from an unset variable is told as it is when given directly."""
    auth = SigV4Signer(region=REGION, credentials=lambda: returned)
    with pytest.raises(InvalidConfigError) as refused:
        auth.sign("GET", "https://abc.execute-api.us-east-1.amazonaws.com/prod/x")
    assert "returned keys that cannot sign: the " in str(refused.value)
    assert "is None; is its environment variable set?" in str(refused.value)


def test_a_session_that_cannot_give_credentials_is_refused() -> None:
    """BotocoreProvider(session=...) with something that has no get_credentials() (a client,
    a config object) is refused at once, naming what it takes."""
    with pytest.raises(InvalidConfigError, match="session must be a botocore or boto3 Session"):
        BotocoreProvider(session=object())


@pytest.mark.parametrize(
    ("func", "window", "match"),
    [
        pytest.param("AKID:secret", timedelta(minutes=5), "must be callable", id="not-callable"),
        pytest.param(lambda: LONG_TERM, 300, "non-negative timedelta", id="window-in-seconds"),
        pytest.param(
            lambda: LONG_TERM, timedelta(seconds=-1), "non-negative timedelta", id="negative"
        ),
    ],
)
def test_callable_provider_refuses_what_it_could_never_use(
    func: object, window: object, match: str
) -> None:
    """A provider that is not a function, or a refresh window given in seconds or negative,
    is refused when the provider is made, with what is expected."""
    with pytest.raises(InvalidConfigError, match=match):
        CallableProvider(func, refresh_window=window)  # type: ignore[arg-type]


class _NothingHere(CredentialsProvider):
    """A provider of the user's own that finds no credentials, counting the times it looked."""

    def __init__(self) -> None:
        self.asked = 0

    def get(self) -> Credentials:
        self.asked += 1
        raise NoCredentialsError("no keys in the vault")

    async def aget(self) -> Credentials:
        self.asked += 1
        raise NoCredentialsError("no keys in the vault")


@pytest.mark.anyio
async def test_an_async_chain_passes_over_a_provider_with_nothing_and_keeps_the_next(
    aws_server: AwsServer,
) -> None:
    """In an AsyncClient, a chain whose first provider (the user's own) finds nothing goes on
    to the next; once that one answered, later requests ask it alone, as botocore's chain
    does, instead of probing the empty one again on every request."""
    empty = _NothingHere()

    async def keys() -> tuple[str, str]:
        return LONG_TERM

    auth = make_auth(credentials=[empty, keys])  # type: ignore[arg-type]
    async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
        for _ in range(3):
            response = await client.get(aws_server.url("/prod/pets"))
            assert response.status_code == 200, response.text
    assert empty.asked == 1


class _Refusing(CredentialsProvider):
    """A provider of the user's own that raises the library's own configuration error."""

    def get(self) -> Credentials:
        raise InvalidConfigError("set VAULT_ROLE to the role to assume")

    async def aget(self) -> Credentials:
        raise InvalidConfigError("set VAULT_ROLE to the role to assume")


def test_a_configuration_error_from_a_users_provider_reaches_the_caller_as_raised(
    aws_server: AwsServer, session: requests.Session
) -> None:
    """A provider of one's own that raises InvalidConfigError (the fix in its words) is not
    re-raised as a refresh failure wrapping it: the caller sees the same type and message."""
    auth = make_auth(credentials=_Refusing())  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match=r"^set VAULT_ROLE to the role to assume$"):
        session.get(aws_server.url("/prod/pets"), auth=auth, timeout=10)
    assert aws_server.request_count == 0


class _BadAsyncKeys(CredentialsProvider):
    """A provider of the user's own whose aget() returns a key tuple with an empty secret."""

    def get(self) -> Credentials:
        raise NotImplementedError

    async def aget(self) -> Credentials:
        return (ACCESS_KEY, "")  # type: ignore[return-value]


@pytest.mark.anyio
async def test_an_async_provider_returning_keys_that_cannot_sign_is_named(
    aws_server: AwsServer,
) -> None:
    """A provider's aget() returning a (key, "") tuple is refused naming the provider's method
    and the field to fix, before anything is sent."""
    auth = make_auth(credentials=_BadAsyncKeys())  # type: ignore[arg-type]
    async with httpx.AsyncClient(auth=auth, trust_env=False) as client:
        with pytest.raises(
            InvalidConfigError, match=r"_BadAsyncKeys\.aget\(\) returned keys that cannot sign"
        ) as caught:
            await client.get(aws_server.url("/prod/pets"))
    assert "secret" in str(caught.value)
    assert aws_server.request_count == 0


# -- the command line, run in this process: refusals before sending, and the curl it prints ------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line sees the verifying server's key and region, no profile, no proxy."""
    isolate_aws(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    direct_to_loopback(monkeypatch)


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    ("given", "said"),
    [
        pytest.param(",", "give region names separated by commas", id="no-name"),
        pytest.param("*,us-east-1", "'\\*' already means every region: give it alone", id="star"),
    ],
)
def test_cli_region_set_without_a_usable_name_exits_2_naming_the_flag(
    aws_server: AwsServer, capsys: pytest.CaptureFixture[str], given: str, said: str
) -> None:
    """--region-set with only commas, or '*' beside names, stops before anything is signed,
    blaming --region-set and saying what to give."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["call", aws_server.url("/prod/pets"), "--region-set", given])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert re.search(said, err), err
    assert "--region-set" in err
    assert aws_server.request_count == 0


@pytest.mark.usefixtures("cli_env")
def test_cli_call_with_a_word_too_many_exits_2_before_sending(
    aws_server: AwsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`call GET URL extra` (a second URL, an unquoted query split by the shell) is refused
    with how many words came and the form to use; nothing is sent."""
    assert cli.main(["call", "GET", aws_server.url("/prod/pets"), "extra"]) == 2
    err = capsys.readouterr().err
    assert "call takes one URL, got 3 words: call [METHOD] URL" in err
    assert aws_server.request_count == 0


@pytest.mark.usefixtures("cli_env")
def test_cli_body_from_stdin_when_there_is_no_stdin_exits_2(
    aws_server: AwsServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """-d @- in a program started without stdin (a service, `<&-`) says so in one line,
    exit 2, instead of a bug report about None; nothing is sent."""
    monkeypatch.setattr(sys, "stdin", None)
    assert cli.main(["call", aws_server.url("/prod/pets"), "-d", "@-"]) == 2
    err = capsys.readouterr().err
    assert "-d @- reads the body from stdin, but there is no stdin" in err
    assert "bug" not in err
    assert aws_server.request_count == 0


@pytest.mark.usefixtures("cli_env")
def test_cli_dry_run_of_a_head_request_uses_curls_head_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The curl command printed for -X HEAD uses --head: curl -X HEAD would wait for a body
    that never comes."""
    url = f"https://{API_HOST}/prod/pets"
    assert cli.main(["call", "-X", "HEAD", url, "--dry-run"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"curl --globoff --head {url} \\"


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    "body", [b"\xff\xfe\x01binary", b"text\x00with a NUL"], ids=["not-utf8", "nul"]
)
def test_cli_dry_run_of_a_binary_body_from_stdin_says_to_pipe_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    """A binary body read from a pipe (not UTF-8, or holding a NUL no shell argument can)
    cannot be written into the curl command: it reads the body from its stdin
    (--data-binary @-) and stderr says to pipe the same bytes in. A Content-Type given with
    -H is kept and not blanked."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    url = f"https://{API_HOST}/prod/upload"
    headers = ["-H", "Content-Type: application/octet-stream"]
    assert cli.main(["call", url, "-d", "@-", *headers, "--dry-run"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[-1].strip() == "--data-binary @-"
    assert "-H 'Content-Type: application/octet-stream' \\" in [line.strip() for line in lines]
    assert "-H 'Content-Type:' \\" not in [line.strip() for line in lines]
    assert "the body is binary: pipe the same bytes into this command's stdin" in captured.err


@pytest.mark.usefixtures("cli_env")
def test_cli_writes_to_a_text_only_stdout_of_an_embedding_program(
    aws_server: AwsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() called by a program whose sys.stdout is a StringIO (no binary buffer) writes the
    response there as text, and the signed call succeeds."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert cli.main(["call", aws_server.url("/prod/pets?kind=cat")]) == 0
    echoed = json.loads(out.getvalue())
    assert echoed["query"] == "kind=cat"


# -- the local server: settings, key files, chunked framing and SigV4a links -------------------


@pytest.mark.parametrize("host", ["", None], ids=["empty", "none"])
def test_server_without_a_host_to_listen_on_is_refused_naming_examples(host: object) -> None:
    """host="" (an unset variable) or None is refused when the server is made, with addresses
    to use, not left for the socket layer to read as "every interface"."""
    with pytest.raises(InvalidConfigError, match=r"host must be an address such as 127\.0\.0\.1"):
        IamAuthServer(host, keys={ACCESS_KEY: KnownKey(SECRET_KEY)})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "warned"),
    [("0.0.0.0", True), ("localhost", False), ("127.0.0.1", False)],  # noqa: S104
)
def test_server_on_an_address_others_can_reach_warns_once_listening(
    caplog: pytest.LogCaptureFixture, host: str, *, warned: bool
) -> None:
    """Listening on 0.0.0.0 (a container's habit) logs a WARNING that anyone who can reach the
    address can call the server; localhost and 127.0.0.1 do not."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth.server")
    with IamAuthServer(host, keys={ACCESS_KEY: KnownKey(SECRET_KEY)}):
        pass
    said = "not a loopback address: anyone who can reach it can call it"
    assert (said in caplog.text) is warned


@pytest.mark.parametrize(
    ("field", "match"),
    [
        pytest.param({"token": ""}, "session token must be a non-empty string or None", id="token"),
        pytest.param({"account_id": ""}, "account id must be a non-empty string", id="account"),
    ],
)
def test_known_key_with_an_empty_token_or_account_is_refused(
    field: dict[str, str], match: str
) -> None:
    """A KnownKey whose token or account id came from an unset variable ("") is refused when
    made: an empty token would match no request, an empty account no policy."""
    with pytest.raises(InvalidConfigError, match=match) as raised:
        KnownKey(SECRET_KEY, **field)  # type: ignore[arg-type]
    assert SECRET_KEY not in str(raised.value)


def test_a_sigv4a_link_stripped_of_its_region_set_is_refused_saying_what_it_lacks() -> None:
    """A presigned SigV4a link that lost its X-Amz-Region-Set parameter (a tool trimming
    the query) is refused with a message naming the missing parameter and, in the access
    record, the region set to sign with."""
    signer = SigV4Signer(REGION, credentials=LONG_TERM, region_set=(REGION,))
    with IamAuthServer(region=REGION, keys={ACCESS_KEY: KnownKey(SECRET_KEY)}) as server:
        link = signer.presign("GET", f"{server.url}/prod/pets", expires=300)
        parts = urlsplit(link)
        kept = [p for p in parts.query.split("&") if not p.startswith("X-Amz-Region-Set=")]
        assert len(kept) < len(parts.query.split("&"))
        stripped = parts._replace(query="&".join(kept)).geturl()
        with httpx.Client(trust_env=False) as client:
            response = client.get(stripped)
        [record] = server.requests
    assert response.status_code == 403
    assert "SigV4a requires the X-Amz-Region-Set of the request" in response.json()["message"]
    assert record.likely_cause is not None
    assert f"sign with a region set including '{REGION}'" in record.likely_cause


# -- diagnostics: a canonical request with a line more at its end --------------------------------


def test_a_mismatch_with_a_line_more_at_the_end_says_so() -> None:
    """When API Gateway's canonical request lacks a last line ours has, the explanation shows
    the extra line and says a line was added or dropped at the end (not a wrong secret)."""
    signed = _signer().sign("GET", f"https://{API_HOST}/prod/p")
    assert signed.signing is not None
    ours = signed.signing.canonical_request
    theirs = ours.rsplit("\n", 1)[0]
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service "
        f"documentation for details.\n\nThe Canonical String for this request should have "
        f"been\n'{theirs}'\n\nThe String-to-Sign should have been\n"
        f"'{signed.signing.string_to_sign}'\n"
    )
    text = explain_signature_mismatch(json.dumps({"message": message}), signed)
    assert text is not None
    assert text.endswith(
        "likely cause: a line was added or dropped at the end of the canonical request"
    )
    assert f"  + {ours.rsplit(chr(10), 1)[1]}" in text.splitlines()


# -- the pytest plugin: a marker given positional arguments, a session log cleared ------------


@pytest.fixture
def run_inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run an inner test file with only our plugin, in a subprocess; returns the RunResult."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run(source: str) -> pytest.RunResult:
        pytester.makepyfile(test_inner=source)
        return pytester.runpytest_subprocess(
            "-p", "apigw_iam_auth.pytest_plugin", "-p", "no:cacheprovider", "-W", "error"
        )

    return run


def test_plugin_marker_with_positional_arguments_fails_setup_saying_so(run_inner: Any) -> None:
    """@pytest.mark.iam_server("eu-west-1") errors the test's setup saying the marker takes
    keyword arguments only, instead of serving us-east-1 and failing later on a 403."""
    result = run_inner(
        """
        import pytest

        @pytest.mark.iam_server("eu-west-1")
        def test_positional(iam_server):
            pass
        """
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.iam_server takes keyword arguments only*"])


def test_plugin_report_after_clearing_the_session_log_shows_the_tests_requests(
    run_inner: Any,
) -> None:
    """A failing test that cleared the shared server's log, then made a request, still gets
    that request in its report's access log (not "(none)")."""
    result = run_inner(
        """
        import httpx

        def test_first(iam_server_session):
            with httpx.Client(trust_env=False, auth=iam_server_session.auth) as client:
                assert client.get(f"{iam_server_session.url}/prod/first").status_code == 200

        def test_cleared_then_failing(iam_server_session):
            iam_server_session.clear()
            with httpx.Client(trust_env=False) as client:
                client.get(f"{iam_server_session.url}/prod/unsigned")
            assert False, "fails on purpose"
        """
    )
    result.assert_outcomes(passed=1, failed=1)
    report = result.stdout.str()
    section = report.partition("iam_server_session access log, this test's requests")[2]
    assert '"GET /prod/unsigned" 403' in section
    assert "/prod/first" not in section


# -- botocore's settings: a profile named in AWS_DEFAULT_PROFILE that does not exist ------------


def test_a_missing_profile_named_by_aws_default_profile_is_blamed_on_that_variable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aws_server: AwsServer,
    session: requests.Session,
) -> None:
    """With no region anywhere but a profile to read it from, a profile that does not exist is
    said to come from AWS_DEFAULT_PROFILE when that is where it was named (botocore reads it
    before AWS_PROFILE), so the user fixes the right variable; nothing is sent."""
    isolate_aws(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_DEFAULT_PROFILE", "ghost")
    auth = ApiGwIamAuth(credentials=LONG_TERM)
    with pytest.raises(InvalidConfigError, match=r"'ghost' \(from AWS_DEFAULT_PROFILE\)"):
        session.get(aws_server.url("/prod/a"), headers={"Host": "api.example.com"}, auth=auth)
    assert aws_server.request_count == 0


@pytest.mark.usefixtures("cli_env")
def test_cli_with_a_missing_profile_says_so_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`call --profile ghost https://...` (a profile that does not exist, whose CA bundle
    cannot be read either) ends in one line naming the profile, exit 2, not as a bug report
    about botocore's ProfileNotFound."""
    url = f"https://{API_HOST}/prod/pets"
    assert cli.main(["call", "--profile", "ghost", url, "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "'ghost'" in captured.err
    assert "bug" not in captured.err
    assert captured.out == ""
