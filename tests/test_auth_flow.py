"""The httpx and httpx2 auth flows driven by hand, without a network; the requests hook contract.

The flow tests run with each client kind of ``test_httpx`` (httpx or httpx2, sync or async
flow), from the same test code.
"""

from __future__ import annotations

import importlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from test_httpx import KINDS

from apigw_iam_auth import ApiGwIamAuth, InvalidConfigError
from apigw_iam_auth._httpx_redirects import SIGNED_FOR

if TYPE_CHECKING:
    from test_httpx import Kind

KEY, SECRET, TOKEN = (
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "session-token-value",
)
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets"
# The httpcore each client package sends with.
CORE = {"httpx": "httpcore", "httpx2": "httpcore2"}


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on asyncio."""
    return "asyncio"


@pytest.fixture(params=KINDS)
def kind(request):
    """Which flow runs: httpx or httpx2, ``sync_auth_flow`` or ``async_auth_flow``."""
    return request.param


def make_auth(**kwargs):
    return ApiGwIamAuth(credentials=(KEY, SECRET, TOKEN), clock=lambda: NOW, **kwargs)


class Flow:
    """An auth flow driven by hand, as a client of ``kind`` drives it."""

    def __init__(self, kind: Kind, auth: ApiGwIamAuth, request: Any) -> None:
        self._is_async = kind.is_async
        self._flow: Any = (
            auth.async_auth_flow(request) if kind.is_async else auth.sync_auth_flow(request)
        )

    async def start(self) -> Any:
        """The request the flow sends first."""
        return await self._flow.__anext__() if self._is_async else next(self._flow)

    async def send(self, response: Any) -> Any:
        """The request the flow sends after ``response``, or None when it has finished."""
        try:
            if self._is_async:
                return await self._flow.asend(response)
            return self._flow.send(response)
        except (StopIteration, StopAsyncIteration):
            return None


async def first_request(kind: Kind, auth: ApiGwIamAuth, request: Any) -> Any:
    """The request as the flow of ``kind`` sends it first."""
    return await Flow(kind, auth, request).start()


def botocore_signature(request: httpx.Request) -> str:
    """Recompute the header-mode signature of a wire request with botocore."""
    authorization = request.headers["Authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {name: value for name, value in request.headers.items() if name in signed}
    aws = AWSRequest(request.method, str(request.url), headers=headers, data=request.content)
    aws.context["timestamp"] = request.headers["X-Amz-Date"]
    signer = SigV4Auth(ReadOnlyCredentials(KEY, SECRET, TOKEN), "execute-api", "us-east-1")
    canonical = signer.canonical_request(aws)
    return signer.signature(signer.string_to_sign(aws, canonical), aws)


@pytest.mark.anyio
async def test_flow_yields_the_request_signed_as_botocore_would(kind):
    """The flow signs the request in place; botocore recomputes the same signature."""
    request = kind.client.Request(
        "POST", URL + "?b=2&a=x+y", json={"name": "rex"}
    )  # '+': rewritten pair by pair, in the caller's order
    flow = Flow(kind, make_auth(), request)
    sent = await flow.start()
    assert sent is request
    assert sent.url.raw_path == b"/prod/pets?b=2&a=x%20y"
    assert sent.headers["X-Amz-Security-Token"] == TOKEN
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))
    assert await flow.send(kind.client.Response(200, request=sent)) is None


def _chunks(kind: Kind) -> Any:
    """A body stream of the flavour a client of ``kind`` takes: sync or async chunks."""
    pieces = (b'{"a":', b"1}")
    if not kind.is_async:
        return iter(pieces)

    async def chunks():
        for piece in pieces:
            yield piece

    return chunks()


@pytest.mark.anyio
async def test_flow_reads_a_stream_once_and_signs_it(kind):
    """The flow buffers a (sync or async) body stream and signs exactly those bytes."""
    request = kind.client.Request("PUT", URL, content=_chunks(kind))
    flow = Flow(kind, make_auth(), request)
    sent = await flow.start()
    assert sent.content == b'{"a":1}'
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))
    assert await flow.send(kind.client.Response(200, request=sent)) is None


@pytest.mark.anyio
async def test_presign_mode_moves_everything_into_the_query(kind):
    """With presign=True the flow sends no Authorization header and a presigned URL."""
    request = kind.client.Request("GET", URL + "?q=1")
    sent = await first_request(kind, make_auth(presign=True, expires=60), request)
    assert "Authorization" not in sent.headers
    assert "X-Amz-Security-Token" not in sent.headers
    params = dict(sent.url.params.multi_items())
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Security-Token"] == TOKEN
    assert params["q"] == "1"


@pytest.mark.anyio
async def test_resigning_replaces_stale_signing_headers(kind):
    """A request signed twice (a retry) carries one fresh set of signing headers, not two."""
    auth = make_auth()
    request = kind.client.Request("GET", URL)
    await first_request(kind, auth, request)
    await first_request(kind, auth, request)
    assert len(request.headers.get_list("Authorization")) == 1
    assert len(request.headers.get_list("X-Amz-Date")) == 1


@pytest.mark.anyio
async def test_same_origin_redirect_refused_is_resigned_for_its_new_url(kind):
    """After a same-origin redirect answered 403, the flow yields the hop again, signed."""
    package = kind.client
    flow = Flow(kind, make_auth(), package.Request("GET", URL))
    sent = await flow.start()
    hop = package.Request("GET", URL + "/moved", headers=sent.headers)
    redirect = package.Response(302, headers={"Location": URL + "/moved"}, request=sent)
    retry = await flow.send(package.Response(403, request=hop, history=[redirect]))
    assert retry is hop
    assert retry.headers["Authorization"].endswith("Signature=" + botocore_signature(retry))


@pytest.mark.anyio
async def test_cross_origin_redirect_refused_is_not_resigned(kind):
    """A 403 from another origin after a redirect is returned as is, never signed for."""
    package = kind.client
    flow = Flow(kind, make_auth(), package.Request("GET", URL))
    sent = await flow.start()
    hop = package.Request("GET", "https://elsewhere.example.com/x")
    redirect = package.Response(302, headers={"Location": str(hop.url)}, request=sent)
    assert await flow.send(package.Response(403, request=hop, history=[redirect])) is None
    assert "Authorization" not in hop.headers


@pytest.mark.parametrize("expires", [0, 604801, -5, 1.5, True])
def test_expires_out_of_range_fails_at_construction(expires):
    """An expiry outside 1..604800 seconds is refused before any request is made."""
    with pytest.raises(InvalidConfigError, match="expires"):
        ApiGwIamAuth(region="us-east-1", presign=True, expires=expires)


def test_repr_shows_settings_not_secrets():
    """repr of the auth object names the key id but never the secret or token."""
    text = repr(make_auth())
    assert SECRET not in text
    assert TOKEN not in text


def test_signing_again_later_changes_only_date_and_signature():
    """A cached signing plan is reused across time: only X-Amz-Date and the signature move."""
    signer = make_auth().signer
    url = URL + "?b=2&a=1"
    first = signer.sign(
        "POST", url, headers={"Content-Type": "text/plain"}, body=b"x", timestamp=NOW
    )
    later = signer.sign(
        "POST",
        url,
        headers={"Content-Type": "text/plain"},
        body=b"x",
        timestamp=NOW.replace(second=7),
    )
    assert first.url == later.url
    assert first.headers["X-Amz-Date"] == "20261125T120000Z"
    assert later.headers["X-Amz-Date"] == "20261125T120007Z"
    assert first.signing.canonical_request.replace("120000Z", "120007Z") == (
        later.signing.canonical_request
    )
    assert first.signing.signature != later.signing.signature


@pytest.mark.anyio
async def test_large_body_is_signed_correctly(kind):
    """A body over 1 MiB (hashed in a worker thread by async flows) is signed as botocore would."""
    body = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    request = kind.client.Request("PUT", URL, content=body)
    sent = await first_request(kind, make_auth(), request)
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))


@pytest.mark.anyio
async def test_stale_signing_headers_are_dropped_however_spelled_and_repeated(kind):
    """Signing headers already on a request (any case, repeated) give way to one fresh set.

    With long-term credentials a leftover session token must not be sent at all.
    """
    stale = [
        ("authorization", "old"),
        ("AUTHORIZATION", "older"),
        ("X-Amz-Security-Token", "old-token"),
        ("x-amz-date", "19990101T000000Z"),
    ]
    request = kind.client.Request("GET", URL, headers=stale)
    sent = await first_request(kind, ApiGwIamAuth(credentials=(KEY, SECRET)), request)
    assert len(sent.headers.get_list("Authorization")) == 1
    assert len(sent.headers.get_list("X-Amz-Date")) == 1
    assert "X-Amz-Security-Token" not in sent.headers
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))


@pytest.mark.parametrize("presign", [False, True])
def test_requests_hook_drops_stale_signing_headers_and_signs_bytes_values(presign):
    """requests keeps bytes header values as given: they are signed as the bytes sent."""
    prepared = requests.Request(
        "GET",
        URL,
        headers={"X-Amz-Security-Token": "old", "Authorization": "Basic eDp5", "X-Trace": b"t-1"},
    ).prepare()
    ApiGwIamAuth(credentials=(KEY, SECRET), presign=presign)(prepared)
    assert "X-Amz-Security-Token" not in prepared.headers
    assert prepared.headers["X-Trace"] == b"t-1"
    if presign:
        assert "Authorization" not in prepared.headers
        assert "x-amz-signature=" in (prepared.url or "").lower()
        return
    wire = httpx.Request(
        "GET",
        prepared.url or "",
        headers=[
            (k, v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()
        ],
    )
    assert "x-trace" in wire.headers["Authorization"]
    assert wire.headers["Authorization"].endswith("Signature=" + botocore_signature(wire))


def test_requests_hook_drops_a_stale_signing_header_set_under_a_bytes_name():
    """A signing header put on the prepared request under a bytes name is replaced too."""
    prepared = requests.Request("GET", URL).prepare()
    prepared.headers[b"X-Amz-Security-Token"] = b"old-token"
    ApiGwIamAuth(credentials=(KEY, SECRET))(prepared)
    assert "X-Amz-Security-Token" not in prepared.headers
    assert b"X-Amz-Security-Token" not in prepared.headers
    assert "Authorization" in prepared.headers


def _hop(kind: Kind, request: Any) -> Any:
    """The httpcore request a client of ``kind`` makes of ``request`` (as HTTPTransport does)."""
    core = importlib.import_module(CORE[kind.package])
    url = request.url
    return core.Request(
        method=request.method,
        url=core.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
        headers=request.headers.raw,
        extensions=request.extensions,
    )


async def _trace(kind: Kind, request: Any, event: str, info: dict[str, Any]) -> None:
    """Call the ``trace`` extension of ``request`` as httpcore (sync or async) does."""
    result = request.extensions["trace"](event, info)
    if kind.is_async:
        await result


@pytest.mark.anyio
async def test_guard_keeps_our_headers_on_our_own_hop_whatever_the_url_spelling(kind):
    """Guards shared per origin must match each request's own origin, spelled any way.

    httpx keeps an explicit default port after an uppercase scheme (``HTTPS://h:443``) but
    drops it once the URL is rewritten: both requests must still go out signed.
    """
    auth = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))
    for url in (
        "HTTPS://h.example:443/p?b=2&a=1",
        "HTTPS://h.example:443/p",
        "https://h.example/p",
    ):
        sent = await first_request(kind, auth, kind.client.Request("GET", url))
        hop = _hop(kind, sent)
        await _trace(kind, sent, "http11.send_request_headers.started", {"request": hop})
        assert any(name.lower() == b"authorization" for name, _ in hop.headers), url


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scheme", "credentials", "options", "hooked"),
    [
        ("https", (KEY, SECRET, TOKEN), {}, True),
        ("https", (KEY, SECRET), {}, False),
        ("http", (KEY, SECRET), {}, True),
        ("https", (KEY, SECRET), {"add_content_sha256_header": True}, True),
        ("https", (KEY, SECRET), {"region_set": ["us-east-1", "eu-west-1"]}, True),
        ("https", (KEY, SECRET, TOKEN), {"presign": True}, False),
        ("http", (KEY, SECRET, TOKEN), {"presign": True}, False),
    ],
    ids=[
        "token",
        "no-token",
        "no-token-http",
        "body-hash",
        "region-set",
        "token-in-query",
        "token-in-query-http",
    ],
)
async def test_the_guard_is_hooked_only_where_httpx_could_leave_something_of_ours(
    kind, scheme, credentials, options, hooked
):
    """Every signed request names its origin. Only one signed in its headers that sends more
    of ours than X-Amz-Date and Authorization (which httpx drops on a hop to another origin:
    proven once), or goes over plain http (whose Authorization httpx lets follow an upgrade to
    https), pays for a hook on httpcore's trace, which carries the origin too. The caller's own
    trace hook stays, chained behind the guard or in its place."""

    def mine(event: str, info: dict[str, Any]) -> None:
        """The caller's trace hook."""

    auth = ApiGwIamAuth(region="us-east-1", credentials=credentials, **options)
    for extensions, untraced in (({}, None), ({"trace": mine}, mine)):
        url = f"{scheme.upper()}://H.example/p"
        sent = await first_request(
            kind, auth, kind.client.Request("GET", url, extensions=extensions)
        )
        assert sent.extensions[SIGNED_FOR] == (scheme, "h.example")
        trace = sent.extensions.get("trace")
        if hooked:
            assert trace not in (None, mine)
            chain, inner = trace.args
            assert (chain.origin, inner) == (
                (scheme, "h.example"),
                untraced,
            )  # the caller's, chained
        else:
            assert trace is untraced


@pytest.mark.anyio
async def test_a_request_signed_again_without_a_token_drops_the_guard(kind):
    """Signed with a token, then (credentials rotated to long-term keys) signed again: the
    guard is unhooked, not stacked, and the origin is named once."""
    request = kind.client.Request("GET", "https://h.example/p")
    with_token = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))
    assert "trace" in (await first_request(kind, with_token, request)).extensions
    without = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET))
    sent = await first_request(kind, without, request)
    assert "trace" not in sent.extensions
    assert sent.extensions[SIGNED_FOR] == ("https", "h.example")


@pytest.mark.anyio
async def test_the_guard_knows_its_origin_where_a_request_hook_rebuilt_the_extensions(kind):
    """A request event hook that rebuilds the extensions around the trace alone (dropping the
    origin named beside it): the guard carries its origin, so our own hop keeps its headers."""
    auth = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))
    sent = await first_request(kind, auth, kind.client.Request("GET", "https://h.example/p"))
    sent.extensions = {"trace": sent.extensions["trace"]}
    hop = _hop(kind, sent)
    await _trace(kind, sent, "http11.send_request_headers.started", {"request": hop})
    assert any(name.lower() == b"authorization" for name, _ in hop.headers)


@pytest.mark.anyio
async def test_guard_strips_our_headers_from_a_hop_to_another_origin(kind):
    """The same shared guard on a redirect hop to another host removes every signing header."""
    auth = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))
    sent = await first_request(kind, auth, kind.client.Request("GET", "https://h.example/p"))
    elsewhere = kind.client.Request(
        "GET", "https://other.example/p", headers=sent.headers, extensions=sent.extensions
    )
    hop = _hop(kind, elsewhere)
    await _trace(kind, sent, "http11.send_request_headers.started", {"request": hop})
    assert not [name for name, _ in hop.headers if name.lower().startswith((b"x-amz", b"auth"))]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scheme", "port", "target"),
    [
        (b"https", 8443, b"/p"),  # our host, another port
        (b"http", None, b"/p"),  # our host, another scheme
        (b"https", None, b"http://other.example/p"),  # our address, a forwarded target elsewhere
    ],
    ids=["port", "scheme", "forwarded-target"],
)
async def test_guard_strips_a_hop_that_is_ours_but_for_its_port_scheme_or_target(
    kind, scheme, port, target
):
    """The guard's quick match of our own hop (host bytes, default port) lets no other through."""
    auth = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))
    sent = await first_request(kind, auth, kind.client.Request("GET", "https://h.example/p"))
    core = importlib.import_module(CORE[kind.package])
    hop = core.Request(
        method="GET",
        url=core.URL(scheme=scheme, host=b"h.example", port=port, target=target),
        headers=sent.headers.raw,
        extensions=sent.extensions,
    )
    await _trace(kind, sent, "http11.send_request_headers.started", {"request": hop})
    assert not [name for name, _ in hop.headers if name.lower().startswith((b"x-amz", b"auth"))]
