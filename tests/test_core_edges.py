"""The sans-I/O core's rules at their edges: caches that must not skip a check, URL forms
that take the slow route, key material given wrong.

Each test was written to kill a mutant of _sigv4, _uri or _sigv4a that the rest of the suite
let live. Expected values come from references (urlsplit, requests and urllib3, botocore) or
from the functions' documented rules; no signature is hard-coded.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest
from botocore.utils import normalize_url_path
from requests.utils import requote_uri
from urllib3.util import parse_url

from apigw_iam_auth import _sigv4, _sigv4a, _uri
from apigw_iam_auth._models import (
    Credentials,
    SignableRequest,
    SignatureLocation,
    SigningConfig,
)
from apigw_iam_auth.errors import InvalidConfigError, UnsignableRequestError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
CONFIG = SigningConfig("us-east-1", "execute-api")
OWN = _sigv4.own_headers(CONFIG, None, SignatureLocation.HEADERS)


def _request(headers, query=()):
    return SignableRequest("GET", "/p", tuple(query), tuple(headers), _sigv4.EMPTY_SHA256)


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    """Each test starts with the header-set cache empty, and leaves the suite's as it was."""
    monkeypatch.setattr(_sigv4, "_HEADER_SETS", {})


# --- _sigv4._keep: the header-set cache is bounded -----------------------------------------------


def test_header_set_cache_stays_bounded():
    """A new header set per request (a request id) never grows the cache past its bound."""
    for number in range(_sigv4._MAX_HEADER_SETS + 20):
        _sigv4.headers_to_sign(
            (("Host", "h.example"), ("X-N", str(number))), frozenset(), OWN, None
        )
    assert len(_sigv4._HEADER_SETS) <= _sigv4._MAX_HEADER_SETS


# --- _sigv4._signed_form: the cache key must not skip a check ------------------------------------


def test_cr_in_unsigned_header_is_refused_after_a_cached_signature():
    """A CR/LF in an unsigned header is refused even when the other headers were cached."""
    _sigv4.sign(_request([("Host", "h.example")]), CREDS, CONFIG, NOW)
    injected = [("Host", "h.example"), ("X-Amzn-Trace-Id", "Root=1\r\nX-Injected: 1")]
    with pytest.raises(UnsignableRequestError, match="CR, LF or NUL"):
        _sigv4.sign(_request(injected), CREDS, CONFIG, NOW)


def test_stale_authorization_is_reported_after_a_cached_signature():
    """An earlier attempt's Authorization (an unsigned header) is reported stale even when the
    same headers without it were signed before (the name is part of the cache key)."""
    _sigv4.sign(_request([("Host", "h.example")]), CREDS, CONFIG, NOW)
    retried = [("Host", "h.example"), ("Authorization", "AWS4-HMAC-SHA256 old")]
    result = _sigv4.sign(_request(retried), CREDS, CONFIG, NOW)
    assert result.stale_headers == ("Authorization",)


# --- _sigv4.check_expires: the message elides huge numbers ---------------------------------------


def test_check_expires_message_elides_a_huge_number():
    """A number too long to print is not printed: the message stays one readable line."""
    with pytest.raises(InvalidConfigError, match=r"got \.\.\.$"):
        _sigv4.check_expires(10**30)
    with pytest.raises(InvalidConfigError, match=f"got {10**30 - 1}$"):
        _sigv4.check_expires(10**30 - 1)


# --- _sigv4a.load_public_key: coordinate format --------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y"), [("zz", "zz"), ("0" * 63, "0" * 64), ("0" * 64, "g" * 64), ("0" * 65, "0" * 64)]
)
def test_load_public_key_names_the_coordinate_format(x, y):
    """A coordinate not of exactly 64 hex digits is refused by that rule, whatever else is wrong."""
    with pytest.raises(InvalidConfigError, match="64 hex digits each"):
        _sigv4a.load_public_key(x, y)


# --- _sigv4a._utf8: which credential is unencodable ----------------------------------------------


def test_derive_private_key_names_the_credential_that_is_not_utf8():
    """Which of the two keys cannot be encoded is said, without quoting either."""
    with pytest.raises(InvalidConfigError, match="the secret access key is not valid text"):
        _sigv4a.derive_private_key("AKID", "secret\ud800")
    with pytest.raises(InvalidConfigError, match="the access key id is not valid text"):
        _sigv4a.derive_private_key("AKID\ud800", "secret")


# --- _uri.split_url: the urlsplit route keeps "://" ----------------------------------------------


@pytest.mark.parametrize("url", [" https://h.example/p?a=1", "\x0chttps://h.example:8443/a/b"])
def test_split_url_reads_a_url_with_leading_whitespace_as_urlsplit_does(url):
    """Leading whitespace sends a URL down the urlsplit route, which must keep its "://"."""
    split = urlsplit(url)
    assert _uri.split_url(url) == (f"{split.scheme}://{split.netloc}", split.path, split.query)


# --- _uri.wire_path: a stray "%" becomes %25 -----------------------------------------------------


@pytest.mark.parametrize("path", ["/a b%zz", "/100%", "/a%zz", "/%%41"])
def test_wire_path_encodes_a_stray_percent_as_requests_does(path):
    """requests sends requote_uri's path as urllib3 then writes it: stray "%" as %25."""
    assert _uri.wire_path(path) == parse_url(f"https://h.example{requote_uri(path)}").path


# --- _uri.canonical_path: the empty path is "/" --------------------------------------------------


def test_canonical_path_of_the_empty_path_is_a_slash():
    """An empty path is signed as "/", as botocore normalises it."""
    assert _uri.canonical_path("") == normalize_url_path("") == "/"
    result = _sigv4.sign(
        SignableRequest("GET", "", (), (("Host", "h.example"),), _sigv4.EMPTY_SHA256),
        CREDS,
        CONFIG,
        NOW,
    )
    assert result.canonical_request.startswith("GET\n/\n\n")
