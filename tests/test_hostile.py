"""Hostile input: every public entry point either works or raises ``ApiGwIamAuthError``.

Hypothesis throws garbage at the signer, ``presign_url``, the auth object (requests and httpx
paths), the verifier, the mismatch diagnostics, the credentials resolver and the CLI: URLs with
control characters, lone surrogates, stray ``%`` and absurd ports; header names and values with
CR/LF/NUL; 2 MiB and non-UTF-8 bodies; credentials of the wrong shape; odd types everywhere.
Anything but our own exception (``AttributeError``, ``KeyError``, ``TypeError``, ``UnicodeError``,
``IndexError``, ...) fails the test with the library's traceback, and so does a hang: every call
runs under a wall-clock guard (``HANG_SECONDS``).

Examples come from the hypothesis profile of ``conftest.py``: ``ci`` (default) is derandomized
and bounded; ``HYPOTHESIS_PROFILE=thorough pytest tests/test_hostile.py`` runs 5000 examples per
property for a long local hunt.

Text garbage (what a remote peer or a pasted URL can carry) and odd types (what a caller's bug
passes) are separate properties, so a report says which of the two broke. Each property reports
the first crash it meets; every crash found so far is also pinned, minimised to one line, at the
end of the file, so each fails (and later passes) on its own.
"""

from __future__ import annotations

import io
import json
import os
import signal
import string
import sys
import types
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from unittest import mock

import httpx
import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from apigw_iam_auth import cli
from apigw_iam_auth._models import Credentials
from apigw_iam_auth.auth import ApiGwIamAuth
from apigw_iam_auth.credentials import CredentialsProvider, resolve_provider
from apigw_iam_auth.diagnostics import explain_signature_mismatch
from apigw_iam_auth.errors import ApiGwIamAuthError
from apigw_iam_auth.presign import presign_url
from apigw_iam_auth.server import KnownKey, verify_request
from apigw_iam_auth.signer import SigV4Signer

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

HOST = "abc123.execute-api.us-east-1.amazonaws.com"
URL = f"https://{HOST}/prod/pets?limit=2"
KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDS = (KEY, SECRET)
T = datetime(2024, 5, 17, 12, 34, 56, tzinfo=timezone.utc)
MIB = 1024 * 1024

# One call of the code under test may take this long; the slowest legitimate call here (hashing
# a 2 MiB body) takes milliseconds, so anything near the limit is a hang, not a slow machine.
HANG_SECONDS = 2.0


class HangError(Exception):
    """A call did not return in time (an Exception, so hypothesis shrinks and reports it)."""


# The loaded profile (conftest.py), except that a property shrinks and reports only the first
# crash it meets: the others it would shrink too are pinned one by one at the end of this file,
# and shrinking each distinct crash of an unfixed entry point would take most of a minute.
HOSTILE = settings(report_multiple_bugs=False)


def works_or_ours(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``call`` under a hang guard; return its result or our exception, else re-raise.

    The guard is SIGALRM, re-armed every ``HANG_SECONDS`` so that code which swallows one
    interruption (``except Exception``) is interrupted again; a call the alarm ever fired in
    fails as a hang whatever it returned.
    """
    fired: list[bool] = []

    def on_alarm(_signum: int, _frame: object) -> None:
        fired.append(True)
        message = f"no answer within {HANG_SECONDS}s: a hang"
        raise HangError(message)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS, HANG_SECONDS)
    try:
        try:
            result = call(*args, **kwargs)
        except ApiGwIamAuthError as exc:
            result = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:
        message = f"no answer within {HANG_SECONDS}s (interruption swallowed): a hang"
        raise HangError(message)
    if currently_in_test_context():  # pinned cases run outside hypothesis
        event(f"outcome: {type(result).__name__}")  # --hypothesis-show-statistics shows the mix
    return result


# --- strategies -------------------------------------------------------------------------------

# Characters that reach every parser branch: lone surrogates (which st.text drops, hence the
# joined list), CR/LF/NUL/TAB, URL delimiters, '%', non-ASCII letters, digits that are digits to
# str.isdigit() but not to int() ('²'), digits of other scripts, joiners and wide spaces.
_NASTY_CHARS = list(
    "\ud800\udbff\udc80\udcff\udfff\r\n\x00\t\x0b\x0c\x7f\x85 %+&=?#/:;@[]\\'\",{}<>|^`"
    "\u00e9\u00a0\u3000\u2028\u200d\ufeff\U0001f600"
    "\u00b2\u00b3\u00b9\u0662\u0663\u06f4\uff10\u0967"  # superscripts, digits of other scripts
)
_NASTY = st.sampled_from(_NASTY_CHARS)
TEXT = st.lists(st.characters() | _NASTY, max_size=24).map("".join)
SHORT_TEXT = st.lists(st.characters() | _NASTY, max_size=6).map("".join)

ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.complex_numbers(max_magnitude=10),
    st.decimals(),
    st.fractions(),
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.binary(max_size=8).map(memoryview),
    st.builds(object),
    st.just(Ellipsis),
    st.just(str),
    st.lists(st.integers(0, 9), max_size=3),
    st.tuples(st.integers(0, 9)),
    st.dictionaries(st.text(string.ascii_letters, max_size=3), st.integers(0, 9), max_size=2),
    st.frozensets(st.integers(0, 9), max_size=2),
    st.dates(),
    st.timedeltas(),
    st.datetimes(),
)

_SCHEMES = st.sampled_from(
    ["https://", "http://", "HTTPS://", "ftp://", "", "//", "https:", "https:/", "https:///"]
)
_HOSTS = st.one_of(
    st.sampled_from(
        [
            HOST,
            "127.0.0.1",
            "[::1]",
            "[::1",
            "::1]",
            "[fe80::1%25eth0]",
            "[fe80::1%eth0]",
            "[v1.x]",
            "[]",
            "[:::]",
            "",
            "xn--",
            "xn--zz",
            "exämple.com",
            "a..b",
            ".",
            "-a-.com",
            "a" * 64 + ".com",
            "a" * 300,
            f"user:pw@{HOST}",
            "@",
            "%41%42",
            "h\u3002com",
            "\u200d",
            "ß.de",
        ]
    ),
    SHORT_TEXT,
)
_PORTS = st.one_of(
    st.just(""),
    st.just(":"),
    st.integers(-(10**3), 10**30).map(":{}".format),
    SHORT_TEXT.map(":{}".format),
)
_PATHS = st.lists(
    st.sampled_from(["/", "%", "%zz", "%2", "%%", "%C0%AF", "%2F", "%41", "..", ".", "//", "+"])
    | SHORT_TEXT,
    max_size=5,
).map("".join)
_QUERIES = st.one_of(
    st.just(""),
    st.lists(
        st.sampled_from(["&", "=", "&&", "==", "%", "%zz", "%ED%A0%80", "%FF", "+", "X-Amz-Date="])
        | SHORT_TEXT,
        max_size=5,
    ).map("?{}".format),
)
URLS = st.one_of(
    TEXT,
    st.builds(
        "{}{}{}{}{}{}".format,
        _SCHEMES,
        _HOSTS,
        _PORTS,
        _PATHS,
        _QUERIES,
        st.sampled_from(["", "#", "#frag", "#\x00"]),
    ),
)
METHODS = st.sampled_from(["GET", "post", "PUT", "DELETE", "PATCH"]) | TEXT

_TOKEN_NAMES = st.sampled_from(
    ["X-Custom", "content-type", "Host", "host", "X-Amz-Date", "Authorization", "x-amz-meta-a"]
)
HEADER_NAMES = _TOKEN_NAMES | TEXT
HEADER_VALUES = st.sampled_from(["ok", "", " a  b ", "a\r\nX-Injected: 1", "a\nb", "\x00"]) | TEXT
HEADER_LISTS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4)
HEADERS = st.one_of(st.none(), HEADER_LISTS, HEADER_LISTS.map(dict))

_MARKER = "The request signature we calculated does not match the signature you provided."
_CANONICAL_INTRO = "The Canonical String for this request should have been\n'"
_TO_SIGN_INTRO = "'\n\nThe String-to-Sign should have been\n'"
# Large values are drawn by name (see Big): hypothesis would otherwise print megabytes.
_BIG_VALUES: dict[str, object] = {
    "2 MiB not UTF-8": b"\xff\xfe\x80" * (2 * MIB // 3),
    "2 MiB of é": "é" * MIB,
    "100k nested JSON arrays": "[" * 100_000,
    "100k nested JSON objects": '{"a":' * 100_000,
    "2 MiB of 'should have been' after the mismatch sentence": (
        _MARKER + _CANONICAL_INTRO * (2 * MIB // len(_CANONICAL_INTRO))
    ),
}


@dataclass(frozen=True)
class Big:
    """A large value known by name, so that failure reports name it instead of printing it."""

    name: str

    @property
    def value(self) -> object:
        """The value itself."""
        return _BIG_VALUES[self.name]


def real(value: object) -> Any:
    """The drawn value, with a Big replaced by what it names."""
    return value.value if isinstance(value, Big) else value


def bigs(*names: str) -> st.SearchStrategy[Big]:
    """Draw one of the named large values."""
    return st.sampled_from(names).map(Big)


HUGE_BODIES = bigs("2 MiB not UTF-8", "2 MiB of é")
BODIES = st.one_of(
    st.none(),
    st.binary(max_size=64),
    TEXT,
    st.binary(max_size=64).map(bytearray),
    st.binary(max_size=64).map(memoryview),
    st.sampled_from([b"\xc3\x28", b"\xed\xa0\x80"]),
    HUGE_BODIES,
)

_EXTREME_ZONES = st.sampled_from(
    [
        timezone.utc,
        timezone(timedelta(hours=14)),
        timezone(timedelta(hours=-12)),
        timezone(timedelta(hours=23, minutes=59)),
        timezone(-timedelta(hours=23, minutes=59)),
        timezone(timedelta(microseconds=1)),
    ]
)
TIMESTAMPS = st.one_of(
    st.none(),
    st.datetimes(timezones=_EXTREME_ZONES),
    st.datetimes(),  # naive
    st.sampled_from([datetime.min, datetime.max]),  # noqa: DTZ901 - naive on purpose
)
EXPIRES = st.one_of(
    st.integers(),
    st.integers(1, 604_800),
    st.booleans(),
    st.floats(),
    st.sampled_from([900.0, float("nan"), float("inf"), "900", b"900", Decimal(900)]),
    st.fractions(),
    st.none(),
    ODD,
)


def _in_script(text: str, zero: int) -> str:
    """``text`` with its ASCII digits written in another script (``zero`` is its digit 0)."""
    return text.translate({ord("0") + i: chr(zero + i) for i in range(10)})


def _credential_objects() -> st.SearchStrategy[object]:
    """Things passed as ``credentials=``, none of them None (None asks botocore's real chain)."""
    leaf = st.one_of(
        st.tuples(st.just(KEY), st.just(SECRET)),
        st.tuples(SHORT_TEXT, SHORT_TEXT),
        st.tuples(SHORT_TEXT, SHORT_TEXT, SHORT_TEXT | st.none() | st.integers()),
        st.tuples(SHORT_TEXT),
        st.tuples(SHORT_TEXT, SHORT_TEXT, SHORT_TEXT, SHORT_TEXT),
        st.tuples(st.binary(max_size=4), st.binary(max_size=4)),
        st.tuples(st.integers(), st.integers()),
        st.tuples(st.just(KEY), st.integers() | st.binary(max_size=4) | st.none()),
        st.lists(SHORT_TEXT, min_size=2, max_size=3),
        st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=3),
        st.builds(
            types.SimpleNamespace,
            access_key=SHORT_TEXT | ODD,
            secret_key=SHORT_TEXT | ODD,
            token=SHORT_TEXT | ODD,
        ),
        st.builds(types.SimpleNamespace, get_frozen_credentials=ODD),
        st.builds(types.SimpleNamespace, get_credentials=ODD),
        ODD.filter(lambda value: value is not None),
        SHORT_TEXT,
    )
    return st.recursive(
        leaf, lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner), max_leaves=6
    )


CREDENTIAL_OBJECTS = _credential_objects()


def good_or(good: object, garbage: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid value or garbage (hypothesis favours the garbage: it has more to explore)."""
    return st.just(good) | garbage


@st.composite
def garbled(draw: st.DrawFn, **arguments: tuple[object, st.SearchStrategy[Any]]) -> dict[str, Any]:
    """Keyword arguments, valid but for a drawn non-empty subset that gets garbage.

    Garbage in every argument at once mostly tests the first check that fails; garbage in one
    or two, with valid values around it, reaches the code behind that check.
    """
    names = draw(st.sets(st.sampled_from(sorted(arguments)), min_size=1))
    return {
        name: draw(garbage) if name in names else good
        for name, (good, garbage) in arguments.items()
    }


def _signer(region: str | None = "us-east-1") -> SigV4Signer:
    return SigV4Signer(credentials=CREDS, region=region, clock=lambda: T)


# --- SigV4Signer ------------------------------------------------------------------------------


@HOSTILE
@given(
    kwargs=garbled(
        credentials=(CREDS, CREDENTIAL_OBJECTS),
        region=(None, TEXT | ODD),
        service=("execute-api", TEXT | ODD),
    )
)
def test_signer_construction_with_garbage(kwargs):
    """SigV4Signer(credentials, region, service) with garbage builds or raises our error."""
    works_or_ours(SigV4Signer, **kwargs)


@HOSTILE
@given(
    kwargs=garbled(
        method=("GET", METHODS), url=(URL, URLS), headers=(None, HEADERS), body=(None, BODIES)
    ),
    region=st.sampled_from([None, "us-east-1"]),
    presign=st.booleans(),
)
def test_sign_and_presign_with_garbage_text(kwargs, region, presign):
    """Garbage text in method, URL, headers and body signs or raises our error, never hangs."""
    signer = _signer(region)
    method, url, headers, body = kwargs["method"], kwargs["url"], kwargs["headers"], kwargs["body"]
    if presign:
        works_or_ours(
            signer.presign, method, url, headers=headers, expires=900, timestamp=T, body=real(body)
        )
    else:
        works_or_ours(signer.sign, method, url, headers=headers, body=real(body), timestamp=T)


_SIGN_ARGUMENTS = ("method", "url", "headers", "body", "timestamp")
_GOOD_ARGUMENTS = {"method": "GET", "url": URL, "headers": None, "body": None, "timestamp": T}
_ODD_HEADERS = st.one_of(
    ODD,
    st.text(max_size=3),
    st.lists(st.tuples(SHORT_TEXT), min_size=1, max_size=2),
    st.lists(st.tuples(ODD, ODD), min_size=1, max_size=2),
    st.lists(ODD, min_size=1, max_size=2),
    st.dictionaries(st.integers(), SHORT_TEXT, min_size=1, max_size=2),
)


@HOSTILE
@given(
    argument=st.sampled_from(_SIGN_ARGUMENTS),
    value=ODD,
    headers=_ODD_HEADERS,
    presign=st.booleans(),
)
def test_sign_and_presign_with_odd_types(argument, value, headers, presign):
    """One argument of sign()/presign() of an odd type (None, int, bytes, list...) raises ours."""
    kwargs = {**_GOOD_ARGUMENTS, argument: headers if argument == "headers" else value}
    signer = _signer()
    if presign:
        works_or_ours(
            signer.presign,
            kwargs["method"],
            kwargs["url"],
            headers=kwargs["headers"],
            timestamp=kwargs["timestamp"],
            body=kwargs["body"],
        )
    else:
        works_or_ours(signer.sign, **kwargs)


# Temporary credentials: a presigned link's expiry is capped to theirs, from the timestamp.
_EXPIRING = Credentials("AKIDEXAMPLE", "secret", "token", expiry=T + timedelta(hours=1))


@HOSTILE
@given(timestamp=TIMESTAMPS | ODD, presign=st.booleans(), expiring=st.booleans())
def test_timestamps_naive_aware_extreme_or_odd(timestamp, presign, expiring):
    """Any naive, aware (any offset, year 1 to 9999) or non-datetime timestamp: works or ours."""
    signer = _signer()
    credentials = _EXPIRING if expiring else None
    if presign:
        works_or_ours(signer.presign, "GET", URL, timestamp=timestamp, credentials=credentials)
    else:
        works_or_ours(signer.sign, "GET", URL, timestamp=timestamp, credentials=credentials)


@HOSTILE
@given(expires=EXPIRES)
def test_presign_expires_of_every_type(expires):
    """presign(expires=) of any type or size returns a link or raises our error."""
    works_or_ours(_signer().presign, "GET", URL, expires=expires, timestamp=T)


# --- presign_url ------------------------------------------------------------------------------


@HOSTILE
@given(
    kwargs=garbled(
        url=(URL, URLS | ODD),
        method=("GET", METHODS | ODD),
        expires=(900, EXPIRES),
        region=(None, TEXT | ODD),
        credentials=(CREDS, CREDENTIAL_OBJECTS),
        headers=(None, HEADERS | _ODD_HEADERS),
    )
)
def test_presign_url_with_garbage(kwargs):
    """presign_url() with garbage in any of its arguments returns a link or raises our error."""
    url = kwargs.pop("url")
    works_or_ours(presign_url, url, **kwargs, timestamp=T)


# --- ApiGwIamAuth -----------------------------------------------------------------------------


@HOSTILE
@given(
    kwargs=garbled(
        region=(None, TEXT | ODD),
        service=("execute-api", TEXT | ODD),
        credentials=(CREDS, CREDENTIAL_OBJECTS),
        presign=(False, ODD),
        expires=(900, EXPIRES),
        unsigned_headers=(["x-forwarded-for"], st.lists(TEXT, max_size=3) | ODD),
        correct_clock_skew=(True, ODD),
    )
)
def test_auth_construction_with_garbage(kwargs):
    """ApiGwIamAuth(...) with garbage settings is built or raises our error."""
    works_or_ours(ApiGwIamAuth, **kwargs)


def _auth(*, presign: bool) -> ApiGwIamAuth:
    return ApiGwIamAuth(region="us-east-1", credentials=CREDS, presign=presign, clock=lambda: T)


class _ReadOnly:
    """A file-like body with ``read()`` only (no ``seekable``), as some stream wrappers are."""

    def __init__(self, data: object) -> None:
        self._data = data

    def read(self, *_args: object) -> object:
        data, self._data = self._data, b""
        return data


_CHUNKS = st.one_of(
    st.binary(max_size=8),
    TEXT,
    st.integers(-3, 64),
    st.none(),
    st.floats(),
    st.builds(object),
)
REQUESTS_BODIES = st.one_of(
    BODIES,
    st.dictionaries(SHORT_TEXT, SHORT_TEXT, max_size=3),
    st.lists(st.tuples(SHORT_TEXT, SHORT_TEXT), max_size=3),
    st.lists(_CHUNKS, max_size=3).map(iter),
    st.builds(_ReadOnly, st.binary(max_size=8) | TEXT | _CHUNKS),
    st.binary(max_size=64).map(io.BytesIO),
    TEXT.map(io.StringIO),
    ODD,
)


def _prepared(method: object, url: object, headers: object, data: object) -> Any:
    """A requests PreparedRequest, or None when requests itself refuses the garbage."""
    try:
        return requests.Request(method=method, url=url, headers=headers, data=data).prepare()  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - requests' own validation is not under test
        return None


@HOSTILE
@given(
    kwargs=garbled(
        method=("GET", METHODS),
        url=(URL, URLS),
        headers=(
            {},
            st.dictionaries(HEADER_NAMES, HEADER_VALUES | st.binary(max_size=8), max_size=3),
        ),
    ),
    presign=st.booleans(),
)
def test_requests_path_with_garbage_request(kwargs, presign):
    """auth(prepared) signs any method/URL/headers requests itself accepts, or raises ours."""
    prepared = _prepared(kwargs["method"], kwargs["url"], kwargs["headers"], b"body")
    if prepared is not None:
        works_or_ours(_auth(presign=presign), prepared)


@HOSTILE
@given(data=REQUESTS_BODIES, presign=st.booleans())
def test_requests_path_with_garbage_bodies(data, presign):
    """auth(prepared) signs any body requests accepts (streams, files, odd types) or raises ours."""
    prepared = _prepared("POST", URL, None, real(data))
    if prepared is not None:
        works_or_ours(_auth(presign=presign), prepared)


def _httpx_request(method: object, url: object, headers: object, content: object) -> Any:
    """An httpx.Request, or None when httpx itself refuses the garbage."""
    try:
        return httpx.Request(method, url, headers=headers, content=content)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - httpx's own validation is not under test
        return None


def _first_httpx_send(request: httpx.Request, *, presign: bool) -> None:
    flow = _auth(presign=presign).sync_auth_flow(request)
    try:
        works_or_ours(next, flow)
    finally:
        flow.close()


@HOSTILE
@given(
    kwargs=garbled(
        method=("GET", METHODS),
        url=(URL, URLS),
        headers=(
            [],
            st.lists(
                st.tuples(
                    HEADER_NAMES | st.binary(max_size=8), HEADER_VALUES | st.binary(max_size=8)
                ),
                max_size=3,
            ),
        ),
    ),
    presign=st.booleans(),
)
def test_httpx_path_with_garbage_request(kwargs, presign):
    """The httpx sync flow signs any method/URL/headers httpx accepts, or raises our error."""
    request = _httpx_request(kwargs["method"], kwargs["url"], kwargs["headers"], b"body")
    if request is not None:
        _first_httpx_send(request, presign=presign)


HTTPX_CONTENT = st.one_of(
    st.none(),
    st.binary(max_size=64),
    TEXT,
    HUGE_BODIES,
    st.lists(_CHUNKS, max_size=3).map(iter),
    st.binary(max_size=64).map(io.BytesIO),
    st.builds(_ReadOnly, st.binary(max_size=8) | _CHUNKS),
    ODD,
)


@HOSTILE
@given(content=HTTPX_CONTENT, presign=st.booleans())
def test_httpx_path_with_garbage_bodies(content, presign):
    """The httpx sync flow signs any content httpx accepts (iterators, files) or raises ours."""
    request = _httpx_request("POST", URL, None, real(content))
    if request is not None:
        _first_httpx_send(request, presign=presign)


# --- verify_request ---------------------------------------------------------------------------

_KEYS = {KEY: KnownKey(SECRET)}


def _verify(method: object, target: object, headers: object, body: object) -> object:
    return verify_request(
        method,  # type: ignore[arg-type]
        target,  # type: ignore[arg-type]
        headers,  # type: ignore[arg-type]
        body,  # type: ignore[arg-type]
        lookup=_KEYS.get,
        region="us-east-1",
        now=T,
    )


def _signed_request(presign: bool) -> tuple[str, list[tuple[str, str]]]:
    """A correctly signed request (target, headers), the starting point of each mutation."""
    if presign:
        link = _signer().presign("GET", URL, timestamp=T)
        return link.removeprefix(f"https://{HOST}"), [("Host", HOST)]
    signed = _signer().sign("GET", URL, timestamp=T)
    return signed.url.removeprefix(f"https://{HOST}"), list(signed.headers.items())


# Replacement values that get past the early checks into date, expiry and key handling.
_DATES = st.sampled_from(
    [
        "20240517T123456Z",
        _in_script("20240517T123456Z", 0x0660),  # Arabic-Indic digits
        _in_script("20240517T123456Z", 0xFF10),  # fullwidth digits
        "20240517T123456Z\n",
        "00000000T000000Z",
        "99991231T235959Z",
        "20241317T123456Z",
        "Fri, 17 May 2024 12:34:56 GMT",
        "Mon, 01 Jan 0001 00:00:00 +0100",
        "Fri, 31 Dec 9999 23:00:00 -0200",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "Fri, 17 May 2024 12:34:56 +9999",
        "17 May 99999 12:34:56",
    ]
)
_TARGET_PARTS = st.sampled_from(
    [
        "X-Amz-Expires=%C2%B2",  # '²': str.isdigit() says yes, int() says no
        "X-Amz-Expires=99999999999999999999",
        "X-Amz-Expires=-1",
        "X-Amz-Signature=%ED%A0%80",
        "X-Amz-Credential=AKIDEXAMPLE%2F20240517%2Fus-east-1%2Fexecute-api%2Faws4_request",
        "X-Amz-SignedHeaders=host%3B%3B",
        "X-Amz-SignedHeaders=%00host",
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-X",
        "X-Amz-Date=%D9%A2",
        "%",
        "%zz",
        "&&",
        "==",
    ]
)


def _as_wire(text: str) -> str:
    """Text as a server can receive it: lone surrogates become escaped bytes (surrogateescape)."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "surrogateescape")


# What a server hands over after decoding the bytes it read (latin-1, or UTF-8 with
# surrogateescape as http.server and most frameworks do): any byte, no lone surrogates.
WIRE_TEXT = TEXT.map(_as_wire) | st.binary(max_size=24).map(lambda raw: raw.decode("latin-1"))


@st.composite
def _mutated_requests(
    draw: st.DrawFn, text: st.SearchStrategy[str]
) -> tuple[str, str, list[tuple[str, str]], object]:
    """A signed request with a few parts replaced by garbage ``text`` or awkward values."""
    target, headers = _signed_request(draw(st.booleans()))
    method = draw(st.sampled_from(["GET", "get", "POST"]) | text)
    names = _TOKEN_NAMES | text
    values = st.sampled_from(["", " a  b ", "a\r\nb", "\x00"]) | _DATES | text
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.integers(0, 7))
        if where == 0:
            target = draw(text.map("/{}".format) | text)
        elif where == 1:  # in front, so they win over the real parameters of the same name
            extra = draw(st.lists(_TARGET_PARTS | text, min_size=1, max_size=4))
            path, _, query = target.partition("?")
            target = f"{path}?{'&'.join(extra)}&{query}"
        elif where == 2 and headers:
            index = draw(st.integers(0, len(headers) - 1))
            headers[index] = (headers[index][0], draw(values))
        elif where == 3 and headers:
            index = draw(st.integers(0, len(headers) - 1))
            headers[index] = (draw(names), headers[index][1])
        elif where == 4:
            headers.append((draw(names), draw(values)))
        elif where == 5:
            headers = [(n, v) for n, v in headers if n.lower() != "x-amz-date"]
            headers.append(("Date", draw(_DATES | text)))
        elif where == 6:
            headers = [
                (n, v.replace("Signature=", f"Signature={draw(text)}"))
                if n == "Authorization"
                else (n, v)
                for n, v in headers
            ]
        else:
            headers = [
                (n, draw(_DATES | text)) if n == "X-Amz-Date" else (n, v) for n, v in headers
            ]
    body = draw(
        st.sampled_from([b"", b"\xff\xfe"]) | st.binary(max_size=16) | bigs("2 MiB not UTF-8")
    )
    return method, target, headers, body


@HOSTILE
@given(request=_mutated_requests(WIRE_TEXT))
def test_verify_request_with_garbage_from_the_wire(request):
    """A signed request with garbage a server can receive verifies or raises VerificationError."""
    method, target, headers, body = request
    works_or_ours(_verify, method, target, headers, real(body))


@HOSTILE
@given(request=_mutated_requests(TEXT))
def test_verify_request_with_any_text(request):
    """Any str in method, target and headers (lone surrogates too) verifies or raises ours."""
    method, target, headers, body = request
    works_or_ours(_verify, method, target, headers, real(body))


_VERIFY_ARGUMENTS = ("method", "target", "headers", "body")


@HOSTILE
@given(argument=st.sampled_from(_VERIFY_ARGUMENTS), value=ODD, headers=_ODD_HEADERS)
def test_verify_request_with_odd_types(argument, value, headers):
    """verify_request with one argument of an odd type (None, int, bytes...) raises our error."""
    target, good_headers = _signed_request(presign=False)
    args = {"method": "GET", "target": target, "headers": good_headers, "body": b""}
    args[argument] = headers if argument == "headers" else value
    works_or_ours(_verify, **args)


# --- explain_signature_mismatch ---------------------------------------------------------------

_FRAGMENTS = st.sampled_from([_MARKER, _CANONICAL_INTRO, _TO_SIGN_INTRO, "'", "\n", "\n\n", ""])
_MISMATCH_TEXT = st.lists(_FRAGMENTS | TEXT, max_size=12).map("".join)
_JSON_WRAPPED = _MISMATCH_TEXT.map(lambda text: json.dumps({"message": text}))
DIAGNOSTIC_BODIES = st.one_of(
    TEXT,
    st.binary(max_size=64),
    _MISMATCH_TEXT,
    _JSON_WRAPPED,
    _MISMATCH_TEXT.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            "",
            "{}",
            "null",
            '{"message": 5}',
            '{"Message": null, "message": []}',
        ]
    ),
    st.sampled_from(sorted(_BIG_VALUES)).map(Big),
)


def _signing_result() -> object:
    from apigw_iam_auth._models import SignableRequest  # noqa: PLC0415

    request = SignableRequest("GET", "/prod", (), (("host", HOST),), "0" * 64)
    return _signer().sign_request(request, timestamp=T)


SIGNED = _signing_result()


@HOSTILE
@given(body=DIAGNOSTIC_BODIES)
def test_explain_mismatch_with_garbage_bodies(body):
    """explain_signature_mismatch on any str/bytes body (huge, nested, non-UTF-8) is quick."""
    works_or_ours(explain_signature_mismatch, real(body), SIGNED)


@HOSTILE
@given(body=ODD)
def test_explain_mismatch_with_odd_types(body):
    """explain_signature_mismatch with a body that is not str/bytes raises our error."""
    works_or_ours(explain_signature_mismatch, real(body), SIGNED)


# --- resolve_provider -------------------------------------------------------------------------


def _holds_none(value: object, depth: int = 0) -> bool:
    if value is None:
        return True
    if isinstance(value, (list, tuple)) and depth < 10:
        return any(_holds_none(item, depth + 1) for item in value)
    return False


def _returning(value: object) -> Callable[[], object]:
    def provider() -> object:
        return value

    return provider


@HOSTILE
@given(
    credentials=CREDENTIAL_OBJECTS | CREDENTIAL_OBJECTS.map(_returning) | st.just(None),
    profile=st.none() | SHORT_TEXT | ODD,
)
def test_resolve_provider_with_odd_objects(credentials, profile):
    """resolve_provider(odd object) yields a provider whose get() works, or raises our error."""
    provider = works_or_ours(resolve_provider, credentials, profile)
    if isinstance(provider, ApiGwIamAuthError) or _holds_none(credentials):
        return  # None would consult botocore's real chain (the environment): not fetched here
    assert isinstance(provider, CredentialsProvider)
    snapshot = works_or_ours(provider.get)
    assert isinstance(snapshot, (Credentials, ApiGwIamAuthError))


# --- CLI presign ------------------------------------------------------------------------------

_CLI_OPTIONS = st.one_of(
    st.tuples(st.just("--method"), good_or("POST", TEXT)),
    st.tuples(st.just("--region"), good_or("eu-west-1", TEXT)),
    st.tuples(st.just("--service"), good_or("execute-api", TEXT)),
    st.tuples(st.just("--profile"), TEXT),
    st.tuples(
        st.just("--expires"),
        st.sampled_from(
            ["900", "0", "-1", "604801", "9" * 5000, "nan", "1e3", _in_script("300", 0x0660), " 9 "]
        )
        | TEXT,
    ),
    st.tuples(
        st.sampled_from(["-H", "--header"]),
        good_or("X-Trace: 1", HEADER_NAMES.map("{}: x".format) | HEADER_VALUES.map("a:{}".format)),
    ),
    st.tuples(TEXT),
    st.tuples(st.sampled_from(["--", "-", "--bogus", "-H", "--expires", "--method"])),
)


def _sandboxed_aws_env() -> contextlib.AbstractContextManager[object]:
    """Fake env credentials, no config files, no IMDS: botocore finds nothing real, offline."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environ |= {
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return mock.patch.dict(os.environ, environ, clear=True)


@settings(
    parent=HOSTILE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(url=good_or(URL, URLS), options=st.lists(_CLI_OPTIONS, max_size=3))
def test_cli_presign_with_garbage_argv(url, options, capsys):
    """`apigw-iam-auth presign` with garbage argv prints a link (0) or a usage error (2)."""
    argv = ["presign", url, *(part for option in options for part in option)]
    capsys.readouterr()
    sys.stderr.reconfigure(errors="backslashreplace")  # type: ignore[union-attr] # as a real one
    with _sandboxed_aws_env():
        try:
            code = works_or_ours(cli.main, argv)
        except SystemExit as exc:  # argparse: usage errors exit 2, -h/--help exits 0
            code = exc.code
    out, err = capsys.readouterr()
    event(f"exit status {code}")
    assert code in {0, 2}, (argv, code, err)
    if code == 0 and "-h" not in argv and "--help" not in argv:
        assert out.startswith(("https://", "http://")), argv
    elif code == 2:
        assert "error" in err, argv


# --- findings pinned as examples --------------------------------------------------------------
# Each crash the properties found, minimised to one line, so that every one fails on its own
# (a property reports only the failures it meets first) and passes once fixed.


def _header_signed(*, x_amz_date: str | None = None, date: str | None = None) -> list[Any]:
    """Headers of a header-signed GET of URL, with X-Amz-Date replaced or swapped for Date."""
    _, headers = _signed_request(presign=False)
    if x_amz_date is not None:
        headers = [(n, x_amz_date if n == "X-Amz-Date" else v) for n, v in headers]
    if date is not None:
        headers = [(n, v) for n, v in headers if n != "X-Amz-Date"] + [("Date", date)]
    return headers


def _presigned_target(**replace: str) -> str:
    target, _ = _signed_request(presign=True)
    for name, value in replace.items():
        target = target.replace(f"{name}=900", f"{name}={value}")
    return target


_PLUS_ONE = timezone(timedelta(hours=1))
FINDINGS = [
    # SigV4Signer construction (also ApiGwIamAuth and presign_url, which build one)
    pytest.param(lambda: SigV4Signer(credentials=CREDS, region=[]), id="signer-region-list"),
    pytest.param(
        lambda: SigV4Signer(credentials=CREDS, region=Decimal("sNaN")), id="signer-region-sNaN"
    ),
    pytest.param(
        lambda: SigV4Signer(credentials=CREDS, service=bytearray()), id="signer-service-bytearray"
    ),
    pytest.param(
        lambda: SigV4Signer(credentials=CREDS, unsigned_headers=None), id="signer-unsigned-None"
    ),
    pytest.param(
        lambda: SigV4Signer(credentials=CREDS, unsigned_headers=[1]), id="signer-unsigned-int"
    ),
    # SigV4Signer.sign / presign arguments
    pytest.param(lambda: _signer().sign([], URL), id="sign-method-list"),
    pytest.param(lambda: _signer().sign("GET", [URL]), id="sign-url-list"),
    pytest.param(lambda: _signer().sign("GET", URL, headers="0"), id="sign-headers-str"),
    pytest.param(lambda: _signer().sign("GET", URL, headers=b"\x00"), id="sign-headers-bytes"),
    pytest.param(lambda: _signer().sign("GET", URL, headers=object()), id="sign-headers-object"),
    pytest.param(lambda: _signer().sign("GET", URL, headers=[("a",)]), id="sign-headers-1-tuple"),
    pytest.param(lambda: _signer().sign("GET", URL, timestamp=False), id="sign-timestamp-bool"),
    pytest.param(lambda: _signer().sign("GET", URL, timestamp="x"), id="sign-timestamp-str"),
    pytest.param(
        lambda: _signer().sign("GET", URL, timestamp=bytearray()), id="sign-timestamp-bytearray"
    ),
    pytest.param(
        lambda: _signer().presign("GET", URL, timestamp=datetime(1, 1, 1, tzinfo=_PLUS_ONE)),
        id="presign-timestamp-year-1-plus-1h",
    ),
    # requests adapter bodies
    pytest.param(
        lambda: _auth(presign=False)(_prepared("POST", URL, None, iter([None]))),
        id="requests-iterable-yields-None",
    ),
    pytest.param(
        lambda: _auth(presign=False)(_prepared("POST", URL, None, iter([-1]))),
        id="requests-iterable-yields-negative-int",
    ),
    pytest.param(
        lambda: _auth(presign=False)(_prepared("POST", URL, None, iter(["\ud800"]))),
        id="requests-iterable-yields-lone-surrogate",
    ),
    pytest.param(
        lambda: _auth(presign=False)(_prepared("POST", URL, None, _ReadOnly(b""))),
        id="requests-read-without-seekable",
    ),
    # httpx adapter: content httpx accepts but cannot read (its own TypeError surfaces)
    pytest.param(
        lambda: next(
            _auth(presign=False).sync_auth_flow(httpx.Request("POST", URL, content=bytearray(b"x")))
        ),
        id="httpx-bytearray-content",
    ),
    # verify_request: what a server can receive
    pytest.param(
        lambda: _verify(
            "GET", _presigned_target(**{"X-Amz-Expires": "%C2%B2"}), [("Host", HOST)], b""
        ),
        id="verify-expires-superscript-two",
    ),
    pytest.param(
        lambda: _verify(
            "GET", "/prod/pets?limit=2", _header_signed(date="Fri, 31 Dec 9999 23:00:00 -0200"), b""
        ),
        id="verify-date-header-year-9999",
    ),
    pytest.param(
        lambda: _verify(_as_wire("\ud800"), "/prod/pets?limit=2", _header_signed(), b""),
        id="verify-method-not-utf8-on-the-wire",
    ),
    # verify_request: any str, and odd types
    pytest.param(
        lambda: _verify("GET", "/prod/pets?limit=2&a=\ud800", _header_signed(), b""),
        id="verify-target-lone-surrogate",
    ),
    pytest.param(lambda: _verify("GET", None, [], b""), id="verify-target-None"),
    pytest.param(lambda: _verify("GET", "/", None, b""), id="verify-headers-None"),
    pytest.param(lambda: _verify("GET", "/", [(None, "x")], b""), id="verify-header-name-None"),
    pytest.param(lambda: _verify("GET", "/", "0", b""), id="verify-headers-str"),
    pytest.param(
        lambda: _verify("GET", "/prod/pets?limit=2", _header_signed(), "x"), id="verify-body-str"
    ),
    # explain_signature_mismatch
    pytest.param(
        lambda: explain_signature_mismatch(real(Big("100k nested JSON arrays")), SIGNED),
        id="explain-deeply-nested-json",
    ),
    pytest.param(
        lambda: explain_signature_mismatch(
            real(Big("2 MiB of 'should have been' after the mismatch sentence")), SIGNED
        ),
        id="explain-quadratic-regex-hang",
    ),
    pytest.param(lambda: explain_signature_mismatch(None, SIGNED), id="explain-body-None"),
]


@pytest.mark.parametrize("call", FINDINGS)
def test_pinned_finding_raises_only_our_error(call):
    """Each minimised crash found above either works or raises ApiGwIamAuthError, quickly."""
    works_or_ours(call)
