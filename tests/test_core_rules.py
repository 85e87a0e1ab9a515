"""Rules of the signing core that mutation testing found unproven, each checked on its own.

Every expected value comes from a reference, never from our own code: botocore's ``SigV4Auth``
run step by step, or what the HTTP clients themselves put on the wire (requests/urllib3, and yarl
for aiohttp).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
import yarl
from aws_server import ACCESS_KEY, SECRET_KEY
from hypothesis import given
from hypothesis import strategies as st
from test_properties import FIXED, PROPERTY_SETTINGS, _boto_header_mode, _sig_of, _signer

from apigw_iam_auth.errors import InvalidConfigError

CREDS = (ACCESS_KEY, SECRET_KEY)
_PLAIN = "https://h.example:8443/prod/a%20b/?x=1&y=a+b#top"


# --- the URL sent ------------------------------------------------------------------------------


def test_userinfo_is_not_sent_so_no_client_turns_it_into_basic_auth():
    """A URL's ``user:password@`` is dropped from the URL to send: requests would otherwise
    replace the SigV4 Authorization with a Basic one, and a presigned link would carry it."""
    signed = _signer(CREDS).sign("GET", "https://user:pw@h.example/p", timestamp=FIXED)
    assert urlsplit(signed.url).netloc == "h.example"
    prepared = requests.Request("GET", signed.url, headers=signed.headers).prepare()
    assert prepared.headers["Authorization"] == signed.headers["Authorization"]
    # botocore signs the Host it reads off the same URL: the userinfo is no part of it.
    _, _, sig = _boto_header_mode(
        CREDS, "us-east-1", "GET", signed.url, [("Host", "h.example")], b""
    )
    assert _sig_of(signed.headers) == sig
    link = _signer(CREDS).presign("GET", "https://user:pw@h.example:8443/p", timestamp=FIXED)
    assert urlsplit(link).netloc == "h.example:8443"


def _full_width(text: str) -> str:
    """``text`` in the full-width forms of its ASCII letters (U+FF01 to U+FF5E)."""
    return "".join(chr(ord(character) + 0xFEE0) for character in text)


@pytest.mark.parametrize("host", [f"{_full_width('example')}.com", f"{_full_width('Api')}.example"])
def test_a_host_uts46_maps_is_signed_as_the_a_label_aiohttp_sends(host):
    """A name UTS 46 maps (full-width letters) is signed as yarl, so aiohttp, sends it."""
    url = f"https://{host}/p"
    sent = yarl.URL(url).raw_host
    signed = _signer(CREDS).sign("GET", url, timestamp=FIXED)
    assert signed.headers["Host"] == sent
    assert urlsplit(signed.url).netloc == sent
    assert f"\nhost:{sent}\n" in signed.signing.canonical_request


_DOT_SEGMENTS = st.lists(st.sampled_from(["a", "b", ".", "..", "c d"]), min_size=1, max_size=5)


@PROPERTY_SETTINGS
@given(segments=_DOT_SEGMENTS, trailing=st.booleans())
def test_dot_segments_are_removed_as_the_clients_remove_them(segments, trailing):
    """The path sent is RFC 3986's dot-segment removal, as urllib3 (requests) and yarl send it:
    ``/a/b/.`` and ``/a/b/..`` keep their trailing slash (``/a/b/``, ``/a/``)."""
    url = "https://h.example/" + "/".join(segments) + ("/" if trailing else "")
    signed = _signer(CREDS).sign("GET", url, timestamp=FIXED)
    path = urlsplit(signed.url).path
    assert path == requests.Request("GET", url).prepare().path_url
    assert path == yarl.URL(url).raw_path


@PROPERTY_SETTINGS
@given(
    control=st.sampled_from(["\r", "\n", "\t", "\x00", "\r\nX-Injected: 1\r\n"]),
    at=st.integers(min_value=len("https://"), max_value=len(_PLAIN)),
    presign=st.booleans(),
)
def test_a_url_with_a_control_character_anywhere_is_refused(control, at, presign):
    """CR, LF, TAB or NUL anywhere in the URL is refused, never signed: urlsplit deletes CR, LF
    and TAB silently, so the URL signed and the one a client sends could differ."""
    url = _PLAIN[:at] + control + _PLAIN[at:]
    signer = _signer(CREDS)
    sign = signer.presign if presign else signer.sign
    with pytest.raises(InvalidConfigError, match="control character"):
        sign("GET", url, timestamp=FIXED)


# --- the query sent and signed -----------------------------------------------------------------

_PLAIN_NAME = st.sampled_from(
    ["a", "b", "debug", "id", "id-type", "X-Amzn-Trace", "%C3%A9", "a.b~"]
)
_PLAIN_VALUE = st.none() | st.sampled_from(["", "1", "x-y", "%20", "%2B", "%E1%88%B4", "Z_z"])


@PROPERTY_SETTINGS
@given(pieces=st.lists(st.tuples(_PLAIN_NAME, _PLAIN_VALUE), min_size=1, max_size=5))
def test_a_query_already_canonical_is_sent_as_written_and_signed_as_botocore_signs_it(pieces):
    """A query of unreserved characters and uppercase escapes, bare names included, goes on the
    wire exactly as written (a Lambda URL hands its backend the raw query), and its signature is
    botocore's over that very URL (which signs a bare ``name`` as ``name=``)."""
    raw = "&".join(name if value is None else f"{name}={value}" for name, value in pieces)
    url = f"https://h.example/p?{raw}"
    signed = _signer(CREDS).sign("GET", url, timestamp=FIXED)
    assert signed.url == url
    host = [("Host", "h.example")]
    canonical, _, sig = _boto_header_mode(CREDS, "us-east-1", "GET", url, host, b"")
    assert signed.signing.canonical_request == canonical
    assert _sig_of(signed.headers) == sig
