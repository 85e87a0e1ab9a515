"""SigV4a through every supported client against the shipped ``IamAuthServer``, over loopback.

One ``ApiGwIamAuth(region_set=...)`` object signs for requests, httpx and httpx2 (``Client`` and
``AsyncClient``) and aiohttp (as a session middleware), by header and as a presigned URL, with
several bodies and with session credentials. The server is the shipped verifier in region
``eu-west-1``: it checks the ECDSA signature with the public key it derives from the known
secret, and that the signed ``X-Amz-Region-Set`` includes its region. A region set without it
is refused with API Gateway's 403; ``region_set="*"`` is accepted.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import anyio.to_thread
import pytest
import requests
from integration_cases import LONG_TERM, NEEDS_HTTPX2, SESSION, TEXT, sha256

from apigw_iam_auth import ApiGwIamAuth, SigV4Signer
from apigw_iam_auth._sigv4a import ALGORITHM_V4A
from apigw_iam_auth.server import IamAuthServer, KnownKey

pytestmark = pytest.mark.anyio

SERVER_REGION = "eu-west-1"
REGION_SET = ["us-east-1", "eu-west-1"]
KEYS = {
    LONG_TERM[0]: KnownKey(LONG_TERM[1]),
    SESSION[0]: KnownKey(SESSION[1], token=SESSION[2]),
}
TIMEOUT = 10

CLIENTS = (
    pytest.param("requests", id="requests"),
    pytest.param("httpx-sync", id="httpx-sync"),
    pytest.param("httpx-async", id="httpx-async"),
    pytest.param("httpx2-sync", id="httpx2-sync", marks=NEEDS_HTTPX2),
    pytest.param("httpx2-async", id="httpx2-async", marks=NEEDS_HTTPX2),
    pytest.param("aiohttp", id="aiohttp"),
)
MODES = (pytest.param(False, id="header"), pytest.param(True, id="presigned"))

# id -> (how each client family is given the body, the bytes that must arrive or None when the
# client chooses them, e.g. its JSON spacing).
BINARY = b"\x00\xffbinary\r\n"
BODIES: dict[str, tuple[dict[str, dict[str, Any]], bytes | None]] = {
    "none": ({"requests": {}, "httpx": {}, "aiohttp": {}}, b""),
    "bytes": (
        {"requests": {"data": BINARY}, "httpx": {"content": BINARY}, "aiohttp": {"data": BINARY}},
        BINARY,
    ),
    "text": (
        {
            "requests": {"data": TEXT.encode()},
            "httpx": {"content": TEXT},
            "aiohttp": {"data": TEXT.encode()},
        },
        TEXT.encode(),
    ),
    "json": (
        {family: {"json": {"k": "é", "n": [1, 2]}} for family in ("requests", "httpx", "aiohttp")},
        None,
    ),
    "form": (
        {
            "requests": {"data": {"a": "1 2", "b": "é"}},
            "httpx": {"data": {"a": "1 2", "b": "é"}},
            "aiohttp": {"data": {"a": "1 2", "b": "é"}},
        },
        b"a=1+2&b=%C3%A9",
    ),
}


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on asyncio (aiohttp's loop)."""
    return "asyncio"


@pytest.fixture(scope="module")
def server():
    """The shipped verifier in eu-west-1, knowing a long-term and a session key."""
    with IamAuthServer(region=SERVER_REGION, keys=KEYS) as srv:
        yield srv


@dataclass(frozen=True)
class Answer:
    """A response read whole before its client closed."""

    status: int
    headers: dict[str, str]  # names lowercased
    text: str

    def echo(self) -> dict[str, Any]:
        """The server's JSON echo of a verified request (fails with its 403 body if refused)."""
        assert self.status == 200, self.text
        return json.loads(self.text)


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _family(client: str) -> str:
    return client.partition("-")[0].replace("httpx2", "httpx")


async def send(client: str, method: str, url: str, auth: ApiGwIamAuth, **kwargs: Any) -> Answer:
    """One request through a fresh client of kind ``client``, proxies from the env ignored."""
    if client == "requests":

        def call_requests() -> Answer:
            with requests.Session() as session:
                session.trust_env = False
                response = session.request(method, url, auth=auth, timeout=TIMEOUT, **kwargs)
                return Answer(response.status_code, _lower(response.headers), response.text)

        return await anyio.to_thread.run_sync(call_requests)
    if client == "aiohttp":
        async with (
            aiohttp.ClientSession(middlewares=(auth,), trust_env=False) as session,
            session.request(method, url, **kwargs) as response,
        ):
            return Answer(response.status, _lower(response.headers), await response.text())
    package_name, _, flavour = client.partition("-")
    package = importlib.import_module(package_name)
    settings = {"auth": auth, "trust_env": False, "timeout": TIMEOUT}
    if flavour == "sync":

        def call_httpx() -> Answer:
            with package.Client(**settings) as http:
                response = http.request(method, url, **kwargs)
                return Answer(response.status_code, _lower(response.headers), response.text)

        return await anyio.to_thread.run_sync(call_httpx)
    async with package.AsyncClient(**settings) as http:
        response = await http.request(method, url, **kwargs)
        return Answer(response.status_code, _lower(response.headers), response.text)


def _auth(
    *, presign: bool, credentials: tuple[str, ...] = LONG_TERM, **kwargs: Any
) -> ApiGwIamAuth:
    return ApiGwIamAuth(
        region_set=kwargs.pop("region_set", REGION_SET),
        credentials=credentials,
        presign=presign,
        **kwargs,
    )


def _assert_sigv4a(echo: dict[str, Any], *, presign: bool, region_set: str) -> None:
    """The request arrived signed with SigV4a, its region set signed, in the placement asked."""
    caller = echo["caller"]
    assert caller["signature_location"] == ("query" if presign else "headers")
    if presign:
        query = dict(echo["query"])
        assert query["X-Amz-Algorithm"] == ALGORITHM_V4A
        assert query["X-Amz-Region-Set"] == region_set
    else:
        headers = {name.lower(): value for name, value in echo["headers"]}
        assert headers["authorization"].startswith(ALGORITHM_V4A + " Credential=")
        assert headers["x-amz-region-set"] == region_set
        assert "x-amz-region-set" in caller["signed_headers"]


@pytest.mark.parametrize("body", sorted(BODIES))
@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("client", CLIENTS)
async def test_sigv4a_request_verifies(server, client, presign, body):
    """Each client's SigV4a request, by header or presigned, with each body, is accepted."""
    given, arrives = BODIES[body]
    method = "GET" if body == "none" else "POST"
    answer = await send(
        client,
        method,
        server.url + "/prod/pets?b=2&a=%E2%82%AC",
        _auth(presign=presign),
        **given[_family(client)],
    )
    echo = answer.echo()
    _assert_sigv4a(echo, presign=presign, region_set="us-east-1,eu-west-1")
    assert echo["method"] == method
    assert echo["path"] == "/prod/pets"
    assert echo["caller"]["access_key"] == LONG_TERM[0]
    if arrives is not None:
        assert echo["body"] == {"length": len(arrives), "sha256": sha256(arrives)}
    else:
        assert echo["body"]["length"] > 0


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("client", CLIENTS)
async def test_session_token_is_signed_and_verified(server, client, presign):
    """Temporary credentials carry their token, in a header or the presigned query."""
    answer = await send(
        client,
        "PUT",
        server.url + "/prod/a b/€",
        _auth(presign=presign, credentials=SESSION),
        **BODIES["bytes"][0][_family(client)],
    )
    echo = answer.echo()
    _assert_sigv4a(echo, presign=presign, region_set="us-east-1,eu-west-1")
    assert echo["caller"]["access_key"] == SESSION[0]
    assert echo["path"] == "/prod/a%20b/%E2%82%AC"
    in_query = any(name == "X-Amz-Security-Token" for name, _ in echo["query"])
    in_headers = any(name.lower() == "x-amz-security-token" for name, _ in echo["headers"])
    assert (in_query, in_headers) == (presign, not presign)


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("client", CLIENTS)
async def test_region_set_without_the_servers_region_is_refused(server, client, presign):
    """A region set that leaves out eu-west-1 gets API Gateway's 403 InvalidSignatureException."""
    server.clear_requests()
    auth = _auth(presign=presign, region_set=["us-east-1", "us-west-2"])
    answer = await send(client, "GET", server.url + "/prod/pets", auth)
    assert answer.status == 403, answer.text
    assert answer.headers["x-amzn-errortype"] == "InvalidSignatureException"
    message = json.loads(answer.text)["message"]
    assert "X-Amz-Region-Set" in message
    assert "'eu-west-1'" in message
    assert [record.status for record in server.requests] == [403]


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("client", CLIENTS)
async def test_star_region_set_is_accepted(server, client, presign):
    """region_set="*" (every region) is signed as '*' and accepted in eu-west-1."""
    answer = await send(
        client, "DELETE", server.url + "/prod/pets/1", _auth(presign=presign, region_set="*")
    )
    _assert_sigv4a(answer.echo(), presign=presign, region_set="*")


@pytest.mark.parametrize("client", CLIENTS)
async def test_wrong_secret_is_refused(server, client):
    """The server really checks the ECDSA signature: another secret's key gets a 403 mismatch."""
    auth = ApiGwIamAuth(region_set=REGION_SET, credentials=(LONG_TERM[0], "not-the-secret"))
    answer = await send(client, "GET", server.url + "/prod/pets", auth)
    assert answer.status == 403
    assert answer.headers["x-amzn-errortype"] == "InvalidSignatureException"
    assert json.loads(answer.text)["message"].startswith("The request signature we calculated")


def test_presigning_a_presigned_url_again_keeps_one_region_set():
    """Presigning a SigV4a presigned URL again replaces its X-Amz-Region-Set, not repeats it."""
    signer = SigV4Signer(region_set=REGION_SET, credentials=LONG_TERM)
    when = datetime(2026, 5, 9, 12, 0, tzinfo=timezone.utc)
    first = signer.presign("GET", "https://api.example.com/prod/x?a=1", timestamp=when)
    again = signer.presign("GET", first, timestamp=when + timedelta(minutes=1))
    assert first.count("X-Amz-Region-Set=") == 1
    assert again.count("X-Amz-Region-Set=") == 1


@pytest.mark.parametrize("client", CLIENTS)
async def test_presigned_clock_skew_retry_keeps_one_region_set(client):
    """After a skew 403 the presigned request is signed again with a single X-Amz-Region-Set."""

    def an_hour_ahead() -> datetime:
        return datetime.now(timezone.utc) + timedelta(hours=1)

    with IamAuthServer(region=SERVER_REGION, keys=KEYS, clock=an_hour_ahead) as srv:
        answer = await send(client, "GET", srv.url + "/prod/x?a=1", _auth(presign=True))
        assert answer.status == 200, answer.text  # the retry, at the corrected time
        first, retry = srv.requests
    assert first.status == 403
    assert first.target.count("X-Amz-Region-Set=") == 1
    assert retry.target.count("X-Amz-Region-Set=") == 1


def test_server_without_cryptography_names_the_extra(server, monkeypatch, caplog):
    """A server that cannot verify SigV4a says which extra it needs, not "a bug in the server"."""
    signed = SigV4Signer(region_set=REGION_SET, credentials=LONG_TERM).sign(
        "GET", server.url + "/prod/pets"
    )
    for name in [name for name in sys.modules if name.partition(".")[0] == "cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with caplog.at_level(logging.ERROR, logger="apigw_iam_auth.server"):
        response = requests.get(signed.url, headers=signed.headers, timeout=TIMEOUT)
    assert response.status_code == 500
    record = server.requests[-1]
    assert record.status == 500
    assert "pip install 'cryptography>=42'" in record.outcome
    assert "bug" not in record.outcome
    assert not [entry for entry in caplog.records if entry.exc_info]  # a setup, not a bug
