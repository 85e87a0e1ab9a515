"""Through a forward proxy, requests still arrive signed (and verify).

A proxy also stands in for ports 80 and 443, which a test cannot bind: an upgrade from
``http://host/`` to ``https://host/`` is followed as clients follow it, and carries nothing of ours.
"""

from functools import partial
from urllib.parse import urlencode

import anyio
import pytest
import requests
from aws_server import CLIENT_CA_PEM, CLIENT_TLS, running_server
from forward_proxy import forward_proxy
from integration_cases import LONG_TERM, MODES, SESSION, leaked, make_auth
from test_aiohttp import send as send_aiohttp
from test_httpx import KIND_VALUES, KINDS, kind_param, send

from apigw_iam_auth import ApiGwIamAuth
from apigw_iam_auth.server import IamAuthServer, KnownKey

KEY, SECRET, TOKEN = "ASIAPROXYEXAMPLE", "proxy/secret+EXAMPLE", "proxy-session-token"
REGION = "us-east-1"


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on asyncio."""
    return "asyncio"


@pytest.fixture
def server():
    """Our IAM-auth server, which also accepts absolute-form targets as a forward proxy gets."""
    with IamAuthServer(region=REGION, keys={KEY: KnownKey(SECRET, token=TOKEN)}) as running:
        yield running


def _behind_proxy(server: IamAuthServer) -> str:
    """A URL on another origin than the proxy (never resolved: the proxy is asked for it)."""
    return f"http://api.example.test:{server.url.rsplit(':', 1)[1]}/prod/pets?a=1"


def _auth(*, presign: bool = False) -> ApiGwIamAuth:
    return ApiGwIamAuth(region=REGION, credentials=(KEY, SECRET, TOKEN), presign=presign)


@pytest.mark.anyio
@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
@pytest.mark.parametrize("kind", KINDS)
async def test_httpx_through_a_forward_proxy_sends_the_signature(server, kind, presign):
    """httpx and httpx2 write an absolute target to the proxy; the guard must not strip it."""
    response = await send(
        kind, "GET", _behind_proxy(server), auth=_auth(presign=presign), proxy=server.url
    )
    assert response.status_code == 200, response.text


def test_requests_through_a_forward_proxy_sends_the_signature(server):
    """requests through the same proxy arrives signed and verifies."""
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(
            _behind_proxy(server),
            auth=_auth(),
            proxies={"http": server.url},
            timeout=10,
        )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
def test_requests_to_an_explicit_default_port_through_a_proxy_verifies(server, presign):
    """http://host:80/ is signed for Host "host" and sent as http://host/: through a proxy,
    urllib3 writes the Host of the URL as given, which must be the one signed.
    """
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(
            "http://api.example.test:80/prod/pets",
            auth=_auth(presign=presign),
            proxies={"http": server.url},
            timeout=10,
        )
    assert response.status_code == 200, response.text
    assert server.requests[-1].target.startswith("http://api.example.test/prod/pets")


def test_requests_through_a_proxy_drops_a_semicolon_that_ends_the_path(server):
    """The limit the README states: urldefragauth (requests' absolute target for a proxy)
    drops an empty ``;params`` ending the path, after the request was signed with it; a ``;``
    inside the path, or followed by text, goes as signed. Should requests stop dropping it,
    this fails, and the README's sentence goes."""
    port = server.url.rsplit(":", 1)[1]
    sent = {}
    with requests.Session() as session:
        session.trust_env = False
        for path in ("/prod/pets;", "/prod/pets;v=2", "/prod/a;/pets"):
            url = f"http://api.example.test:{port}{path}"
            response = session.get(url, auth=_auth(), proxies={"http": server.url}, timeout=10)
            sent[path] = (response.status_code, server.requests[-1].target.split(port, 1)[1])
    assert sent == {
        "/prod/pets;": (403, "/prod/pets"),
        "/prod/pets;v=2": (200, "/prod/pets;v=2"),
        "/prod/a;/pets": (200, "/prod/a;/pets"),
    }


# --- an upgrade to https of the same host, on the default ports ------------------------------
#
# http://localhost/ and https://localhost/ are one host on ports 80 and 443, which a test
# cannot bind: a forward proxy stands in for both. requests and httpx (and httpx2) keep
# Authorization on such an upgrade (should_strip_auth, _is_https_redirect), and aiohttp runs
# the middleware again for it: only the adapters' origin rule keeps our headers, the token and
# a presigned query off that hop.

UPGRADE = "http://localhost/redirect?" + urlencode(
    {"to": "https://localhost/prod/up?a=1", "status": 301}
)


@pytest.fixture
def upgrade():
    """A verifying server for http://localhost and one for https://localhost, and the proxy.

    The first answers a verified request to :data:`UPGRADE` with a 301 to the second.
    """
    with (
        running_server() as plain,
        running_server(tls=True) as tls,
        forward_proxy({"localhost:80": plain.port, "localhost:443": tls.port}) as proxy,
    ):
        yield plain, tls, proxy


async def _through_httpx(kind, auth, proxy, _workdir):
    response = await send(kind, "GET", UPGRADE, auth=auth, follow_redirects=True, proxy=proxy)
    return response.status_code


async def _through_requests(auth, proxy, workdir):
    ca_file = workdir / "test-ca.pem"  # requests trusts a file, not a context
    ca_file.write_bytes(CLIENT_CA_PEM)

    def call():
        with requests.Session() as session:
            session.trust_env = False
            proxies = {"http": proxy, "https": proxy}
            return session.get(UPGRADE, auth=auth, proxies=proxies, verify=ca_file, timeout=10)

    return (await anyio.to_thread.run_sync(call)).status_code


async def _through_aiohttp(auth, proxy, _workdir):
    reply = await send_aiohttp(
        "GET", UPGRADE, middleware=auth, allow_redirects=True, proxy=proxy, ssl=CLIENT_TLS
    )
    return reply.status


UPGRADE_CLIENTS = (
    *(
        pytest.param(partial(_through_httpx, kind), id=str(kind), marks=kind_param(kind).marks)
        for kind in KIND_VALUES
    ),
    pytest.param(_through_requests, id="requests"),
    pytest.param(_through_aiohttp, id="aiohttp"),
)


@pytest.mark.anyio
@pytest.mark.parametrize("credentials", [LONG_TERM, SESSION], ids=["long-term", "session"])
@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("through", UPGRADE_CLIENTS)
async def test_an_upgrade_to_https_of_the_same_host_carries_nothing_of_ours(
    upgrade, through, presign, credentials, tmp_path
):
    """http://localhost/ signed and verified, redirected to https://localhost/: another
    origin, reached with nothing of ours (so refused), though the client lets Authorization
    follow an upgrade."""
    plain, tls, proxy = upgrade
    auth = make_auth(presign=presign, credentials=credentials)
    status = await through(auth, proxy.url, tmp_path)
    assert [record.verified for record in plain.requests] == [True]
    assert [asked.split()[0] for asked in proxy.asked] == ["GET", "CONNECT"]
    assert proxy.asked[1] == "CONNECT localhost:443"  # the default port: an upgrade
    assert [(record.target, leaked(record)) for record in tls.requests] == [("/prod/up?a=1", [])]
    assert status == 403
