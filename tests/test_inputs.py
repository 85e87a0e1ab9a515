"""Every kind of input the signer takes, odd forms included: each is signed as documented or
refused with our own error saying what is wrong (found by mutation testing: each test here
failed on a mutant that the rest of the suite let live)."""

import hashlib
import io
from datetime import datetime, timezone

import botocore.auth
import pytest

from apigw_iam_auth import (
    DEFAULT_UNSIGNED_HEADERS,
    Credentials,
    InvalidConfigError,
    SignableRequest,
    SigV4Signer,
    UnsignableRequestError,
)
from apigw_iam_auth._body import hash_body, is_seekable
from apigw_iam_auth._models import binary_kind
from apigw_iam_auth._sigv4 import EMPTY_SHA256

KEYS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets"
T0 = datetime(2017, 2, 15, 15, 0, 34, tzinfo=timezone.utc)


# --- bodies ------------------------------------------------------------------------------------


class _ReadOnly:
    """A seekable file-like body with read() but no readinto() (a custom or wrapped stream)."""

    def __init__(self, data, *, as_text=False):
        self._buf = io.BytesIO(data)
        self._text = as_text

    def read(self, size=-1):
        chunk = self._buf.read(size)
        return chunk.decode("latin-1") if self._text else chunk

    def seekable(self):
        return True

    def tell(self):
        return self._buf.tell()

    def seek(self, pos, whence=0):
        return self._buf.seek(pos, whence)


def test_hash_body_of_a_stream_without_readinto_reads_it_in_chunks_and_rewinds():
    """A stream with read() but no readinto() is hashed from where it stands, then rewound."""
    data = b"x" * 3000 + b"tail"
    body = _ReadOnly(data)
    body.seek(10)
    assert hash_body(body) == hashlib.sha256(data[10:]).hexdigest()
    assert body.tell() == 10


def test_hash_body_refuses_a_stream_whose_read_yields_str():
    """A stream opened in text mode is refused (its bytes are not known), and left where it was."""
    body = _ReadOnly(b"abc", as_text=True)
    with pytest.raises(UnsignableRequestError, match="open it with 'rb'"):
        hash_body(body)
    assert body.tell() == 0


def test_a_closed_file_is_not_seekable():
    """A closed file cannot be rewound: seekable() raises, which reads as not seekable."""
    body = io.BytesIO(b"abc")
    body.close()
    assert is_seekable(body) is False


# --- credentials and settings ----------------------------------------------------------


@pytest.mark.parametrize("value", [b"AKIDEXAMPLE", bytearray(b"AKIDEXAMPLE")])
def test_a_key_given_as_bytes_is_named_as_such(value):
    """A key, secret or token given as bytes is named as such: keys are str."""
    kind = "bytes" if type(value) is bytes else "a bytearray"
    assert binary_kind(value) == kind
    assert binary_kind("AKIDEXAMPLE") is None
    with pytest.raises(InvalidConfigError, match=f"access key is {kind}: keys are str"):
        Credentials(value, "secret")
    with pytest.raises(InvalidConfigError, match=f"secret key is {kind}: keys are str"):
        Credentials("AKIDEXAMPLE", value)
    with pytest.raises(InvalidConfigError, match=f"session token is {kind}: keys are str"):
        Credentials("AKIDEXAMPLE", "secret", value)


# What _models.py documents the default set to be: the hop-by-hop headers of RFC 9110 7.6.1,
# what clients, proxies, load balancers and tracing agents add or rewrite after signing.
UNSIGNED_BY_DEFAULT = (
    "accept-encoding",
    "authorization",
    "baggage",
    "connection",
    "content-length",
    "expect",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
    "x-amzn-trace-id",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
)


@pytest.mark.parametrize("name", UNSIGNED_BY_DEFAULT)
def test_each_default_unsigned_header_is_left_out_of_the_signature(name):
    """Each default unsigned name is left out of SignedHeaders, whatever else is signed."""
    assert name in DEFAULT_UNSIGNED_HEADERS
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    signed = signer.sign("GET", URL, headers={name: "v", "x-kept": "k"}, timestamp=T0)
    auth = signed.headers["Authorization"]
    assert "SignedHeaders=host;x-amz-date;x-kept," in auth


def test_every_header_botocore_leaves_unsigned_is_left_unsigned_by_default():
    """The default set holds botocore's, as installed (newer ones add W3C trace context)."""
    assert set(botocore.auth.SIGNED_HEADERS_BLACKLIST) <= set(UNSIGNED_BY_DEFAULT)
    assert set(UNSIGNED_BY_DEFAULT) == DEFAULT_UNSIGNED_HEADERS


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "secret"), "access key must be a non-empty string"),
        ((None, "secret"), "access key must be a non-empty string"),
        ((7, "secret"), "access key must be a non-empty string"),
        (("AKIDEXAMPLE", "secret", 7), "session token must be a string or None"),
        (("AKID EXAMPLE", "secret"), "access key must be ASCII letters"),
        (("AKIDEXAMPLE\n", "secret"), "access key must be ASCII letters"),
        (("AKID/EXAMPLE", "secret"), "access key must be ASCII letters"),
    ],
)
def test_credentials_refuse_keys_that_could_only_produce_a_403(args, message):
    """Keys of the wrong type or shape are refused when made, not signed into a sure 403."""
    with pytest.raises(InvalidConfigError, match=message):
        Credentials(*args)


def test_a_flag_that_is_not_a_bool_is_named_by_its_plain_type():
    """A flag of a builtin type is named by its plain name (str, not builtins.str)."""
    with pytest.raises(InvalidConfigError) as caught:
        SigV4Signer(credentials=KEYS, region="us-east-1", add_content_sha256_header="false")
    assert str(caught.value).endswith(
        "add_content_sha256_header must be True or False, got str; pass bool(...)"
    )


# --- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ("host: x", r"headers must be a mapping or \(name, value\) pairs, not a string"),
        (b"host: x", r"headers must be a mapping or \(name, value\) pairs, not a string"),
        (
            [("x-a", "1", "2")],
            r"each header must be a \(name, value\) pair, got a tuple of length 3",
        ),
        ([{"x-a": "1"}], r"each header must be a \(name, value\) pair, got dict$"),
        ([("x-a", 1)], "header names and values must be str or bytes, got int"),
        (
            [("x-a", memoryview(b"1"))],
            "header names and values must be str or bytes, got memoryview",
        ),
    ],
)
def test_malformed_headers_are_refused_with_what_is_wrong(headers, message):
    """Headers as a string, items that are no pair, values of no text type: each said as such."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    with pytest.raises(UnsignableRequestError, match=message):
        signer.sign("GET", URL, headers=headers, timestamp=T0)


def test_a_signable_request_built_with_lists_signs_as_with_tuples():
    """A SignableRequest of lists signs as one of tuples, and is checked the same way."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    host = ("host", "abc123.execute-api.us-east-1.amazonaws.com")
    as_tuples = SignableRequest("GET", "/prod/pets", (("a", "1"),), (host,), EMPTY_SHA256)
    as_lists = SignableRequest("GET", "/prod/pets", [("a", "1")], [host], EMPTY_SHA256)
    expected = signer.sign_request(as_tuples, timestamp=T0)
    assert signer.sign_request(as_lists, timestamp=T0) == expected
    bad = SignableRequest("GET", "/prod/pets", [("a", "1")], [host, ("x-n", 1)], EMPTY_SHA256)
    with pytest.raises(UnsignableRequestError, match="must be str or bytes, got int"):
        signer.sign_request(bad, timestamp=T0)
    for query, headers in (
        (None, (host,)),
        (7, (host,)),
        (["ab"], [host]),  # a 2-character str is not a pair
        ([("a", "1")], [host, "ab"]),
        ((), [host, ["x-a", "1", "2"]]),
    ):  # our refusal, not a TypeError from inside, nor "ab" signed as ("a", "b")
        odd = SignableRequest("GET", "/prod/pets", query, headers, EMPTY_SHA256)
        with pytest.raises(UnsignableRequestError, match=r"holds \(name, value\) pairs"):
            signer.sign_request(odd, timestamp=T0)


@pytest.mark.parametrize(
    "body",
    ["héllo €", bytearray("héllo €".encode()), memoryview("héllo €".encode())],
    ids=["str", "bytearray", "memoryview"],
)
def test_a_body_in_any_accepted_type_signs_its_utf8_bytes(body):
    """A str, bytearray or memoryview body signs (and is sent) as its UTF-8 bytes."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    signed = signer.sign("POST", URL, body=body, timestamp=T0)
    raw = "héllo €".encode()
    assert signed.body == raw
    assert type(signed.body) is bytes
    assert signed.signing.payload_hash == hashlib.sha256(raw).hexdigest()
    assert signed.headers == signer.sign("POST", URL, body=raw, timestamp=T0).headers


def test_a_body_of_another_type_is_refused():
    """A body of another type, or a str UTF-8 cannot encode, is refused, not signed as empty."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    with pytest.raises(UnsignableRequestError, match="body must be bytes, str or None, got int"):
        signer.sign("POST", URL, body=123, timestamp=T0)
    with pytest.raises(UnsignableRequestError, match="UTF-8 cannot encode"):
        signer.sign("POST", URL, body="\ud800", timestamp=T0)


def test_a_given_payload_hash_is_the_one_signed():
    """A payload_hash given is the one signed: the same signature as the body it hashes."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    digest = hashlib.sha256(b"abc").hexdigest()
    signed = signer.sign("POST", URL, payload_hash=digest, timestamp=T0)
    assert signed.signing.payload_hash == digest
    assert signed.headers == signer.sign("POST", URL, body=b"abc", timestamp=T0).headers


def test_a_timestamp_that_is_not_a_datetime_is_refused():
    """A timestamp that is no datetime is refused as a setting, in both modes."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    for call in (signer.sign, signer.presign):
        with pytest.raises(
            InvalidConfigError, match=r"timestamp must be an aware datetime.*; got str"
        ):
            call("GET", URL, timestamp="20170215T150034Z")


def test_an_invalid_service_name_is_refused_at_construction():
    """A service that is no AWS service name is refused when the signer is built."""
    for service in ("execute api", "Execute-API", "", "execute-api\n"):
        with pytest.raises(InvalidConfigError, match="service must be an AWS service name"):
            SigV4Signer(credentials=KEYS, region="us-east-1", service=service)


def test_signing_result_repr_lists_header_names_only():
    """SigningResult's repr names the headers set, never their values."""
    signer = SigV4Signer(credentials=KEYS, region="us-east-1")
    signing = signer.sign("GET", URL, timestamp=T0).signing
    assert repr(signing) == "SigningResult(headers=[X-Amz-Date, Authorization], query=<0 chars>)"
