"""Through a plain-HTTP forward proxy, requests still arrive signed (and verify)."""

import pytest
import requests
from test_httpx import KINDS, send

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
