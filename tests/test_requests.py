"""ApiGwIamAuth with requests.Session over loopback, judged by the botocore-verifying server."""

from __future__ import annotations

import contextlib
import copy
import http.server
import io
import json
import os
import pickle
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.error import HTTPError

import httpx
import pytest
import requests
from aws_server import (
    INVALID_SIGNATURE,
    SESSION_ACCESS_KEY,
    running_server,
)
from integration_cases import (
    BLOB,
    FOREIGN_LINK,
    LONG_TERM,
    METHODS,
    MODES,
    PARAMS,
    PARAMS_WIRE,
    PATHS,
    QUERIES,
    REDIRECT_STATUSES,
    REGION,
    SESSION,
    TEXT,
    leaked,
    make_auth,
    redirect_url,
    sha256,
    user_query,
    views_of_one_buffer,
)
from requests.adapters import HTTPAdapter

from apigw_iam_auth import (
    ApiGwIamAuth,
    InvalidConfigError,
    SigV4Signer,
    UnsignableRequestError,
    presign_url,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def server():
    """One verifying server for the tests that do not read its request log."""
    with running_server() as srv:
        yield srv


@pytest.fixture
def session():
    """A requests session that ignores proxy settings and ~/.netrc."""
    with requests.Session() as sess:
        sess.trust_env = False
        yield sess


def echo(response: requests.Response) -> dict:
    """The server's JSON echo of a request it verified (fails with its 403 message if not)."""
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_verifies(server, session, method, presign):
    """Every HTTP method is signed as sent, by header or presigned URL."""
    response = session.request(method, server.url("/prod/pets"), auth=make_auth(presign=presign))
    assert response.status_code == 200, response.text
    if method != "HEAD":
        assert echo(response)["method"] == method
        assert echo(response)["auth_mode"] == ("query" if presign else "header")


# urllib3 removes dot segments before signing; the server sees (and botocore signs) the result.
@pytest.mark.parametrize(
    ("path", "wire"), [*PATHS, pytest.param("//a/b/..//c/.", "//a//c/", id="dots")]
)
def test_paths_arrive_as_signed(server, session, path, wire):
    """Unicode, reserved, pre-encoded and dot-segment paths verify; the wire path is as expected."""
    assert echo(session.get(server.url(path), auth=make_auth()))["path"] == wire


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize(("path_and_query", "wire"), QUERIES)
def test_query_goes_out_in_the_form_signed(server, session, path_and_query, wire, presign):
    """Repeated, empty, unsorted, '+' and escaped query keys reach the server as signed."""
    body = echo(session.get(server.url(path_and_query), auth=make_auth(presign=presign)))
    assert user_query(body["query"]) == wire


@pytest.mark.parametrize("presign", MODES)
def test_params_with_spaces_and_plus_verify(server, session, presign):
    """params= spaces (sent by requests as '+'), literal '+' and '%2B' keep their meaning."""
    response = session.get(
        server.url("/prod/search"), params=PARAMS, auth=make_auth(presign=presign)
    )
    assert user_query(echo(response)["query"]) == PARAMS_WIRE


def test_non_default_port_is_signed_in_host(server, session):
    """The Host signed is the one sent: loopback address with the server's port."""
    body = echo(session.get(server.url("/prod/pets"), auth=make_auth()))
    assert body["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert f"\nhost:127.0.0.1:{server.port}\n" in body["canonical_request"]


@pytest.mark.parametrize("presign", MODES)
def test_ipv6_loopback_verifies(session, presign):
    """A bracketed IPv6 host with a port is signed as the client sends it."""
    with running_server(host="::1") as srv:
        body = echo(session.get(srv.url("/prod/pets?a=1"), auth=make_auth(presign=presign)))
        assert body["headers"]["host"] == f"[::1]:{srv.port}"


def test_other_region_server_verifies_with_that_region(session):
    """An explicit region= is the scope signed (a server in eu-west-1 accepts it)."""
    with running_server(region="eu-west-1") as srv:
        auth = ApiGwIamAuth(region="eu-west-1", credentials=LONG_TERM)
        assert echo(session.get(srv.url("/prod/pets"), auth=auth))["auth_mode"] == "header"


@pytest.mark.parametrize("presign", MODES)
def test_session_token_is_sent_and_verified(server, session, presign):
    """Temporary credentials carry their token: in a header, or in the presigned query."""
    auth = make_auth(credentials=SESSION, presign=presign)
    body = echo(session.get(server.url("/prod/pets"), auth=auth))
    assert body["access_key"] == SESSION_ACCESS_KEY
    assert ("x-amz-security-token" in body["headers"]) is not presign
    assert ("X-Amz-Security-Token=" in body["query"]) is presign


def test_wrong_secret_is_refused(server, session):
    """The server really checks: a wrong secret gets API Gateway's signature-mismatch 403."""
    auth = ApiGwIamAuth(region=REGION, credentials=(LONG_TERM[0], "not-the-secret"))
    response = session.get(server.url("/prod/pets"), auth=auth)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == INVALID_SIGNATURE


def test_a_refusal_read_to_be_explained_still_streams_to_the_caller(server, session):
    """stream=True: a 403 the auth read (to look for clock skew) still yields iter_content."""
    auth = ApiGwIamAuth(region=REGION, credentials=(LONG_TERM[0], "not-the-secret"))
    with session.get(server.url("/prod/pets"), auth=auth, stream=True) as response:
        assert response.status_code == 403
        body = b"".join(response.iter_content(7))
    assert b"signature we calculated does not match" in body


def test_no_region_for_loopback_host_fails_before_sending(aws_server, session):
    """region=None on a loopback URL raises InvalidConfigError naming the host; nothing is sent."""
    auth = ApiGwIamAuth(credentials=LONG_TERM)
    with pytest.raises(InvalidConfigError, match=r"127\.0\.0\.1.*region="):
        session.get(aws_server.url("/prod/pets"), auth=auth)
    assert aws_server.request_count == 0


def _file(tmp_path, stack, *, offset=0):
    path = tmp_path / "body.bin"
    path.write_bytes(BLOB)
    handle = stack.enter_context(path.open("rb"))
    handle.seek(offset)
    return handle


def _pipe(stack, data=b"piped body"):
    """The read end of a pipe holding ``data``: a stream that can be read once, never rewound."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return stack.enter_context(os.fdopen(read_end, "rb"))


# id -> (kwargs for session.request, made from tmp= a directory and stack= an ExitStack; the
# bytes that must arrive, or None when only requests knows them, as with a multipart boundary).
BODIES = {
    "none": (lambda **_: {}, b""),
    "empty": (lambda **_: {"data": b""}, b""),
    "bytes": (lambda **_: {"data": b"\x00\xffbinary\r\n"}, b"\x00\xffbinary\r\n"),
    "str-non-ascii": (lambda **_: {"data": TEXT}, TEXT.encode()),
    "form": (lambda **_: {"data": {"a": "1 2", "b": "é"}}, b"a=1+2&b=%C3%A9"),
    "json": (lambda **_: {"json": {"k": "é"}}, json.dumps({"k": "é"}).encode()),
    "multipart": (
        lambda **_: {"files": {"f": ("a.txt", b"content")}, "data": {"x": "1"}},
        None,
    ),
    "multipart-file": (lambda tmp, stack: {"files": {"f": _file(tmp, stack)}}, None),
    "seekable-file": (lambda tmp, stack: {"data": _file(tmp, stack)}, BLOB),
    "file-at-offset": (lambda tmp, stack: {"data": _file(tmp, stack, offset=1000)}, BLOB[1000:]),
    "generator": (
        lambda **_: {"data": (chunk for chunk in (b"ab", b"", b"cd", TEXT.encode()))},
        b"abcd" + TEXT.encode(),
    ),
    "pipe": (lambda stack, **_: {"data": _pipe(stack)}, b"piped body"),
}


@pytest.fixture
def body(request, tmp_path):
    """(kwargs giving a request its body, the bytes that must arrive); files closed after."""
    make_kwargs, expected = BODIES[request.param]
    with contextlib.ExitStack() as stack:
        yield make_kwargs(tmp=tmp_path, stack=stack), expected


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("body", BODIES, indirect=True)
def test_body_is_signed_and_sent_whole(server, session, body, presign):
    """Each body kind arrives complete, and its hash is the one signed."""
    kwargs, expected = body
    response = session.post(server.url("/prod/upload"), auth=make_auth(presign=presign), **kwargs)
    received = echo(response)
    if expected is None:
        expected = response.request.body
    assert (received["body_length"], received["body_sha256"]) == (len(expected), sha256(expected))


@pytest.mark.parametrize("credentials", [LONG_TERM, SESSION], ids=["long-term", "session"])
def test_presign_url_opens_with_urllib(server, credentials):
    """A presign_url link works from plain urllib, with no credentials at hand."""
    link = presign_url(
        server.url("/prod/report?id=7&q=a b"), region=REGION, credentials=credentials
    )
    with NO_PROXY.open(link) as response:
        body = json.load(response)
    assert body["auth_mode"] == "query"
    assert user_query(body["query"]) == "id=7&q=a%20b"
    assert ("X-Amz-Security-Token=" in body["query"]) is (credentials is SESSION)


def test_presign_url_opens_with_requests_without_auth(server, session):
    """requests can open a presigned link as is: it does not re-encode it into a mismatch."""
    link = presign_url(server.url("/prod/café?x=%2B&y=1+2"), region=REGION, credentials=SESSION)
    body = echo(session.get(link))
    assert body["auth_mode"] == "query"
    assert user_query(body["query"]) == "x=%2B&y=1%202"


# Paths a client rewrites before sending: lowercase escapes (urllib3 writes them uppercase) and
# dot segments (requests and httpx remove them, as RFC 3986 says, not as AWS normalises).
REWRITTEN_PATHS = ("/prod/caf%c3%a9", "/prod/files/a%2fb", "/prod/pets/.", "/prod/a//..")


@pytest.mark.parametrize("path", REWRITTEN_PATHS)
@pytest.mark.parametrize("client", ["requests", "httpx"])
def test_what_the_signer_returns_is_sent_unchanged_and_verifies(server, session, path, client):
    """sign() and presign() return the URL a client sends as is: signed as it arrives."""
    signer = SigV4Signer(region=REGION, credentials=LONG_TERM)
    signed = signer.sign("GET", server.url(path))
    link = signer.presign("GET", server.url(path))
    if client == "requests":
        statuses = [
            session.get(signed.url, headers=signed.headers).status_code,
            session.get(link).status_code,
        ]
    else:
        with httpx.Client(trust_env=False) as http:
            statuses = [
                http.get(signed.url, headers=signed.headers).status_code,
                http.get(link).status_code,
            ]
    assert statuses == [200, 200]


def test_presign_url_for_put_accepts_exactly_its_body(server, session):
    """A presigned PUT verifies with the signed body and is refused with another one."""
    link = presign_url(
        server.url("/prod/put"), method="PUT", region=REGION, credentials=LONG_TERM, body=b"data"
    )
    assert echo(session.put(link, data=b"data"))["method"] == "PUT"
    assert session.put(link, data=b"tampered").status_code == 403


def test_expired_presigned_url_is_refused(aws_server):
    """Once its expiry has passed on the server clock, a presigned link gets a 403."""
    link = presign_url(aws_server.url("/prod/x"), expires=1, region=REGION, credentials=LONG_TERM)
    aws_server.clock_offset = timedelta(seconds=60)
    with pytest.raises(HTTPError) as refused:
        NO_PROXY.open(link)
    with refused.value:
        assert refused.value.code == 403
        assert json.load(refused.value)["message"] == "Request has expired"


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("status", REDIRECT_STATUSES)
def test_same_origin_redirect_arrives_signed(aws_server, session, status, presign):
    """A redirect to another path of the same origin is re-signed for it and verifies."""
    start = redirect_url(aws_server, aws_server.url("/prod/moved?k=v w"), status)
    body = echo(session.get(start, auth=make_auth(credentials=SESSION, presign=presign)))
    assert (body["path"], user_query(body["query"])) == ("/prod/moved", "k=v%20w")
    first, last = aws_server.requests[0], aws_server.requests[-1]
    assert (first.status, first.verified) == (status, True)
    assert (last.target.partition("?")[0], last.status, last.verified) == ("/prod/moved", 200, True)


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("body", ["bytes", "seekable-file", "generator", "pipe"], indirect=True)
def test_same_origin_redirect_resends_the_body_signed(server, session, body, status):
    """A 307/308 keeps method and body: the body is sent again, whole, under a new signature."""
    kwargs, expected = body
    start = redirect_url(server, server.url("/prod/moved"), status)
    received = echo(session.post(start, auth=make_auth(), **kwargs))
    assert (received["method"], received["path"]) == ("POST", "/prod/moved")
    assert received["body_sha256"] == sha256(expected)


@pytest.mark.parametrize("presign", MODES)
@pytest.mark.parametrize("status", [302, 303, 307, 308])
def test_cross_origin_redirect_carries_no_credentials(aws_server, session, status, presign):
    """A redirect to another origin reaches it with no signature, token or Authorization."""
    with running_server() as other:
        start = redirect_url(aws_server, other.url("/prod/elsewhere?a=1"), status)
        response = session.post(
            start, data=b"payload", auth=make_auth(credentials=SESSION, presign=presign)
        )
        arrived = other.requests
    assert response.status_code == 403  # the other origin saw an unsigned request
    assert [record.target.partition("?")[0] for record in arrived] == ["/prod/elsewhere"]
    assert [leaked(record) for record in arrived] == [[]]
    assert aws_server.requests[0].verified


@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_back_after_another_origin_is_not_signed(aws_server, session, status):
    """Origin -> other origin -> origin: the foreign hop is clean, and the hop back, whose URL
    (and on a 307 whose method and body) the other origin chose, is neither signed nor re-sent
    signed when refused: its 403 comes back."""
    with running_server() as other:
        bounce = redirect_url(other, aws_server.url("/prod/home"), status, "redirect-unsigned")
        response = session.post(
            redirect_url(aws_server, bounce, status),
            data=b"pay 100",
            auth=make_auth(credentials=SESSION),
        )
        arrived = other.requests
    assert response.status_code == 403
    assert [leaked(record) for record in arrived] == [[]]
    home = [record for record in aws_server.requests if record.target == "/prod/home"]
    assert [(record.status, record.verified) for record in home] == [(403, False)]


def test_a_stored_request_whose_chain_left_is_signed_again_when_sent_again(aws_server, session):
    """session.send(prepared) once more, after a chain that went to another origin, starts a
    new chain: its own refused first hop is signed again, as for any stored request."""
    with running_server() as other:
        bounce = redirect_url(other, aws_server.url("/prod/home"), 302, "redirect-unsigned")
        request = requests.Request(
            "GET", redirect_url(aws_server, bounce, 302), auth=make_auth(credentials=SESSION)
        )
        prepared = session.prepare_request(request)
        session.send(prepared)
        session.send(prepared)
    starts = [
        (record.status, record.verified)
        for record in aws_server.requests
        if record.target.startswith("/redirect")
    ]
    assert starts == [(302, True), (403, False), (302, True)]


def test_a_copy_of_a_signed_request_carries_nothing_to_another_origin(aws_server, session):
    """prepared.copy() keeps our hooks, not our mark: its redirect hop is cleaned all the same."""
    with running_server() as other:
        request = requests.Request(
            "GET",
            redirect_url(aws_server, other.url("/prod/elsewhere"), 302),
            auth=make_auth(credentials=SESSION),
        )
        response = session.send(session.prepare_request(request).copy())
        arrived = other.requests
    assert response.status_code == 403
    assert [leaked(record) for record in arrived] == [[]]


def test_a_signed_response_pickles_without_credentials(aws_server, session):
    """requests pickles a response with its request and hooks: our guard comes back inert, and
    neither the secret nor the auth's settings travel in the pickle."""
    response = session.get(aws_server.url("/prod/pets"), auth=make_auth(credentials=SESSION))
    data = pickle.dumps(response)
    assert SESSION[1].encode() not in data
    restored = pickle.loads(data)  # noqa: S301 - our own pickle
    assert restored.status_code == 200
    (hook,) = restored.request.hooks["response"]
    assert hook(restored) is restored
    assert copy.deepcopy(response.request).hooks["response"] == response.request.hooks["response"]


class _Gates:
    """Events that order two threads' redirect chains through one stored request."""

    def __init__(self) -> None:
        self.t1_back_waiting = threading.Event()
        self.t2_at_other = threading.Event()
        self.t1_done = threading.Event()
        self.backs: list[bool] = []  # per arrival at /back: whether it carried a signature


def _gated_server(
    handle: Callable[[http.server.BaseHTTPRequestHandler], None],
) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            handle(self)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _answer(handler: http.server.BaseHTTPRequestHandler, status: int, location: str = "") -> None:
    handler.send_response(status)
    if location:
        handler.send_header("Location", location)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def test_two_threads_sending_one_request_keep_their_own_chains():
    """Thread 1's chain went to another origin and back; thread 2 sends the same prepared request
    meanwhile (a new chain). Thread 1's hop back stays unsigned: one thread's chain does not
    reset another's (requests follows a chain on the thread that sent it)."""
    gates = _Gates()

    def origin(handler: http.server.BaseHTTPRequestHandler) -> None:
        if handler.path.startswith("/start"):
            _answer(handler, 302, f"http://127.0.0.1:{other.server_address[1]}/away")
            return
        signed = handler.headers.get("Authorization") is not None
        if not gates.t1_back_waiting.is_set():  # thread 1's hop back: held until thread 2 is
            gates.t1_back_waiting.set()  # out on its own chain
            assert gates.t2_at_other.wait(10)
        gates.backs.append(signed)
        _answer(handler, 200 if signed else 403)

    def away(handler: http.server.BaseHTTPRequestHandler) -> None:
        if gates.t1_back_waiting.is_set():  # thread 2: held until thread 1 is done
            gates.t2_at_other.set()
            assert gates.t1_done.wait(10)
        _answer(handler, 302, f"http://127.0.0.1:{home.server_address[1]}/back")

    home, other = _gated_server(origin), _gated_server(away)
    try:
        auth = ApiGwIamAuth(region=REGION, credentials=SESSION)
        url = f"http://127.0.0.1:{home.server_address[1]}/start"
        with requests.Session() as session:
            prepared = session.prepare_request(requests.Request("GET", url, auth=auth))

        def send() -> int:
            with requests.Session() as session:
                session.trust_env = False
                return session.send(prepared).status_code

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(send)
            assert gates.t1_back_waiting.wait(10)
            second = pool.submit(send)
            first_status = first.result(timeout=10)
            gates.t1_done.set()
            second_status = second.result(timeout=10)
    finally:
        for server in (home, other):
            server.shutdown()
            server.server_close()
    assert (first_status, second_status) == (403, 403)
    assert gates.backs == [False, False]


@pytest.mark.parametrize("status", REDIRECT_STATUSES)
def test_cross_origin_redirect_after_a_clock_skew_retry_carries_no_credentials(
    aws_server, session, status
):
    """The retry signed after a skew refusal is redirected away: the hop carries nothing of ours.

    requests builds that hop from the request it was given, which still held the first
    signature: its session token and X-Amz-Date once followed the redirect.
    """

    def slow_clock():
        return datetime.now(timezone.utc) - timedelta(minutes=20)

    auth = make_auth(credentials=SESSION, clock=slow_clock)
    with running_server() as other:
        start = redirect_url(aws_server, other.url("/prod/elsewhere"), status)
        response = session.get(start, auth=auth)
        arrived = other.requests
    assert [(record.status, record.verified) for record in aws_server.requests] == [
        (403, False),  # refused for the clock
        (status, True),  # the corrected retry, redirected
    ]
    assert response.status_code == 403  # the other origin saw an unsigned request
    assert [leaked(record) for record in arrived] == [[]]


@pytest.mark.parametrize("presign", MODES)
def test_a_stored_request_once_redirected_is_signed_again_when_resent(aws_server, session, presign):
    """A redirect takes our headers off the caller's prepared request; resent, it is re-signed."""
    start = redirect_url(aws_server, aws_server.url("/prod/moved"), 302)
    prepared = session.prepare_request(
        requests.Request("GET", start, auth=make_auth(presign=presign))
    )
    statuses = [session.send(prepared).status_code for _ in range(2)]
    assert statuses == [200, 200]
    assert aws_server.requests[-1].verified


def test_one_auth_shared_by_eight_threads(aws_server):
    """One session and auth used by 8 threads at once: every request verifies as its own."""
    workers, per_worker = 8, 4
    start = threading.Barrier(workers)

    def work(worker: int) -> list[tuple[str, bytes, requests.Response]]:
        start.wait(timeout=10)
        results = []
        for i in range(per_worker):
            path, payload = f"/prod/w{worker}/{i}", f"worker {worker} request {i} {TEXT}".encode()
            results.append((path, payload, sess.post(aws_server.url(path), data=payload)))
        return results

    with requests.Session() as sess:
        sess.trust_env = False
        sess.auth = make_auth(credentials=SESSION)
        # At most 4 connections at once: the stand-in server's listen backlog is small.
        sess.mount("http://", HTTPAdapter(pool_maxsize=4, pool_block=True))
        with ThreadPoolExecutor(workers) as pool:
            outcomes = [row for rows in pool.map(work, range(workers)) for row in rows]
    assert len(outcomes) == workers * per_worker
    for path, payload, response in outcomes:
        assert (echo(response)["path"], echo(response)["body_sha256"]) == (path, sha256(payload))
    assert all(record.verified for record in aws_server.requests)


@pytest.mark.parametrize("presign", MODES)
def test_redirect_to_a_foreign_presigned_link_keeps_its_query(aws_server, session, presign):
    """A Location holding someone else's presigned URL (an S3 link) is followed as written."""
    with running_server() as other:
        start = redirect_url(aws_server, other.url(FOREIGN_LINK), 302)
        session.get(start, auth=make_auth(credentials=SESSION, presign=presign))
        arrived = other.requests
    assert [record.target for record in arrived] == [FOREIGN_LINK]


def test_a_generator_reusing_one_buffer_is_sent_as_it_yielded(server, session):
    """Each chunk is copied when it is drawn: views of a buffer refilled later keep their bytes."""
    data = b"AAAABBBBCC"
    received = echo(
        session.post(server.url("/prod/x"), data=views_of_one_buffer(data), auth=make_auth())
    )
    assert (received["body_length"], received["body_sha256"]) == (len(data), sha256(data))


def test_a_generator_of_ints_is_refused_not_sent_as_zero_bytes(server, session):
    """bytes(104) is 104 NUL bytes: a chunk that is no bytes or str is refused by name."""
    with pytest.raises(UnsignableRequestError, match="yield bytes or str chunks"):
        session.post(server.url("/prod/x"), data=iter([104, 105]), auth=make_auth())


@pytest.mark.parametrize("text_stream", ["string-io", "text-file"])
def test_a_text_stream_body_is_refused_with_the_binary_form_named(session, tmp_path, text_stream):
    """The bytes a text stream sends depend on the client's encoding, not on what was hashed:
    refused before anything is sent, naming what to pass instead ('rb', io.BytesIO).
    """
    path = tmp_path / "body.txt"
    path.write_text("caf\u00e9", encoding="utf-8")
    with running_server() as server, contextlib.ExitStack() as stack:
        if text_stream == "string-io":
            body: io.TextIOBase = io.StringIO("caf\u00e9")
        else:  # requests warns of a text-mode file itself, then hands it to the auth
            body = stack.enter_context(path.open(encoding="utf-8"))
            stack.enter_context(pytest.warns(requests.exceptions.FileModeWarning))
        with pytest.raises(UnsignableRequestError, match=r"'rb'.*io\.BytesIO"):
            session.post(server.url("/prod/x"), data=body, auth=make_auth())
        assert server.requests == []


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytearray_and_memoryview_bodies_are_sent_again_after_a_skew_refusal(kind, session):
    """In-memory bodies of every bytes-like type are replayable: the skew retry sends them."""
    with running_server(clock_offset=timedelta(minutes=20)) as ahead:
        response = session.post(ahead.url("/prod/x"), data=kind(b"payload"), auth=make_auth())
        statuses = [record.status for record in ahead.requests]
    assert statuses == [403, 200]
    assert echo(response)["body_sha256"] == sha256(b"payload")


@pytest.mark.parametrize("server_ahead", [timedelta(0), timedelta(minutes=20)], ids=["", "skew"])
def test_a_same_origin_redirect_chain_is_signed_hop_by_hop(session, server_ahead):
    """Each hop of a same-origin chain, refused unsigned, is signed for its own URL; after a
    clock-skew retry of the first request too.
    """
    with running_server(clock_offset=server_ahead) as origin:
        url = origin.url("/prod/end")
        for _ in range(3):  # each /redirect answers only a request whose signature verifies
            url = redirect_url(origin, url, 302)
        response = session.get(url, auth=make_auth())
    assert echo(response)["path"] == "/prod/end"
