"""The signer's documented rules at their edges: the clock correction's 2-second resolution and
its notes, a link capped to the credentials' life, the defaults, the headers sign() returns.

Each test was written to kill a mutant of signer.py that the rest of the suite let live;
expected values come from the documented rules and defaults, no signature is hard-coded.
"""

import hashlib
import logging
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from apigw_iam_auth import (
    CredentialsError,
    InvalidConfigError,
    SignableRequest,
    SignatureLocation,
    SigV4Signer,
)
from apigw_iam_auth._models import Credentials

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _fixed(now: datetime = T0, **kwargs) -> SigV4Signer:
    return SigV4Signer(
        "us-east-1", credentials=("AKIDEXAMPLE", "secret"), clock=lambda: now, **kwargs
    )


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [
        (timedelta(seconds=2), timedelta(0)),  # "within 2 seconds ... the clocks agree"
        (timedelta(seconds=-2), timedelta(0)),
        (timedelta(seconds=3), timedelta(seconds=3)),
        (timedelta(seconds=-3), timedelta(seconds=-3)),
    ],
)
def test_a_server_clock_exactly_two_seconds_off_agrees_with_ours(ahead, expected):
    """correct_clock's documented rule: a difference within 2 s (inclusive) is no skew."""
    signer = _fixed()
    signer.correct_clock(T0 + timedelta(minutes=10))  # a real correction first
    signer.correct_clock(T0 + ahead)
    assert signer.clock_offset == expected


def test_a_refusal_of_an_old_request_says_it_is_signed_again(caplog):
    """Within the resolution the offset is reset, and an INFO note says why it is sent again."""
    signer = _fixed()
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth"):
        signer.correct_clock(T0 + timedelta(seconds=1))
    notes = [r for r in caplog.records if r.name == "apigw_iam_auth" and r.levelno == logging.INFO]
    assert [r.getMessage() for r in notes] == [
        "a request signed too long ago was refused; signing it again"
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("ahead", "words"),
    [(timedelta(minutes=10), "600 s ahead of ours"), (timedelta(minutes=-10), "600 s behind ours")],
)
def test_a_clock_skew_warning_says_which_clock_is_ahead(caplog, ahead, words):
    """The warning says whose clock is ahead, and the offset is the server's lead."""
    signer = _fixed()
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth"):
        signer.correct_clock(T0 + ahead)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"the server's clock is {words}" in warnings[0]
    assert signer.clock_offset == ahead


# --- the method ----------------------------------------------------------------------------------

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets"


@pytest.mark.parametrize("method", [None, 7, b"GET"])
def test_a_method_that_is_not_a_str_is_refused_by_name(method):
    """A method that is no str is refused naming its type, in both modes, not a TypeError."""
    with pytest.raises(
        InvalidConfigError, match=f"method must be a str such as 'GET', got {type(method).__name__}"
    ):
        _fixed().sign(method, URL)
    with pytest.raises(InvalidConfigError, match="method must be a str"):
        _fixed().presign(method, URL)


# --- a link capped to the credentials' life ------------------------------------------------------
@pytest.mark.parametrize(
    "left", [timedelta(0), timedelta(milliseconds=999), timedelta(seconds=-30)]
)
def test_a_presigned_url_is_refused_when_the_credentials_expire_within_a_second(left):
    """Less than one whole second of credential life left: no link, a CredentialsError."""
    keys = Credentials("AKIDEXAMPLE", "secret", "token", T0 + left)
    with pytest.raises(CredentialsError, match="expire before a presigned URL could be used"):
        _fixed().presign("GET", URL, credentials=keys, timestamp=T0)
    with pytest.raises(CredentialsError, match="expire before a presigned URL could be used"):
        _fixed().presign("GET", URL, credentials=keys)  # read off the signer's clock


def test_a_presigned_url_with_one_second_of_credentials_left_lives_one_second():
    """One whole second of credential life left (and a half): a link of 1 second."""
    keys = Credentials(
        "AKIDEXAMPLE", "secret", "token", T0 + timedelta(seconds=1, milliseconds=500)
    )
    link = _fixed().presign("GET", URL, credentials=keys, timestamp=T0)
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["1"]


# --- documented defaults: expires=900 ------------------------------------------------------------
def test_presign_and_query_signing_default_to_a_900_second_link():
    """presign()'s and sign_request()'s documented default ``expires=900``."""
    link = _fixed().presign("GET", URL, timestamp=T0)
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["900"]
    request = SignableRequest(
        "GET",
        "/prod/pets",
        (),
        (("Host", urlsplit(URL).hostname),),
        hashlib.sha256(b"").hexdigest(),
    )
    result = _fixed().sign_request(request, location=SignatureLocation.QUERY, timestamp=T0)
    assert "X-Amz-Expires=900" in result.query


@pytest.mark.parametrize(
    ("left", "expected", "capped"), [(60, "60", True), (900, "900", False), (901, "900", False)]
)
def test_a_link_is_capped_to_the_credentials_life_and_only_a_real_cap_is_logged(
    caplog, left, expected, capped
):
    """expires is capped to the whole seconds of credential life left; the INFO note says so
    only when it actually shortened the link."""
    keys = Credentials("AKIDEXAMPLE", "secret", "token", T0 + timedelta(seconds=left))
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth"):
        link = _fixed().presign("GET", URL, credentials=keys, timestamp=T0)
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == [expected]
    notes = [r.getMessage() for r in caplog.records if "expiry capped" in r.getMessage()]
    assert notes == (
        [f"presigned URL expiry capped from 900s to {left}s: the session credentials expire then"]
        if capped
        else []
    )


# --- settings of the wrong type ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"region": 7}, "region must be a str or None, got int"),
        ({"region": b"us-east-1"}, "region must be a str or None, got bytes"),
        ({"region": "us-east-1", "service": 7}, "service must be a str, got int"),
        ({"region": "us-east-1", "service": None}, "service must be a str, got NoneType"),
    ],
)
def test_a_region_or_service_of_the_wrong_type_is_refused_by_name(kwargs, complaint):
    """Named by type when the signer is built, not a TypeError at the first request."""
    with pytest.raises(InvalidConfigError, match=complaint):
        SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), **kwargs)


# --- sign_request --------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [["GET"], bytearray(b"GET"), None])
def test_a_signable_request_whose_method_is_not_a_str_is_refused_by_name(method):
    """sign_request() refuses what sign() refuses, even an unhashable method (never a TypeError)."""
    host = "abc123.execute-api.us-east-1.amazonaws.com"
    request = SignableRequest(
        method, "/prod/pets", (), (("Host", host),), hashlib.sha256(b"").hexdigest()
    )
    with pytest.raises(
        InvalidConfigError, match=f"method must be a str such as 'GET', got {type(method).__name__}"
    ):
        _fixed().sign_request(request, timestamp=T0)


# --- a stream's hash skipped only where a signature can be made ----------------------------------
@pytest.mark.parametrize("payload", [None, "signed"])
def test_a_url_that_cannot_be_signed_never_skips_hashing_the_body(payload):
    """Its documented rule: "A request that cannot be signed says False: signing reports why"
    (the adapters then hash the stream and sign_for_wire raises the library's error)."""
    lattice = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), payload=payload)
    bad = "https://abc.vpc-lattice-svcs.us-east-1.on.aws/\x00"
    assert lattice._signs_unsigned_payload(bad) is False
    assert lattice._signs_unsigned_payload(bad, "abc.vpc-lattice-svcs.us-east-1.on.aws") is False
    with pytest.raises(InvalidConfigError, match="control character"):
        lattice.sign("PUT", bad)


# --- the headers sign() returns ------------------------------------------------------------------
HOST = "abc123.execute-api.us-east-1.amazonaws.com"


def _given_part(signed):
    own = signed.signing.headers
    names = {
        name.lower() for name in (own.keys() if hasattr(own, "keys") else (pair[0] for pair in own))
    }
    return [(name, value) for name, value in signed.headers.items() if name.lower() not in names]


def test_signed_headers_put_host_first_join_repeats_and_trim_values():
    """_joined's documented rule: "Host first unless given; repeats joined with ','", values
    trimmed as SigV4 trims them for signing, bytes read as text."""
    signed = _fixed().sign(
        "GET", URL, headers=[("X-A", " 1 "), (b"x-a", b"2\t"), (b"X-B", b" v")], timestamp=T0
    )
    assert _given_part(signed) == [("Host", HOST), ("X-A", "1,2"), ("X-B", "v")]
    assert all(type(name) is str and type(value) is str for name, value in signed.headers.items())


def test_a_callers_host_header_keeps_its_spelling_value_and_place():
    """A Host given by the caller stays where it was, spelt as given, its value trimmed."""
    signed = _fixed().sign("GET", URL, headers=[("X-A", "1"), ("host", f" {HOST} ")], timestamp=T0)
    assert _given_part(signed) == [("X-A", "1"), ("host", HOST)]
    assert "Host" not in signed.headers
