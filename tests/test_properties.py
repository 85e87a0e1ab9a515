"""Property tests of the signer core, with pure-Python botocore as the reference.

botocore is used through ``botocore.auth.SigV4Auth`` / ``SigV4QueryAuth`` step by step
(``canonical_request``, ``string_to_sign``, ``signature``), never through a session, so the
``awscrt`` signers (which canonicalise differently, SIGV4_NOTES.md section 2) cannot be picked.

Every test runs derandomized (a fixed example sequence, no example database), so CI sees the
same inputs on every run.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apigw_iam_auth import signer as signer_module
from apigw_iam_auth._botocore import region_data
from apigw_iam_auth._models import SignatureLocation
from apigw_iam_auth._sigv4 import MAX_EXPIRES, amz_date, user_query
from apigw_iam_auth._sigv4 import SIGNER_QUERY as CORE_SIGNER_QUERY
from apigw_iam_auth._uri import (
    canonical_path,
    canonical_query,
    encoded_query,
    parse_origin,
    parse_query,
    sorted_plain_query,
    split_url,
    wire_parts,
    wire_path,
)
from apigw_iam_auth.errors import ApiGwIamAuthError, InvalidConfigError
from apigw_iam_auth.signer import SigV4Signer

PROPERTY_SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

FIXED = datetime(2024, 5, 17, 12, 34, 56, tzinfo=timezone.utc)
HOST = "abc123.execute-api.us-east-1.amazonaws.com"
SERVICE = "execute-api"
# botocore's SigV4Auth signs every header except this list; our signer is configured the same
# way for the differential tests so that both sign the same header set.
BOTOCORE_UNSIGNED = frozenset(botocore.auth.SIGNED_HEADERS_BLACKLIST)
# Headers the signer owns and replaces. botocore treats them differently (it keeps a caller's
# X-Amz-Security-Token when it has no token, and turns a caller's Date into an RFC 1123 Date
# instead of adding X-Amz-Date), so callers' copies are not generated: they are not caller input.
# Host is left out too: both sides take it from the URL here.
SIGNER_OWNED = frozenset(
    {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "date", "host"}
)
# In both modes the core drops these query names: they are the presigned-URL parameters.
SIGNER_QUERY = frozenset(
    {
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-signedheaders",
        "x-amz-security-token",
        "x-amz-signature",
    }
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# --- strategies -------------------------------------------------------------------------------

# No surrogates: they are not text a URL, header or key can carry (see the robustness test).
_TEXT = st.characters(exclude_categories=("Cs",))

access_keys = st.from_regex(r"[A-Z0-9]{4,20}", fullmatch=True)
# Secrets are printable ASCII without spaces (the library refuses a stray newline or space).
secret_keys = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)
tokens = st.none() | st.from_regex(r"[A-Za-z0-9+/=]{1,60}", fullmatch=True)
# Every region of every partition botocore knows (the signer refuses names of none).
regions = st.sampled_from(sorted(region_data().names))
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - bounds of a naive strategy, tz added below
    max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    timezones=st.just(timezone.utc),
)

_PATH_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="/?#\r\n\t\x00")
path_segments = st.one_of(
    st.sampled_from(
        [
            "",  # gives "//"
            ".",
            "..",
            "a b",
            "%20",
            "%2F",
            "%25",
            "%",
            "%zz",
            "%41",
            "!*'();:@&=+$,",
            "café",
            "ሴ",
            "~user",
            "@connections",
        ]
    ),
    st.text(_PATH_CHARS, max_size=12),
)
paths = st.builds(
    lambda segments, trailing: "/" + "/".join(segments) + ("/" if trailing else ""),
    st.lists(path_segments, max_size=5),
    st.booleans(),
)

_QUERY_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="&#\r\n\t\x00")
_query_parts = st.one_of(
    st.sampled_from(
        ["", "a", "b", "x y", "+", "a+b", "%2B", "%20", "=", "a=b", "%FF", "%C3", "%", "é", "ሴ"]
    ),
    st.text(_QUERY_CHARS, max_size=8),
)


def _raw_piece(key: str, value: str | None) -> str:
    return key if value is None else f"{key}={value}"


raw_queries = st.lists(
    st.builds(
        _raw_piece,
        st.sampled_from(["a", "b", "A", "id", "id-type", "k"]) | _query_parts,
        st.none() | _query_parts,
    ),
    max_size=6,
).map("&".join)

# Header names: RFC 9110 tokens, mixed case, a few chosen to repeat or to be in botocore's list.
_TOKEN_NAMES = st.from_regex(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}", fullmatch=True)
header_names = (
    st.sampled_from(["X-Custom", "x-custom", "Content-Type", "Accept", "User-Agent", "Expect"])
    | _TOKEN_NAMES
).filter(lambda name: name.lower() not in SIGNER_OWNED)
# Header values are ASCII: the library refuses non-ASCII values, whose wire bytes differ between
# HTTP clients (requests sends Latin-1, httpx what it was given), and 0x1C-0x1F, which botocore
# and aws-c-auth sign differently.
header_values = st.one_of(
    st.sampled_from(["", " a  b ", "\ta\t\tb\t", "a,b", '"quoted  value"', "x\x0b\x0cy"]),
    st.text(
        st.characters(max_codepoint=0x7F, exclude_characters="\r\n\x00\x1c\x1d\x1e\x1f"),
        max_size=16,
    ),
)
headers_lists = st.lists(st.tuples(header_names, header_values), max_size=6)
bodies = st.binary(max_size=64)


@st.composite
def raw_requests(draw: st.DrawFn) -> dict[str, object]:
    """A raw caller request: method, URL (raw path and query), headers in order, body."""
    port = draw(st.sampled_from(["", ":443", ":8443"]))
    query = draw(raw_queries)
    url = f"https://{HOST}{port}{draw(paths)}" + (f"?{query}" if query else "")
    return {
        "method": draw(st.sampled_from(METHODS)),
        "url": url,
        "headers": draw(headers_lists),
        "body": draw(bodies),
    }


credentials = st.tuples(access_keys, secret_keys, tokens).map(
    lambda triple: triple if triple[2] is not None else triple[:2]
)

# --- helpers ----------------------------------------------------------------------------------


def _ours(signer: SigV4Signer, req: dict):
    """Our full result (canonical request, string to sign) for the request ``sign`` sends."""
    _, body_hash = signer_module._body_and_hash(req["body"], None)
    headers = signer_module._snapshot(req["headers"])
    return signer._sign_for_wire(req["method"], req["url"], headers, body_hash, timestamp=FIXED)[3]


def _boto_creds(creds: tuple[str, ...]) -> BotoCredentials:
    return BotoCredentials(*creds)


def _boto_header_mode(creds, region, method, url, headers, body, timestamp=FIXED):
    """botocore's canonical request, string to sign and signature, step by step."""
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers:
        request.headers[name] = value  # HTTPHeaders appends: repeats are kept in order
    request.context["timestamp"] = timestamp.strftime("%Y%m%dT%H%M%SZ")
    auth = botocore.auth.SigV4Auth(_boto_creds(creds), SERVICE, region)
    auth._modify_request_before_signing(request)  # adds X-Amz-Date and the token, as add_auth
    canonical = auth.canonical_request(request)
    to_sign = auth.string_to_sign(request, canonical)
    return canonical, to_sign, auth.signature(to_sign, request)


def _boto_presign(creds, region, method, url, headers, expires, body=b""):
    """botocore's presigned canonical request and signature, step by step."""
    request = AWSRequest(method=method, url=url)
    for name, value in headers:
        request.headers[name] = value
    request.context["timestamp"] = FIXED.strftime("%Y%m%dT%H%M%SZ")
    auth = botocore.auth.SigV4QueryAuth(_boto_creds(creds), SERVICE, region, expires=expires)
    auth._modify_request_before_signing(request)  # rebuilds the query with the X-Amz-* params
    # SigV4QueryAuth moves any body into the query string (it json-decodes it), so the body is
    # attached only after that step: the canonical request then hashes it like SigV4Auth does.
    request.data = body
    canonical = auth.canonical_request(request)
    to_sign = auth.string_to_sign(request, canonical)
    return canonical, auth.signature(to_sign, request), request.url


def _sig_of(signed_headers) -> str:
    return signed_headers["Authorization"].rpartition("Signature=")[2]


def _signer(creds, region="us-east-1", unsigned=BOTOCORE_UNSIGNED) -> SigV4Signer:
    return SigV4Signer(credentials=creds, region=region, unsigned_headers=unsigned)


# --- 1. header mode vs botocore SigV4Auth -----------------------------------------------------


@PROPERTY_SETTINGS
@given(req=raw_requests(), creds=credentials, region=regions)
def test_header_mode_matches_botocore_stage_by_stage(req, creds, region):
    """Canonical request, string to sign and signature equal botocore's for the wire request."""
    signer = _signer(creds, region)
    signed = signer.sign(
        req["method"], req["url"], headers=req["headers"], body=req["body"], timestamp=FIXED
    )
    ours = _ours(signer, req)
    # botocore gets our *wire* URL: it signs a URL's raw query verbatim (SIGV4_NOTES.md
    # section 2), and the wire form, whose query is already canonical, is what the server sees.
    headers = [*req["headers"], ("Host", signed.headers["Host"])]
    canonical, to_sign, sig = _boto_header_mode(
        creds, region, req["method"], signed.url, headers, req["body"]
    )
    assert ours.canonical_request == canonical
    assert ours.string_to_sign == to_sign
    assert ours.signature == sig == _sig_of(signed.headers)


@PROPERTY_SETTINGS
@given(req=raw_requests(), creds=credentials)
def test_signed_url_is_a_fixed_point(req, creds):
    """Re-signing the signed URL gives the same URL and the same canonical request."""
    signer = _signer(creds)
    first = signer.sign(
        req["method"], req["url"], headers=req["headers"], body=req["body"], timestamp=FIXED
    )
    second = signer.sign(
        req["method"], first.url, headers=req["headers"], body=req["body"], timestamp=FIXED
    )
    assert second.url == first.url
    assert _ours(signer, {**req, "url": first.url}).canonical_request == (
        _ours(signer, req).canonical_request
    )
    assert second.headers == first.headers


# --- 2. presign vs botocore SigV4QueryAuth ----------------------------------------------------

# botocore's SigV4QueryAuth rebuilds the query with parse_qs into a dict (SIGV4_NOTES.md
# section 2): repeated keys collapse to the first value, '+' becomes a space and invalid UTF-8
# escapes become U+FFFD. It is a correct reference only for unique keys of valid text without
# '+', which is what is generated here (keys/values are text, sent percent-encoded).
_presign_text = st.text(_TEXT, max_size=8)
presign_queries = st.dictionaries(
    _presign_text.filter(lambda key: key.lower() not in SIGNER_QUERY), _presign_text, max_size=5
)


def _encoded_query(pairs: dict[str, str], bare_flags: bool) -> str:
    pieces = []
    for key, value in pairs.items():
        if bare_flags and not value:
            pieces.append(quote(key, safe=""))
        else:
            pieces.append(f"{quote(key, safe='')}={quote(value, safe='')}")
    return "&".join(pieces)


@PROPERTY_SETTINGS
@given(
    path=paths,
    query=presign_queries,
    bare_flags=st.booleans(),
    headers=st.lists(st.tuples(header_names, header_values), max_size=3),
    creds=credentials,
    region=regions,
    expires=st.integers(1, MAX_EXPIRES),
    body=bodies,
)
def test_presign_matches_botocore(path, query, bare_flags, headers, creds, region, expires, body):
    """Presigned canonical request and X-Amz-Signature equal botocore SigV4QueryAuth's."""
    encoded = _encoded_query(query, bare_flags)
    url = f"https://{HOST}{path}" + (f"?{encoded}" if encoded else "")
    # SigV4QueryAuth drops this exact content type (its own form default), so it is not sent.
    assume(all(v != "application/x-www-form-urlencoded; charset=utf-8" for _, v in headers))
    signer = _signer(creds, region)
    presigned = signer.presign(
        "GET", url, headers=headers, expires=expires, timestamp=FIXED, body=body
    )
    _, body_hash = signer_module._body_and_hash(body, None)
    signed = signer._sign_for_wire(
        "GET",
        url,
        signer_module._snapshot(headers),
        body_hash,
        location=SignatureLocation.QUERY,
        expires=expires,
        timestamp=FIXED,
    )
    ours, base = signed[3], signed[0].partition("?")[0]
    wire_query = signer.sign("GET", url, headers=headers, body=body, timestamp=FIXED).url.partition(
        "?"
    )[2]
    boto_url = base + (f"?{wire_query}" if wire_query else "")
    boto_headers = [*headers, ("Host", HOST)]
    canonical, sig, _ = _boto_presign(creds, region, "GET", boto_url, boto_headers, expires, body)
    assert ours.canonical_request == canonical
    assert dict(parse_qsl(urlsplit(presigned).query))["X-Amz-Signature"] == sig


def test_botocore_presign_drops_a_repeated_key_we_keep_both():
    """botocore's presign loses ?a=1&a=2's second pair; we sign and send both."""
    creds = ("AKIDEXAMPLE", "secret")
    url = f"https://{HOST}/prod/items?a=1&a=2"
    presigned = _signer(creds).presign("GET", url, expires=60, timestamp=FIXED)
    canonical, _, boto_url = _boto_presign(creds, "us-east-1", "GET", url, [("Host", HOST)], 60)
    # botocore: parse_qs -> {k: v[0]} keeps only a=1 (its comment assumes "we won't have repeated
    # keys"), so its URL no longer asks for what the caller asked for. API Gateway passes both
    # values to the integration (multiValueQueryStringParameters), so we keep and sign both.
    assert [v for k, v in parse_qsl(urlsplit(boto_url).query) if k == "a"] == ["1"]
    assert "&a=1\n" in canonical  # 'X' < 'a': a sorts last
    assert "a=2" not in canonical
    assert [v for k, v in parse_qsl(urlsplit(presigned).query) if k == "a"] == ["1", "2"]


# --- 3. core properties -----------------------------------------------------------------------

# Any code point, with the troublesome ones (lone surrogates, CR/LF/NUL/TAB, URL delimiters,
# '%', non-ASCII) drawn often enough to reach every parser branch within the example budget.
_NASTY = st.sampled_from(list("\ud800\udcff\udfff\r\n\x00\t %+&=?#/:@[]\\é\u3000\U0001f600"))
# (A list joined, not st.text: st.text drops surrogates even from an explicit alphabet.)
_ANY_TEXT = st.lists(st.characters() | _NASTY, max_size=40).map("".join)
_URLS = st.one_of(
    _ANY_TEXT,
    st.builds("https://{}".format, _ANY_TEXT),
    st.builds(f"https://{HOST}/{{}}".format, _ANY_TEXT),
    st.builds(f"http://{HOST}:{{}}/".format, _ANY_TEXT),
)


@PROPERTY_SETTINGS
@given(
    method=st.sampled_from(METHODS) | _ANY_TEXT,
    url=_URLS,
    headers=st.lists(st.tuples(_ANY_TEXT, _ANY_TEXT), max_size=3),
    body=st.none() | st.binary(max_size=16) | _ANY_TEXT,
    region=st.none() | st.just("us-east-1"),
    presign=st.booleans(),
)
def test_arbitrary_text_raises_only_our_errors(method, url, headers, body, region, presign):
    """Any text URL, method, headers and body either signs or raises an ApiGwIamAuthError."""
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), region=region)
    try:
        if presign:
            signer.presign(method, url, headers=headers, timestamp=FIXED, body=body)
        else:
            signer.sign(method, url, headers=headers, body=body, timestamp=FIXED)
    except ApiGwIamAuthError:
        pass


@PROPERTY_SETTINGS
@given(req=raw_requests(), creds=credentials)
def test_signing_is_deterministic_for_a_fixed_clock(req, creds):
    """Two signers with the same clock produce identical URLs, headers and presigned URLs."""
    a, b = _signer(creds), SigV4Signer(credentials=creds, region="us-east-1", clock=lambda: FIXED)
    args = (req["method"], req["url"])
    kwargs = {"headers": req["headers"], "body": req["body"]}
    a_signed, b_signed = a.sign(*args, **kwargs, timestamp=FIXED), b.sign(*args, **kwargs)
    assert (a_signed.url, dict(a_signed.headers)) == (b_signed.url, dict(b_signed.headers))
    assert a.presign(req["method"], req["url"], timestamp=FIXED) == b.presign(
        req["method"], req["url"]
    )


# For "changing X changes the signature" the request is built from *decoded* parts and encoded
# here, so two different drawn values are two different wire requests. Paths have no dot or
# empty segments: "/a/../b" and "/c/../b" are the same request after normalization.
_SEGMENT = st.text(_TEXT, min_size=1, max_size=8).filter(lambda s: s not in {".", ".."})
_VALUE = st.text(_TEXT, max_size=8)
_HEADER_VALUE = st.text(
    st.characters(max_codepoint=0x7F, exclude_characters="\r\n\x00\x1c\x1d\x1e\x1f"),
    max_size=8,
)


@st.composite
def decoded_requests(draw: st.DrawFn) -> dict[str, object]:
    """A request as decoded parts: segments, query pairs, signed headers, body."""
    return {
        "method": draw(st.sampled_from(METHODS)),
        "segments": draw(st.lists(_SEGMENT, min_size=1, max_size=4)),
        "query": draw(
            st.lists(
                st.tuples(_VALUE.filter(lambda k: k.lower() not in SIGNER_QUERY), _VALUE),
                min_size=1,
                max_size=4,
            )
        ),
        "headers": draw(
            st.lists(
                st.tuples(
                    _TOKEN_NAMES.filter(lambda n: n.lower() not in SIGNER_OWNED), _HEADER_VALUE
                ),
                min_size=1,
                max_size=3,
                unique_by=lambda item: item[0].lower(),
            ).filter(lambda hs: all(name.lower() not in BOTOCORE_UNSIGNED for name, _ in hs))
        ),
        "body": draw(bodies),
    }


def _signature(req: dict, creds, region="us-east-1", timestamp=FIXED) -> str:
    path = "/" + "/".join(quote(segment, safe="") for segment in req["segments"])
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in req["query"])
    signed = _signer(creds, region).sign(
        req["method"],
        f"https://{HOST}{path}?{query}",
        headers=req["headers"],
        body=req["body"],
        timestamp=timestamp,
    )
    return _sig_of(signed.headers)


def _replace(items: list, index: int, value: object) -> list:
    return [value if i == index else item for i, item in enumerate(items)]


@PROPERTY_SETTINGS
@given(req=decoded_requests(), creds=credentials, data=st.data())
def test_changing_any_signed_component_changes_the_signature(req, creds, data):
    """Method, a path segment, a query value, a signed header, the body, time or region matter."""
    base = _signature(req, creds)
    component = data.draw(
        st.sampled_from(["method", "segment", "query", "header", "body", "timestamp", "region"])
    )
    changed = dict(req)
    region, timestamp = "us-east-1", FIXED
    if component == "method":
        changed["method"] = data.draw(st.sampled_from(METHODS).filter(lambda m: m != req["method"]))
    elif component == "segment":
        i = data.draw(st.integers(0, len(req["segments"]) - 1))
        new = data.draw(_SEGMENT.filter(lambda s: s != req["segments"][i]))
        changed["segments"] = _replace(req["segments"], i, new)
    elif component == "query":
        i = data.draw(st.integers(0, len(req["query"]) - 1))
        key, value = req["query"][i]
        changed["query"] = _replace(
            req["query"], i, (key, data.draw(_VALUE.filter(lambda v: v != value)))
        )
    elif component == "header":
        i = data.draw(st.integers(0, len(req["headers"]) - 1))
        name, value = req["headers"][i]
        # Whitespace runs fold to one space in the canonical form, so compare folded values.
        new = data.draw(_HEADER_VALUE.filter(lambda v: v.split() != value.split()))
        changed["headers"] = _replace(req["headers"], i, (name, new))
    elif component == "body":
        changed["body"] = data.draw(bodies.filter(lambda b: b != req["body"]))
    elif component == "timestamp":
        timestamp = data.draw(timestamps.filter(lambda t: amz_date(t) != amz_date(FIXED)))
    else:
        region = data.draw(regions.filter(lambda r: r != "us-east-1"))
    assert _signature(changed, creds, region, timestamp) != base


@PROPERTY_SETTINGS
@given(
    expires=st.integers(max_value=0) | st.integers(min_value=MAX_EXPIRES + 1),
    creds=credentials,
)
def test_presign_expires_outside_one_to_seven_days_is_rejected(expires, creds):
    """presign refuses X-Amz-Expires below 1 s or above 604800 s with InvalidConfigError."""
    with pytest.raises(InvalidConfigError, match="expires"):
        _signer(creds).presign("GET", f"https://{HOST}/prod", expires=expires, timestamp=FIXED)


@pytest.mark.parametrize("expires", [1, MAX_EXPIRES])
def test_presign_expires_bounds_are_accepted(expires):
    """The bounds 1 and 604800 themselves are valid expiries and appear in the URL."""
    url = _signer(("AKIDEXAMPLE", "secret")).presign(
        "GET", f"https://{HOST}/prod", expires=expires, timestamp=FIXED
    )
    assert f"X-Amz-Expires={expires}&" in url


# --- findings pinned as examples --------------------------------------------------------------

_SURROGATE = "\ud800"  # a lone surrogate: a valid Python str that UTF-8 cannot encode


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "creds"),
    [
        ("GET", f"https://{HOST}/prod/{_SURROGATE}", None, None, ("AKID", "sk")),
        ("GET", f"https://{HOST}/prod?a={_SURROGATE}", None, None, ("AKID", "sk")),
        (f"G{_SURROGATE}", f"https://{HOST}/prod", None, None, ("AKID", "sk")),
        ("GET", f"https://{HOST}/prod", {"x-a": _SURROGATE}, None, ("AKID", "sk")),
        ("POST", f"https://{HOST}/prod", None, _SURROGATE, ("AKID", "sk")),
        ("GET", f"https://{HOST}/prod", None, None, ("AKID", f"s{_SURROGATE}")),
        ("GET", f"https://{HOST}/prod", None, None, ("AKID", "sk", f"t{_SURROGATE}")),
    ],
    ids=["path", "query", "method", "header-value", "str-body", "secret", "token"],
)
def test_unencodable_text_raises_our_error(method, url, headers, body, creds):
    """Text UTF-8 cannot encode fails with an ApiGwIamAuthError, not a bare UnicodeEncodeError."""

    def sign() -> object:  # credentials may already be refused when the signer is built
        signer = SigV4Signer(credentials=creds, region="us-east-1")
        return signer.sign(method, url, headers=headers, body=body, timestamp=FIXED)

    with pytest.raises(ApiGwIamAuthError):
        sign()


@PROPERTY_SETTINGS
@given(method=st.sampled_from(METHODS), upper=st.lists(st.booleans(), min_size=7, max_size=7))
def test_method_case_matches_botocore_and_the_wire(method, upper):
    """A method in any case is signed as requests/httpx/botocore send it: uppercased."""
    spelled = "".join(c if up else c.lower() for c, up in zip(method, upper, strict=False))
    creds = ("AKIDEXAMPLE", "secret")
    url = f"https://{HOST}/prod"
    signed = _signer(creds).sign(spelled, url, timestamp=FIXED)
    canonical, _, sig = _boto_header_mode(
        creds, "us-east-1", spelled, signed.url, [("Host", HOST)], b""
    )
    assert canonical.startswith(f"{method}\n")  # botocore: request.method.upper()
    assert _sig_of(signed.headers) == sig


@pytest.mark.parametrize("method", ["GE T", "GET\n", "GE\r\nX-Injected: 1\r\n", "G(E)T", ""])
def test_method_that_is_not_an_http_token_is_rejected(method):
    """A method no HTTP client can send (space, CR/LF, delimiters) is refused, not signed."""
    with pytest.raises(ApiGwIamAuthError):
        _signer(("AKIDEXAMPLE", "secret")).sign(method, f"https://{HOST}/prod", timestamp=FIXED)


# --- the URL splitter's one-step path for common URLs -----------------------------------------

_URL_PIECE = st.text(st.sampled_from("aZ09/.-_~%+ :@?#[]é\\"), max_size=12)


@st.composite
def url_like(draw: st.DrawFn, *, common: bool) -> str:
    """The common shape (scheme://host[:port]/path?query#fragment), or any piece of it off."""
    good_scheme = st.sampled_from(["https", "http", "HTTPS", "Http"])
    good_host = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9.-]{0,8}", fullmatch=True)
    ports = st.sampled_from(["0", "08", "443", "65535", "65536", "99999"]) | st.integers(
        0, 99999
    ).map(str)
    if common:
        scheme, host = draw(good_scheme), draw(good_host)
        port = draw(st.none() | ports)
        lead = draw(st.sampled_from(["", "/", "?", "#"]))
    else:
        scheme = draw(good_scheme | st.sampled_from(["ftp", "", "https:"]))
        host = draw(good_host | st.text(st.sampled_from("aZ09.-_@[]:é"), max_size=10))
        port = draw(st.none() | ports | st.sampled_from(["", "123456", "1x"]))
        lead = draw(st.sampled_from(["", "/", "?", "#", "x", "@", ":"]))
    tail = "".join(draw(st.lists(_URL_PIECE, max_size=3)))
    return f"{scheme}://{host}{'' if port is None else ':' + port}{lead}{tail}"


def _urlsplit_reading(url: str):
    """What urlsplit (and its .hostname, .port) reads from ``url``: the reference."""
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port, parts.path, parts.query


def _our_reading(url: str):
    """The same facts as read by split_url + parse_origin (the signer's route)."""
    origin, path, query = split_url(url)
    scheme, _, netloc = origin.partition("://")
    return scheme.lower(), netloc, path, query, parse_origin(origin)


@PROPERTY_SETTINGS
@given(url=url_like(common=True) | url_like(common=False))
def test_url_split_agrees_with_urlsplit(url):
    """Wherever urlsplit reads a URL, the one-regex split reads the same path, query and host.

    A URL urlsplit refuses (port 70000, a bad IPv6) must be refused by us too.
    """
    try:
        scheme, hostname, port, path, query = _urlsplit_reading(url)
    except ValueError:
        with pytest.raises(InvalidConfigError):
            _our_reading(url)
        return
    if scheme not in {"http", "https"} or not hostname:
        with pytest.raises(InvalidConfigError):
            _our_reading(url)
        return
    if not hostname.isascii():  # IDNA decides; an invalid name is refused with our error
        try:
            ours = _our_reading(url)
        except InvalidConfigError:
            return
    ours = _our_reading(url)
    assert ours[:1] + ours[2:4] == (scheme, path, query)
    expected_host = hostname if ":" not in hostname else f"[{hostname}]"
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        expected_host += f":{port}"
    if expected_host.isascii():
        assert ours[4][0] == expected_host  # the Host header


def test_url_split_takes_the_usual_urls():
    """The URLs clients send most split as urlsplit splits them."""
    for url in [
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets?limit=10&type=dog",
        "http://127.0.0.1:8080/a%20b/?x=1#top",
        "HTTPS://Host.Example:443",
    ]:
        assert _our_reading(url)[2:4] == _urlsplit_reading(url)[3:]


_PATH_PIECE = st.text(st.sampled_from("aZ09/.-_~%+ :@é"), max_size=12)


@st.composite
def plain_or_not_url(draw: st.DrawFn) -> str:
    """URLs near the plain shape: segments of unreserved characters, dots, slashes, escapes."""
    scheme = draw(st.sampled_from(["https", "http", "HTTPS", "ftp"]))
    netloc = draw(st.sampled_from(["h.example", "H.example:8443", "[::1]:8080", "u@h", "é.x", ""]))
    path = "".join(draw(st.lists(_PATH_PIECE, max_size=4)))
    if path and not path.startswith("/"):
        path = "/" + path
    query = draw(st.none() | st.text(st.sampled_from("a=&%20+ é#?"), max_size=8))
    fragment = draw(st.none() | st.text(st.sampled_from("a#? é"), max_size=4))
    url = f"{scheme}://{netloc}{path}"
    url += "" if query is None else f"?{query}"
    return url + ("" if fragment is None else f"#{fragment}")


def _general_reading(url: str) -> tuple[str, str, str, str]:
    """What the general route reads: split, wire path, canonical path."""
    origin, raw_path, query = split_url(url)
    path = wire_path(raw_path)
    return origin, path, canonical_path(path), query


@PROPERTY_SETTINGS
@given(url=plain_or_not_url() | url_like(common=True))
def test_one_step_url_reading_equals_the_general_route(url):
    """wire_parts' one-regex path reads every URL as split + wire_path + canonical_path do."""
    try:
        expected = _general_reading(url)
    except InvalidConfigError:
        with pytest.raises(InvalidConfigError):
            wire_parts(url)
        return
    assert wire_parts(url) == expected


def test_one_step_url_reading_takes_the_usual_urls(monkeypatch):
    """The URLs clients send most take the one-regex path, and read as the general route."""
    usual = [
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items/12345678",
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items?id=1&q=a%20b",
        "http://127.0.0.1:8080/prod/",
        "https://h.example",
        "https://h.example?a=1#top",
    ]
    expected = [_general_reading(url) for url in usual]

    def general_route(url: str) -> tuple[str, str, str]:
        raise AssertionError(f"{url} took the general route")

    monkeypatch.setitem(wire_parts.__globals__, "split_url", general_route)
    assert [wire_parts(url) for url in usual] == expected


# A query holding an earlier signature's parameters among the caller's (a link signed again).
_SIGNED_AGAIN = st.lists(
    st.sampled_from(["b=2", "a=1", "a=x+y", "X-Amz-Signature=ab", "X-Amz-Date=1", "X-Amz-Foo=1"]),
    min_size=1,
    max_size=5,
).map("&".join)


@PROPERTY_SETTINGS
@given(raw=st.text(st.sampled_from("aZ09-._~%2Fe=&+ @!;X"), max_size=24) | _SIGNED_AGAIN)
def test_the_query_sent_reads_as_signed_in_the_callers_order(raw):
    """The query sent in place of ``raw`` reads, literally or decoded, as the pairs signed.

    Literally (botocore, awscrt) or decoded ('+' a space, as API Gateway reads it), its pairs
    sorted are the canonical query signed; decoded, they are the caller's, in the caller's
    order, less an earlier signature's parameters.
    """
    canonical, wire = user_query(raw)
    pieces = [piece.partition("=") for piece in wire.split("&") if piece] if wire else []
    literal = sorted((name, value) for name, _, value in pieces)
    assert "&".join(f"{name}={value}" for name, value in literal) == canonical
    assert canonical_query(parse_query(wire)) == canonical
    given = [pair for pair in parse_query(raw) if pair[0] not in CORE_SIGNER_QUERY]
    assert list(parse_query(wire)) == given
    assert canonical == canonical_query(given)


# Names where string order and (name, value) order could part: names that start other names
# and go on with a character that sorts below "=" ("-", ".", digits, "%").
_PLAIN_NAMES = st.sampled_from(
    ["a", "a-", "a.", "a0", "a%2F", "aZ", "a_", "a~", "b", "id", "id-type"]
)
_PLAIN_VALUES = st.sampled_from(["", "1", "10", "1-", "%20", "z", "Z"])


def _general_query(raw: str) -> str:
    """The canonical query as the general route reads it: decoded, encoded, the signer's own
    parameters dropped, sorted by (name, value)."""
    kept = [pair for pair in encoded_query(parse_query(raw)) if pair[0] not in CORE_SIGNER_QUERY]
    return "&".join(f"{name}={value}" for name, value in sorted(kept))


@PROPERTY_SETTINGS
@given(pieces=st.lists(st.tuples(_PLAIN_NAMES, _PLAIN_VALUES | st.none()), min_size=1, max_size=6))
def test_sorted_plain_query_orders_as_pairs_do(pieces):
    """Sorting a plain query's pieces as strings (with "=" as U+0001) gives join_query's order;
    a bare name is signed as "name=" wherever it stands."""
    raw = "&".join(name if value is None else f"{name}={value}" for name, value in pieces)
    assert sorted_plain_query(raw) == _general_query(raw)


@PROPERTY_SETTINGS
@given(raw=st.text(st.sampled_from("aZ09-._~%2Fe=&+ @!;€"), max_size=24) | st.just("X-Amz-Date=1"))
def test_user_query_is_the_general_reading(raw):
    """user_query's canonical text, fast path or not, is the general route's."""
    fast = sorted_plain_query(raw)
    assert fast is None or fast == _general_query(raw)
    assert user_query(raw)[0] == _general_query(raw)


# Any instant X-Amz-Date can write, seen from any UTC offset a datetime can carry.
_OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
    ),
)
_ANY_INSTANT = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - bounds of a naive strategy, tz added below
    max_value=datetime(9999, 12, 30, 23, 59, 59, 999999),  # noqa: DTZ001
    timezones=_OFFSETS,
)


def _calendar_amz_date(when: datetime) -> str:
    """X-Amz-Date by datetime's own calendar arithmetic, independent of the core's."""
    utc = when.astimezone(timezone.utc)
    return (
        f"{utc.year:04d}{utc.month:02d}{utc.day:02d}"
        f"T{utc.hour:02d}{utc.minute:02d}{utc.second:02d}Z"
    )


@PROPERTY_SETTINGS
@given(when=_ANY_INSTANT)
def test_x_amz_date_is_the_utc_calendar_time(when):
    """The date signed, in the header, the presigned query and the scope, is the UTC time."""
    expected = _calendar_amz_date(when)
    assert amz_date(when) == expected
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), region="us-east-1")
    headers = signer.sign("GET", "https://h.example/p", timestamp=when).headers
    assert headers["X-Amz-Date"] == expected
    assert f"Credential=AKIDEXAMPLE/{expected[:8]}/us-east-1/" in headers["Authorization"]
    query = dict(
        parse_qsl(urlsplit(signer.presign("GET", "https://h.example/p", timestamp=when)).query)
    )
    assert query["X-Amz-Date"] == expected
    assert query["X-Amz-Credential"].startswith(f"AKIDEXAMPLE/{expected[:8]}/")
