"""Every private coupling of the httpx and requests adapters: proven to hold, then taken away.

For each private attribute or undocumented behaviour of httpx/httpx2 and httpcore/httpcore2
that ``apigw_iam_auth._httpx`` relies on, one test proves it still holds (and fails the day it
goes away), and one removes it with ``monkeypatch`` and proves the fallback: a
``RuntimeWarning`` that says what is lost, and no credential on a redirect to another origin
(real loopback servers, a 307 from the verifying server to a second one). The same for the one
coupling of ``apigw_iam_auth._requests`` (the dict behind requests' header mapping), where only
speed depends on it.
"""

from __future__ import annotations

import copy
import importlib
import io
import logging
import threading
import warnings
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import requests
from aws_server import running_server
from forking import HANG_GUARD, HELD, NEEDS_FORK, in_a_forked_child
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from integration_cases import BLOB, SESSION, leaked, make_auth, redirect_url, sha256
from test_httpx import KINDS, PACKAGES, send

from apigw_iam_auth import ApiGwIamAuth, InvalidConfigError, _httpx, _httpx_redirects, _requests
from apigw_iam_auth.server import IamAuthServer, KnownKey

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_server import AwsServer
    from test_httpx import Kind

pytestmark = pytest.mark.anyio

# The httpcore each client package sends with.
CORE = {"httpx": "httpcore", "httpx2": "httpcore2"}
NO_GUARD = "cross-origin redirect protection is unavailable"
SIGNING_NAMES = {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}


@pytest.fixture
def anyio_backend():
    """Run the coroutine tests on asyncio."""
    return "asyncio"


@pytest.fixture(params=KINDS)
def kind(request):
    """Which client sends: httpx or httpx2, ``Client`` or ``AsyncClient``."""
    return request.param


@pytest.fixture(autouse=True)
def fresh_checks(monkeypatch):
    """Each test proves the couplings anew; the process's own results come back after it."""
    monkeypatch.setattr(_httpx, "_GUARD_PROVEN", {})
    monkeypatch.setattr(_httpx, "_AUTHORIZATION_DROPPED", {})
    monkeypatch.setattr(_httpx, "_FILES_REACHABLE", {})
    monkeypatch.setattr(_httpx, "_HEADERS_LISTED", {})
    monkeypatch.setattr(_httpx, "_URL_PARSED", {})
    monkeypatch.setattr(_httpx_redirects, "_PROXY_WARNED", set())
    monkeypatch.setattr(_requests, "_STORE_PROVEN", {})


def _module(name: str) -> Any:
    return importlib.import_module(name)


# --- request.stream._stream: the file behind content= ----------------------------------------


@pytest.mark.parametrize("package", PACKAGES)
def test_file_body_is_reached_in_place(package):
    """The client keeps a file given as content= at request.stream._stream: it is hashed there."""
    body = io.BytesIO(b"file body")
    request = _module(package).Request("PUT", "http://a.invalid/", content=body)
    assert _httpx._body_source(request) is body
    assert {type(request): True} == _httpx._FILES_REACHABLE


def _rename_stream_attribute(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make the client's IteratorByteStream keep its source under another name."""
    stream_type = _module(f"{package}._content").IteratorByteStream
    original_init = stream_type.__init__

    def init(self: Any, stream: Any) -> None:
        original_init(self, stream)
        self._source = self.__dict__.pop("_stream")

    def iterate(self: Any) -> Any:
        if hasattr(self._source, "read"):
            while chunk := self._source.read(65536):
                yield chunk
        else:
            yield from self._source

    monkeypatch.setattr(stream_type, "__init__", init)
    monkeypatch.setattr(stream_type, "__iter__", iterate)


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.values[0].is_async])
async def test_file_body_without_the_private_attribute_is_buffered_loudly(
    aws_server, monkeypatch, tmp_path, kind
):
    """Without stream._stream a file body is buffered, with a warning; a 307 leaks nothing."""
    _rename_stream_attribute(monkeypatch, kind.package)
    path = tmp_path / "body.bin"
    path.write_bytes(BLOB)
    auth = make_auth(credentials=SESSION)
    with path.open("rb") as body, pytest.warns(RuntimeWarning, match=r"_stream.*into memory"):
        direct = await send(kind, "POST", aws_server.url("/prod/upload"), auth=auth, content=body)
    with running_server() as other, path.open("rb") as body:  # warned once: not again
        start = redirect_url(aws_server, other.url("/prod/elsewhere"), 307)
        redirected = await send(kind, "POST", start, auth=auth, follow_redirects=True, content=body)
        arrived = other.requests
    assert direct.status_code == 200, direct.text
    assert direct.json()["body_sha256"] == sha256(BLOB)
    assert redirected.status_code == 403
    assert [(leaked(record), record.body_sha256) for record in arrived] == [([], sha256(BLOB))]


# --- Headers._list: the signing headers appended in one step ---------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_signing_headers_are_appended_to_the_header_list(aws_server, kind):
    """The client keeps header triples in Headers._list: ours go there, and read back whole.

    Signed twice (a clock-skew retry re-signs the same request): the stale copies go first,
    so each signing header is sent exactly once, as headers[name] = value would leave it.
    """
    auth = make_auth(credentials=SESSION)
    client = _module(kind.package)
    request = client.Request("GET", aws_server.url("/prod/pets"), headers={"Accept": "*/*"})
    for _ in range(2):
        flow = auth.sync_auth_flow(request)
        next(flow)
        flow.close()
    assert {client.Request: True} == _httpx._HEADERS_LISTED
    names = [name.lower() for name, _ in request.headers.multi_items()]
    assert sorted(names) == sorted(
        {"accept", "host", "x-amz-date", "x-amz-security-token", "authorization"}
    )
    assert request.headers["X-Amz-Security-Token"] == SESSION[2]
    response = await send(kind, "GET", aws_server.url("/prod/pets"), auth=auth)
    assert response.status_code == 200, response.text


class _OtherHeaders(dict):  # a Headers that keeps its items elsewhere: no _list
    """Stands in for a client release whose Headers no longer have ``_list``."""


@pytest.mark.parametrize("kind", KINDS)
async def test_headers_without_the_list_are_set_one_by_one(aws_server, monkeypatch, kind):
    """Where the check fails (no _list), headers are set through the public API, still signed."""
    assert _httpx._check_header_list(SimpleNamespace(Headers=_OtherHeaders)) is False
    monkeypatch.setattr(_httpx, "_check_header_list", lambda _client: False)
    auth = make_auth(credentials=SESSION)
    response = await send(kind, "GET", aws_server.url("/prod/pets?b=2&a=1"), auth=auth)
    assert response.status_code == 200, response.text
    assert response.request.headers.get_list("x-amz-date") == [
        response.request.headers["x-amz-date"]
    ]
    assert {_module(kind.package).Request: False} == _httpx._HEADERS_LISTED


# --- requests: CaseInsensitiveDict._store, read and written directly ------------------------


def test_requests_headers_are_kept_in_the_store(aws_server):
    """requests keeps (name, value) by lowercase name in _store: ours go there and read back.

    Signed twice (as a retry re-signs): the stale copies go first, so each signing header is
    sent once, spelled as headers[name] = value spells it, and the server verifies the request.
    """
    auth = make_auth(credentials=SESSION)
    with requests.Session() as session:
        session.trust_env = False
        prepared = session.prepare_request(
            requests.Request("GET", aws_server.url("/prod/pets"), headers={"X-Custom": "1"})
        )
        auth(auth(prepared))
        assert {requests.structures.CaseInsensitiveDict: True} == _requests._STORE_PROVEN
        names = [name for name, _ in prepared.headers.items()]
        assert sorted(name for name in names if name.lower() in SIGNING_NAMES) == [
            "Authorization",
            "X-Amz-Date",
            "X-Amz-Security-Token",
        ]
        assert prepared.headers["x-amz-security-token"] == SESSION[2]
        response = session.send(prepared)
    assert response.status_code == 200, response.text


class _LoggingHeaders(requests.structures.CaseInsensitiveDict):
    """A subclass that does more when a header is set: never written behind its back."""


def test_requests_headers_without_the_store_go_through_the_public_api(aws_server, monkeypatch):
    """Where the check fails (no _store, or not requests' own type), the public API is used."""
    assert _requests._check_store(dict) is False
    assert _requests._check_store(_LoggingHeaders) is False
    monkeypatch.setattr(_requests, "_check_store", lambda _type: False)
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(
            aws_server.url("/prod/pets?b=2&a=1"), auth=make_auth(credentials=SESSION)
        )
    assert response.status_code == 200, response.text
    assert response.request.headers["X-Amz-Security-Token"] == SESSION[2]
    assert {requests.structures.CaseInsensitiveDict: False} == _requests._STORE_PROVEN


# --- URL._uri_reference: a signed query swapped into the parsed URL -------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("presign", "path_and_query"),
    [(True, "/prod/pets?b=2&a=1"), (True, "/prod/pets"), (False, "/prod/pets?b=2&a=x+y")],
)
async def test_a_signed_query_is_swapped_into_the_parsed_url(
    aws_server, kind, presign, path_and_query
):
    """Presigned or reordered, the query goes into the parsed URL: equal to a whole parse."""
    auth = make_auth(credentials=SESSION, presign=presign)
    client = _module(kind.package)
    request = client.Request("GET", aws_server.url(path_and_query))
    flow = auth.sync_auth_flow(request)
    next(flow)
    flow.close()
    assert {client.Request: True} == _httpx._URL_PARSED
    assert request.url == client.URL(str(request.url))
    assert request.url.raw_path == client.URL(str(request.url)).raw_path
    response = await send(kind, "GET", aws_server.url(path_and_query), auth=auth)
    assert response.status_code == 200, response.text


_URL_TEXT = st.lists(st.characters() | st.sampled_from(list("%@:/?#[]. ")), max_size=12).map(
    "".join
)


@st.composite
def client_urls(draw: st.DrawFn) -> str:
    """Absolute URLs of every shape: userinfo, IPv6, ports, odd paths and queries, fragments."""
    scheme = draw(st.sampled_from(["http", "https", "HTTPS"]))
    userinfo = draw(st.sampled_from(["u:p@", "user@"])) if draw(st.integers(0, 3)) == 0 else ""
    host = draw(
        st.sampled_from(["a.invalid", "API.Example.COM", "127.0.0.1", "[::1]", "xn--strae-oqa.de"])
    )
    port = draw(st.sampled_from(["", ":80", ":443", ":8443"]))
    path = draw(st.sampled_from(["", "/"]) | _URL_TEXT.map(lambda text: "/" + text))
    query = draw(st.sampled_from(["", "?"]) | _URL_TEXT.map(lambda text: "?" + text))
    fragment = "#" + draw(_URL_TEXT) if draw(st.integers(0, 3)) == 0 else ""
    return f"{scheme}://{userinfo}{host}{port}{path}{query}{fragment}"


@pytest.mark.parametrize("package", PACKAGES)
@settings(max_examples=300, deadline=None)
@given(url=client_urls())
def test_the_url_text_is_written_from_its_parts(package, url):
    """The URL signed is exactly str(url), for every URL the client takes, read from its parts."""
    client = _module(package)
    try:
        parsed = client.URL(url)
    except client.InvalidURL:
        reject()
    assert _httpx._url_text(parsed) == str(parsed)


@pytest.mark.parametrize("kind", KINDS)
async def test_urls_without_the_parsed_form_are_parsed_whole(aws_server, monkeypatch, kind):
    """Where the check fails (no _uri_reference), the signed URL is parsed whole, still signed."""
    assert _httpx._check_parsed_url(SimpleNamespace(URL=str)) is False
    monkeypatch.setattr(_httpx, "_check_parsed_url", lambda _client: False)
    for presign in (True, False):
        auth = make_auth(credentials=SESSION, presign=presign)
        response = await send(kind, "GET", aws_server.url("/prod/pets?b=2&a=1"), auth=auth)
        assert response.status_code == 200, response.text
    assert {_module(kind.package).Request: False} == _httpx._URL_PARSED


# --- The redirect guard: extensions on redirects, trace events, the header list --------------


@pytest.mark.parametrize("package", PACKAGES)
def test_redirect_guard_is_proven_for_each_client(package):
    """The self-check passes for each client: its redirects keep the trace hook, which strips."""
    client = _module(package)
    assert _httpx_redirects._redirect_problem(client) is None
    assert _httpx_redirects._core_problem(_module(CORE[package])) is None
    assert _httpx._guard_proven(client.Request) is True


@pytest.mark.parametrize("package", PACKAGES)
def test_the_guards_self_check_logs_no_request(package, caplog):
    """The self-check's requests never happened: the client's INFO log shows only the
    request that ran it."""
    client = _module(package)
    caplog.set_level(logging.INFO, logger=package)
    transport = client.MockTransport(lambda _request: client.Response(200))
    with client.Client(auth=make_auth(), transport=transport, trust_env=False) as session:
        session.get("http://127.0.0.1:9/prod/pets")  # the first request proves the guard
    lines = [record.getMessage() for record in caplog.records if record.name == package]
    assert lines == ['HTTP Request: GET http://127.0.0.1:9/prod/pets "HTTP/1.1 200 OK"']


@pytest.mark.parametrize("package", PACKAGES)
def test_an_unsigned_payload_with_an_unproven_guard_says_why_it_was_presigned(package, monkeypatch):
    """Where the guard is unproven, requests are presigned: VPC Lattice's unsigned payload then
    cannot be signed, and the error says why the query was used although presign=False."""
    client = _module(package)
    monkeypatch.setattr(_httpx, "_GUARD_PROVEN", {client.Request: False})
    lattice = "https://svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-west-2.on.aws/x"
    auth = ApiGwIamAuth(credentials=("AKIDEXAMPLE", "secret"))
    transport = client.MockTransport(lambda _request: client.Response(200))
    with (
        client.Client(auth=auth, transport=transport) as session,
        pytest.raises(InvalidConfigError, match="redirects cannot be guarded with this"),
    ):
        session.get(lattice)


def _trace_patch(monkeypatch: pytest.MonkeyPatch, kind: Kind, change: Callable[..., Any]) -> None:
    """Let ``change`` rewrite the arguments (name, logger, request, info) of each httpcore Trace."""
    trace_type = _module(f"{CORE[kind.package]}._trace").Trace
    original_init = trace_type.__init__

    def init(self: Any, name: str, logger: Any, request: Any = None, kwargs: Any = None) -> None:
        original_init(self, *change(name, logger, request, dict(kwargs or {})))

    monkeypatch.setattr(trace_type, "__init__", init)


def rename_trace_events(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """httpcore calls the event before writing headers something else."""

    def change(name: str, logger: Any, request: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
        return name.replace("send_request_headers", "write_request_head"), logger, request, kwargs

    _trace_patch(monkeypatch, kind, change)


def drop_request_from_trace(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """httpcore's trace events no longer carry the request in ``info``."""

    def change(name: str, logger: Any, request: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
        kwargs.pop("request", None)
        return name, logger, request, kwargs

    _trace_patch(monkeypatch, kind, change)


def copy_request_for_trace(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """httpcore's trace events carry a copy of the request: changing it changes nothing sent."""

    def change(name: str, logger: Any, request: Any, kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if "request" in kwargs:
            duplicate = copy.copy(kwargs["request"])
            duplicate.headers = list(duplicate.headers)
            kwargs["request"] = duplicate
        return name, logger, request, kwargs

    _trace_patch(monkeypatch, kind, change)


def drop_extensions_on_redirect(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """The client builds redirect requests without the extensions (and trace hook) of the first."""
    client_type = _module(f"{kind.package}._client").BaseClient
    original = client_type._build_redirect_request

    def build(self: Any, request: Any, response: Any) -> Any:
        hop = original(self, request, response)
        hop.extensions = {}
        return hop

    monkeypatch.setattr(client_type, "_build_redirect_request", build)


def keep_authorization_on_redirect(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """The client keeps ``Authorization`` on a redirect to another origin."""
    _keep_authorization(monkeypatch, kind, lambda _request_url, _url: True)


def keep_authorization_on_the_same_host(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """The client keeps ``Authorization`` on a redirect to the same host (another port or
    scheme), as requests' ``should_strip_auth`` nearly does."""
    _keep_authorization(monkeypatch, kind, lambda request_url, url: request_url.host == url.host)


def _keep_authorization(
    monkeypatch: pytest.MonkeyPatch, kind: Kind, keeps: Callable[[Any, Any], bool]
) -> None:
    client_type = _module(f"{kind.package}._client").BaseClient
    original = client_type._redirect_headers

    def headers(self: Any, request: Any, url: Any, method: str) -> Any:
        kept = original(self, request, url, method)
        if "Authorization" in request.headers and keeps(request.url, url):
            kept["Authorization"] = request.headers["Authorization"]
        return kept

    monkeypatch.setattr(client_type, "_redirect_headers", headers)


KEEPING_AUTHORIZATION = {
    "everywhere": keep_authorization_on_redirect,
    "on-the-same-host": keep_authorization_on_the_same_host,
}


def remove_mock_transport(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """The public MockTransport the self-check runs redirects through is gone."""
    monkeypatch.delattr(kind.client, "MockTransport")


SABOTAGES = {
    "renamed-events": rename_trace_events,
    "no-request-in-trace": drop_request_from_trace,
    "copied-request-in-trace": copy_request_for_trace,
    "redirects-drop-extensions": drop_extensions_on_redirect,
}


async def _post_across_origins(
    kind: Kind, aws_server: AwsServer, auth: ApiGwIamAuth, *, tls: bool = False
) -> Any:
    """POST with a body to the verifying server, which answers 307 to a second server.

    Returns (the final response, the requests the second server received).
    """
    with running_server(tls=tls) as other:
        start = redirect_url(aws_server, other.url("/prod/elsewhere?a=1"), 307)
        response = await send(
            kind, "POST", start, auth=auth, follow_redirects=True, content=b"payload"
        )
        return response, other.requests


async def _assert_fails_safe(kind: Kind, aws_server: AwsServer, reason: str) -> None:
    """One warning naming ``reason``; requests signed in the query; nothing of ours elsewhere."""
    auth = make_auth(credentials=SESSION)
    with pytest.warns(RuntimeWarning, match=NO_GUARD) as warned:
        response, arrived = await _post_across_origins(kind, aws_server, auth)
    again, _ = await _post_across_origins(kind, aws_server, auth)  # warned once: not again
    assert [reason in str(warning.message) for warning in warned] == [True]
    assert (response.status_code, again.status_code) == (403, 403)  # the second server refused
    assert [leaked(record) for record in arrived] == [[]]
    first = aws_server.requests[0]
    assert (first.status, first.verified, first.auth_mode) == (307, True, "query")


async def test_renamed_trace_events_switch_to_query_signing(aws_server, monkeypatch, kind):
    """If httpcore renames its trace events, a warning says so and no hop carries our headers."""
    rename_trace_events(monkeypatch, kind)
    await _assert_fails_safe(kind, aws_server, "sent none of the trace events")


async def test_trace_without_the_request_switches_to_query_signing(aws_server, monkeypatch, kind):
    """If trace events stop carrying the request, a warning says so and nothing leaks."""
    drop_request_from_trace(monkeypatch, kind)
    await _assert_fails_safe(kind, aws_server, "can no longer remove")


async def test_trace_of_a_copied_request_switches_to_query_signing(aws_server, monkeypatch, kind):
    """If the traced request is a copy of the one written, a warning says so and nothing leaks."""
    copy_request_for_trace(monkeypatch, kind)
    await _assert_fails_safe(kind, aws_server, "can no longer remove")


async def test_redirects_that_drop_extensions_switch_to_query_signing(
    aws_server, monkeypatch, kind
):
    """If redirects stop inheriting the trace hook, a warning says so and nothing leaks."""
    drop_extensions_on_redirect(monkeypatch, kind)
    await _assert_fails_safe(kind, aws_server, "does not pass a request's extensions")


@pytest.mark.parametrize("keeping", KEEPING_AUTHORIZATION)
async def test_a_client_keeping_authorization_gets_the_guard_on_every_request(
    monkeypatch, kind, keeping
):
    """An https request with long-term keys hooks no guard where httpx is proven to drop
    Authorization on a hop to another origin (another port of the same host among them); where
    it is not, the guard is hooked: nothing leaks, no warning, still signed in headers."""
    KEEPING_AUTHORIZATION[keeping](monkeypatch, kind)
    with running_server(tls=True) as home, warnings.catch_warnings():
        warnings.simplefilter("error")
        response, arrived = await _post_across_origins(kind, home, make_auth(), tls=True)
        first = home.requests[0]
    assert {kind.client.Request: False} == _httpx._AUTHORIZATION_DROPPED
    assert response.status_code == 403  # the other origin saw an unsigned request
    assert [leaked(record) for record in arrived] == [[]]
    assert (first.status, first.verified, first.auth_mode) == (307, True, "header")


@pytest.mark.parametrize("keeping", KEEPING_AUTHORIZATION)
async def test_a_client_keeping_authorization_would_leak_the_signature_without_the_check(
    monkeypatch, kind, keeping
):
    """Control: trusting httpx's clean-up blindly, the signature of an https request without a
    token (which then hooks no guard) would follow a redirect to another origin."""
    KEEPING_AUTHORIZATION[keeping](monkeypatch, kind)
    monkeypatch.setattr(_httpx, "_AUTHORIZATION_DROPPED", {kind.client.Request: True})
    with running_server(tls=True) as home:
        _, arrived = await _post_across_origins(kind, home, make_auth(), tls=True)
    assert "AWS4-HMAC-SHA256" in leaked(arrived[0])


async def test_a_self_check_that_cannot_run_counts_as_failed(aws_server, monkeypatch, kind):
    """A self-check that raises proves nothing: the guard is not trusted and nothing leaks."""
    remove_mock_transport(monkeypatch, kind)
    await _assert_fails_safe(kind, aws_server, "self-check")


@pytest.mark.parametrize("sabotage", SABOTAGES)
async def test_each_sabotage_would_leak_the_token_without_the_self_check(
    aws_server, monkeypatch, kind, sabotage
):
    """Control: trusting the guard blindly under each sabotage sends the token elsewhere."""
    SABOTAGES[sabotage](monkeypatch, kind)
    monkeypatch.setattr(_httpx, "_GUARD_PROVEN", {kind.client.Request: True})
    _, arrived = await _post_across_origins(kind, aws_server, make_auth(credentials=SESSION))
    assert [leaked(record) for record in arrived] != [[]]


# --- The absolute-form target through a forward proxy ----------------------------------------

KEY, SECRET, TOKEN = "ASIAPROXYEXAMPLE", "proxy/secret+EXAMPLE", "proxy-session-token"


@pytest.fixture
def proxy():
    """Our IAM-auth server, which also accepts absolute-form targets as a forward proxy gets."""
    with IamAuthServer(region="us-east-1", keys={KEY: KnownKey(SECRET, token=TOKEN)}) as running:
        yield running


def _behind(proxy: IamAuthServer) -> str:
    """A URL on another origin than the proxy (never resolved: the proxy is asked for it)."""
    return f"http://api.example.test:{proxy.url.rsplit(':', 1)[1]}/prod/pets?a=1"


def _proxy_auth() -> ApiGwIamAuth:
    return ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))


async def test_forward_proxy_hop_names_our_origin(proxy, kind):
    """Through a forward proxy httpcore traces an absolute target naming our origin: it verifies."""
    targets: list[bytes] = []

    def record(event: str, info: dict[str, Any]) -> None:
        if event.endswith("send_request_headers.started"):
            targets.append(info["request"].url.target)

    async def record_async(event: str, info: dict[str, Any]) -> None:
        record(event, info)

    url = _behind(proxy)
    trace = record_async if kind.is_async else record
    response = await send(
        kind, "GET", url, auth=_proxy_auth(), proxy=proxy.url, extensions={"trace": trace}
    )
    assert response.status_code == 200, response.text
    assert targets == [url.encode()]


def _relative_forwarding(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    """httpcore forwards requests to a proxy with the origin-form target (path and query only)."""
    core = _module(CORE[kind.package])
    module = _module(f"{CORE[kind.package]}.{'_async' if kind.is_async else '_sync'}.http_proxy")

    def relative(connection: Any, request: Any) -> Any:
        origin = connection._proxy_origin
        url = core.URL(
            scheme=origin.scheme, host=origin.host, port=origin.port, target=request.url.target
        )
        return core.Request(
            method=request.method,
            url=url,
            headers=request.headers,
            content=request.stream,
            extensions=request.extensions,
        )

    def handle_request(self: Any, request: Any) -> Any:
        return self._connection.handle_request(relative(self, request))

    async def handle_async_request(self: Any, request: Any) -> Any:
        return await self._connection.handle_async_request(relative(self, request))

    if kind.is_async:
        target = module.AsyncForwardHTTPConnection
        monkeypatch.setattr(target, "handle_async_request", handle_async_request)
    else:
        monkeypatch.setattr(module.ForwardHTTPConnection, "handle_request", handle_request)


async def test_relative_proxy_target_fails_closed_and_says_so(proxy, monkeypatch, kind):
    """Without the absolute target the guard strips our headers (refused) and warns it did."""
    _relative_forwarding(monkeypatch, kind)
    with pytest.warns(RuntimeWarning, match="does not name the origin it was signed for"):
        response = await send(kind, "GET", _behind(proxy), auth=_proxy_auth(), proxy=proxy.url)
    assert response.status_code == 403
    assert [record.access_key for record in proxy.requests] == [None]


@NEEDS_FORK
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_checks_its_client_package_although_a_parent_thread_was_checking():
    """The once-per-package checks run under one lock. Held by a parent thread at fork time (a
    warm-up request under ``gunicorn --preload``), it would be held in the child for good, and
    the child's first httpx request would wait forever: the child gets a lock of its own.
    """
    inside, release = threading.Event(), threading.Event()

    def slow_check(_package: object) -> bool:
        inside.set()
        return release.wait(2 * HANG_GUARD)  # outlasts the child's own guard

    parent_check = threading.Thread(
        target=_httpx._checked_once, args=({}, httpx.Request, slow_check), daemon=True
    )
    parent_check.start()
    assert inside.wait(HANG_GUARD)

    def first_request_signed() -> bool:
        _httpx._GUARD_PROVEN.clear()  # this child's first request: the guard is proven
        auth = make_auth(credentials=SESSION)
        signed = next(auth.sync_auth_flow(httpx.Request("GET", "http://127.0.0.1:9/prod")))
        return "Authorization" in signed.headers

    try:
        outcome = in_a_forked_child(first_request_signed)
    finally:
        release.set()
        parent_check.join(HANG_GUARD)
    assert outcome == HELD  # HUNG: the child waited for the parent's check
