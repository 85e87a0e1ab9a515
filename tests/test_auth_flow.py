"""The httpx auth flows driven by hand, without a network, and the requests hook contract."""

from datetime import datetime, timezone

import httpcore
import httpx
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from apigw_iam_auth import ApiGwIamAuth, InvalidConfigError

KEY, SECRET, TOKEN = (
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "session-token-value",
)
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=timezone.utc)
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets"


@pytest.fixture
def anyio_backend():
    return "asyncio"


def make_auth(**kwargs):
    return ApiGwIamAuth(credentials=(KEY, SECRET, TOKEN), clock=lambda: NOW, **kwargs)


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


def test_sync_flow_yields_the_request_signed_as_botocore_would():
    """sync_auth_flow signs the request in place; botocore recomputes the same signature."""
    request = httpx.Request("POST", URL + "?b=2&a=x+y", json={"name": "rex"})  # '+': rewritten
    flow = make_auth().sync_auth_flow(request)
    sent = next(flow)
    assert sent is request
    assert sent.url.raw_path == b"/prod/pets?a=x%20y&b=2"
    assert sent.headers["X-Amz-Security-Token"] == TOKEN
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200, request=sent))


@pytest.mark.anyio
async def test_async_flow_reads_an_async_stream_once_and_signs_it():
    """async_auth_flow buffers an async body stream and signs exactly those bytes."""

    async def chunks():
        yield b'{"a":'
        yield b"1}"

    request = httpx.Request("PUT", URL, content=chunks())
    flow = make_auth().async_auth_flow(request)
    sent = await flow.__anext__()
    assert sent.content == b'{"a":1}'
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))
    with pytest.raises(StopAsyncIteration):
        await flow.asend(httpx.Response(200, request=sent))


def test_presign_mode_moves_everything_into_the_query():
    """With presign=True the flow sends no Authorization header and a presigned URL."""
    request = httpx.Request("GET", URL + "?q=1")
    sent = next(make_auth(presign=True, expires=60).sync_auth_flow(request))
    assert "Authorization" not in sent.headers
    assert "X-Amz-Security-Token" not in sent.headers
    params = dict(sent.url.params.multi_items())
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Security-Token"] == TOKEN
    assert params["q"] == "1"


def test_resigning_replaces_stale_signing_headers():
    """A request signed twice (a retry) carries one fresh set of signing headers, not two."""
    auth = make_auth()
    request = httpx.Request("GET", URL)
    next(auth.sync_auth_flow(request))
    next(auth.sync_auth_flow(request))
    assert len(request.headers.get_list("Authorization")) == 1
    assert len(request.headers.get_list("X-Amz-Date")) == 1


def test_same_origin_redirect_refused_is_resigned_for_its_new_url():
    """After a same-origin redirect answered 403, the flow yields the hop again, signed."""
    auth = make_auth()
    request = httpx.Request("GET", URL)
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    hop = httpx.Request("GET", URL + "/moved", headers=sent.headers)
    redirect = httpx.Response(302, headers={"Location": URL + "/moved"}, request=sent)
    refused = httpx.Response(403, request=hop, history=[redirect])
    retry = flow.send(refused)
    assert retry is hop
    assert retry.headers["Authorization"].endswith("Signature=" + botocore_signature(retry))


def test_cross_origin_redirect_refused_is_not_resigned():
    """A 403 from another origin after a redirect is returned as is, never signed for."""
    flow = make_auth().sync_auth_flow(httpx.Request("GET", URL))
    sent = next(flow)
    hop = httpx.Request("GET", "https://elsewhere.example.com/x")
    redirect = httpx.Response(302, headers={"Location": str(hop.url)}, request=sent)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(403, request=hop, history=[redirect]))
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
async def test_async_flow_hashes_a_large_body_off_the_loop_correctly():
    """A body over 1 MiB is hashed in a worker thread and still signed as botocore would."""
    body = bytes(range(256)) * (3 * 1024 * 1024 // 256)
    request = httpx.Request("PUT", URL, content=body)
    sent = await make_auth().async_auth_flow(request).__anext__()
    assert sent.headers["Authorization"].endswith("Signature=" + botocore_signature(sent))


def test_stale_signing_headers_are_dropped_however_spelled_and_repeated():
    """Signing headers already on a request (any case, repeated) give way to one fresh set.

    With long-term credentials a leftover session token must not be sent at all.
    """
    stale = [
        ("authorization", "old"),
        ("AUTHORIZATION", "older"),
        ("X-Amz-Security-Token", "old-token"),
        ("x-amz-date", "19990101T000000Z"),
    ]
    request = httpx.Request("GET", URL, headers=stale)
    sent = next(ApiGwIamAuth(credentials=(KEY, SECRET)).sync_auth_flow(request))
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


def _hop(request: httpx.Request) -> httpcore.Request:
    """The httpcore request httpx's transport makes of ``request`` (as HTTPTransport does)."""
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        extensions=request.extensions,
    )


def test_guard_keeps_our_headers_on_our_own_hop_whatever_the_url_spelling():
    """Guards shared per origin must match each request's own origin, spelled any way.

    httpx keeps an explicit default port after an uppercase scheme (``HTTPS://h:443``) but
    drops it once the URL is rewritten: both requests must still go out signed.
    """
    auth = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET))
    for url in (
        "HTTPS://h.example:443/p?b=2&a=1",
        "HTTPS://h.example:443/p",
        "https://h.example/p",
    ):
        sent = next(auth.sync_auth_flow(httpx.Request("GET", url)))
        hop = _hop(sent)
        sent.extensions["trace"]("http11.send_request_headers.started", {"request": hop})
        assert any(name.lower() == b"authorization" for name, _ in hop.headers), url


def test_guard_strips_our_headers_from_a_hop_to_another_origin():
    """The same shared guard on a redirect hop to another host removes every signing header."""
    auth = ApiGwIamAuth(region="us-east-1", credentials=(KEY, SECRET, TOKEN))
    sent = next(auth.sync_auth_flow(httpx.Request("GET", "https://h.example/p")))
    elsewhere = httpx.Request(
        "GET", "https://other.example/p", headers=sent.headers, extensions=sent.extensions
    )
    hop = _hop(elsewhere)
    sent.extensions["trace"]("http11.send_request_headers.started", {"request": hop})
    assert not [name for name, _ in hop.headers if name.lower().startswith((b"x-amz", b"auth"))]
