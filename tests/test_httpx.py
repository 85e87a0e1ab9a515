"""ApiGwIamAuth with httpx and httpx2, sync and async clients, judged by the verifying server.

Every test runs once with each client (the ``kind`` fixture): ``httpx.Client``,
``httpx.AsyncClient``, ``httpx2.Client`` and ``httpx2.AsyncClient``, from the same test code.
Tests are coroutines on anyio's asyncio loop; a sync client runs on a worker thread beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import socket
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import pytest
import requests
from aws_server import CLIENT_TLS, INVALID_SIGNATURE, SESSION_ACCESS_KEY, running_server
from integration_cases import (
    BLOB,
    FOREIGN_LINK,
    LONG_TERM,
    METHODS,
    MODES,
    NEEDS_HTTPX2,
    PARAMS,
    PARAMS_WIRE,
    PATHS,
    QUERIES,
    REDIRECT_STATUSES,
    REGION,
    SESSION,
    TEXT,
    async_views_of_one_buffer,
    leaked,
    make_auth,
    redirect_url,
    sha256,
    user_query,
    views_of_one_buffer,
)

from apigw_iam_auth import (
    ApiGwIamAuth,
    InvalidConfigError,
    UnsignableRequestError,
    _httpx_redirects,
    presign_url,
)

if TYPE_CHECKING:
    from types import ModuleType

    import httpx

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Kind:
    """One client: its package (``httpx`` or ``httpx2``, the same API) and sync or async."""

    package: str
    is_async: bool

    @property
    def client(self) -> ModuleType:
        """The package itself, imported when a test asks for it (httpx2 may be absent)."""
        return importlib.import_module(self.package)

    def __str__(self) -> str:
        return f"{self.package}-{'async' if self.is_async else 'sync'}"


# httpx2 is a test dependency: only where CI leaves it out (see NEEDS_HTTPX2) do its cases skip;
# anywhere else a missing httpx2 fails them.
PACKAGES = (
    pytest.param("httpx", id="httpx"),
    pytest.param("httpx2", id="httpx2", marks=NEEDS_HTTPX2),
)
KIND_VALUES = tuple(
    Kind(package, is_async) for package in ("httpx", "httpx2") for is_async in (False, True)
)


def kind_param(kind: Kind, *values: object) -> Any:
    """A pytest param of ``kind`` (and more values), skipped where its package cannot run."""
    marks = [NEEDS_HTTPX2] if kind.package == "httpx2" else []
    return pytest.param(kind, *values, id="-".join(map(str, (kind, *values))), marks=marks)


KINDS = tuple(kind_param(kind) for kind in KIND_VALUES)
# Trusts the test CA of the https servers; one context, as each client would otherwise load the
# CA bundle anew (~30 ms).
TLS = CLIENT_TLS


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on asyncio."""
    return "asyncio"


@pytest.fixture(scope="module")
def server():
    """One verifying server for the tests that do not read its request log."""
    with running_server() as srv:
        yield srv


@pytest.fixture(params=KINDS)
def kind(request):
    """Which client sends: httpx or httpx2, ``Client`` or ``AsyncClient``."""
    return request.param


async def send(
    kind: Kind,
    method: str,
    url: str,
    *,
    auth: object,
    follow_redirects: bool = False,
    proxy: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request through a fresh client of ``kind`` that ignores proxy settings.

    A sync client runs on a worker thread, so it never blocks the test's event loop.
    """
    settings = {
        "auth": auth,
        "trust_env": False,
        "follow_redirects": follow_redirects,
        "verify": TLS,
        "proxy": proxy,
    }
    package = kind.client
    if not kind.is_async:

        def call() -> httpx.Response:
            with package.Client(**settings) as client:
                return client.request(method, url, **kwargs)

        return await anyio.to_thread.run_sync(call)
    async with package.AsyncClient(**settings) as client:
        return await client.request(method, url, **kwargs)


def echo(response: httpx.Response) -> dict:
    """The server's JSON echo of a request it verified (fails with its 403 message if not)."""
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("method", METHODS)
async def test_every_method_verifies(server, kind, method, presign):
    """Every HTTP method is signed as sent, by header or presigned URL."""
    response = await send(kind, method, server.url("/prod/pets"), auth=make_auth(presign=presign))
    assert response.status_code == 200, response.text
    if method != "HEAD":
        assert echo(response)["method"] == method
        assert echo(response)["auth_mode"] == ("query" if presign else "header")


# httpx removes dot segments its own way (a final "/." leaves no trailing slash, unlike requests).
@pytest.mark.parametrize(
    ("path", "wire"), [*PATHS, pytest.param("//a/b/..//c/.", "//a//c", id="dots")]
)
async def test_paths_arrive_as_signed(server, kind, path, wire):
    """Unicode, reserved, pre-encoded and dot-segment paths verify; the wire path is as expected."""
    response = await send(kind, "GET", server.url(path), auth=make_auth())
    assert echo(response)["path"] == wire


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize(("path_and_query", "wire"), QUERIES)
async def test_query_goes_out_in_the_form_signed(server, kind, path_and_query, wire, presign):
    """Repeated, empty, unsorted, '+' and escaped query keys reach the server as signed."""
    response = await send(kind, "GET", server.url(path_and_query), auth=make_auth(presign=presign))
    assert user_query(echo(response)["query"]) == wire


@pytest.mark.parametrize("presign", MODES)
async def test_params_with_spaces_and_plus_verify(server, kind, presign):
    """params= spaces, literal '+' and '%2B' keep their meaning through signing."""
    response = await send(
        kind, "GET", server.url("/prod/search"), params=PARAMS, auth=make_auth(presign=presign)
    )
    assert user_query(echo(response)["query"]) == _params_wire(kind)


def _params_wire(kind) -> str:
    """httpx < 0.28 sends the value '%2B' as it is (a plus sign), later clients as '%252B'."""
    if tuple(int(part) for part in kind.client.__version__.split(".")[:2]) < (0, 28):
        return PARAMS_WIRE.replace("%252B", "%2B")
    return PARAMS_WIRE


async def test_non_default_port_is_signed_in_host(server, kind):
    """The Host signed is the one sent: loopback address with the server's port."""
    body = echo(await send(kind, "GET", server.url("/prod/pets"), auth=make_auth()))
    assert body["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert f"\nhost:127.0.0.1:{server.port}\n" in body["canonical_request"]


@pytest.mark.parametrize("presign", MODES)
async def test_ipv6_loopback_verifies(kind, presign):
    """A bracketed IPv6 host with a port is signed as the client sends it."""
    with running_server(host="::1") as srv:
        response = await send(
            kind, "GET", srv.url("/prod/pets?a=1"), auth=make_auth(presign=presign)
        )
        assert echo(response)["headers"]["host"] == f"[::1]:{srv.port}"


@pytest.mark.parametrize("presign", MODES)
async def test_an_ipv6_literal_with_a_zone_id_is_signed_for_its_own_origin(kind, presign):
    """A zone id written in the URL (``%25`` then the loopback interface's index) and decoded by
    the client is one origin: the request is signed, not taken for a hop elsewhere.
    """
    zone = next(index for index, name in socket.if_nameindex() if name.startswith("lo"))
    with running_server(host="::1") as srv:
        url = f"http://[::1%25{zone}]:{srv.port}/prod/pets"
        response = await send(kind, "GET", url, auth=make_auth(presign=presign))
        assert response.status_code == 200, response.text
        assert echo(response)["path"] == "/prod/pets"


@pytest.mark.parametrize(
    ("signed", "location"),
    [("::1", "0:0:0:0:0:0:0:1"), ("0:0:0:0:0:0:0:1", "::1")],
    ids=["compressed-to-expanded", "expanded-to-compressed"],
)
async def test_a_same_origin_hop_spelling_ipv6_otherwise_is_signed(kind, signed, location):
    """[::1] and [0:0:0:0:0:0:0:1] are one origin: a redirect between the two spellings is
    signed for its hop and verifies, and no warning of a proxy (there is none) is given."""
    with running_server(host="::1") as srv:
        start = redirect_url(srv, f"http://[{location}]:{srv.port}/prod/final", 307)
        start = start.replace("[::1]", f"[{signed}]", 1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            response = await send(
                kind, "POST", start, auth=make_auth(), follow_redirects=True, content=b"x"
            )
        assert echo(response)["path"] == "/prod/final"


@pytest.mark.parametrize("presign", MODES)
async def test_session_token_is_sent_and_verified(server, kind, presign):
    """Temporary credentials carry their token: in a header, or in the presigned query."""
    auth = make_auth(credentials=SESSION, presign=presign)
    body = echo(await send(kind, "GET", server.url("/prod/pets"), auth=auth))
    assert body["access_key"] == SESSION_ACCESS_KEY
    assert ("x-amz-security-token" in body["headers"]) is not presign
    assert ("X-Amz-Security-Token=" in body["query"]) is presign


async def test_wrong_secret_is_refused(server, kind):
    """The server really checks: a wrong secret gets API Gateway's signature-mismatch 403."""
    auth = ApiGwIamAuth(region=REGION, credentials=(LONG_TERM[0], "not-the-secret"))
    response = await send(kind, "GET", server.url("/prod/pets"), auth=auth)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == INVALID_SIGNATURE


async def test_a_refusal_read_to_be_explained_still_streams_to_the_caller(server, kind):
    """client.stream(): a 403 the auth read (to look for clock skew) still yields its body."""
    auth = ApiGwIamAuth(region=REGION, credentials=(LONG_TERM[0], "not-the-secret"))
    url = server.url("/prod/pets")
    package = kind.client
    if kind.is_async:
        async with (
            package.AsyncClient(auth=auth, trust_env=False) as client,
            client.stream("GET", url) as response,
        ):
            status, body = response.status_code, b"".join([c async for c in response.aiter_bytes()])
    else:

        def call() -> tuple[int, bytes]:
            with (
                package.Client(auth=auth, trust_env=False) as client,
                client.stream("GET", url) as response,
            ):
                return response.status_code, b"".join(response.iter_bytes(7))

        status, body = await anyio.to_thread.run_sync(call)
    assert status == 403
    assert b"signature we calculated does not match" in body


async def test_no_region_for_loopback_host_fails_before_sending(aws_server, kind):
    """region=None on a loopback URL raises InvalidConfigError naming the host; nothing is sent."""
    auth = ApiGwIamAuth(credentials=LONG_TERM)
    with pytest.raises(InvalidConfigError, match=r"127\.0\.0\.1.*region="):
        await send(kind, "GET", aws_server.url("/prod/pets"), auth=auth)
    assert aws_server.request_count == 0


def _file(tmp_path, stack):
    path = tmp_path / "body.bin"
    path.write_bytes(BLOB)
    return stack.enter_context(path.open("rb"))


def _chunks(kind):
    pieces = (b"ab", b"", b"cd", TEXT.encode())
    if not kind.is_async:
        return iter(pieces)

    async def stream():
        for piece in pieces:
            yield piece

    return stream()


# id -> (kwargs for client.request, made from kind=, tmp= a directory and stack= an ExitStack;
# the bytes that must arrive, or None when only httpx knows them, as with a multipart boundary).
BODIES = {
    "none": (lambda **_: {}, b""),
    "empty": (lambda **_: {"content": b""}, b""),
    "bytes": (lambda **_: {"content": b"\x00\xffbinary\r\n"}, b"\x00\xffbinary\r\n"),
    "str-non-ascii": (lambda **_: {"content": TEXT}, TEXT.encode()),
    "form": (lambda **_: {"data": {"a": "1 2", "b": "é"}}, b"a=1+2&b=%C3%A9"),
    # How json= is serialised is the client's (httpx < 0.28 adds spaces): what it sent must arrive.
    "json": (lambda **_: {"json": {"k": "é"}}, None),
    "multipart": (
        lambda **_: {"files": {"f": ("a.txt", b"content", "text/plain")}, "data": {"x": "1"}},
        None,
    ),
    "multipart-file": (lambda tmp, stack, **_: {"files": {"f": _file(tmp, stack)}}, None),
    "seekable-file": (lambda tmp, stack, **_: {"content": _file(tmp, stack)}, BLOB),
    "stream": (lambda kind, **_: {"content": _chunks(kind)}, b"abcd" + TEXT.encode()),
}
# An AsyncClient cannot send a sync file as content (an async file is an async stream).
SYNC_ONLY = frozenset({"seekable-file"})


@pytest.fixture
def body(request, kind, tmp_path):
    """(kwargs giving a request its body, the bytes that must arrive); files closed after."""
    make_kwargs, expected = BODIES[request.param]
    with contextlib.ExitStack() as stack:
        yield make_kwargs(kind=kind, tmp=tmp_path, stack=stack), expected


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize(
    ("kind", "body"),
    [
        kind_param(kind, name)
        for name in BODIES
        for kind in KIND_VALUES
        if not kind.is_async or name not in SYNC_ONLY
    ],
    indirect=["body"],
)
async def test_body_is_signed_and_sent_whole(server, kind, body, presign):
    """Each body kind arrives complete, and its hash is the one signed."""
    kwargs, expected = body
    auth = make_auth(presign=presign)
    response = await send(kind, "POST", server.url("/prod/upload"), auth=auth, **kwargs)
    received = echo(response)
    if expected is None:
        expected = response.request.content
    assert (received["body_length"], received["body_sha256"]) == (len(expected), sha256(expected))


# httpx 0.28 states a file's whole size as Content-Length even when it sends only the rest: the
# server then waits for bytes that never come. httpx2 states what it sends.
@pytest.mark.parametrize("kind", [kind_param(Kind("httpx2", is_async=False))])
async def test_file_body_past_its_start_is_signed_as_sent(server, kind, tmp_path):
    """A file read partly already is hashed and sent from where it stands, not from the start."""
    path = tmp_path / "body.bin"
    path.write_bytes(BLOB)
    with path.open("rb") as body:
        body.seek(1000)
        response = await send(
            kind, "POST", server.url("/prod/upload"), auth=make_auth(), content=body
        )
    assert echo(response)["body_sha256"] == sha256(BLOB[1000:])


@pytest.mark.parametrize("credentials", [LONG_TERM, SESSION], ids=["long-term", "session"])
async def test_presign_url_opens_with_httpx_without_auth(server, kind, credentials):
    """httpx and httpx2 open a presign_url link as is, with no auth: they do not re-encode it."""
    link = presign_url(server.url("/prod/café?x=%2B&y=1+2"), region=REGION, credentials=credentials)
    body = echo(await send(kind, "GET", link, auth=None))
    assert body["auth_mode"] == "query"
    assert user_query(body["query"]) == "x=%2B&y=1%202"


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("status", REDIRECT_STATUSES)
async def test_same_origin_redirect_arrives_signed(aws_server, kind, status, presign):
    """A redirect to another path of the same origin is re-signed for it and verifies."""
    start = redirect_url(aws_server, aws_server.url("/prod/moved?k=v w"), status)
    auth = make_auth(credentials=SESSION, presign=presign)
    body = echo(await send(kind, "GET", start, auth=auth, follow_redirects=True))
    assert (body["path"], user_query(body["query"])) == ("/prod/moved", "k=v%20w")
    first, last = aws_server.requests[0], aws_server.requests[-1]
    assert (first.status, first.verified) == (status, True)
    assert (last.target.partition("?")[0], last.status, last.verified) == ("/prod/moved", 200, True)


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("status", [302, 307])
async def test_each_hop_of_a_same_origin_redirect_chain_is_signed(
    aws_server, kind, status, presign
):
    """Two verified redirects on one origin: each refused hop is signed for its own URL.

    httpx follows redirects inside one send, so the flow signs the hop it was handed, and the
    next one, in turn (it once stopped after the first, and the call ended in a 403).
    """
    final = aws_server.url("/prod/final")
    middle = redirect_url(aws_server, final, status)
    start = redirect_url(aws_server, middle, status)
    auth = make_auth(credentials=SESSION, presign=presign)
    response = await send(kind, "GET", start, auth=auth, follow_redirects=True)
    assert echo(response)["path"] == "/prod/final"
    assert aws_server.requests[-1].verified


async def test_a_clock_skew_retry_that_is_redirected_is_signed_for_the_hop(aws_server, kind):
    """Refused for the clock, retried, redirected on the same origin: the hop verifies too."""

    def slow_clock():
        return datetime.now(timezone.utc) - timedelta(minutes=20)

    start = redirect_url(aws_server, aws_server.url("/prod/moved"), 302)
    auth = make_auth(credentials=SESSION, clock=slow_clock)
    response = await send(kind, "GET", start, auth=auth, follow_redirects=True)
    assert echo(response)["path"] == "/prod/moved"
    assert aws_server.requests[-1].verified


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("body", ["bytes", "stream"], indirect=True)
async def test_same_origin_redirect_resends_the_body_signed(server, kind, body, status):
    """A 307/308 keeps method and body: the body is sent again, whole, under a new signature."""
    kwargs, expected = body
    start = redirect_url(server, server.url("/prod/moved"), status)
    response = await send(kind, "POST", start, auth=make_auth(), follow_redirects=True, **kwargs)
    received = echo(response)
    assert (received["method"], received["path"]) == ("POST", "/prod/moved")
    assert received["body_sha256"] == sha256(expected)


@dataclass(frozen=True)
class Keys:
    """The credentials of a cross-origin test, and whether its servers speak https."""

    credentials: tuple[str, ...]
    tls: bool

    @property
    def guarded(self) -> bool:
        """Whether the redirect guard is hooked: a session token, or plain http."""
        return self.credentials is SESSION or not self.tls


# The redirect guard is hooked where httpx's own clean-up would leave a secret of ours on a hop
# elsewhere (a session token; a plain-http request's signature, which httpx lets follow an
# upgrade to https): both ways run.
@pytest.fixture(
    params=[
        Keys(SESSION, tls=False),
        Keys(SESSION, tls=True),
        Keys(LONG_TERM, tls=False),
        Keys(LONG_TERM, tls=True),
    ],
    ids=["session-http", "session-https", "long-term-http", "long-term-https"],
)
def keys(request):
    """Credentials, and the scheme of the servers."""
    return request.param


@pytest.fixture
def home(keys):
    """The verifying server the cross-origin tests start at, https where ``keys`` says."""
    with running_server(tls=keys.tls) as server:
        yield server


def ours_elsewhere(record: Any, keys: Keys) -> list[str]:
    """What of ours reached another origin (:func:`leaked`).

    Where no guard is hooked, httpx's own clean-up (which drops ``Authorization``) runs alone:
    ``X-Amz-Date``, no secret, goes on with the hop.
    """
    found = leaked(record)
    return found if keys.guarded else [name for name in found if name != "x-amz-date"]


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("status", [302, 303, 307, 308])
async def test_cross_origin_redirect_carries_no_credentials(home, kind, status, presign, keys):
    """A redirect to another origin reaches it with no signature, token or Authorization."""
    auth = make_auth(credentials=keys.credentials, presign=presign)
    with running_server(tls=keys.tls) as other:
        start = redirect_url(home, other.url("/prod/elsewhere?a=1"), status)
        response = await send(
            kind, "POST", start, auth=auth, follow_redirects=True, content=b"payload"
        )
        arrived = other.requests
    assert response.status_code == 403  # the other origin saw an unsigned request
    assert [record.target.partition("?")[0] for record in arrived] == ["/prod/elsewhere"]
    assert [ours_elsewhere(record, keys) for record in arrived] == [[]]
    assert home.requests[0].verified


@pytest.mark.parametrize("status", [302, 303, 307])
async def test_the_body_hash_never_follows_a_redirect_elsewhere(kind, status):
    """Sending X-Amz-Content-SHA256, an https request with long-term keys hooks the guard: the
    hash of a body (from which a short one can be guessed) reaches no other origin, not even
    on the GET of a 303, which leaves the body behind."""
    auth = make_auth(add_content_sha256_header=True)
    with running_server(tls=True) as home, running_server(tls=True) as other:
        start = redirect_url(home, other.url("/prod/elsewhere"), status)
        response = await send(
            kind, "POST", start, auth=auth, follow_redirects=True, content=b"pin=4711"
        )
        arrived = other.requests
    assert response.status_code == 403
    ours = [[n for n, _ in record.headers if n.lower().startswith("x-amz")] for record in arrived]
    assert ours == [[]]
    assert home.requests[0].verified


async def _follow_by_hand(kind: Kind, auth: object, url: str) -> httpx.Response:
    """GET ``url``, then ``client.send(response.next_request)`` until no redirect is left, as
    httpx's own documentation follows redirects with follow_redirects=False."""
    package = kind.client
    if kind.is_async:
        async with package.AsyncClient(auth=auth, trust_env=False, verify=TLS) as client:
            response = await client.get(url)
            while response.next_request is not None:
                response = await client.send(response.next_request)
            return response

    def call() -> httpx.Response:
        with package.Client(auth=auth, trust_env=False, verify=TLS) as client:
            response = client.get(url)
            while response.next_request is not None:
                response = client.send(response.next_request)
            return response

    return await anyio.to_thread.run_sync(call)


@pytest.mark.parametrize("presign", MODES)
async def test_a_redirect_followed_by_hand_carries_no_credentials_elsewhere(
    home, kind, presign, keys
):
    """client.send(response.next_request) runs the auth again: a hop to another origin goes
    unsigned (never signed for that host, never with our token), and so does a hop from there
    back to ours, whose URL the other origin chose."""
    auth = make_auth(credentials=keys.credentials, presign=presign)
    with running_server(tls=keys.tls) as other:
        away = await _follow_by_hand(
            kind, auth, redirect_url(home, other.url("/prod/elsewhere?a=1"), 302)
        )
        bounce = redirect_url(other, home.url("/prod/home"), 302, "redirect-unsigned")
        back = await _follow_by_hand(kind, auth, redirect_url(home, bounce, 302))
        arrived = other.requests
    assert away.status_code == 403  # the other origin saw an unsigned request
    assert [ours_elsewhere(record, keys) for record in arrived] == [[], []]
    assert back.status_code == 403
    home = [record for record in home.requests if record.target == "/prod/home"]
    assert [(record.status, record.verified) for record in home] == [(403, False)]


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirect_back_after_another_origin_is_not_signed(home, kind, status, keys):
    """Origin -> other origin -> origin: the foreign hop is clean, and the hop back, whose URL
    (and on a 307 whose method and body) the other origin chose, is neither signed nor re-sent
    signed when refused: its 403 comes back."""
    with running_server(tls=keys.tls) as other:
        bounce = redirect_url(other, home.url("/prod/home"), status, "redirect-unsigned")
        start = redirect_url(home, bounce, status)
        auth = make_auth(credentials=keys.credentials)
        response = await send(
            kind, "POST", start, auth=auth, follow_redirects=True, content=b"pay 100"
        )
        arrived = other.requests
    assert response.status_code == 403
    assert [ours_elsewhere(record, keys) for record in arrived] == [[]]
    home = [record for record in home.requests if record.target == "/prod/home"]
    # Nor does it carry our token or date, which httpx copies onto every hop it builds.
    assert [(r.status, r.verified, ours_elsewhere(r, keys)) for r in home] == [(403, False, [])]


async def test_the_hop_back_sent_again_is_not_signed_either(home, kind, keys):
    """After httpx followed origin -> other origin -> origin, sending the last request again (a
    generic retry) does not sign the URL the other origin chose, nor its 307's body."""
    auth = make_auth(credentials=keys.credentials)
    package = kind.client
    with running_server(tls=keys.tls) as other:
        bounce = redirect_url(other, home.url("/prod/home"), 307, "redirect-unsigned")
        start = redirect_url(home, bounce, 307)
        if kind.is_async:
            async with package.AsyncClient(
                auth=auth, trust_env=False, verify=TLS, follow_redirects=True
            ) as client:
                first = await client.post(start, content=b"pay 100")
                again = await client.send(first.request)
        else:

            def call() -> tuple[httpx.Response, httpx.Response]:
                with package.Client(
                    auth=auth, trust_env=False, verify=TLS, follow_redirects=True
                ) as client:
                    first = client.post(start, content=b"pay 100")
                    return first, client.send(first.request)

            first, again = await anyio.to_thread.run_sync(call)
    assert (first.status_code, again.status_code) == (403, 403)
    home = [(r.status, r.verified) for r in home.requests if r.target == "/prod/home"]
    assert home == [(403, False), (403, False)]


async def test_the_guard_steps_out_once_the_headers_are_settled(server, kind, monkeypatch):
    """After a hop's headers are written, its other events pass the guard by.

    Each event through httpcore's trace machinery costs about 0.6 µs, eight per request. The
    caller's own trace hook, chained behind the guard, still sees every event.
    """
    ours: list[str] = []
    theirs: list[str] = []
    for name in ("_on_event", "_on_event_async"):
        step = getattr(_httpx_redirects, name)
        if kind.is_async:

            async def counted(origin, inner, event, info, step=step):
                ours.append(event)
                await step(origin, inner, event, info)

        else:

            def counted(origin, inner, event, info, step=step):
                ours.append(event)
                step(origin, inner, event, info)

        monkeypatch.setattr(_httpx_redirects, name, counted)
        monkeypatch.setitem(_httpx_redirects._GUARD_EVENTS, name.endswith("async"), counted)

    def record(event: str, _info: dict[str, Any]) -> None:
        theirs.append(event)

    async def record_async(event: str, _info: dict[str, Any]) -> None:
        theirs.append(event)

    auth = make_auth(credentials=SESSION)  # the guard is hooked where a token is sent
    for traced in (False, True):
        extensions = {"trace": record_async if kind.is_async else record} if traced else {}
        response = await send(
            kind, "GET", server.url("/prod/pets"), auth=auth, extensions=extensions
        )
        assert response.status_code == 200, response.text
    after_headers = [event for event in ours if ".send_request_headers." not in event]
    assert all(event.startswith("connection.") for event in after_headers), after_headers
    # Both requests (and the guard's self-check, when this test is the package's first).
    assert ours.count("http11.send_request_headers.complete") >= 2
    assert theirs[-1] == "http11.response_closed.complete"
    assert "http11.receive_response_headers.started" in theirs


async def test_one_auth_serves_requests_and_httpx(server, kind):
    """The same auth object signs for requests and for httpx, and both verify."""
    auth = make_auth(credentials=SESSION)
    with requests.Session() as session:
        session.trust_env = False
        assert echo(session.get(server.url("/prod/r"), auth=auth))["path"] == "/prod/r"
    assert echo(await send(kind, "GET", server.url("/prod/h"), auth=auth))["path"] == "/prod/h"


@pytest.mark.parametrize("package", PACKAGES)
async def test_one_async_client_shared_by_fifty_tasks(aws_server, package):
    """50 asyncio tasks share one AsyncClient and auth: every request verifies as its own."""
    auth = make_auth(credentials=SESSION)
    client_package = importlib.import_module(package)
    # The stand-in server's listen backlog is small: cap connections so none is refused.
    few_connections = client_package.Limits(max_connections=4)

    async def call(client: httpx.AsyncClient, n: int) -> tuple[str, bytes, httpx.Response]:
        path, payload = f"/prod/t{n}", f"task {n} {TEXT}".encode()
        return path, payload, await client.post(aws_server.url(path), content=payload)

    async with client_package.AsyncClient(
        auth=auth, trust_env=False, limits=few_connections
    ) as client:
        outcomes = await asyncio.gather(*(call(client, n) for n in range(50)))
    for path, payload, response in outcomes:
        assert (echo(response)["path"], echo(response)["body_sha256"]) == (path, sha256(payload))
    assert aws_server.request_count == 50
    assert all(record.verified for record in aws_server.requests)


@pytest.mark.parametrize("presign", MODES)
async def test_redirect_to_a_foreign_presigned_link_keeps_its_query(aws_server, kind, presign):
    """A Location holding someone else's presigned URL (an S3 link) is followed as written."""
    auth = make_auth(credentials=SESSION, presign=presign)
    with running_server() as other:
        start = redirect_url(aws_server, other.url(FOREIGN_LINK), 302)
        await send(kind, "GET", start, auth=auth, follow_redirects=True)
        arrived = other.requests
    assert [record.target for record in arrived] == [FOREIGN_LINK]


async def _async_pieces():
    yield b"async "
    yield b"pieces"


# What each client cannot send, as content=: a sync Client an async iterator, an AsyncClient a
# sync iterator or file (httpx takes a bytearray as an iterator, too).
MISMATCHED_BODIES = {
    False: {"async-iterator": (_async_pieces, "an async iterator")},
    True: {
        "sync-iterator": (lambda: iter([b"sync ", b"pieces"]), "a sync iterator"),
        "bytearray": (lambda: bytearray(b"mutable"), "a sync iterator"),
        "binary-file": (lambda: io.BytesIO(b"in a file"), "a sync iterator or file"),
        "text-file": (lambda: io.StringIO("in a file"), "a sync iterator or file"),
    },
}


@pytest.mark.parametrize(
    ("kind", "body"),
    [kind_param(kind, body) for kind in KIND_VALUES for body in MISMATCHED_BODIES[kind.is_async]],
)
async def test_a_body_the_client_cannot_send_is_refused_saying_which_goes_where(server, kind, body):
    """Our error says which body goes with which client, not a bare AssertionError of httpx."""
    make_body, named = MISMATCHED_BODIES[kind.is_async][body]
    with pytest.raises(UnsignableRequestError, match=f"this body is {named}"):
        await send(kind, "POST", server.url("/prod/x"), auth=make_auth(), content=make_body())


async def _text_pieces():
    yield "text "
    yield "pieces"


def _sync_text_pieces():
    yield "text "
    yield "pieces"


async def test_a_stream_of_text_chunks_is_refused_saying_what_to_pass(server, kind):
    """A stream yielding str (httpx sends bytes only) fails with our error, before sending."""
    pieces = _text_pieces if kind.is_async else _sync_text_pieces
    with pytest.raises(UnsignableRequestError, match=r"a chunk of type str.*pass bytes"):
        await send(kind, "POST", server.url("/prod/x"), auth=make_auth(), content=pieces())


async def test_a_same_origin_chain_longer_than_httpx_default_is_signed_to_its_end(aws_server, kind):
    """Each refused same-origin hop is signed again for as long as the client follows them
    (max_redirects=40 here): httpx's own limit ends a chain, not one of ours.
    """
    url = aws_server.url("/prod/end")
    for _ in range(22):  # each /redirect answers only a request whose signature verifies
        url = redirect_url(aws_server, url, 302)
    settings = {"auth": make_auth(), "trust_env": False, "follow_redirects": True}
    package = kind.client
    if kind.is_async:
        async with package.AsyncClient(max_redirects=40, **settings) as client:
            response = await client.get(url)
    else:

        def call() -> Any:
            with package.Client(max_redirects=40, **settings) as client:
                return client.get(url)

        response = await anyio.to_thread.run_sync(call)
    assert response.status_code == 200, response.text
    assert echo(response)["path"] == "/prod/end"


async def test_a_stream_reusing_one_buffer_is_sent_as_it_yielded(server, kind):
    """Each chunk is copied when it is drawn to be hashed: views of a refilled buffer keep
    their bytes, as httpx sends them without the auth.
    """
    data = b"AAAABBBBCC"
    chunks = (async_views_of_one_buffer if kind.is_async else views_of_one_buffer)(data)
    response = await send(kind, "POST", server.url("/prod/x"), auth=make_auth(), content=chunks)
    received = echo(response)
    assert (received["body_length"], received["body_sha256"]) == (len(data), sha256(data))
