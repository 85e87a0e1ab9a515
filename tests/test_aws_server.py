"""The verifying server of ``aws_server.py``, proven with botocore as the only signer.

Nothing from ``apigw_iam_auth`` is used here: requests are signed by botocore's ``SigV4Auth`` /
``SigV4QueryAuth`` and sent with ``http.client`` or ``urllib``, so the server is shown to agree
with botocore before the adapter tests rely on it to judge our signer.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import threading
import types
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from unittest import mock
from urllib.error import HTTPError

import botocore.auth
import pytest
from aws_server import (
    ACCESS_KEY,
    MISMATCH_INTRO,
    SECRET_KEY,
    SESSION_ACCESS_KEY,
    SESSION_SECRET_KEY,
    SESSION_TOKEN,
    AwsServer,
    running_server,
)
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
LONG_TERM = Credentials(ACCESS_KEY, SECRET_KEY)
SESSION = Credentials(SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextlib.contextmanager
def botocore_clock(at):
    """Make botocore's signers read ``at`` as the current time, whatever botocore's version.

    Newer botocore reads the time through ``botocore.auth.get_current_datetime()``; older
    releases (1.34.0, our lowest) call ``datetime.datetime.utcnow()`` on the module
    ``botocore.auth`` imported, so there a stand-in for that module is swapped in instead.
    """
    if hasattr(botocore.auth, "get_current_datetime"):
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
            yield
        return

    class FrozenDatetime(datetime):
        @classmethod
        def utcnow(cls):
            return at

    stand_in = types.SimpleNamespace(**vars(botocore.auth.datetime))
    stand_in.datetime = FrozenDatetime
    with mock.patch.object(botocore.auth, "datetime", stand_in):
        yield


@pytest.fixture
def server():
    with running_server(clock=lambda: NOW) as srv:
        yield srv


def botocore_sign(
    method,
    url,
    *,
    headers=(),
    body=b"",
    at=NOW,
    credentials=LONG_TERM,
    region="us-east-1",
    service="execute-api",
):
    """Sign in header mode with botocore's own ``add_auth`` at time ``at``."""
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders: assigning twice keeps both
    with botocore_clock(at):
        SigV4Auth(credentials, service, region).add_auth(request)
    return request


def botocore_presign(url, *, at=NOW, expires=300, credentials=LONG_TERM, region="us-east-1"):
    """A presigned GET URL made by botocore's ``SigV4QueryAuth``."""
    request = AWSRequest(method="GET", url=url)
    with botocore_clock(at):
        SigV4QueryAuth(credentials, "execute-api", region, expires=expires).add_auth(request)
    return request.url


def send(
    server,
    method,
    target,
    headers=(),
    body=b"",
    *,
    chunked=False,
    connection=None,
):
    """Send one request with http.client; return (status, response headers, decoded JSON)."""
    conn = connection or http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders(iter([body[:3], body[3:]]), encode_chunked=True)
        else:
            if body:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
        response = conn.getresponse()
        payload = response.read()
        return response.status, response, json.loads(payload) if payload else None
    finally:
        if connection is None:
            conn.close()


def send_signed(server, signed, *, target=None, method=None, headers=None, body=None, **kw):
    """Send a botocore-signed request, optionally changing one part after signing."""
    parts = signed.url.split("/", 3)
    return send(
        server,
        method or signed.method,
        target or "/" + parts[3],
        list(signed.headers.items()) if headers is None else headers,
        signed.data if body is None else body,
        **kw,
    )


def open_url(url):
    """GET ``url`` with urllib (no proxies); return (status, headers, decoded JSON)."""
    try:
        with NO_PROXY.open(url, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except HTTPError as error:
        with error:
            return error.code, error.headers, json.loads(error.read())


def test_header_mode_signed_by_botocore_passes(server):
    """A POST signed by botocore's SigV4Auth (path, query, body, content-type) is accepted."""
    signed = botocore_sign(
        "POST",
        server.url("/prod/caf%C3%A9/a%20b?b=2&a=x%20y&a=1&flag"),
        headers=[("Content-Type", "application/json")],
        body=b'{"k": 1}',
    )
    status, response, echo = send_signed(server, signed)
    assert status == 200, echo
    assert echo["auth_mode"] == "header"
    assert echo["method"] == "POST"
    assert echo["path"] == "/prod/caf%C3%A9/a%20b"
    assert echo["query"] == "b=2&a=x%20y&a=1&flag"
    assert echo["body_sha256"] == hashlib.sha256(b'{"k": 1}').hexdigest()
    assert echo["body_length"] == 8
    assert echo["headers"]["content-type"] == "application/json"
    assert echo["access_key"] == ACCESS_KEY
    assert "/prod/caf%25C3%25A9/a%2520b\na=1&a=x%20y&b=2&flag=\n" in echo["canonical_request"]
    assert response.getheader("Content-Type") == "application/json"


def test_presigned_url_from_botocore_passes_with_urllib(server):
    """A botocore SigV4QueryAuth URL with a session token, opened by urllib, is accepted."""
    url = botocore_presign(server.url("/prod/items?color=red&size=9"), credentials=SESSION)
    status, _, echo = open_url(url)
    assert status == 200, echo
    assert echo["auth_mode"] == "query"
    assert echo["access_key"] == SESSION_ACCESS_KEY
    assert echo["query"].startswith("color=red&size=9&X-Amz-Algorithm=AWS4-HMAC-SHA256")


def test_session_credentials_in_header_mode_pass(server):
    """botocore's X-Amz-Security-Token header with the right token is accepted."""
    signed = botocore_sign("GET", server.url("/prod/me"), credentials=SESSION)
    status, _, echo = send_signed(server, signed)
    assert status == 200, echo
    assert echo["headers"]["x-amz-security-token"] == SESSION_TOKEN


@pytest.mark.parametrize(
    ("change", "expected_in_canonical"),
    [
        ({"method": "PUT"}, "PUT\n/prod/items\n"),
        ({"target": "/prod/other?q=1"}, "POST\n/prod/other\n"),
        ({"target": "/prod/items?q=2"}, "\nq=2\n"),
        ({"header": ("X-Custom", "tampered")}, "\nx-custom:tampered\n"),
        ({"body": b"tampered"}, hashlib.sha256(b"tampered").hexdigest()),
    ],
    ids=["method", "path", "query", "header", "body"],
)
def test_tampering_after_signing_gives_the_mismatch_message(server, change, expected_in_canonical):
    """Changing method, path, query, a signed header or the body yields 403 with both strings."""
    signed = botocore_sign(
        "POST",
        server.url("/prod/items?q=1"),
        headers=[("X-Custom", "original")],
        body=b"original",
    )
    headers = list(signed.headers.items())
    if "header" in change:
        name, value = change.pop("header")
        headers = [(n, value if n == name else v) for n, v in headers]
    status, response, echo = send_signed(server, signed, headers=headers, **change)
    assert status == 403
    assert response.getheader("x-amzn-ErrorType") == "InvalidSignatureException"
    message = echo["message"]
    assert message.startswith(MISMATCH_INTRO + "\n\nThe Canonical String for this request")
    canonical = message.split("should have been\n'")[1].split("'\n\n")[0]
    assert expected_in_canonical in canonical
    string_to_sign = message.split("The String-to-Sign should have been\n'")[1]
    assert string_to_sign.startswith("AWS4-HMAC-SHA256\n20240506T070809Z\n20240506/us-east-1/")
    assert string_to_sign.endswith(hashlib.sha256(canonical.encode()).hexdigest() + "'\n")


def test_wrong_region_gets_the_scope_message(server):
    """A credential scoped to another region is refused with API Gateway's scope message."""
    signed = botocore_sign("GET", server.url("/prod/x"), region="eu-west-1")
    status, response, echo = send_signed(server, signed)
    assert status == 403
    assert echo == {"message": "Credential should be scoped to a valid region, not 'eu-west-1'. "}
    assert response.getheader("x-amzn-ErrorType") == "InvalidSignatureException"


def test_wrong_service_gets_the_scope_message(server):
    """A credential scoped to another service is refused naming execute-api."""
    signed = botocore_sign("GET", server.url("/prod/x"), service="lambda")
    status, _, echo = send_signed(server, signed)
    assert status == 403
    assert echo == {"message": "Credential should be scoped to correct service: 'execute-api'. "}


def test_ten_minute_old_signature_is_expired(server):
    """An X-Amz-Date 10 minutes behind the server clock gets the exact 'Signature expired'."""
    signed = botocore_sign("GET", server.url("/prod/x"), at=NOW - timedelta(minutes=10))
    status, _, echo = send_signed(server, signed)
    assert status == 403
    assert echo == {
        "message": "Signature expired: 20240506T065809Z is now earlier than 20240506T070309Z "
        "(20240506T070809Z - 5 min.)"
    }


def test_ten_minute_future_signature_is_not_yet_current(server):
    """An X-Amz-Date 10 minutes ahead of the server clock gets 'Signature not yet current'."""
    signed = botocore_sign("GET", server.url("/prod/x"), at=NOW + timedelta(minutes=10))
    status, _, echo = send_signed(server, signed)
    assert status == 403
    assert echo == {
        "message": "Signature not yet current: 20240506T071809Z is still later than "
        "20240506T071309Z (20240506T070809Z + 5 min.)"
    }


def test_four_minutes_of_skew_is_tolerated(server):
    """Skew inside the 5-minute window is accepted both ways."""
    for skew in (timedelta(minutes=-4), timedelta(minutes=4)):
        status, _, echo = send_signed(server, botocore_sign("GET", server.url("/x"), at=NOW + skew))
        assert status == 200, echo


def test_clock_offset_changes_the_server_clock_at_runtime(server):
    """Setting clock_offset while running moves both the skew check and the Date header."""
    signed = botocore_sign("GET", server.url("/prod/x"))
    status, response, _ = send_signed(server, signed)
    assert status == 200
    assert parsedate_to_datetime(response.getheader("Date")) == NOW

    server.clock_offset = timedelta(minutes=7)
    status, response, echo = send_signed(server, signed)
    assert status == 403
    assert echo["message"].startswith("Signature expired: 20240506T070809Z is now earlier")
    assert parsedate_to_datetime(response.getheader("Date")) == NOW + timedelta(minutes=7)


def test_default_clock_is_real_time():
    """Without an injected clock, a request botocore signs now passes and Date is now."""
    with running_server() as srv:
        before = datetime.now(timezone.utc).replace(microsecond=0)
        signed = botocore_sign("GET", srv.url("/x"), at=datetime.now(timezone.utc))
        status, response, echo = send_signed(srv, signed)
        after = datetime.now(timezone.utc)
    assert status == 200, echo
    assert before <= parsedate_to_datetime(response.getheader("Date")) <= after


def test_expired_presigned_url_is_refused(server):
    """A presigned URL used after X-Amz-Expires is refused with 'Request has expired'."""
    url = botocore_presign(server.url("/prod/x"), at=NOW - timedelta(minutes=2), expires=60)
    status, headers, echo = open_url(url)
    assert status == 403
    assert echo == {"message": "Request has expired"}
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_presigned_url_within_expiry_passes_although_older_than_five_minutes(server):
    """Query mode is bounded by X-Amz-Expires, not by the 5-minute header-mode skew."""
    url = botocore_presign(server.url("/prod/x"), at=NOW - timedelta(minutes=30), expires=3600)
    status, _, echo = open_url(url)
    assert status == 200, echo


def test_tampered_presigned_url_gives_the_mismatch_message(server):
    """Changing a parameter of a presigned URL yields 403 with the canonical string."""
    url = botocore_presign(server.url("/prod/x?size=9"))
    status, _, echo = open_url(url.replace("size=9", "size=10"))
    assert status == 403
    assert echo["message"].startswith(MISMATCH_INTRO)
    assert "&size=10\nhost:" in echo["message"]


def test_unknown_access_key_is_unrecognized(server):
    """A key the server does not know gets UnrecognizedClientException."""
    signed = botocore_sign("GET", server.url("/x"), credentials=Credentials("AKIDUNKNOWN", "s"))
    status, response, echo = send_signed(server, signed)
    assert status == 403
    assert echo == {"message": "The security token included in the request is invalid."}
    assert response.getheader("x-amzn-ErrorType") == "UnrecognizedClientException"


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["missing", "wrong"])
def test_temporary_key_needs_its_exact_session_token(server, token):
    """A temporary key signed without, or with another, session token is unrecognized."""
    creds = Credentials(SESSION_ACCESS_KEY, SESSION_SECRET_KEY, token)
    status, response, echo = send_signed(
        server, botocore_sign("GET", server.url("/x"), credentials=creds)
    )
    assert status == 403
    assert echo == {"message": "The security token included in the request is invalid."}
    assert response.getheader("x-amzn-ErrorType") == "UnrecognizedClientException"


def test_missing_authentication_is_refused(server):
    """An unsigned request gets 'Missing Authentication Token'."""
    status, response, echo = send(server, "GET", "/prod/x")
    assert status == 403
    assert echo == {"message": "Missing Authentication Token"}
    assert response.getheader("x-amzn-ErrorType") == "MissingAuthenticationTokenException"


def test_non_sigv4_authorization_is_an_incomplete_signature(server):
    """A bearer token where SigV4 is expected lists every missing SigV4 element."""
    status, response, echo = send(server, "GET", "/x", [("Authorization", "eyJhbGciOi.x.y")])
    assert status == 403
    assert response.getheader("x-amzn-ErrorType") == "IncompleteSignatureException"
    assert echo["message"] == (
        "Authorization header requires 'Credential' parameter. Authorization header requires "
        "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=eyJhbGciOi.x.y"
    )


def test_authorization_part_without_equal_sign_is_refused(server):
    """A component that is not key=value gets the missing-equal-sign message."""
    value = "AWS4-HMAC-SHA256 Credential=AK/20240506/us-east-1/execute-api/aws4_request, oops"
    status, _, echo = send(server, "GET", "/x", [("Authorization", value), ("X-Amz-Date", "x")])
    assert status == 403
    assert echo["message"] == (
        "'oops' not a valid key=value pair (missing equal-sign) in Authorization header: "
        f"'{value}'."
    )


def test_header_and_query_auth_together_are_refused(server):
    """Authorization header plus presigned parameters is refused (only one mechanism)."""
    url = botocore_presign(server.url("/x"))
    signed = botocore_sign("GET", server.url("/x"))
    status, _, echo = send_signed(server, signed, target="/" + url.split("/", 3)[3])
    assert status == 403
    assert echo["message"].startswith("Only one auth mechanism allowed")


def test_ipv6_loopback_works():
    """Bound to ::1, the server accepts botocore's header-mode and presigned requests."""
    with running_server(host="::1", clock=lambda: NOW) as srv:
        assert srv.base_url.startswith("http://[::1]:")
        status, _, echo = send_signed(srv, botocore_sign("GET", srv.url("/prod/v6")))
        assert status == 200, echo
        assert echo["headers"]["host"] == f"[::1]:{srv.port}"
        status, _, echo = open_url(botocore_presign(srv.url("/prod/v6")))
        assert status == 200, echo


def test_chunked_body_is_read_and_verified(server):
    """A Transfer-Encoding: chunked body is reassembled and its hash checks out."""
    body = b"0123456789" * 100
    signed = botocore_sign("PUT", server.url("/prod/upload"), body=body)
    status, _, echo = send_signed(server, signed, chunked=True)
    assert status == 200, echo
    assert echo["headers"]["transfer-encoding"] == "chunked"
    assert "content-length" not in echo["headers"]
    assert echo["body_length"] == 1000
    assert echo["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_keep_alive_serves_several_requests_on_one_connection(server):
    """Two signed requests share one HTTP/1.1 connection and both pass."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        for path in ("/one", "/two"):
            signed = botocore_sign("POST", server.url(path), body=b"x")
            status, _, echo = send_signed(server, signed, connection=conn)
            assert status == 200, echo
            sock = conn.sock
        assert sock is conn.sock  # the same socket carried both
    finally:
        conn.close()
    assert [r.target for r in server.requests] == ["/one", "/two"]


def test_plus_in_query_is_read_as_space(server):
    """'+' in a query means space (API Gateway); a client signing it verbatim gets 403."""
    signed = botocore_sign("GET", server.url("/q?a=x+y"))
    status, _, echo = send_signed(server, signed)
    assert status == 403
    assert "\n/q\na=x%20y\n" in echo["message"]

    signed = botocore_sign("GET", server.url("/q?a=x%20y"))
    status, _, echo = send_signed(server, signed, target="/q?a=x+y")
    assert status == 200, echo


def test_query_is_compared_after_decoding_like_api_gateway(server):
    """Escapes of unreserved characters and lowercase hex mean the same query."""
    signed = botocore_sign("GET", server.url("/q?a=%7E%2f"))  # botocore signs it verbatim
    status, _, _ = send_signed(server, signed)
    assert status == 403  # API Gateway reads ~ and %2F, not what botocore hashed
    signed = botocore_sign("GET", server.url("/q?a=~%2F"))
    status, _, echo = send_signed(server, signed, target="/q?a=%7e%2f")
    assert status == 200, echo


def test_repeated_headers_are_joined_with_commas(server):
    """A header sent twice is signed and verified as 'v1,v2' (botocore's rule)."""
    signed = botocore_sign("GET", server.url("/x"), headers=[("X-Dup", "one"), ("X-Dup", " two ")])
    status, _, echo = send_signed(server, signed)
    assert status == 200, echo
    assert echo["headers"]["x-dup"] == "one,two "  # http.client drops the leading space
    assert "\nx-dup:one,two\n" in echo["canonical_request"]


def test_headers_botocore_never_signs_are_verified_when_listed(server, monkeypatch):
    """A client that signs user-agent is verified on it; changing it then fails."""
    monkeypatch.setattr(botocore.auth, "SIGNED_HEADERS_BLACKLIST", [])
    signed = botocore_sign("GET", server.url("/x"), headers=[("User-Agent", "client/1.0")])
    assert "user-agent" in signed.headers["Authorization"]
    status, _, echo = send_signed(server, signed)
    assert status == 200, echo
    headers = [(n, "client/2.0" if n == "User-Agent" else v) for n, v in signed.headers.items()]
    status, _, echo = send_signed(server, signed, headers=headers)
    assert status == 403
    assert "\nuser-agent:client/2.0\n" in echo["message"]


def test_unsigned_headers_may_change(server):
    """Headers outside SignedHeaders (here user-agent) do not affect verification."""
    signed = botocore_sign("GET", server.url("/x"), headers=[("User-Agent", "client/1.0")])
    assert "user-agent" not in signed.headers["Authorization"]
    headers = [(n, "other/9" if n == "User-Agent" else v) for n, v in signed.headers.items()]
    status, _, echo = send_signed(server, signed, headers=headers)
    assert status == 200, echo


def test_date_header_can_replace_x_amz_date(server):
    """botocore signs with Date when the request has one; the server accepts that too."""
    signed = botocore_sign("GET", server.url("/x"), headers=[("Date", "placeholder")])
    assert "X-Amz-Date" not in signed.headers
    status, _, echo = send_signed(server, signed)
    assert status == 200, echo


def test_signed_header_missing_from_the_request_is_refused(server):
    """SignedHeaders naming a header the request lacks is refused, not silently skipped."""
    signed = botocore_sign("GET", server.url("/x"), headers=[("X-Custom", "1")])
    headers = [(n, v) for n, v in signed.headers.items() if n != "X-Custom"]
    status, response, echo = send_signed(server, signed, headers=headers)
    assert status == 403
    assert response.getheader("x-amzn-ErrorType") == "IncompleteSignatureException"
    assert "host;x-amz-date" in echo["message"]


def test_unsigned_payload_is_refused(server):
    """x-amz-content-sha256: UNSIGNED-PAYLOAD verifies in botocore but execute-api refuses it."""
    signed = botocore_sign(
        "POST",
        server.url("/x"),
        headers=[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")],
        body=b"data",
    )
    status, _, echo = send_signed(server, signed)
    assert status == 400
    assert "x-amz-content-sha256" in echo["message"]


def test_double_slash_path_is_taken_from_the_request_line(server):
    """A '//' path (which http.server rewrites) is verified and echoed as sent."""
    signed = botocore_sign("GET", server.url("//prod//a/./b/"))
    status, _, echo = send_signed(server, signed)
    assert status == 200, echo
    assert echo["path"] == "//prod//a/./b/"
    assert echo["canonical_request"].startswith("GET\n/prod/a/b/\n")


def test_every_response_has_a_date_from_the_server_clock(server):
    """Errors carry the server's Date as well, for clock-skew correction."""
    status, response, _ = send(server, "GET", "/x")
    assert status == 403
    assert response.getheader("Date") == "Mon, 06 May 2024 07:08:09 GMT"


def test_head_gets_headers_without_a_body(server):
    """A signed HEAD is answered with Content-Length but no body, keeping the connection sane."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        status, response, echo = send_signed(
            server, botocore_sign("HEAD", server.url("/x")), connection=conn
        )
        assert (status, echo) == (200, None)
        assert int(response.getheader("Content-Length")) > 0
        status, _, _ = send_signed(server, botocore_sign("GET", server.url("/y")), connection=conn)
        assert status == 200
    finally:
        conn.close()


def test_redirect_unsigned_answers_without_verification(server):
    """/redirect-unsigned redirects an unsigned request to ?to= with ?status=."""
    status, response, _ = send(server, "GET", "/redirect-unsigned?to=/landing&status=307")
    assert status == 307
    assert response.getheader("Location") == "/landing"
    assert response.getheader("x-amzn-ErrorType") is None


def test_redirect_verifies_before_redirecting(server):
    """/redirect refuses an unsigned request and redirects a signed one (302 by default)."""
    status, _, echo = send(server, "GET", "/redirect?to=http://example.invalid/next")
    assert (status, echo) == (403, {"message": "Missing Authentication Token"})
    signed = botocore_sign("GET", server.url("/redirect?to=http%3A%2F%2F127.0.0.1%2Fnext"))
    status, response, echo = send_signed(server, signed)
    assert status == 302, echo
    assert response.getheader("Location") == "http://127.0.0.1/next"
    signed = botocore_sign("POST", server.url("/redirect/deeper?to=%2Fn&status=308"), body=b"b")
    status, response, _ = send_signed(server, signed)
    assert (status, response.getheader("Location")) == (308, "/n")


def test_slow_route_answers_after_the_wait(server):
    """/slow?ms=N answers a signed request normally once its wait is over (that it waits: the
    client timeout below).
    """
    signed = botocore_sign("GET", server.url("/slow?ms=50"))
    status, _, echo = send_signed(server, signed)
    assert status == 200, echo


def test_client_timeout_on_slow_route_and_stop_ends_the_wait():
    """A client times out on /slow; stop() then ends the wait at once and joins every thread."""
    srv = AwsServer(clock=lambda: NOW).start()
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            send(srv, "GET", "/slow?ms=60000", connection=conn)
    finally:
        conn.close()
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    stopper.join(timeout=30)  # a hang guard: the wait it must cut short is 60 s
    assert not stopper.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith("aws-server-")]


def test_stop_closes_idle_keep_alive_connections():
    """stop() does not wait for a client that keeps its connection open."""
    srv = AwsServer(clock=lambda: NOW).start()
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        status, _, _ = send(srv, "GET", "/x", connection=conn)
        assert status == 403
        srv.stop()
        with pytest.raises((http.client.HTTPException, OSError)):
            send(srv, "GET", "/x", connection=conn)
    finally:
        conn.close()
    with pytest.raises(RuntimeError):
        _ = srv.port


def test_server_socket_is_closed_after_stop():
    """After the context manager exits, nothing listens on the port any more."""
    with running_server() as srv:
        port = srv.port
    with contextlib.closing(socket.socket()) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))


def test_request_log_records_outcomes(server):
    """The log keeps method, target, status, mode and error type of every request, in order."""
    send_signed(server, botocore_sign("PUT", server.url("/ok?a=1"), body=b"xyz"))
    send(server, "GET", "/denied")
    open_url(botocore_presign(server.url("/pre")))
    records = server.requests
    assert server.request_count == 3
    assert [(r.method, r.status, r.verified, r.auth_mode, r.error_type) for r in records] == [
        ("PUT", 200, True, "header", None),
        ("GET", 403, False, None, "MissingAuthenticationTokenException"),
        ("GET", 200, True, "query", None),
    ]
    assert records[0].target == "/ok?a=1"
    assert records[0].body_sha256 == hashlib.sha256(b"xyz").hexdigest()
    assert records[1].message == "Missing Authentication Token"
    assert ("Host", f"127.0.0.1:{server.port}") in records[1].headers
    server.clear_log()
    assert server.requests == []


def test_concurrent_requests_are_all_served(server):
    """Requests from several threads at once are each verified (threaded server)."""
    results = []

    def call(i):
        status, _, _ = send_signed(server, botocore_sign("GET", server.url(f"/slow?ms=20&i={i}")))
        results.append(status)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    assert server.request_count == 8
