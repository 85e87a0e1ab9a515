"""IamAuthServer over real loopback sockets: signed calls accepted, tampering refused like AWS."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import inspect
import json
import logging
import re
import socket
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import parse_qs, quote, urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import httpx
import pytest
import requests
from awscrt import auth as crt_auth
from awscrt import http as crt_http

from apigw_iam_auth.errors import InvalidConfigError, NoCredentialsError
from apigw_iam_auth.server import (
    UNSIGNED_PAYLOAD,
    IamAuthServer,
    KnownKey,
    RequestRecord,
    keys_from_env,
    load_keys,
    load_policy,
)
from apigw_iam_auth.signer import SigV4Signer

T = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
UNSIGNED = UNSIGNED_PAYLOAD
ACCOUNT = "111122223333"
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TEMP_KEY, TEMP_SECRET, TOKEN = "ASIAEXAMPLE", "temp/secret", "FQoGZXIvYXdzEJr//session+token=="
KEYS = {
    KEY: KnownKey(SECRET, account_id=ACCOUNT),
    TEMP_KEY: KnownKey(TEMP_SECRET, token=TOKEN, account_id=ACCOUNT),
}
# Requests go straight to the loopback server, never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def clock() -> datetime:
    return T


@pytest.fixture
def server():
    with IamAuthServer(keys=KEYS, clock=clock) as running:
        yield running


def signer(credentials=(KEY, SECRET), region="us-east-1") -> SigV4Signer:
    return SigV4Signer(region, credentials=credentials)


def urlopen(method, url, headers=None, body=None):
    """Status, headers and decoded JSON body of one urllib request (errors included)."""
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310 - loopback http URLs only, asserted above
        url, data=body, headers=dict(headers or {}), method=method
    )
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except HTTPError as error:
        try:
            return error.code, error.headers, json.loads(error.read())
        finally:
            error.close()


def raw(server, method, target, headers, body=b""):
    """Send exactly this request-target and these headers with http.client."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        framed = {"content-length", "transfer-encoding"}
        if body and not any(n.lower() in framed for n, _ in headers):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, response.headers, json.loads(response.read())
    finally:
        connection.close()


def exchange(server, head: list[bytes], body: bytes = b"") -> bytes:
    """Send these exact request bytes, end the sending side, and return the whole reply."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        with sock.makefile("rb") as replies:
            return replies.read()


def target_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def signed_raw(server, method="POST", path="/prod/pets?q=1", body=b'{"a":1}', **kwargs):
    """A header-signed request as (method, target, headers, body), ready for ``raw``."""
    credentials = kwargs.pop("credentials", (KEY, SECRET))
    headers = kwargs.pop("headers", {"Content-Type": "application/json", "X-Custom": "one"})
    signed = signer(credentials, **kwargs).sign(
        method, server.url + path, headers=headers, body=body, timestamp=T
    )
    return method, target_of(signed.url), list(signed.headers.items()), body


def test_header_signed_get_is_accepted_and_echoed(server):
    """A header-signed GET is answered 200 with the request echoed back as JSON."""
    signed = signer().sign("GET", f"{server.url}/prod/pets/a%20b?z=1&a=x%20y", timestamp=T)
    status, headers, echo = urlopen("GET", signed.url, signed.headers)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["x-amzn-RequestId"]
    assert headers["Date"] == "Wed, 01 May 2024 12:00:00 GMT"
    assert echo["method"] == "GET"
    assert echo["path"] == "/prod/pets/a%20b"
    assert sorted(echo["query"]) == [["a", "x y"], ["z", "1"]]
    assert echo["body"] == {
        "length": 0,
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
    assert echo["caller"] == {
        "access_key": KEY,
        "account_id": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{KEY}",
        "signature_location": "headers",
        "signed_headers": ["host", "x-amz-date"],
    }


def test_post_body_is_verified_and_hashed(server):
    """A signed POST body (Content-Length) is verified and echoed by length and SHA-256."""
    status, _, echo = raw(server, *signed_raw(server))
    assert status == 200
    assert echo["body"]["length"] == 7
    assert echo["caller"]["signed_headers"] == ["content-type", "host", "x-amz-date", "x-custom"]


def test_chunked_body_is_verified(server):
    """A body sent with Transfer-Encoding: chunked is reassembled and verified."""
    body = b"hello chunked world"
    signed = signer().sign("PUT", f"{server.url}/prod/upload", body=body, timestamp=T)
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(
            "PUT",
            "/prod/upload",
            body=iter([body[:5], body[5:]]),
            headers=dict(signed.headers),
            encode_chunked=True,
        )
        response = connection.getresponse()
        echo = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 200
    assert echo["body"]["length"] == len(body)
    assert ["Transfer-Encoding", "chunked"] in echo["headers"]


def test_presigned_url_opens_with_plain_urllib(server):
    """A presigned URL needs nothing but urllib: no headers, no credentials."""
    url = signer().presign("GET", f"{server.url}/prod/pets?q=1", timestamp=T)
    status, _, echo = urlopen("GET", url)
    assert status == 200
    assert echo["caller"]["signature_location"] == "query"
    assert ["q", "1"] in echo["query"]


def test_presigned_url_with_session_token_is_accepted_and_redacted(server):
    """A presigned URL from temporary credentials works; the echo hides token and signature."""
    url = signer((TEMP_KEY, TEMP_SECRET, TOKEN)).presign("GET", f"{server.url}/prod/x", timestamp=T)
    status, _, echo = urlopen("GET", url)
    assert status == 200
    assert echo["caller"]["access_key"] == TEMP_KEY
    query = dict(echo["query"])
    assert query["X-Amz-Security-Token"] == "<redacted>"
    assert query["X-Amz-Signature"] == "<redacted>"
    assert TOKEN not in json.dumps(echo)


def test_header_echo_redacts_token_and_signature(server):
    """The echoed Authorization keeps the credential but not the signature; the token is hidden."""
    request = signed_raw(server, credentials=(TEMP_KEY, TEMP_SECRET, TOKEN))
    status, _, echo = raw(server, *request)
    assert status == 200
    headers = {name.lower(): value for name, value in echo["headers"]}
    assert headers["authorization"].endswith("Signature=<redacted>")
    assert f"Credential={TEMP_KEY}/" in headers["authorization"]
    assert headers["x-amz-security-token"] == "<redacted>"


def test_keep_alive_connection_serves_several_requests(server):
    """HTTP/1.1 keep-alive: two signed requests travel over one connection."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        statuses, sockets = [], []
        for path in ("/prod/one", "/prod/two"):
            signed = signer().sign("GET", server.url + path, timestamp=T)
            connection.request("GET", path, headers=dict(signed.headers))
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            sockets.append(connection.sock)
            assert not response.will_close
    finally:
        connection.close()
    assert statuses == [200, 200]
    assert sockets[0] is sockets[1]


def test_head_request_gets_headers_only(server):
    """HEAD is verified like GET and answered without a body."""
    signed = signer().sign("HEAD", f"{server.url}/prod/pets", timestamp=T)
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("HEAD", "/prod/pets", headers=dict(signed.headers))
        response = connection.getresponse()
        assert response.read() == b""
    finally:
        connection.close()
    assert response.status == 200
    assert int(response.headers["Content-Length"]) > 0


def _botocore_signed_head(
    live: IamAuthServer, headers: dict[str, str], *, token: bool = False
) -> list[bytes]:
    """A GET's request line and header lines, signed by botocore at the real clock, as text."""
    request = botocore.awsrequest.AWSRequest("GET", f"{live.url}/prod/pets", headers=headers)
    credentials = (
        botocore.credentials.Credentials(TEMP_KEY, TEMP_SECRET, TOKEN)
        if token
        else botocore.credentials.Credentials(KEY, SECRET)
    )
    botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    host = urlsplit(live.url).netloc
    lines = [f"{name}: {value}" for name, value in request.headers.items()]
    return [b"GET /prod/pets HTTP/1.1", f"Host: {host}".encode(), b"Connection: close"] + [
        line.encode() for line in lines
    ]


def test_folded_header_value_is_verified_as_one_line():
    """A value folded over several lines (obs-fold) is read as one, as the signer saw it.

    AWS's vector get-header-value-multiline signs such a value as ``value1 value2 value3``.
    """
    with IamAuthServer(keys=KEYS) as live:  # the real clock, as botocore signs with it
        head = _botocore_signed_head(live, {"My-Header1": "value1 value2 value3"})
        folded = [
            b"My-Header1: value1\r\n  value2\r\n     value3" if line.startswith(b"My-") else line
            for line in head
        ]
        reply = exchange(live, folded)
    assert reply.startswith(b"HTTP/1.1 200 "), reply


@pytest.mark.parametrize("name", ["X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256"])
@pytest.mark.parametrize("after", [b" ", b"\t", b" \t "])
def test_spaces_after_a_header_value_are_not_part_of_it(name, after):
    """RFC 9112 section 5.1: whitespace around a field value is not part of it. A botocore-
    signed request whose date, token or body hash line ends in spaces or tabs verifies."""
    with IamAuthServer(keys=KEYS) as live:
        head = _botocore_signed_head(
            live, {"X-Amz-Content-SHA256": hashlib.sha256(b"").hexdigest()}, token=True
        )
        prefix = name.lower().encode() + b":"
        spaced = [line + after if line.lower().startswith(prefix) else line for line in head]
        assert spaced != head
        reply = exchange(live, spaced)
    assert reply.startswith(b"HTTP/1.1 200 "), reply


def test_header_value_of_utf8_bytes_is_verified_over_those_bytes():
    """A value sent as UTF-8 bytes verifies when signed over that text, as botocore signs it."""
    with IamAuthServer(keys=KEYS) as live:
        reply = exchange(live, _botocore_signed_head(live, {"X-Meta": "caf\u00e9 \u2713"}))
    assert reply.startswith(b"HTTP/1.1 200 "), reply


def _crt_signed_head(server, value: str) -> list[bytes]:
    """A GET /prod/pets whose X-Meta holds ``value``, signed by awscrt (aws-c-auth) now."""
    host = urlsplit(server.url).netloc
    request = crt_http.HttpRequest(
        "GET", "/prod/pets", crt_http.HttpHeaders([("Host", host), ("X-Meta", value)])
    )
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(KEY, SECRET),
        region="us-east-1",
        service="execute-api",
    )
    signed = crt_auth.aws_sign_request(request, config).result(10).headers
    return [b"GET /prod/pets HTTP/1.1", b"Connection: close"] + [
        f"{name}: {text}".encode() for name, text in signed
    ]


@pytest.mark.parametrize("value", ["a\u00a0b", "tail\u00a0", "a\u3000b", "a\u0085b", "a\x1cb"])
def test_whitespace_only_python_folds_is_read_as_aws_signers_read_it(value):
    """Unicode spaces and 0x1C-0x1F are whitespace to Python's str.split (botocore's reading)
    but not to aws-c-auth or the AWS SDK for Java, which fold ASCII whitespace only: a value
    holding one verifies as awscrt signed it, and botocore's signature over it does not.
    """
    with IamAuthServer(keys=KEYS) as live:
        by_crt = exchange(live, _crt_signed_head(live, value))
        by_botocore = exchange(live, _botocore_signed_head(live, {"X-Meta": value}))
        refused = live.requests[-1]
    assert by_crt.startswith(b"HTTP/1.1 200 "), by_crt
    assert by_botocore.startswith(b"HTTP/1.1 403 "), by_botocore
    assert refused.likely_cause.startswith(  # the probe re-folded it as botocore does: verified
        "header 'x-meta' was signed with a character folded as whitespace, as botocore's"
    )


@pytest.mark.parametrize("value", ["a\u00a0b", "a\u00a0\u00a0b", "tail\u00a0", "a\u0085b"])
def test_whitespace_python_folds_sent_as_latin1_is_named_as_the_cause(value):
    """botocore's own session sends a str value as Latin-1 (http.client): U+00A0 arrives as the
    byte 0xA0, and the log still names the folding, not the secret key."""
    with IamAuthServer(keys=KEYS) as live:
        head = _botocore_signed_head(live, {"X-Meta": value})
        reply = exchange(live, [line.decode().encode("latin-1") for line in head])
        refused = live.requests[-1]
    assert reply.startswith(b"HTTP/1.1 403 "), reply
    assert refused.likely_cause.startswith(
        "header 'x-meta' was signed with a character folded as whitespace, as botocore's"
    ), refused.likely_cause


@pytest.mark.parametrize(
    ("headers", "cause"),
    [
        ({"X-Meta": "caf\u00e9"}, "header 'x-meta' was"),
        ({"X-Name": "M\u00fcller", "X-City": "Z\u00fcrich"}, "headers 'x-city', 'x-name' were"),
    ],
)
def test_headers_signed_as_text_but_sent_as_latin1_are_named_as_the_cause(headers, cause):
    """urllib3 sends str header values as Latin-1, botocore signed their UTF-8: the log names
    every such header (one signature check reads them all as Latin-1)."""
    with IamAuthServer(keys=KEYS) as live:
        head = _botocore_signed_head(live, headers)
        reply = exchange(live, [line.decode("utf-8").encode("latin-1") for line in head])
        [record] = live.requests
    assert reply.startswith(b"HTTP/1.1 403 "), reply
    assert record.likely_cause.startswith(f"{cause} signed as text but sent as Latin-1")


def test_echo_shows_header_bytes_that_are_not_utf8_escaped_in_valid_json():
    """An unsigned header of raw bytes is echoed escaped: strict JSON parsers read the echo."""
    with IamAuthServer(keys=KEYS) as live:
        reply = exchange(live, [*_botocore_signed_head(live, {}), b"X-Raw: caf\xe9"])
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    echo = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert ["X-Raw", "caf\\xe9"] in echo["headers"]
    echo_text = json.dumps(echo, ensure_ascii=False)
    echo_text.encode("utf-8")  # no lone surrogate left


def test_echo_shows_query_bytes_that_are_not_utf8_escaped_in_valid_json(server):
    """A query value percent-encoding bytes that are not UTF-8 is echoed escaped too."""
    signed = signer().sign("GET", f"{server.url}/prod/q?a=%FF&b=caf%E9", timestamp=T)
    status, _, echo = raw(server, "GET", target_of(signed.url), list(signed.headers.items()))
    assert status == 200
    assert echo["query"] == [["a", "\\xff"], ["b", "caf\\xe9"]]
    json.dumps(echo, ensure_ascii=False).encode("utf-8")  # no lone surrogate left


# --- each tampering of a valid request is refused with API Gateway's status and message -----

MISMATCH = "The request signature we calculated does not match the signature you provided."
INVALID_TOKEN = "The security token included in the request is invalid."


def _replace(headers, name, value):
    return [(n, value if n.lower() == name.lower() else v) for n, v in headers]


def _method(s):
    _, target, headers, body = signed_raw(s)
    return "PUT", target, headers, body


def _path(s):
    method, target, headers, body = signed_raw(s)
    return method, target.replace("/pets", "/cats"), headers, body


def _query(s):
    method, target, headers, body = signed_raw(s)
    return method, target.replace("q=1", "q=2"), headers, body


def _header(s):
    method, target, headers, body = signed_raw(s)
    return method, target, _replace(headers, "X-Custom", "two"), body


def _body(s):
    method, target, headers, _ = signed_raw(s)
    return method, target, headers, b'{"a":2}'


def _date(s):
    method, target, headers, body = signed_raw(s)
    return method, target, _replace(headers, "X-Amz-Date", "20240501T120001Z"), body


def _scope(s):
    return signed_raw(s, region="eu-west-1")


def _expired_link(s):
    url = signer().presign(
        "GET", f"{s.url}/prod/pets", expires=900, timestamp=T - timedelta(hours=1)
    )
    return "GET", target_of(url), [("Host", urlsplit(s.url).netloc)], b""


def _unknown_key(s):
    return signed_raw(s, credentials=("AKIDUNKNOWN", SECRET))


def _bad_token(s):
    return signed_raw(s, credentials=(TEMP_KEY, TEMP_SECRET, "not-the-token"))


def _unsigned(s):
    return "GET", "/prod/pets", [("Host", urlsplit(s.url).netloc)], b""


@pytest.mark.parametrize(
    ("tamper", "error_type", "message"),
    [
        (_method, "InvalidSignatureException", MISMATCH),
        (_path, "InvalidSignatureException", MISMATCH),
        (_query, "InvalidSignatureException", MISMATCH),
        (_header, "InvalidSignatureException", MISMATCH),
        (_body, "InvalidSignatureException", MISMATCH),
        (_date, "InvalidSignatureException", MISMATCH),
        (
            _scope,
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'eu-west-1'. ",
        ),
        (
            _expired_link,
            "InvalidSignatureException",
            (
                "Signature expired: 20240501T110000Z is now earlier than 20240501T114500Z "
                "(20240501T120000Z - 15 min.)"
            ),
        ),
        (_unknown_key, "UnrecognizedClientException", INVALID_TOKEN),
        (_bad_token, "UnrecognizedClientException", INVALID_TOKEN),
        (_unsigned, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    ],
)
def test_tampered_request_is_refused_like_api_gateway(server, tamper, error_type, message):
    """Each tampering gets 403, API Gateway's x-amzn-ErrorType and its message text."""
    status, headers, body = raw(server, *tamper(server))
    assert status == 403
    assert headers["x-amzn-ErrorType"] == error_type
    assert headers["x-amzn-RequestId"]
    assert headers["Date"] == "Wed, 01 May 2024 12:00:00 GMT"
    assert list(body) == ["message"]
    if message == MISMATCH:
        assert body["message"].startswith(MISMATCH)
        assert "The Canonical String for this request should have been" in body["message"]
    else:
        assert body["message"] == message


def test_expired_header_signature_is_refused_by_the_server_clock():
    """The server judges skew by its own (injected) clock, like API Gateway."""
    with IamAuthServer(keys=KEYS, clock=lambda: T + timedelta(minutes=6)) as late:
        status, _, body = raw(late, *signed_raw(late))
    assert status == 403
    assert body["message"] == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120100Z "
        "(20240501T120600Z - 5 min.)"
    )


# --- policy ---------------------------------------------------------------------------------

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "execute-api:*",
            "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123/*/DELETE/*",
        },
    ],
}


@pytest.fixture
def guarded():
    with IamAuthServer(
        keys=KEYS, clock=clock, policy=POLICY, api_id="abc123", account_id=ACCOUNT
    ) as running:
        yield running


def test_policy_allows_matching_invoke(guarded):
    """A request the policy allows gets through."""
    status, _, _ = raw(guarded, *signed_raw(guarded, method="GET", body=b""))
    assert status == 200


def test_policy_deny_answers_access_denied(guarded):
    """An explicitly denied call gets AccessDeniedException and AWS's capital-M message."""
    status, headers, body = raw(guarded, *signed_raw(guarded, method="DELETE", body=b""))
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert body == {
        "Message": f"User: arn:aws:iam::{ACCOUNT}:user/{KEY} is not authorized to perform: "
        "execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-east-1:********3333:abc123/prod/DELETE/pets with an explicit deny"
    }


SHORTHAND_POLICY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/*",
        },
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "execute-api:Invoke",
            "Resource": "execute-api:/prod/DELETE/*",
        },
    ]
}


@pytest.mark.parametrize(("method", "expected"), [("GET", 200), ("DELETE", 403)])
def test_policy_shorthand_stands_for_the_servers_api(method, expected):
    """execute-api:/... resources are expanded with region, account and api id: both apply."""
    with IamAuthServer(
        keys=KEYS, clock=clock, policy=SHORTHAND_POLICY, api_id="abc123", account_id=ACCOUNT
    ) as shorthand:
        status, _, body = raw(shorthand, *signed_raw(shorthand, method=method, body=b""))
    assert status == expected
    if expected == 403:
        denied = "arn:aws:execute-api:us-east-1:********3333:abc123/prod/DELETE/pets"
        assert body["Message"].endswith(f"{denied} with an explicit deny")


@pytest.mark.parametrize(
    "path",
    ["/prod/admin", "/prod//admin", "/prod/x/../admin", "/prod/%61dmin", "/prod/./admin"],
)
def test_policy_deny_covers_every_spelling_the_signature_covers(path):
    """Spellings of a denied path that verify with its signature are denied too, not let by."""
    policy = {
        "Statement": [
            SHORTHAND_POLICY["Statement"][0],
            {**SHORTHAND_POLICY["Statement"][1], "Resource": "execute-api:/prod/GET/admin"},
        ]
    }
    with IamAuthServer(keys=KEYS, policy=policy, account_id=ACCOUNT, api_id="abc123") as live:
        netloc = urlsplit(live.url).netloc
        headers = _signed_for_host(f"{live.url}{path}", netloc)
        reply = exchange(
            live, [f"GET {path} HTTP/1.1".encode(), f"Host: {netloc}".encode(), *headers]
        )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 "), reply
    denied = "arn:aws:execute-api:us-east-1:********3333:abc123/prod/GET/admin"
    assert json.loads(body)["Message"].endswith(f"{denied} with an explicit deny")


def test_policy_file_may_use_the_shorthand(tmp_path):
    """load_policy accepts execute-api:/... since the server it is passed to knows the API."""
    file = tmp_path / "policy.json"
    file.write_text(json.dumps(SHORTHAND_POLICY), encoding="utf-8")
    assert load_policy(file) == SHORTHAND_POLICY


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({"keys": {KEY: SECRET}}, "keys['AKIDEXAMPLE'] must be a KnownKey"),
        ({"keys": [(KEY, KEYS[KEY])]}, "keys must map access key ids to KnownKey"),
        ({"keys": {"": KEYS[KEY]}}, "access key ids"),
        (  # a key no client could sign with: every call would be a 403
            {"keys": {"AKID EXAMPLE": KEYS[KEY]}},
            "a key of the server's keys: access key must be ASCII letters",
        ),
        (
            {"keys": {KEY: KnownKey(f"{SECRET}\n")}},
            f"key {KEY} of the server's keys: secret key must be printable ASCII",
        ),
        ({"max_skew": timedelta(minutes=-1)}, "max_skew must be a timedelta of zero or more"),
        ({"max_skew": 300}, "max_skew must be a timedelta"),
        ({"clock": lambda: T.replace(tzinfo=None)}, "clock must return an aware datetime"),
        ({"clock": T}, "clock must be a callable"),
        ({"account_id": "my-account"}, "account_id must be 12 digits"),
        ({"account_id": 111122223333}, "account_id must be 12 digits"),
        ({"api_id": ""}, "api_id must be an API id"),
        ({"api_id": "abc/prod"}, "api_id must be an API id"),
    ],
)
def test_bad_settings_fail_at_construction_not_as_a_500_per_request(settings, complaint):
    """Keys, max_skew, clock and account_id are checked before anything listens."""
    with pytest.raises(InvalidConfigError, match=re.escape(complaint)) as raised:
        IamAuthServer(**{"keys": KEYS, "clock": clock, **settings})
    assert SECRET not in str(raised.value)


def test_invalid_policy_fails_at_construction():
    """A policy the server cannot evaluate is refused before anything listens."""
    with pytest.raises(InvalidConfigError, match="Condition"):
        IamAuthServer(
            keys=KEYS, policy={"Statement": [{**POLICY["Statement"][0], "Condition": {}}]}
        )


# --- HTTP framing errors ---------------------------------------------------------------------


@pytest.mark.parametrize("length", ["x", "\u00b2", "-1"])
def test_invalid_content_length_is_a_bad_request(server, length):
    """A non-numeric Content-Length (a superscript two too) gets 400, the connection closed."""
    host = urlsplit(server.url).netloc
    sent = [("Host", host), ("Content-Length", length)]
    status, headers, body = raw(server, "POST", "/prod", sent)
    assert status == 400
    assert headers["Connection"] == "close"
    assert body == {"message": "Invalid Content-Length"}


@pytest.mark.parametrize("digits", [4301, 5000, 60_000])  # http.server takes lines to 64 KiB
def test_content_length_of_thousands_of_digits_is_too_large_not_a_dropped_connection(
    server, digits
):
    """A length int() refuses to convert is answered 413 and recorded, like any too long body."""
    host = urlsplit(server.url).netloc
    sent = [("Host", host), ("Content-Length", "9" * digits)]
    status, headers, body = raw(server, "POST", "/prod", sent)
    assert status == 413
    assert headers["Connection"] == "close"
    assert body == {"message": "Request Too Long"}
    [record] = server.requests
    assert (record.status, record.reason) == (413, "Request Too Long")


def test_content_length_with_leading_zeros_is_its_number(server):
    """Zeros before the digits change nothing: the body is read and verified as usual."""
    method, target, headers, body = signed_raw(server)
    headers = [*headers, ("Content-Length", "0" * 5000 + str(len(body)))]
    status, _, echo = raw(server, method, target, headers, body)
    assert status == 200
    assert echo["body"]["length"] == len(body)


SMUGGLED = b"GET /prod/smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


@pytest.mark.parametrize(
    ("framing", "message"),
    [
        (
            [b"Content-Length: 0", b"Content-Length: %d" % len(SMUGGLED)],
            "Multiple Content-Length values",
        ),
        ([b"Content-Length: 0, %d" % len(SMUGGLED)], "Multiple Content-Length values"),
        ([b"Transfer-Encoding: gzip", b"Content-Length: 0"], "Invalid Transfer-Encoding"),
        ([b"Transfer-Encoding: chunked, identity"], "Invalid Transfer-Encoding"),
        ([b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip"], "Invalid Transfer-Encoding"),
        ([b"Transfer-Encoding: xchunked"], "Invalid Transfer-Encoding"),
    ],
)
def test_ambiguous_body_framing_is_refused_so_no_request_hides_in_the_body(
    server, framing, message
):
    """Framing a proxy could read otherwise gets one 400 and a closed connection (RFC 9112 6.3)."""
    host = urlsplit(server.url).netloc.encode()
    reply = exchange(server, [b"POST /prod/x HTTP/1.1", b"Host: " + host, *framing], SMUGGLED)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert reply.count(b"HTTP/1.1 ") == 1
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close\r\n" in head + b"\r\n"
    assert json.loads(body) == {"message": message}
    assert [(r.path, r.status, r.reason) for r in server.requests] == [("/prod/x", 400, message)]


@pytest.mark.parametrize("second", ["{n}", "0{n}", " {n}, {n}"])
def test_repeated_identical_content_length_is_one_length(server, second):
    """The same value sent twice (or with a leading zero, or as a list) is no conflict."""
    method, target, headers, body = signed_raw(server)
    lengths = [("Content-Length", str(len(body))), ("Content-Length", second.format(n=len(body)))]
    status, _, echo = raw(server, method, target, [*headers, *lengths], body)
    assert status == 200
    assert echo["body"]["length"] == len(body)


@pytest.mark.parametrize(
    "framing",
    [[("Transfer-Encoding", "chunked, ")], [("Transfer-Encoding", ", chunked")]],
)
def test_empty_transfer_coding_elements_are_ignored(server, framing):
    """A list's empty elements count for nothing (RFC 9110 section 5.6.1): still chunked."""
    method, target, headers, body = signed_raw(server)
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, _, echo = raw(server, method, target, [*headers, *framing], chunked)
    assert status == 200
    assert echo["body"]["length"] == len(body)


def test_chunked_body_with_content_length_is_read_chunked_and_the_connection_closed(server):
    """Transfer-Encoding wins over Content-Length; the connection is not reused after it."""
    method, target, headers, body = signed_raw(server)
    framing = [("Transfer-Encoding", "chunked"), ("Content-Length", "0")]
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, reply_headers, echo = raw(server, method, target, [*headers, *framing], chunked)
    assert status == 200
    assert echo["body"]["length"] == len(body)
    assert reply_headers["Connection"] == "close"


@pytest.mark.parametrize("size", [b"zz", b"-1", b"0x5", b"+5"])
def test_malformed_chunked_body_is_a_bad_request(server, size):
    """A chunk size that is not plain hexadecimal gets 400 instead of a hung connection."""
    host = urlsplit(server.url).netloc
    headers = [("Host", host), ("Transfer-Encoding", "chunked")]
    chunked = size + b"\r\nhello\r\n0\r\n\r\n"
    status, _, body = raw(server, "POST", "/prod", headers, chunked)
    assert status == 400
    assert body == {"message": "Invalid chunked encoding"}


@pytest.mark.parametrize(
    ("chunked", "message"),
    [
        pytest.param(
            b"5\r\nhelloXXXXXX\r\n0\r\n\r\n",
            b'{"message":"Invalid chunked encoding"}',
            id="data-not-followed-by-CRLF",
        ),
        pytest.param(  # read in part, the line's end "hello" was taken as the chunk's data
            b"5;" + b"a" * 1022 + b"hello\r\n0\r\n\r\n",
            b'{"message":"Incomplete request body"}',  # the 5 bytes after the line, then EOF
            id="size-line-over-1024-bytes",
        ),
        pytest.param(
            b"5;" + b"a" * 9000 + b"\r\nhello\r\n0\r\n\r\n",
            b'{"message":"Invalid chunked encoding"}',
            id="size-line-too-long",
        ),
        pytest.param(
            b"0\r\nX-Trailer: " + b"a" * 9000 + b"\r\n\r\n",
            b'{"message":"Invalid chunked encoding"}',
            id="trailer-too-long",
        ),
        pytest.param(
            b"0\r\n" + b"X-Trailer: a\r\n" * 101 + b"\r\n",
            b'{"message":"Invalid chunked encoding"}',
            id="too-many-trailers",
        ),
        pytest.param(  # the connection ends in the last size line: a cut body, not a tampered one
            b"5\r\nhello\r\n0",
            b'{"message":"Incomplete request body"}',
            id="last-size-line-cut",
        ),
    ],
)
def test_chunked_framing_is_read_whole_and_strictly(server, chunked, message):
    """No body is taken from a line read in part, or from data not followed by CRLF.

    Either would let this server and a proxy in front disagree on where the body ends.
    """
    host = urlsplit(server.url).netloc
    head = [b"POST /prod HTTP/1.1", f"Host: {host}".encode(), b"Transfer-Encoding: chunked"]
    reply = exchange(server, head, chunked)
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert reply.endswith(message)


@pytest.mark.parametrize(
    "chunked",
    [
        pytest.param(b"5\nhello\n0\n\n", id="bare-LF"),
        pytest.param(b"5\r\nhello\n0\r\n\r\n", id="bare-LF-after-data"),
        pytest.param(b"0\r\n" + b"X-Trailer: a\r\n" * 100 + b"\r\n", id="100-trailers"),
    ],
)
def test_chunked_framing_with_bare_lf_line_ends_is_read(server, chunked):
    """A bare LF ends a framing line wherever CRLF does (this body then reaches the verifier)."""
    host = urlsplit(server.url).netloc
    head = [b"POST /prod HTTP/1.1", f"Host: {host}".encode(), b"Transfer-Encoding: chunked"]
    reply = exchange(server, head, chunked)
    assert reply.startswith(b"HTTP/1.1 403 "), reply
    assert reply.endswith(b'{"message":"Missing Authentication Token"}')


def test_oversized_body_is_refused_before_reading(server):
    """A body over API Gateway's 10 MB limit gets 413 without being read."""
    host = urlsplit(server.url).netloc
    headers = [("Host", host), ("Content-Length", str(11 * 1024 * 1024))]
    status, _, body = raw(server, "POST", "/prod", headers)
    assert status == 413
    assert body == {"message": "Request Too Long"}


def test_oversized_chunk_is_refused_before_reading(server):
    """A chunk announcing more than the 10 MB limit gets 413 before any of it is read."""
    host = urlsplit(server.url).netloc
    head = [b"POST /prod HTTP/1.1", f"Host: {host}".encode(), b"Transfer-Encoding: chunked"]
    reply = exchange(server, head, b"A00001\r\n")
    assert reply.startswith(b"HTTP/1.1 413 "), reply
    assert reply.endswith(b'{"message":"Request Too Long"}')


def server_whose_clock_breaks() -> IamAuthServer:
    """A server whose clock raises at every reading once it is constructed."""
    constructed = threading.Event()

    def clock() -> datetime:
        if constructed.is_set():
            raise RuntimeError("the clock broke")
        return T

    server = IamAuthServer(keys=KEYS, clock=clock)
    constructed.set()
    return server


def test_server_fault_answers_500_and_logs(caplog):
    """A failure inside the server (here a broken clock) answers 500, not a dropped socket;
    its Date is the system's time.
    """
    broken = server_whose_clock_breaks()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    with broken, caplog.at_level(logging.ERROR, logger="apigw_iam_auth.server"):
        status, headers, body = raw(broken, *signed_raw(broken))
    assert status == 500
    assert body == {"message": "Internal server error"}
    assert parsedate_to_datetime(headers["Date"]) >= before
    assert "internal error" in caplog.text


def test_the_clock_is_read_once_per_request_and_dates_its_answer():
    """A request is verified at the reading its Date header shows: one reading per request."""
    readings: list[datetime] = []

    def ticking() -> datetime:  # a second later at each reading
        readings.append(T + timedelta(seconds=len(readings)))
        return readings[-1]

    with IamAuthServer(keys=KEYS, clock=ticking) as live:
        before = len(readings)
        answers = [raw(live, *signed_raw(live)) for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert len(readings) - before == 3
    dates = [headers["Date"] for _, headers, _ in answers]
    assert dates == [format_datetime(reading, usegmt=True) for reading in readings[before:]]


# --- lifecycle and logs -----------------------------------------------------------------------


def test_stop_closes_idle_keep_alive_connections():
    """stop() returns promptly even while a client holds a keep-alive connection open."""
    running = IamAuthServer(keys=KEYS, clock=clock).start()
    parts = urlsplit(running.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        signed = signer().sign("GET", f"{running.url}/prod/x", timestamp=T)
        connection.request("GET", "/prod/x", headers=dict(signed.headers))
        connection.getresponse().read()
        stopper = threading.Thread(target=running.stop)
        stopper.start()
        stopper.join(timeout=10)
        assert not stopper.is_alive()
    finally:
        connection.close()


class _Gate:
    """A clock that holds the next request inside its handler until the test releases it."""

    def __init__(self) -> None:
        self.armed, self.entered, self.release = (threading.Event() for _ in range(3))

    def __call__(self) -> datetime:
        if self.armed.is_set():
            self.armed.clear()
            self.entered.set()
            self.release.wait(timeout=10)
        return T


class _Signal(logging.Handler):
    """Sets an event when a log record's message starts with the given text."""

    def __init__(self, prefix: str) -> None:
        super().__init__(logging.DEBUG)
        self.prefix, self.seen = prefix, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.seen.set()


def test_stop_answers_the_request_in_flight_and_ends_idle_connections(caplog):
    """stop() closes an idle keep-alive connection at once and waits to deliver a busy answer."""
    gate, stopping = _Gate(), _Signal("stopping:")
    running = IamAuthServer(keys=KEYS, clock=gate).start()
    parts = urlsplit(running.url)
    idle, busy = (http.client.HTTPConnection(parts.hostname, parts.port, timeout=10) for _ in "ab")
    answers: list[object] = []

    def call_slow() -> None:
        signed = signer().sign("GET", f"{running.url}/prod/slow", timestamp=T)
        try:
            busy.request("GET", "/prod/slow", headers=dict(signed.headers))
            answers.append(busy.getresponse().status)
        except (OSError, http.client.HTTPException) as exc:
            answers.append(repr(exc))

    logging.getLogger("apigw_iam_auth.server").addHandler(stopping)
    try:
        with caplog.at_level(logging.DEBUG, logger="apigw_iam_auth.server"):
            signed = signer().sign("GET", f"{running.url}/prod/idle", timestamp=T)
            idle.request("GET", "/prod/idle", headers=dict(signed.headers))
            idle.getresponse().read()
            gate.armed.set()
            client = threading.Thread(target=call_slow)
            client.start()
            assert gate.entered.wait(timeout=10)
            stopper = threading.Thread(target=running.stop)
            stopper.start()
            assert stopping.seen.wait(timeout=10)
            assert idle.sock.recv(1) == b""
            assert stopper.is_alive()
            gate.release.set()
            client.join(timeout=10)
            stopper.join(timeout=10)
    finally:
        gate.release.set()
        logging.getLogger("apigw_iam_auth.server").removeHandler(stopping)
        idle.close()
        busy.close()
        running.stop()
    assert not stopper.is_alive()
    assert answers == [200]
    assert [(r.path, r.status) for r in running.requests] == [
        ("/prod/idle", 200),
        ("/prod/slow", 200),
    ]


@pytest.mark.parametrize("kept", [0, 2, 4])
def test_head_cut_short_is_answered_as_incomplete_not_verified(server, kept):
    """A head that ends with the connection, not a blank line, gets 400 Incomplete: the
    Content-Length line may be the one missing (a POST read as empty), so nothing is verified,
    even where the lines that came are signed and complete.
    """
    method, target, headers, _ = signed_raw(server, method="GET", body=b"")
    lines = [f"{method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers)]
    lines = lines[: len(lines) - kept]
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall("".join(f"{line}\r\n" for line in lines).encode())  # no blank line
        sock.shutdown(socket.SHUT_WR)
        with sock.makefile("rb") as replies:
            reply = replies.read()
    assert reply.startswith(b"HTTP/1.1 400 "), reply
    assert reply.endswith(b'{"message":"Incomplete request head"}')
    [record] = server.requests
    assert record.access_key is None
    assert record.likely_cause == (
        "the connection ended before the blank line that ends the headers: the client stopped "
        "sending, or the server was stopping"
    )


@pytest.mark.parametrize(
    ("framing", "sent", "cause"),
    [
        ("Content-Length: 7", b'{"a"', "after 4 of 7 body bytes"),
        ("Transfer-Encoding: chunked", b'7\r\n{"a"', "inside the chunked body"),
    ],
)
def test_body_cut_short_is_answered_as_incomplete_not_verified(server, framing, sent, cause):
    """A body whose sender stops early gets 400 Incomplete, not a signature mismatch."""
    method, target, headers, _ = signed_raw(server)
    head = [f"{method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in headers), framing]
    reply = exchange(server, [line.encode() for line in head], sent)
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert reply.endswith(b'{"message":"Incomplete request body"}')
    [record] = server.requests
    assert record.likely_cause == (
        f"the connection ended {cause}: the client stopped sending, or the server was stopping"
    )


def test_serve_forever_reports_its_url_and_stops_from_another_thread():
    """serve_forever() calls on_ready with the URL, serves, and returns after stop()."""
    server = IamAuthServer(keys=KEYS, clock=clock)
    ready = threading.Event()
    urls: list[str] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(target=server.serve_forever, kwargs={"on_ready": on_ready})
    thread.start()
    try:
        assert ready.wait(timeout=10)
        assert urls[0].startswith("http://127.0.0.1:")
        url = signer().presign("GET", f"{urls[0]}/prod/x", timestamp=T)
        assert urlopen("GET", url)[0] == 200
    finally:
        server.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_stop_of_serve_forever_returns_once_the_server_is_closed():
    """After stop() returns, the socket is released and the same object starts again at once."""
    server = IamAuthServer(keys=KEYS, clock=clock)
    ready = threading.Event()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"on_ready": lambda _: ready.set()}
    )
    thread.start()
    assert ready.wait(timeout=10)
    server.stop()
    with server:  # raised "already running" while serve_forever's thread was still closing
        url = signer().presign("GET", f"{server.url}/prod/x", timestamp=T)
        assert urlopen("GET", url)[0] == 200
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_stop_called_twice_at_once_returns_in_both_once_the_server_is_closed():
    """Two threads stopping a serve_forever() server: each returns only after it is closed."""
    for _ in range(20):  # the window is a thread switch wide: try it many times
        server = IamAuthServer(keys=KEYS, clock=clock)
        ready = threading.Event()
        serving = threading.Thread(
            target=server.serve_forever, kwargs={"on_ready": lambda _, ready=ready: ready.set()}
        )
        serving.start()
        assert ready.wait(timeout=10)
        together = threading.Barrier(2)
        still_open: list[str] = []

        def stop(server=server, together=together, still_open=still_open) -> None:
            together.wait()
            server.stop()
            with contextlib.suppress(RuntimeError):  # "not listening": closed, as it should be
                still_open.append(server.url)

        stoppers = [threading.Thread(target=stop) for _ in range(2)]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(timeout=10)
        assert still_open == []  # a stop() returned while the server was still listening
        server.start()
        server.stop()
        serving.join(timeout=10)
        assert not serving.is_alive()


def test_url_and_lifecycle_errors():
    """url needs a listening server; starting twice is refused; stopping twice is harmless."""
    server = IamAuthServer(keys=KEYS)
    with pytest.raises(RuntimeError, match="start"):
        _ = server.url
    with server, pytest.raises(RuntimeError, match="already running"):
        server.start()
    server.stop()


def test_repr_never_shows_keys():
    """repr names settings, never secrets."""
    text = repr(IamAuthServer(keys=KEYS))
    assert SECRET not in text
    assert TOKEN not in text
    assert "keys=2" in text


def test_repr_of_a_server_whose_construction_failed_is_still_a_repr(monkeypatch):
    """A traceback shows the half-built object: its repr must not raise in turn."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    seen = []

    def keeping_self(self, *args, **kwargs):
        seen.append(self)
        original(self, *args, **kwargs)

    original = IamAuthServer.__init__
    monkeypatch.setattr(IamAuthServer, "__init__", keeping_self)
    with pytest.raises(NoCredentialsError, match=r"keys= in Python, --credentials FILE"):
        IamAuthServer()
    assert repr(seen[0]) == (
        "IamAuthServer(url=None, region='?', service='?', keys=?, policy=False)"
    )


# --- access log and request records --------------------------------------------------------

ACCESS = "apigw_iam_auth.server.access"


def access_lines(caplog):
    """The access-log records captured, as (message, RequestRecord) pairs."""
    return [(r.getMessage(), r.request_record) for r in caplog.records if r.name == ACCESS]


def test_each_request_gets_one_access_line_with_status_reason_and_cause(server, caplog):
    """One INFO line per request: method, path, status, and for a refusal reason and cause."""
    url = signer().presign("GET", f"{server.url}/prod/ok", timestamp=T)
    with caplog.at_level(logging.INFO, logger=ACCESS), httpx.Client(trust_env=False) as client:
        accepted = client.get(url)
        unsigned = client.get(f"{server.url}/prod/pets?type=dog")
        late = client.get(signer().presign("GET", f"{server.url}/prod/old", timestamp=T - HOUR))
    lines = access_lines(caplog)
    assert [record.status for _, record in lines] == [200, 403, 403]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == ACCESS)
    ok, missing, expired = (message for message, _ in lines)
    assert ok.startswith('127.0.0.1 "GET /prod/ok?X-Amz-Algorithm=AWS4-HMAC-SHA256&')
    assert ok.endswith(f" 200 {accepted.headers['x-amzn-RequestId']} accepted {KEY}")
    assert missing == (
        f'127.0.0.1 "GET /prod/pets?type=dog" 403 {unsigned.headers["x-amzn-RequestId"]} '
        "refused MissingAuthenticationTokenException: Missing Authentication Token; "
        "likely cause: the request is not signed: no Authorization header and no "
        "X-Amz-Signature query parameter (was auth= left out, or did a proxy drop the header?)"
    )
    assert '"GET /prod/old?' in expired
    assert f"403 {late.headers['x-amzn-RequestId']} refused InvalidSignatureException: " in expired
    assert expired.endswith(
        "likely cause: the presigned URL was signed 1 h ago and lives 15 min: "
        "presign a new one (or a longer X-Amz-Expires)"
    )


def test_access_log_never_contains_signatures_or_tokens(server, caplog):
    """Presigned and header-signed requests are logged with signature and token redacted."""
    temp = signer((TEMP_KEY, TEMP_SECRET, TOKEN))
    url = temp.presign("GET", f"{server.url}/prod/x", timestamp=T)
    signature = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["X-Amz-Signature"]
    header_signed = temp.sign("GET", f"{server.url}/prod/h", timestamp=T)
    authorization = header_signed.headers["Authorization"]
    with caplog.at_level(logging.DEBUG, logger="apigw_iam_auth"), requests.Session() as session:
        session.trust_env = False
        assert session.get(url, timeout=10).status_code == 200
        assert session.get(url.replace("/x", "/y"), timeout=10).status_code == 403
        response = session.get(
            f"{server.url}/prod/h", headers=dict(header_signed.headers), timeout=10
        )
        assert response.status_code == 200
    text = caplog.text + "".join(str(record) for record in server.requests)
    assert "X-Amz-Signature=<redacted>" in text
    assert "X-Amz-Security-Token=<redacted>" in text
    for secret in (signature, authorization.rsplit("=", 1)[1], TOKEN, "session%2Btoken", SECRET):
        assert secret not in text


@pytest.mark.parametrize(
    ("swapped_secret", "reason"),
    [
        ("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12", "The security token included"),
        (SECRET, "Credential must have exactly 5 slash-delimited elements"),
    ],
)
def test_secret_sent_as_the_access_key_id_is_not_logged(caplog, swapped_secret, reason):
    """A client that swapped key id and secret gets its 403; no log line quotes the secret."""
    with IamAuthServer(keys=KEYS) as live:  # the real clock, as botocore signs with it
        request = botocore.awsrequest.AWSRequest("GET", f"{live.url}/prod/pets")
        credentials = botocore.credentials.Credentials(swapped_secret, KEY)  # ours refuses it
        botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
        headers = [("Host", urlsplit(live.url).netloc), *request.headers.items()]
        with caplog.at_level(logging.INFO, logger=ACCESS):
            status, _, _ = raw(live, "GET", "/prod/pets", headers)
    assert status == 403
    [(line, record)] = access_lines(caplog)
    assert record.reason.startswith(reason)
    assert "swapped" in record.likely_cause
    assert swapped_secret not in line
    assert swapped_secret not in repr(record)


@pytest.mark.parametrize(
    "swapped_secret", ["wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12", "wJalrXUtnFEMI/K7MDENG+bPxRfi"]
)
def test_secret_sent_as_the_key_id_of_a_presigned_url_is_not_logged(caplog, swapped_secret):
    """The X-Amz-Credential of a link made with swapped keys is redacted in the log and records."""
    with IamAuthServer(keys=KEYS) as live:
        request = botocore.awsrequest.AWSRequest("GET", f"{live.url}/prod/pets")
        credentials = botocore.credentials.Credentials(swapped_secret, KEY)
        botocore.auth.SigV4QueryAuth(credentials, "execute-api", "us-east-1").add_auth(request)
        with caplog.at_level(logging.INFO, logger=ACCESS):
            status, _, _ = urlopen("GET", request.url)
        records = live.requests
    assert status == 403
    [(line, record)] = access_lines(caplog)
    assert "X-Amz-Credential=<redacted>" in record.target
    for shown in (line, repr(record), repr(records)):
        assert swapped_secret not in shown
        assert quote(swapped_secret, safe="") not in shown


def test_unknown_access_key_id_is_still_named_in_the_log(server, caplog):
    """A value shaped like an access key id is quoted: it is what the operator needs to see."""
    with caplog.at_level(logging.INFO, logger=ACCESS):
        raw(server, *signed_raw(server, credentials=("AKIAIOSFODNN7EXAMPLE", SECRET)))
    [(line, record)] = access_lines(caplog)
    assert record.likely_cause == (
        "access key 'AKIAIOSFODNN7EXAMPLE' is not one of the keys this server knows"
    )
    assert "AKIAIOSFODNN7EXAMPLE" in line


def test_token_and_signature_under_encoded_names_are_redacted_too(server, caplog):
    """Names are decoded before the verifier reads them, so every spelling is redacted."""
    url = signer((TEMP_KEY, TEMP_SECRET, TOKEN)).presign("GET", f"{server.url}/prod/t", timestamp=T)
    url = url.replace("X-Amz-Security-Token=", "X-Amz-Security%2DToken=")
    url = url.replace("X-Amz-Signature=", "X%2dAmz-Signature=")
    signature = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
    with caplog.at_level(logging.INFO, logger=ACCESS):
        status, _, _ = urlopen("GET", url)
    assert status == 200
    [(line, record)] = access_lines(caplog)
    assert "X-Amz-Security%2DToken=<redacted>&" in record.target
    assert "X%2dAmz-Signature=<redacted>" in record.target
    for secret in (signature, quote(TOKEN, safe=""), TOKEN):
        assert secret not in line
        assert secret not in record.target


@pytest.mark.parametrize("end", [" HTTP/1.1", "\x01 HTTP/1.1"])
def test_token_in_a_request_line_the_server_cannot_read_is_not_logged(server, caplog, end):
    """http.server quotes a bad request line in its refusal; the log quotes no token from it."""
    line = f"GET /p?X-Amz-Security%2DToken={quote(TOKEN, safe='')}&a=b c{end}"
    with caplog.at_level(logging.INFO, logger=ACCESS):
        reply = exchange(server, [line.encode(), b"Host: x"])
    assert reply.startswith(b"HTTP/1.1 400 ")
    [(shown, record)] = access_lines(caplog)
    assert "Bad request" in shown
    for secret in (quote(TOKEN, safe=""), TOKEN):
        assert secret not in shown
        assert secret not in repr(record)


@pytest.mark.parametrize(
    ("line", "status"),
    [(b"GARBAGE", 400), (b"PRI * HTTP/2.0", 505), (b"GET /prod/x", 400), (b"GET /prod/x?a=1", 400)],
)
def test_a_request_line_http_server_cannot_read_is_refused_with_a_status_line(server, line, status):
    """A line http.server takes for HTTP/0.9 (one word, HTTP/2's preface, a GET without a
    version) is still answered as HTTP/1.1: a status line and headers, not a bare body the
    client cannot read; a GET without a version is refused, never verified or echoed.
    """
    reply = exchange(server, [line, b"Host: x"])
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), reply
    assert b"\r\nContent-Type: application/json" in head
    # Every 400 is typed as the verifier's request-line refusals are; a 505 is not a bad request.
    assert (b"\r\nx-amzn-ErrorType: BadRequestException" in head) is (status == 400)
    assert "message" in json.loads(body)


def test_unreadable_request_line_is_not_logged_with_the_previous_requests_path(server, caplog):
    """On a keep-alive connection, a bad request line after a good request has no path."""
    host = urlsplit(server.url).netloc.encode()
    first = b"GET /prod/first HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
    with caplog.at_level(logging.INFO, logger=ACCESS):
        exchange(server, [first + b"BROKEN REQUEST LINE WITH WORDS", b"Host: x"])
    (_, good), (_, bad) = access_lines(caplog)
    assert (good.path, good.status) == ("/prod/first", 403)
    assert (bad.path, bad.status) == ("-", 400)


def test_mismatch_line_names_the_cause_the_signature_confirms(server, caplog):
    """A body changed after signing is logged as such, the signature strings are not."""
    method, target, headers, _ = signed_raw(server, body=b"")
    with caplog.at_level(logging.INFO, logger=ACCESS):
        status, _, body = raw(server, method, target, headers, b'{"changed":1}')
    assert status == 403
    assert body["message"].startswith(MISMATCH)
    [(message, record)] = access_lines(caplog)
    assert record.reason == MISMATCH + (
        " Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details."
    )
    assert record.likely_cause == (
        "the client signed an empty body but a body arrived: the body was set or changed "
        "after signing"
    )
    assert "Canonical String" not in message
    assert "x-amz-date:" not in message


def test_requests_are_recorded_before_the_response_is_sent(server):
    """Once a client holds its answer, the server's record of it is already there."""
    signed = signer().sign("GET", f"{server.url}/prod/pets/1?x=1", timestamp=T)
    with httpx.Client(trust_env=False) as client:
        accepted = client.get(signed.url, headers=dict(signed.headers))
        assert len(server.requests) == 1
        refused = client.delete(f"{server.url}/prod/pets/1")
        assert len(server.requests) == 2
    first, second = server.requests
    assert (first.method, first.path, first.target, first.status) == (
        "GET",
        "/prod/pets/1",
        "/prod/pets/1?x=1",
        200,
    )
    assert first.accepted
    assert first.access_key == KEY
    assert first.reason is None
    assert first.request_id == accepted.headers["x-amzn-RequestId"]
    assert (second.method, second.status, second.accepted) == ("DELETE", 403, False)
    assert second.error_type == "MissingAuthenticationTokenException"
    assert second.reason == "Missing Authentication Token"
    assert second.request_id == refused.headers["x-amzn-RequestId"]


def test_request_log_is_bounded_and_clearable():
    """max_records keeps the newest requests only; clear_requests() forgets them all."""
    with IamAuthServer(keys=KEYS, clock=clock, max_records=2) as bounded:
        with httpx.Client(trust_env=False) as client:
            for n in range(3):
                client.get(f"{bounded.url}/prod/{n}")
        assert [record.path for record in bounded.requests] == ["/prod/1", "/prod/2"]
        bounded.clear_requests()
        assert bounded.requests == ()


def test_request_log_is_complete_under_concurrent_clients(server):
    """Requests from many threads at once are each recorded exactly once."""
    start = threading.Barrier(8)

    def call(n: int) -> None:
        start.wait(timeout=10)
        with httpx.Client(trust_env=False) as client:
            for m in range(5):
                client.get(f"{server.url}/prod/{n}/{m}")

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    paths = sorted(record.path for record in server.requests)
    assert paths == sorted(f"/prod/{n}/{m}" for n in range(8) for m in range(5))


def test_framing_errors_are_logged_and_recorded(server, caplog):
    """A 413 for a body over the limit gets its access line and record, with the reason."""
    host = urlsplit(server.url).netloc
    with caplog.at_level(logging.INFO, logger=ACCESS):
        status, _, _ = raw(
            server, "POST", "/prod", [("Host", host), ("Content-Length", "99999999")]
        )
    assert status == 413
    [(message, record)] = access_lines(caplog)
    assert (record.status, record.reason) == (413, "Request Too Long")
    assert record.likely_cause == "the body is over API Gateway's limit of 10 MiB"
    assert message.endswith(
        "refused: Request Too Long; likely cause: the body is over API Gateway's limit of 10 MiB"
    )


def test_http_server_refusals_answer_json_and_are_recorded(server):
    """A method the server does not route gets a JSON 501 and a record, like any other."""
    host = urlsplit(server.url).netloc
    status, headers, body = raw(server, "BREW", "/prod/pot", [("Host", host)])
    assert status == 501
    assert headers["Content-Type"] == "application/json"
    assert body == {"message": "Unsupported method ('BREW')"}
    [record] = server.requests
    assert (record.method, record.path, record.status) == ("BREW", "/prod/pot", 501)
    assert record.request_id == headers["x-amzn-RequestId"]


def test_server_fault_is_recorded_as_failed(caplog):
    """A 500 is logged as a failure pointing at the traceback on the server logger."""
    broken = server_whose_clock_breaks()
    with broken, caplog.at_level(logging.INFO, logger="apigw_iam_auth.server"):
        raw(broken, *signed_raw(broken))
    [(message, record)] = access_lines(caplog)
    assert record.status == 500
    assert message.endswith(
        "failed: Internal server error; likely cause: a bug in the server: see the traceback "
        "logged on apigw_iam_auth.server"
    )


def test_log_record_carries_the_request_record(server, caplog):
    """Handlers get the RequestRecord on each access log record, str() being the line."""
    with caplog.at_level(logging.INFO, logger=ACCESS), httpx.Client(trust_env=False) as client:
        client.get(f"{server.url}/prod")
    [(message, record)] = access_lines(caplog)
    assert isinstance(record, RequestRecord)
    assert str(record) == message
    assert server.requests == (record,)


# --- listening -------------------------------------------------------------------------------


def test_taken_port_names_host_and_port_and_what_to_do():
    """Listening on a port another socket holds raises InvalidConfigError naming it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = IamAuthServer(port=port, keys=KEYS)
        with pytest.raises(InvalidConfigError) as info:
            server.start()
    message = str(info.value)
    assert f"cannot listen on 127.0.0.1:{port}: port {port} is already in use" in message
    assert "pick another port, or port 0 to let the system choose a free one" in message
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RuntimeError, match="start"):
        _ = server.url


def test_taken_port_is_reported_by_serve_forever_too():
    """serve_forever() fails the same way, before calling on_ready."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ready = []
        with pytest.raises(InvalidConfigError, match=f"127.0.0.1:{port}"):
            IamAuthServer(port=port, keys=KEYS).serve_forever(on_ready=ready.append)
    assert ready == []


def test_host_that_is_not_local_is_a_config_error():
    """An address this machine does not have is refused with a hint, not a bare OSError."""
    server = IamAuthServer("192.0.2.1", keys=KEYS)  # TEST-NET-1: never a local address
    with pytest.raises(InvalidConfigError, match=r"192\.0\.2\.1:0: .* not an address"):
        server.start()


@pytest.mark.parametrize("port", [-1, 65536, "8080", True, 1.5])
def test_port_out_of_range_fails_at_construction(port):
    """A port that is not 0..65535 fails when the server is created."""
    with pytest.raises(InvalidConfigError, match="port must be a whole number from 0 to 65535"):
        IamAuthServer(port=port, keys=KEYS)


def test_port_zero_picks_a_free_port():
    """port=0 (the default) listens on a free port, shown in url."""
    with IamAuthServer(port=0, keys=KEYS) as free:
        assert urlsplit(free.url).port > 0


@pytest.mark.parametrize("limit", [-1, True, "10"])
def test_max_records_must_be_a_count(limit):
    """max_records must be a whole number of 0 or more."""
    with pytest.raises(InvalidConfigError, match="max_records"):
        IamAuthServer(keys=KEYS, max_records=limit)


# --- the request-target as sent -------------------------------------------------------------


def test_raw_utf8_path_is_read_as_utf8_like_botocore_signs_it(caplog):
    """A raw UTF-8 path verifies as botocore signed it; bytes that are not UTF-8 get a 400."""
    with IamAuthServer(keys=KEYS) as live:
        request = botocore.awsrequest.AWSRequest("GET", f"{live.url}/prod/café")
        credentials = botocore.credentials.Credentials(KEY, SECRET)
        botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
        headers = [f"{n}: {v}".encode() for n, v in request.headers.items()]
        headers.append(f"Host: {urlsplit(live.url).netloc}".encode())
        with caplog.at_level(logging.INFO, logger=ACCESS):
            utf8 = exchange(live, [b"GET /prod/caf\xc3\xa9 HTTP/1.1", *headers])
            latin1 = exchange(live, [b"GET /prod/caf\xe9 HTTP/1.1", *headers])
    assert utf8.startswith(b"HTTP/1.1 200 ")
    assert json.loads(utf8.partition(b"\r\n\r\n")[2])["path"] == "/prod/café"
    assert latin1.startswith(b"HTTP/1.1 400 ")
    assert latin1.endswith(
        b'{"message":"The request path is not valid UTF-8; percent-encode its bytes."}'
    )
    assert [r.path for r in live.requests] == ["/prod/café", "/prod/caf\\xe9"]
    assert 'GET /prod/caf\\xe9" 400' in access_lines(caplog)[1][0]


@pytest.mark.parametrize(
    "path",
    [
        "/prod/\u00e0",
        "/prod/\u00c5b",
        "/prod/\u8005/x",
        "/prod/\u00e0\u00e1",  # C3 A0 C3 A1: the A0 ends up last, where split() drops it
        "/prod/\u0420\u0421\u0424\u0421\u0420",  # D0 A0 D0 A1...: both bytes, often
        "/prod/\u0085\u00c0",  # C2 85 C3 80
    ],
)
def test_raw_utf8_path_holding_bytes_python_calls_whitespace_verifies(path):
    """'à' is C3 A0, 'Å' C3 85, '者' E8 80 85: read as Latin-1, str.split() (http.server's
    request-line split) takes A0 and 85 for whitespace. The path goes as botocore signed it,
    whatever other bytes stand beside them."""
    with IamAuthServer(keys=KEYS) as live:
        request = botocore.awsrequest.AWSRequest("GET", live.url + path)
        credentials = botocore.credentials.Credentials(KEY, SECRET)
        botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
        headers = [f"{n}: {v}".encode() for n, v in request.headers.items()]
        headers.append(f"Host: {urlsplit(live.url).netloc}".encode())
        reply = exchange(live, [b"GET " + path.encode() + b" HTTP/1.1", *headers])
        [record] = live.requests
    assert reply.startswith(b"HTTP/1.1 200 "), reply
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["path"] == path
    assert record.path == path


def test_a_request_line_refused_is_quoted_with_its_own_bytes():
    """http.server's refusal quotes the request line: as sent, byte 0x85 and all."""
    with IamAuthServer(keys=KEYS) as live:
        reply = exchange(live, [b"GET /prod/\xc3\x85 /x HTTP/1.1", b"Host: h"])
        [record] = live.requests
    assert reply.startswith(b"HTTP/1.1 400 ")
    expected = "Bad request syntax ('GET /prod/\u00c3\\x85 /x HTTP/1.1')"  # %r of the line
    assert json.loads(reply.partition(b"\r\n\r\n")[2]) == {"message": expected}
    assert record.reason.startswith("Bad request syntax ('GET /prod/\u00c3")


def _signed_for_host(url: str, host: str) -> list[bytes]:
    """Header lines, Host left out, of a GET botocore signed with this Host value."""
    request = botocore.awsrequest.AWSRequest("GET", url, headers={"host": host})
    credentials = botocore.credentials.Credentials(KEY, SECRET)
    botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    return [f"{n}: {v}".encode() for n, v in request.headers.items() if n.lower() != "host"]


@pytest.mark.parametrize(
    ("version", "hosts", "status", "message"),
    [
        (b"HTTP/1.1", 0, 400, "Missing Host header"),
        (b"HTTP/1.1", 2, 400, "Multiple Host headers"),
        (b"HTTP/1.0", 2, 400, "Multiple Host headers"),
        (b"HTTP/1.0", 0, 200, None),
    ],
)
def test_host_header_must_be_there_once_in_http_1_1(version, hosts, status, message):
    """An HTTP/1.1 request without Host, or any with two, gets 400 before any signature check."""
    with IamAuthServer(keys=KEYS) as live:
        netloc = urlsplit(live.url).netloc
        headers = _signed_for_host(f"{live.url}/prod/pets", netloc if hosts else "")
        headers += [f"Host: {netloc}".encode()] * hosts
        reply = exchange(live, [b"GET /prod/pets " + version, *headers])
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status)
    if message is not None:
        assert b"\r\nConnection: close\r\n" in head + b"\r\n"
        assert b"\r\nx-amzn-ErrorType: BadRequestException\r\n" in head + b"\r\n"
        assert json.loads(body) == {"message": message}
        [record] = live.requests
        assert (record.status, record.reason) == (400, message)


@pytest.mark.parametrize(
    "line", [b"no colon here", b"X-Bad Name: v", b"X-A: 1\rX-B: 2", b"X-A: 1\r", b"X-A: a\0b"]
)
def test_a_header_line_that_is_not_name_colon_value_gets_400(line):
    """Such a line would end the head for http.server, the signed headers after it unseen, or
    (a CR not before LF) be read as two lines: 400 (RFC 9112 section 5, RFC 9110 section 5.5,
    which also names NUL), the connection closed, where a 403 would blame the signature.
    """
    with IamAuthServer(keys=KEYS) as live:
        netloc = urlsplit(live.url).netloc
        signed = _signed_for_host(f"{live.url}/prod/pets", netloc)
        reply = exchange(
            live, [b"GET /prod/pets HTTP/1.1", f"Host: {netloc}".encode(), line, *signed]
        )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close\r\n" in head + b"\r\n"
    assert json.loads(body) == {"message": "Invalid header line"}
    [record] = live.requests
    assert (record.status, record.reason) == (400, "Invalid header line")


# --- SigV4a region sets ----------------------------------------------------------------------


def crt_signed_v4a(server, region_set: str) -> list[tuple[str, str]]:
    """Headers of a GET /prod/pets awscrt signed with SigV4a for this (unchecked) region set."""

    netloc = urlsplit(server.url).netloc
    request = crt_http.HttpRequest("GET", "/prod/pets", crt_http.HttpHeaders([("Host", netloc)]))
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4_ASYMMETRIC,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(KEY, SECRET),
        region=region_set,
        service="execute-api",
        date=T,
    )
    return list(crt_auth.aws_sign_request(request, config).result(10).headers)


@pytest.mark.parametrize(
    ("region_set", "status"),
    [
        ("us-*", 200),
        ("*", 200),
        ("u*-*a*t-1", 200),
        ("us-east-1*", 200),
        ("*-east-*-1", 403),
        ("us-east-?", 403),
        ("[u]s-east-1", 403),
        ("[!x]*", 403),
        # A regex of ".*" runs backtracks exponentially on this, before any key is checked.
        ("*" * 64 + "z", 403),
    ],
)
def test_region_set_wildcard_is_only_the_star(server, region_set, status):
    """``*`` matches any run of characters; ``?`` and ``[...]`` are literal, not patterns."""
    reply_status, _, body = raw(server, "GET", "/prod/pets", crt_signed_v4a(server, region_set))
    assert reply_status == status, body
    if status == 403:
        assert body["message"] == (
            f"The X-Amz-Region-Set of this request ('{region_set}') does not include this "
            "endpoint's region 'us-east-1'. "
        )


def test_region_set_split_over_two_header_lines_is_read_whole(server):
    """A proxy may split the header in two lines: the signature covers both, so the check does."""
    headers = crt_signed_v4a(server, "eu-west-1,us-east-1")
    assert ("X-Amz-Region-Set", "eu-west-1,us-east-1") in headers
    split = [pair for pair in headers if pair[0] != "X-Amz-Region-Set"]
    split += [("X-Amz-Region-Set", "eu-west-1"), ("X-Amz-Region-Set", "us-east-1")]
    status, _, body = raw(server, "GET", "/prod/pets", split)
    assert status == 200, body


@pytest.mark.parametrize(
    ("change", "message", "cause"),
    [
        (
            lambda headers: [
                (n, v.replace(";x-amz-region-set", "") if n == "Authorization" else v)
                for n, v in headers
            ],
            "X-Amz-Region-Set must be a SignedHeader in the AWS Authorization. ",
            "the client sent X-Amz-Region-Set without signing it",
        ),
        (
            lambda headers: [(n, v) for n, v in headers if n != "X-Amz-Region-Set"],
            "X-Amz-Region-Set is named in SignedHeaders but was not sent. ",
            "the signed X-Amz-Region-Set header did not arrive",
        ),
    ],
)
def test_region_set_sent_unsigned_or_signed_unsent_says_so(server, change, message, cause):
    """Not a region missing from the set: the refusal names what is wrong with the header."""
    headers = crt_signed_v4a(server, "us-east-1")
    assert any(n == "Authorization" and "x-amz-region-set" in v for n, v in headers)
    status, _, body = raw(server, "GET", "/prod/pets", change(headers))
    assert status == 403
    assert body["message"] == message
    [record] = server.requests
    assert record.likely_cause.startswith(cause)


# --- the service impersonated ----------------------------------------------------------------


def botocore_signed(url, service, *, body=b"", content_sha256=None):
    """Method, target, headers and body signed by botocore for ``service``, now.

    botocore signs the x-amz-content-sha256 header's value as the payload line when it is set.
    The servers these requests go to read the real clock, as botocore does.
    """
    credentials = botocore.credentials.Credentials(KEY, SECRET)
    headers = {"Content-Type": "application/json"}
    if content_sha256 is not None:
        headers["X-Amz-Content-SHA256"] = content_sha256
    request = botocore.awsrequest.AWSRequest("POST", url, headers=headers, data=body)
    botocore.auth.SigV4Auth(credentials, service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    headers = [("Host", urlsplit(url).netloc), *prepared.headers.items()]
    return "POST", target_of(prepared.url), headers, body


def test_vpc_lattice_server_accepts_unsigned_payload_over_requests():
    """Impersonating vpc-lattice-svcs, the server accepts UNSIGNED-PAYLOAD as Lattice documents."""
    with IamAuthServer(keys=KEYS, service="vpc-lattice-svcs") as lattice:
        method, target, headers, body = botocore_signed(
            f"{lattice.url}/items", "vpc-lattice-svcs", body=b"any body", content_sha256=UNSIGNED
        )
        with requests.Session() as session:
            session.trust_env = False
            response = session.request(
                method, lattice.url + target, headers=dict(headers), data=body, timeout=10
            )
        assert response.status_code == 200
        assert response.json()["caller"]["signed_headers"] == [
            "content-type",
            "host",
            "x-amz-content-sha256",
            "x-amz-date",
        ]
        assert "vpc-lattice-svcs" in repr(lattice)


def test_vpc_lattice_server_refuses_a_signed_payload():
    """VPC Lattice does not support payload signing: without UNSIGNED-PAYLOAD it is refused."""
    with IamAuthServer(keys=KEYS, service="vpc-lattice-svcs") as lattice:
        request = botocore_signed(f"{lattice.url}/items", "vpc-lattice-svcs", body=b"{}")
        status, headers, body = raw(lattice, *request)
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
    assert body["message"] == (
        "vpc-lattice-svcs does not support payload signing: send the x-amz-content-sha256 "
        "header with the value UNSIGNED-PAYLOAD."
    )


def test_execute_api_server_refuses_unsigned_payload_and_logs_why(caplog):
    """execute-api refuses UNSIGNED-PAYLOAD with API Gateway's mismatch 403; the log says why."""
    with IamAuthServer(keys=KEYS) as real_time:
        request = botocore_signed(
            f"{real_time.url}/prod/items", "execute-api", body=b"{}", content_sha256=UNSIGNED
        )
        with caplog.at_level(logging.INFO, logger=ACCESS):
            status, headers, body = raw(real_time, *request)
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert body["message"].startswith(MISMATCH)
    # API Gateway's canonical string ends with the hash of the body it received.
    assert f"\n{hashlib.sha256(b'{}').hexdigest()}'\n" in body["message"]
    [(_, record)] = access_lines(caplog)
    assert record.likely_cause == (
        "the client signed UNSIGNED-PAYLOAD, which execute-api does not accept: it hashes the "
        "body it receives, so sign the body"
    )


def test_policy_needs_the_execute_api_service():
    """An Invoke policy on a server impersonating another service is refused at construction."""
    with pytest.raises(InvalidConfigError, match="execute-api:Invoke"):
        IamAuthServer(keys=KEYS, service="vpc-lattice-svcs", policy=POLICY)


def test_s3_is_not_impersonated():
    """S3's different signing rules are not implemented, so service='s3' is refused."""
    with pytest.raises(InvalidConfigError, match="S3's rules"):
        IamAuthServer(keys=KEYS, service="s3")


def test_region_is_validated_at_construction():
    """A malformed region fails when the server is created, not per request."""
    with pytest.raises(InvalidConfigError, match="region"):
        IamAuthServer(keys=KEYS, region="US East")


@pytest.mark.parametrize(
    ("region", "meant"),
    [("us-east-1a", "us-east-1"), ("us-east1", "us-east-1"), ("eu-west1", "eu-west-1")],
)
def test_a_region_no_client_signs_for_is_refused_as_the_signer_refuses_it(region, meant):
    """A server for a mistyped region could never verify anything: refused as a signer would."""
    with pytest.raises(InvalidConfigError) as signer_says:
        SigV4Signer(region, credentials=(KEY, SECRET))
    with pytest.raises(InvalidConfigError) as server_says:
        IamAuthServer(keys=KEYS, region=region)
    assert f"did you mean {meant!r}" in str(server_says.value)
    assert str(server_says.value) == str(signer_says.value)
    IamAuthServer(keys=KEYS, region="xx-west-1")  # well formed, unknown to botocore: as a signer
    IamAuthServer(keys=KEYS, region="local")  # like no region: botocore signs for any name


# --- known keys ---------------------------------------------------------------------------------


def test_ini_credentials_file_is_read_like_aws_credentials(tmp_path):
    """INI files in ~/.aws/credentials form load; profiles without keys are skipped."""
    file = tmp_path / "credentials"
    file.write_text(
        "[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = s%cret/1\n\n"
        "[temp]\naws_access_key_id = ASIATWO\naws_secret_access_key = s2\n"
        "aws_session_token = tok\naws_account_id = 999988887777\n\n"
        "[sso]\nsso_session = corp\n",
        encoding="utf-8",
    )
    keys = load_keys(file)
    assert keys == {
        "AKIDONE": KnownKey("s%cret/1"),
        "ASIATWO": KnownKey("s2", token="tok", account_id="999988887777"),
    }


def test_one_key_id_with_two_secrets_is_refused_naming_both_sections(tmp_path):
    """Two sections giving one key id different secrets: refused (the last would win, and calls
    signed with the first would be refused as a wrong secret); the same key twice is fine."""
    file = tmp_path / "credentials"
    file.write_text(
        "[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = first-secret\n\n"
        "[dev]\naws_access_key_id = AKIDONE\naws_secret_access_key = other-secret\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidConfigError) as refused:
        load_keys(file)
    message = str(refused.value)
    assert "[default] and [dev] give access key AKIDONE different secrets" in message
    assert "first-secret" not in message
    assert "other-secret" not in message
    file.write_text(
        "[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = first-secret\n\n"
        "[copy]\naws_access_key_id = AKIDONE\naws_secret_access_key = first-secret\n",
        encoding="utf-8",
    )
    assert load_keys(file) == {"AKIDONE": KnownKey("first-secret")}


def _ini_example(text: str) -> str:
    """The INI credentials example of a README section or docstring: [default] to its end."""
    lines = text[text.index("[default]") :].splitlines()
    block = []
    for line in lines:
        if not line.strip() or line.startswith("```"):
            break
        block.append(line.strip())
    return "\n".join(block) + "\n"


@pytest.mark.parametrize(
    "documented",
    [
        pytest.param((Path(__file__).parent.parent / "README.md").read_text("utf-8"), id="README"),
        pytest.param(inspect.getdoc(load_keys), id="load_keys"),
    ],
)
def test_documented_ini_example_loads_the_values_it_shows(tmp_path, documented):
    """The INI example as documented loads its token and account, and signed calls match it."""
    file = tmp_path / "credentials"
    file.write_text(_ini_example(documented), encoding="utf-8")
    keys = load_keys(file)
    assert keys == {"AKIDEXAMPLE": KnownKey(SECRET, token="...", account_id="123456789012")}
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "123456789012"},
                "Action": "execute-api:Invoke",
                "Resource": "*",
            }
        ]
    }
    with IamAuthServer(keys=keys, policy=policy) as documented_server:
        credentials = botocore.credentials.Credentials("AKIDEXAMPLE", SECRET, "...")
        request = botocore.awsrequest.AWSRequest("GET", f"{documented_server.url}/prod/pets")
        botocore.auth.SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
        headers = [("Host", urlsplit(documented_server.url).netloc), *request.headers.items()]
        status, _, echo = raw(documented_server, "GET", "/prod/pets", headers)
    assert status == 200
    assert echo["caller"]["arn"] == "arn:aws:iam::123456789012:user/AKIDEXAMPLE"


@pytest.mark.parametrize(
    ("account", "hint"),
    [("123456789012    ; optional: used in ARNs", True), ("1234", False), ("12345678901x", False)],
)
def test_account_id_that_is_not_12_digits_names_the_key_not_the_secret(tmp_path, account, hint):
    """A bad aws_account_id is refused at load, naming the key id and, for comments, the fix."""
    file = tmp_path / "credentials"
    file.write_text(
        f"[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = {SECRET}\n"
        f"aws_account_id = {account}\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidConfigError) as info:
        load_keys(file)
    message = str(info.value)
    assert f"credentials file {file} [default]: aws_account_id of key AKIDONE" in message
    assert "must be 12 digits" in message
    assert ("put it on a line of its own" in message) is hint
    assert SECRET not in message


def test_json_credentials_file_is_read_as_object_or_list(tmp_path):
    """JSON files use the same field names, as an object of sections or a list."""
    as_object = tmp_path / "keys.json"
    as_object.write_text(
        json.dumps({"a": {"aws_access_key_id": "AKIDONE", "aws_secret_access_key": "s1"}}),
        encoding="utf-8",
    )
    as_list = tmp_path / "list.json"
    as_list.write_text(
        json.dumps([{"aws_access_key_id": "AKIDTWO", "aws_secret_access_key": "s2"}]),
        encoding="utf-8",
    )
    assert load_keys(as_object) == {"AKIDONE": KnownKey("s1")}
    assert load_keys(as_list) == {"AKIDTWO": KnownKey("s2")}


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[default]\naws_access_key_id = AKID\n", "no aws_secret_access_key"),
        ("[sso]\nsso_session = corp\n", "holds no aws_access_key_id"),
        ('{"a": ', "not valid JSON"),
        ("[1, 2]", "JSON object or list of objects"),
        ("42", "JSON object or list of objects"),
        ("not ini at all", "not valid INI"),
    ],
)
def test_bad_credentials_files_are_refused_without_echoing_secrets(tmp_path, content, complaint):
    """Unusable credentials files fail with a message naming the file and the problem."""
    file = tmp_path / "credentials"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfigError, match=complaint) as info:
        load_keys(file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (
            f"[default]\naws_access_key_id = AKIDONE\naws_secret_access_key {SECRET}\n",
            "not valid INI: line 3 is not 'name = value'",
        ),
        (
            f"[default]\n{SECRET}\naws_access_key_id = AKIDONE\n{SECRET}=\n  x\n{SECRET}\n",
            "not valid INI: lines 2, 6 are not 'name = value'",
        ),
        (f"aws_secret_access_key = {SECRET}\n[default]\n", "line 1 comes before any [section]"),
        (
            f"[default]\naws_secret_access_key = {SECRET}\naws_secret_access_key = {SECRET}\n",
            "line 3 repeats a name already set",
        ),
        (f'{{"default": {{"aws_secret_access_key": "{SECRET}"\n', "not valid JSON: Expecting"),
        (
            f'{{"default": {{"aws_secret_access_key": "{SECRET}\t"}}}}',
            "not valid JSON: Invalid control character at line 1 column",
        ),
        (
            f'{{"default": {{"aws_secret_access_key": "{SECRET}',
            "not valid JSON: Unterminated string starting at line 1 column",
        ),
        (
            f"[default]\naws_secret_access_key = {SECRET}\n[default]\naws_access_key_id = AKID\n",
            "not valid INI: line 3 repeats a [section] header given before",
        ),
        (  # too long for int(): a ValueError of its own, not a JSONDecodeError
            f'{{"default": {{"aws_secret_access_key": "{SECRET}", "n": {"9" * 5000}}}}}',
            "is not valid JSON",
        ),
    ],
    ids=[
        "no-equals",
        "lines",
        "no-section",
        "repeated",
        "json",
        "json-control",
        "json-cut",
        "section-twice",
        "json-number-too-long",
    ],
)
def test_malformed_credentials_file_names_lines_never_their_text(tmp_path, content, complaint):
    """A file the parsers refuse is named with line numbers, in one line, without its secret."""
    file = tmp_path / "credentials"
    file.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidConfigError) as info:
        load_keys(file)
    message = str(info.value)
    assert message.startswith(f"credentials file {file} is not valid ")
    assert complaint in message
    assert "\n" not in message
    assert SECRET not in message
    assert SECRET[:8] not in message


@pytest.mark.parametrize(
    "content",
    [
        "[default]\naws_access_key_id = AKIDONE\naws_secret_access_key = s1\n",
        json.dumps({"default": {"aws_access_key_id": "AKIDONE", "aws_secret_access_key": "s1"}}),
    ],
    ids=["ini", "json"],
)
def test_credentials_file_with_a_byte_order_mark_loads(tmp_path, content):
    """A UTF-8 file an editor began with a byte order mark loads as without it, INI or JSON."""
    file = tmp_path / "credentials"
    file.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    assert load_keys(file) == {"AKIDONE": KnownKey("s1")}


def test_credentials_or_policy_file_not_in_utf8_names_the_line(tmp_path):
    """A file in another encoding is refused as not UTF-8, naming its first such line."""
    file = tmp_path / "credentials"
    file.write_bytes(b"[default]\naws_access_key_id = AKIDONE\n# caf\xe9\n")
    with pytest.raises(
        InvalidConfigError, match=r"credentials file .* is not UTF-8 text \(line 3\)"
    ):
        load_keys(file)
    with pytest.raises(InvalidConfigError, match=r"policy file .* is not UTF-8 text \(line 3\)"):
        load_policy(file)


def test_missing_credentials_file_is_a_config_error(tmp_path):
    """A path that does not exist is reported as such."""
    with pytest.raises(InvalidConfigError, match="cannot read credentials file"):
        load_keys(tmp_path / "absent")


def test_keys_from_environment():
    """AWS_ACCESS_KEY_ID / SECRET / SESSION_TOKEN / ACCOUNT_ID make one known key."""
    env = {
        "AWS_ACCESS_KEY_ID": "ASIAENV",
        "AWS_SECRET_ACCESS_KEY": "env-secret",
        "AWS_SESSION_TOKEN": "env-token",
        "AWS_ACCOUNT_ID": "444455556666",
    }
    assert keys_from_env(env) == {
        "ASIAENV": KnownKey("env-secret", token="env-token", account_id="444455556666")
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {
                "AWS_ACCESS_KEY_ID": "AKIDENV",
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_ACCOUNT_ID": "abc",
            },
            "the environment: AWS_ACCOUNT_ID of key AKIDENV must be 12 digits",
        ),
        (
            {"AWS_ACCESS_KEY_ID": "AKIDENV"},
            "the environment has AWS_ACCESS_KEY_ID but no AWS_SECRET_ACCESS_KEY",
        ),
    ],
    ids=["account-id", "no-secret"],
)
def test_a_bad_environment_key_names_the_variable_to_fix(env, message):
    """Refusing the environment's key names the variable the user set, not the file field."""
    with pytest.raises(InvalidConfigError) as info:
        keys_from_env(env)
    assert str(info.value).startswith(message)
    assert SECRET not in str(info.value)


def test_no_keys_in_environment_is_no_credentials():
    """Without keys in the environment the server cannot accept anything and says why."""
    with pytest.raises(NoCredentialsError, match="AWS_ACCESS_KEY_ID"):
        keys_from_env({})


def test_server_defaults_to_the_environment_keys(monkeypatch):
    """With no keys given, the server accepts calls signed with its environment's key."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with IamAuthServer(clock=clock) as env_server:
        status, _, _ = raw(env_server, *signed_raw(env_server))
    assert status == 200


def test_policy_file_is_loaded_and_validated(tmp_path):
    """load_policy returns a valid document and refuses broken ones, naming the problem."""
    good = tmp_path / "policy.json"
    good.write_text(json.dumps(POLICY), encoding="utf-8")
    assert load_policy(good) == POLICY
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement": [{"Effect": "Maybe"}]}', encoding="utf-8")
    with pytest.raises(InvalidConfigError, match="Effect"):
        load_policy(bad)
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidConfigError, match="not valid JSON"):
        load_policy(bad)
    with pytest.raises(InvalidConfigError, match="cannot read policy file"):
        load_policy(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("region", "partition"),
    [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")],
)
def test_arns_name_the_partition_of_the_servers_region(region, partition):
    """China and GovCloud ARNs are arn:aws-cn / arn:aws-us-gov: a policy copied from such an
    account matches, and the caller is named in the same partition.
    """
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{ACCOUNT}:root"},
                "Action": "execute-api:Invoke",
                "Resource": f"arn:{partition}:execute-api:{region}:*:*/prod/GET/pets",
            }
        ]
    }
    with IamAuthServer(region=region, keys=KEYS, policy=policy) as server:
        in_region = signer(region=region)
        allowed = requests.get(**_signed_call(in_region, f"{server.url}/prod/pets"), timeout=10)
        denied = requests.get(**_signed_call(in_region, f"{server.url}/prod/other"), timeout=10)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["caller"]["arn"] == f"arn:{partition}:iam::{ACCOUNT}:user/{KEY}"
    assert denied.status_code == 403
    assert f"on resource: arn:{partition}:execute-api:{region}:" in denied.text


def _signed_call(signer: SigV4Signer, url: str) -> dict[str, object]:
    signed = signer.sign("GET", url)
    return {"url": signed.url, "headers": signed.headers}
