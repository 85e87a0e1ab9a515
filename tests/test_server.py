"""IamAuthServer over real loopback sockets: signed calls accepted, tampering refused like AWS."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.error import HTTPError
from urllib.parse import urlsplit

import pytest

from apigw_iam_auth.errors import InvalidConfigError, NoCredentialsError
from apigw_iam_auth.server import IamAuthServer, KnownKey, keys_from_env, load_keys, load_policy
from apigw_iam_auth.signer import SigV4Signer

T = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
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
    return SigV4Signer(credentials, region=region)


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
    assert echo["query"] == [["a", "x y"], ["z", "1"]]
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


@pytest.mark.parametrize("size", [b"zz", b"-1", b"0x5", b"+5"])
def test_malformed_chunked_body_is_a_bad_request(server, size):
    """A chunk size that is not plain hexadecimal gets 400 instead of a hung connection."""
    host = urlsplit(server.url).netloc
    headers = [("Host", host), ("Transfer-Encoding", "chunked")]
    chunked = size + b"\r\nhello\r\n0\r\n\r\n"
    status, _, body = raw(server, "POST", "/prod", headers, chunked)
    assert status == 400
    assert body == {"message": "Invalid chunked encoding"}


def test_oversized_body_is_refused_before_reading(server):
    """A body over API Gateway's 10 MB limit gets 413 without being read."""
    host = urlsplit(server.url).netloc
    headers = [("Host", host), ("Content-Length", str(11 * 1024 * 1024))]
    status, _, body = raw(server, "POST", "/prod", headers)
    assert status == 413
    assert body == {"message": "Request Too Long"}


def test_server_fault_answers_500_and_logs(caplog):
    """A failure inside the server (here a naive clock) answers 500, never a dropped socket."""
    broken = IamAuthServer(keys=KEYS, clock=lambda: T.replace(tzinfo=None))
    with broken, caplog.at_level(logging.ERROR, logger="apigw_iam_auth.server"):
        status, _, body = raw(broken, *signed_raw(broken))
    assert status == 500
    assert body == {"message": "Internal server error"}
    assert "internal error" in caplog.text


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


def test_logs_never_contain_signatures_or_tokens(server, caplog):
    """Request lines and refusals are logged with signatures and tokens redacted."""
    temp = signer((TEMP_KEY, TEMP_SECRET, TOKEN))
    url = temp.presign("GET", f"{server.url}/prod/x", timestamp=T)
    signature = dict(p.split("=", 1) for p in urlsplit(url).query.split("&"))["X-Amz-Signature"]
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth.server"):
        assert urlopen("GET", url)[0] == 200
        assert urlopen("GET", url.replace("/x", "/y"))[0] == 403
        raw(server, *signed_raw(server, credentials=(TEMP_KEY, TEMP_SECRET, TOKEN)))
    assert "GET /prod/x?" in caplog.text
    assert "refused (InvalidSignatureException)" in caplog.text
    assert signature not in caplog.text
    for fragment in (TOKEN, "session%2Btoken", "FQoGZXIvYXdzEJr"):
        assert fragment not in caplog.text


def test_region_is_validated_at_construction():
    """A malformed region fails when the server is created, not per request."""
    with pytest.raises(InvalidConfigError, match="region"):
        IamAuthServer(keys=KEYS, region="US East")


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
