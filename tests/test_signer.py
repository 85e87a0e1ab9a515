"""SigV4Signer's contract at its edges: what it refuses, and what it sends for awkward input."""

import logging
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from aws_server import SECRET_KEY, ReceivedRequest, verify

from apigw_iam_auth import (
    DEFAULT_UNSIGNED_HEADERS,
    ApiGwIamAuth,
    Credentials,
    InvalidConfigError,
    SignatureLocation,
    SigV4Signer,
    UnsignableRequestError,
    _sigv4,
)
from apigw_iam_auth._models import SignableRequest, SigningConfig
from apigw_iam_auth._sigv4 import amz_date, sign
from apigw_iam_auth.server import KnownKey, verify_request

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
KEYS = ("AKIDEXAMPLE", SECRET_KEY)
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def signer(**kwargs) -> SigV4Signer:
    return SigV4Signer("us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY), **kwargs)


def test_callers_content_sha256_header_is_replaced_by_the_body_hash():
    """A stale or bogus X-Amz-Content-SHA256 is neither signed nor sent: the body is hashed."""
    body = b'{"a":1}'
    plain = signer().sign("POST", "https://h.example/p", headers={}, body=body, timestamp=NOW)
    bogus = signer().sign(
        "POST",
        "https://h.example/p",
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
        body=body,
        timestamp=NOW,
    )
    assert bogus.headers == plain.headers
    assert bogus.signing.canonical_request.endswith(plain.signing.canonical_request[-64:])


@pytest.mark.parametrize("bad", ["", "UNSIGNED-PAYLOAD", EMPTY.upper(), EMPTY + "\n", EMPTY[:-1]])
def test_payload_hash_must_be_lowercase_hex_sha256(bad):
    """A precomputed payload hash that is not 64 lowercase hex digits is refused, not signed."""
    with pytest.raises(UnsignableRequestError, match="payload_hash"):
        signer().sign("PUT", "https://h.example/p", payload_hash=bad, timestamp=NOW)


def test_unicode_host_is_signed_and_sent_as_its_idna_2008_a_label():
    """straße.example is signed and sent as xn--strae-oqa.example, as requests and httpx send it."""
    signed = signer().sign("GET", "https://straße.example:8443/p", timestamp=NOW)
    assert signed.url == "https://xn--strae-oqa.example:8443/p"
    assert signed.headers["Host"] == "xn--strae-oqa.example:8443"
    assert "\nhost:xn--strae-oqa.example:8443\n" in signed.signing.canonical_request


def test_non_ascii_header_value_is_refused():
    """Clients disagree on the bytes of a non-ASCII header value, so it is refused up front."""
    with pytest.raises(UnsignableRequestError, match="non-ASCII"):
        signer().sign("GET", "https://h.example/", headers={"X-Name": "José"}, timestamp=NOW)


@pytest.mark.parametrize("token", ["TOKEN\n", "TOK EN", " TOKEN", "TOK\tEN", "TOKÉN"])
def test_session_token_with_whitespace_is_refused_without_echoing_it(token):
    """A token with a stray newline or space fails at construction; the message omits it."""
    with pytest.raises(InvalidConfigError) as info:
        Credentials("AKIDEXAMPLE", "secret", token)
    assert token.strip() not in str(info.value)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Credentials("AKIDEXAMPLE", "secret", None, "2030-01-01"), "expiry"),  # type: ignore[arg-type]
        (lambda: SigningConfig("us-east-1", unsigned_headers=frozenset({1})), "unsigned"),  # type: ignore[arg-type]
        (lambda: signer(clock=lambda: 1.5).sign("GET", "https://h.example/"), "clock"),
        (lambda: signer().correct_clock(datetime(2026, 1, 1)), "aware"),  # noqa: DTZ001
    ],
)
def test_odd_types_raise_our_configuration_error(make, match):
    """Wrong types for expiry, unsigned headers, clock and server time are InvalidConfigError."""
    with pytest.raises(InvalidConfigError, match=match):
        make()


@pytest.mark.parametrize("name", ["\u0100", "x-\u0101", "bad name", "x:y", "", "x-a\n"])
def test_an_unsigned_header_name_no_client_could_send_is_refused_when_built(name):
    """A name outside HTTP's token set is refused naming it, for ApiGwIamAuth too: not a bare
    UnicodeEncodeError (a name beyond Latin-1), nor silently kept (one with a space)."""
    for build in (SigV4Signer, ApiGwIamAuth):
        with pytest.raises(
            InvalidConfigError, match=f"unsigned_headers holds {re.escape(repr(name))}"
        ):
            build(
                region="us-east-1",
                credentials=KEYS,
                unsigned_headers=DEFAULT_UNSIGNED_HEADERS | {name},
            )


def test_a_clock_is_first_read_at_the_first_signature_where_a_naive_time_is_refused():
    """Building reads no clock (a test's stepping or counting clock keeps its first value for
    the first request); a naive datetime is refused there, as a setting, in both modes."""
    for build in (SigV4Signer, ApiGwIamAuth):
        times = iter([NOW, NOW + timedelta(hours=1)])
        made = build(region="us-east-1", credentials=KEYS, clock=times.__next__)
        wire = made if isinstance(made, SigV4Signer) else made.signer
        assert wire.sign("GET", "https://h.example/").headers["X-Amz-Date"] == amz_date(NOW)
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - the mistake under test
    wrong = signer(clock=lambda: naive)
    for call in (wrong.sign, wrong.presign):
        with pytest.raises(
            InvalidConfigError, match=r"clock must return an aware datetime.*got datetime"
        ):
            call("GET", "https://h.example/")


def _verified_at(moment: datetime, creds: Credentials, wire: SigV4Signer) -> str:
    """Sign a fixed GET through the adapters' route at ``moment``; verify it with botocore.

    The default (real) clock is moved with ``correct_clock``, so the path under test is the
    one adapters take. Returns the X-Amz-Date that was signed.
    """
    wire.correct_clock(moment)
    headers = (("host", "h.example"), ("accept", "*/*"))
    url, _, _, result = wire._sign_for_wire(
        "GET", "https://h.example/prod/pets?a=1", headers, EMPTY, credentials=creds
    )
    assert url == "https://h.example/prod/pets?a=1"
    assert result.stale_headers == ()
    sent = dict(result.headers)
    received = ReceivedRequest("GET", "/prod/pets?a=1", (*headers, *result.headers), b"")
    signed_at = datetime.strptime(sent["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    _botocore_verifies(received, creds, signed_at)
    return sent["X-Amz-Date"]


def _botocore_verifies(received: ReceivedRequest, creds: Credentials, now: datetime) -> None:
    """The test server's verifier (botocore underneath) accepts ``received`` at ``now``."""
    verify(
        received,
        credentials={creds.access_key: (creds.secret_key, creds.token)},
        region="us-east-1",
        service="execute-api",
        now=now,
    )


def test_adapter_route_signs_anew_when_the_day_or_the_credentials_change():
    """The kept signing keys (per day and credentials) serve only that day and key.

    Signing across midnight must move the credential scope's date, and credentials rotated
    within a second must sign with the new key (botocore checks both; a stale reuse fails).
    """
    wire = SigV4Signer(region="us-east-1", credentials=("AKIDUNUSED", "unused"))
    first = Credentials("AKIDFIRST", SECRET_KEY)
    second = Credentials("AKIDSECOND", SECRET_KEY[::-1], "token-2")
    midnight = datetime(2031, 3, 5, tzinfo=timezone.utc)
    assert _verified_at(midnight - timedelta(seconds=10), first, wire).startswith("20310304")
    assert _verified_at(midnight + timedelta(seconds=10), first, wire).startswith("20310305")
    _verified_at(midnight + timedelta(seconds=10), second, wire)  # same second, new key
    _verified_at(midnight + timedelta(seconds=10), first, wire)
    _verified_at(midnight + timedelta(seconds=30), first, wire)


def test_sign_and_presign_sign_each_day_and_key_afresh():
    """sign() and presign() of one request across midnight and two keys each verify."""
    midnight = datetime(2031, 3, 5, tzinfo=timezone.utc)
    keys = [Credentials("AKIDFIRST", SECRET_KEY), Credentials("AKIDSECOND", "other-secret")]
    wire = SigV4Signer(region="us-east-1", credentials=("AKIDUNUSED", "unused"))
    for moment in (midnight - timedelta(seconds=1), midnight + timedelta(seconds=1)):
        for creds in keys:
            signed = wire.sign(
                "GET",
                "https://h.example/p?a=1",
                headers={"Accept": "*/*"},
                timestamp=moment,
                credentials=creds,
            )
            received = ReceivedRequest("GET", "/p?a=1", tuple(signed.headers.items()), b"")
            _botocore_verifies(received, creds, moment)
            link = wire.presign(
                "GET", "https://h.example/p?a=1", expires=60, timestamp=moment, credentials=creds
            )
            assert f"X-Amz-Date={moment:%Y%m%dT%H%M%SZ}" in link
            target = link.partition("h.example")[2]
            received = ReceivedRequest("GET", target, (("Host", "h.example"),), b"")
            _botocore_verifies(received, creds, moment)


class _Tenant:
    """Headers as a user's own iterable of pairs, changed between two signatures."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __iter__(self):
        return iter([("X-Tenant", self.name)])


def test_headers_from_an_iterable_that_changes_are_read_at_every_signature():
    """A user's iterable of headers is read afresh at every signature."""
    tenant = _Tenant("alice")
    wire = signer()
    first = wire.sign("GET", "https://h.example/p", headers=tenant, timestamp=NOW)
    tenant.name = "bob"
    second = wire.sign("GET", "https://h.example/p", headers=tenant, timestamp=NOW)
    assert first.headers["X-Tenant"] == "alice"
    assert second.headers["X-Tenant"] == "bob"
    assert (
        second.headers
        == signer().sign("GET", "https://h.example/p", headers=tenant, timestamp=NOW).headers
    )
    link = wire.presign("GET", "https://h.example/p", headers=tenant, timestamp=NOW)
    tenant.name = "carol"
    assert wire.presign("GET", "https://h.example/p", headers=tenant, timestamp=NOW) != link


@pytest.mark.parametrize(
    "value", [memoryview(bytearray(b"v")), memoryview(b"v"), bytearray(b"v"), 7], ids=repr
)
def test_header_value_of_another_type_is_our_error_on_every_path(value):
    """A value that is neither str nor bytes is refused as such, never a TypeError/ValueError."""
    for attempt in (
        lambda: signer().sign("GET", "https://h.example/p", headers={"X-V": value}, timestamp=NOW),
        lambda: signer().presign(
            "GET", "https://h.example/p", headers=[("X-V", value)], timestamp=NOW
        ),
        lambda: signer()._sign_for_wire("GET", "https://h.example/p", (("X-V", value),), EMPTY),
    ):
        with pytest.raises(UnsignableRequestError, match="str or bytes"):
            attempt()


def test_x_amz_date_tells_apart_the_repeated_hour_when_clocks_go_back():
    """01:30 twice in New York on 2024-11-03: equal datetimes, instants an hour apart."""
    new_york = ZoneInfo("America/New_York")
    first = datetime(2024, 11, 3, 1, 30, tzinfo=new_york, fold=0)
    second = datetime(2024, 11, 3, 1, 30, tzinfo=new_york, fold=1)
    assert (amz_date(first), amz_date(second)) == ("20241103T053000Z", "20241103T063000Z")


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(1, 1, 1, tzinfo=timezone.utc), "00010101T000000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc), "99991231T235959Z"),
        (datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "00010101T000000Z"),
    ],
)
def test_x_amz_date_spans_the_four_digit_years(when, expected):
    """The first and last second X-Amz-Date can write, years below 1000 zero-padded."""
    signed = signer().sign("GET", "https://h.example/p", timestamp=when)
    assert (amz_date(when), signed.headers["X-Amz-Date"]) == (expected, expected)


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # 0000-12-31T23:00Z
        datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=1))),  # year 10000 in UTC
    ],
)
def test_a_time_x_amz_date_cannot_write_is_refused(when):
    for attempt in (
        lambda: amz_date(when),
        lambda: signer().sign("GET", "https://h.example/p", timestamp=when),
        lambda: signer().presign("GET", "https://h.example/p", timestamp=when),
    ):
        with pytest.raises(InvalidConfigError, match="outside the range a UTC date can hold"):
            attempt()


@pytest.mark.parametrize("epoch", [-62135596801, 253402300800])
def test_the_core_refuses_a_second_x_amz_date_cannot_write(epoch):
    """A time that did not pass epoch_seconds (a clock corrected past 9999) is refused too."""
    request = SignableRequest("GET", "/p", (), (("Host", "h.example"),), EMPTY)
    config = SigningConfig("us-east-1", "execute-api")
    with pytest.raises(InvalidConfigError, match="outside the years X-Amz-Date can write"):
        sign(request, Credentials("AKIDEXAMPLE", "secret"), config, epoch)


def test_sign_request_takes_pairs_as_lists_too():
    """A SignableRequest holding lists (not hashable) is signed like its tuple twin."""
    as_tuples = SignableRequest("GET", "/p", (("a", "1"),), (("Host", "h.example"),), EMPTY)
    as_lists = SignableRequest("GET", "/p", [["a", "1"]], [["Host", "h.example"]], EMPTY)  # type: ignore[list-item]
    wire = signer()
    assert (
        wire.sign_request(as_lists, timestamp=NOW).signature
        == wire.sign_request(as_tuples, timestamp=NOW).signature
    )


def test_sign_request_checks_method_and_payload_hash_as_sign_does():
    """A method with a line break or a hash that is no SHA-256 is refused, not written into the
    canonical request; a lowercase custom method is signed as it goes on the wire."""
    wire = signer()
    lower = SignableRequest("mkcol", "/p", (), (("Host", "h.example"),), EMPTY)
    assert wire.sign_request(lower, timestamp=NOW).canonical_request.startswith("mkcol\n/p\n")
    with pytest.raises(InvalidConfigError, match="method must be an HTTP method"):
        wire.sign_request(lower._replace(method="GET\nX"), timestamp=NOW)
    for bad in ("not-a-hash", EMPTY.upper(), EMPTY + "0"):
        with pytest.raises(UnsignableRequestError, match="payload_hash must be the lowercase hex"):
            wire.sign_request(lower._replace(payload_hash=bad), timestamp=NOW)


def test_sign_request_wire_parts_verify_with_a_lowercase_custom_method():
    """The server hashes the method as received: the signature over the same parts verifies."""
    request = SignableRequest("mkcol", "/p", (), (("Host", "h.example"),), EMPTY)
    result = signer().sign_request(request, timestamp=NOW)
    verified = verify_request(
        "mkcol",
        "/p",
        [("Host", "h.example"), *result.headers],
        b"",
        lookup={"AKIDEXAMPLE": KnownKey(SECRET_KEY)}.get,
        region="us-east-1",
        now=NOW,
    )
    assert verified.access_key == "AKIDEXAMPLE"


def _verified(request: SignableRequest, result, service: str = "execute-api") -> str:
    """The access key the verifier accepts the signed wire parts for."""
    target = request.path + "".join(
        f"{'&' if i else '?'}{name}={value}" for i, (name, value) in enumerate(request.query)
    )
    return verify_request(
        request.method,
        target,
        [*request.headers, *result.headers],
        b"",
        lookup={"AKIDEXAMPLE": KnownKey(SECRET_KEY)}.get,
        region="us-east-1",
        service=service,
        now=NOW,
    ).access_key


def test_sign_request_signs_unsigned_payload_only_with_its_header():
    """UNSIGNED-PAYLOAD is read from x-amz-content-sha256 alone: without it the server hashes
    the body, so a header signature over it is refused unless the signer sends the header."""
    request = SignableRequest("GET", "/p", (), (("Host", "h.example"),), _sigv4.UNSIGNED_PAYLOAD)
    for silent in (signer(), signer(service="lambda")):
        with pytest.raises(UnsignableRequestError, match="payload='unsigned'"):
            silent.sign_request(request, timestamp=NOW)
    told = signer(service="lambda", add_content_sha256_header=True)
    result = told.sign_request(request, timestamp=NOW)
    assert ("X-Amz-Content-SHA256", _sigv4.UNSIGNED_PAYLOAD) in result.headers
    lattice = signer(service="vpc-lattice-svcs")  # the one service that takes it, by default
    assert _verified(request, lattice.sign_request(request, timestamp=NOW), "vpc-lattice-svcs")


def test_sign_request_refuses_a_presigned_urls_parameters_in_a_header_signature():
    """The caller sends its own query; X-Amz-* parameters left in it would not be signed: 403.
    Presigning replaces them, as the result's query is then the one to send."""
    request = SignableRequest(
        "GET", "/p", (("X-Amz-Expires", "60"), ("id", "7")), (("Host", "h.example"),), EMPTY
    )
    with pytest.raises(UnsignableRequestError, match="the query holds X-Amz-Expires"):
        signer().sign_request(request, timestamp=NOW)
    presigned = signer().sign_request(request, location=SignatureLocation.QUERY, timestamp=NOW)
    assert "X-Amz-Expires=900" in presigned.query
    assert "X-Amz-Expires=60" not in presigned.query


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("query", (("page", 2),), r"query holds decoded \(name, value\) pairs of str"),
        ("query", (("a", "1", "x"),), r"\(name, value\) pairs"),
        ("headers", (("Host", "h.example"), ("X-N", 2)), "must be str or bytes, got int"),
        ("path", None, "path is the percent-encoded path .* got NoneType"),
        ("path", b"/p", "path is the percent-encoded path .* got bytes"),
    ],
)
def test_sign_request_refuses_fields_of_the_wrong_type_as_tuples_too(field, value, said):
    """Tuples of bad pairs (not only lists) get our own error, not a TypeError from inside."""
    request = SignableRequest("GET", "/p", (), (("Host", "h.example"),), EMPTY)
    with pytest.raises(UnsignableRequestError, match=said):
        signer().sign_request(request._replace(**{field: value}), timestamp=NOW)


def test_sign_request_takes_str_subclasses_as_str():
    """aiohttp's names are multidict's istr, a str subclass: signed as the same text."""

    class Named(str):
        __slots__ = ()

    plain = SignableRequest("GET", "/p", (("a", "1"),), (("Host", "h.example"),), EMPTY)
    subclassed = plain._replace(
        query=((Named("a"), Named("1")),), headers=((Named("Host"), "h.example"),)
    )
    wire = signer()
    assert (
        wire.sign_request(subclassed, timestamp=NOW).signature
        == wire.sign_request(plain, timestamp=NOW).signature
    )


@pytest.mark.parametrize("name", ["presign", "correct_clock_skew", "add_content_sha256_header"])
@pytest.mark.parametrize("value", ["false", "no", 0, 1, None])
def test_a_true_or_false_setting_takes_true_or_false_only(name, value):
    """presign="false" read from an environment variable would switch presigning on."""
    with pytest.raises(InvalidConfigError, match=f"{name} must be True or False"):
        ApiGwIamAuth(region="us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY), **{name: value})


@pytest.mark.parametrize("location", ["headers", "HEADERS", None, 0])
def test_sign_request_refuses_a_location_that_is_not_one(location):
    """Anything but a SignatureLocation is refused, not taken as presigning."""
    request = SignableRequest("GET", "/p", (), (("Host", "h.example"),), EMPTY)
    with pytest.raises(InvalidConfigError, match="location must be SignatureLocation"):
        signer().sign_request(request, location=location, timestamp=NOW)


def test_changing_a_signed_requests_headers_does_not_reach_the_next_signature():
    """The headers dict of a SignedRequest is the caller's own copy."""
    wire = signer()
    first = wire.sign("GET", "https://h.example/p", headers={"Accept": "*/*"}, timestamp=NOW)
    first.headers["X-Injected"] = "1"  # type: ignore[index]
    second = wire.sign("GET", "https://h.example/p", headers={"Accept": "*/*"}, timestamp=NOW)
    assert "X-Injected" not in second.headers
    assert second.headers == {k: v for k, v in first.headers.items() if k != "X-Injected"}


# --- what callers hand to sign() and presign() ---------------------------------------------

WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
API = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets"


@pytest.mark.parametrize(
    "item",
    [
        "Authorization: AWS4-HMAC-SHA256 Credential=AKID/x, Signature=5ec12e7a9b",
        ("X-Amz-Security-Token", "tok5ec12e7a9b", ""),
    ],
)
def test_a_malformed_header_item_is_named_not_shown(item):
    """A whole header line or a triple may carry a signature or a token: never echoed."""
    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", "secret"))
    with pytest.raises(UnsignableRequestError, match="each header must be a") as caught:
        signer.sign("GET", API, headers=[item])
    assert "5ec12e7a9b" not in str(caught.value)


def test_a_credentials_tuple_given_per_call_signs_as_its_snapshot():
    """sign() and presign() take a (key, secret[, token]) tuple as the constructor does."""
    import botocore.credentials  # noqa: PLC0415 - only this test names botocore

    signer = SigV4Signer(region="us-east-1", credentials=("AKIDOTHER", "other"))
    snapshot = Credentials("AKIDEXAMPLE", SECRET_KEY, "token")
    frozen = botocore.credentials.ReadOnlyCredentials("AKIDEXAMPLE", SECRET_KEY, "token")
    for given in (("AKIDEXAMPLE", SECRET_KEY, "token"), frozen):
        assert signer.sign("GET", API, timestamp=WHEN, credentials=given) == signer.sign(
            "GET", API, timestamp=WHEN, credentials=snapshot
        )
        assert signer.presign("GET", API, timestamp=WHEN, credentials=given) == signer.presign(
            "GET", API, timestamp=WHEN, credentials=snapshot
        )


@pytest.mark.parametrize("given", [("AKIDEXAMPLE",), "AKIDEXAMPLE:s3cr3t", {"key": "s3cr3t"}])
def test_credentials_of_another_shape_per_call_are_a_config_error(given):
    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", "secret"))
    for call in (signer.sign, signer.presign):
        with pytest.raises(InvalidConfigError, match="credentials must be") as caught:
            call("GET", API, credentials=given)
        assert "s3cr3t" not in str(caught.value)


def test_live_botocore_credentials_per_call_are_refused_with_the_way_to_a_snapshot():
    """A botocore Credentials object may refresh between reads: per call it is refused,
    pointing at get_frozen_credentials(), the one-snapshot read; the secret never shows.
    """
    import botocore.credentials  # noqa: PLC0415 - this test's own concern

    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", "secret"))
    live = botocore.credentials.Credentials("AKIDLIVE", "s3cr3t")
    with pytest.raises(InvalidConfigError) as caught:
        signer.sign("GET", API, credentials=live)
    assert str(caught.value) == (
        "credentials must be Credentials, a (key, secret[, token]) tuple or botocore's "
        "ReadOnlyCredentials, got Credentials; call its get_frozen_credentials() for one "
        "(without its expiry: to cap presigned URLs to it, give the object itself as "
        "SigV4Signer(credentials=...))"
    )
    frozen = live.get_frozen_credentials()
    assert (
        signer.sign("GET", API, credentials=frozen)
        .headers["Authorization"]
        .startswith("AWS4-HMAC-SHA256 Credential=AKIDLIVE/")
    )


def test_a_per_call_secret_with_a_newline_is_refused_unseen():
    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", "secret"))
    with pytest.raises(InvalidConfigError, match="printable ASCII") as caught:
        signer.sign("GET", API, credentials=("AKIDEXAMPLE", "s3cr3t-value\n"))
    assert "s3cr3t-value" not in str(caught.value)


@pytest.mark.parametrize(
    "given", ["us-east-1,eu-west-1", "us-east-1, eu-west-1", ("us-east-1", "eu-west-1")]
)
def test_region_set_string_is_read_as_its_header_writes_it(given):
    """region_set="us-east-1,eu-west-1" is the set of two, as the list form and --region-set."""
    sigv4a = SigV4Signer(region_set=given, credentials=("AKIDEXAMPLE", SECRET_KEY))
    signed = sigv4a.sign("GET", "https://h.example/p", timestamp=NOW)
    assert signed.headers["X-Amz-Region-Set"] == "us-east-1,eu-west-1"
    assert signed.headers["Authorization"].startswith("AWS4-ECDSA-P256-SHA256 ")


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ("us-east-1,hunter2", "region_set name 'hunter2' is not an AWS region"),
        ("*,us-east-1", "already means every region"),
        (" , ", "non-empty list of region names"),
        (42, r"region_set must be '\*' or a list of region names, got int"),
    ],
)
def test_region_set_names_what_is_wrong(given, refused):
    """Each name of a region set is checked; '*' stands alone; an empty set is refused."""
    with pytest.raises(InvalidConfigError, match=refused):
        SigV4Signer(region_set=given, credentials=("AKIDEXAMPLE", SECRET_KEY))


@pytest.mark.parametrize(
    "given",
    [
        ["x-trace", "User-Agent"],
        ("x-trace", "User-Agent"),
        {"x-trace": 1, "User-Agent": 1}.keys(),
        (name for name in ["x-trace", "User-Agent"]),
        iter(["x-trace", "User-Agent"]),
    ],
    ids=["list", "tuple", "keys-view", "generator", "iterator"],
)
def test_unsigned_headers_are_read_once_whatever_iterable_holds_them(given):
    """unsigned_headers is any iterable of names: a generator or an iterator, read once, leaves
    its headers unsigned as a list does (its second read used to find it empty).
    """
    signer = SigV4Signer(
        region="us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY), unsigned_headers=given
    )
    signed = signer.sign(
        "GET", "https://h.example/p", headers={"X-Trace": "1", "User-Agent": "me/1.0"}
    )
    assert "SignedHeaders=host;x-amz-date," in signed.headers["Authorization"]


def test_unsigned_headers_replace_the_default_set_which_is_public_to_add_to():
    """``unsigned_headers`` replaces the default set: given alone it signs User-Agent; given as
    ``DEFAULT_UNSIGNED_HEADERS | {...}`` it adds a name and keeps the defaults unsigned."""
    headers = {"X-Request-Id": "7", "User-Agent": "me/1.0", "Accept": "*/*"}

    def signed_names(unsigned: frozenset[str]) -> str:
        signer = SigV4Signer(
            region="us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY), unsigned_headers=unsigned
        )
        authorization = signer.sign("GET", "https://h.example/p", headers=headers).headers
        return authorization["Authorization"].split("SignedHeaders=")[1].split(",")[0]

    assert signed_names(DEFAULT_UNSIGNED_HEADERS) == "accept;host;x-amz-date;x-request-id"
    assert signed_names(frozenset({"x-request-id"})) == "accept;host;user-agent;x-amz-date"
    assert signed_names(DEFAULT_UNSIGNED_HEADERS | {"x-request-id"}) == "accept;host;x-amz-date"


def test_a_mistyped_region_set_name_is_blamed_on_region_set_not_on_region():
    """With region= beside it, a wrong name in region_set= is said to be region_set's."""
    with pytest.raises(InvalidConfigError) as refused:
        SigV4Signer(
            region="us-east-1",
            region_set=["us-east-1", "eu-west1"],
            credentials=("AKIDEXAMPLE", SECRET_KEY),
        )
    assert str(refused.value) == (
        "region_set name 'eu-west1' is not an AWS region; did you mean 'eu-west-1'?"
    )


def test_region_is_unused_with_a_region_set_so_no_contradiction_is_warned(caplog):
    """SigV4a's scope names no region: region= beside region_set= changes nothing signed, and
    a region unlike the host's is no reason to expect a 403.
    """
    url = "https://unused.execute-api.us-east-1.amazonaws.com/prod"
    credentials = ("AKIDEXAMPLE", SECRET_KEY)
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        signed = SigV4Signer(
            region="eu-west-1", region_set=["us-east-1"], credentials=credentials
        ).sign("GET", url, timestamp=NOW)
    assert caplog.records == []
    authorization = signed.headers["Authorization"]
    assert authorization.startswith("AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/")
    assert "/execute-api/aws4_request, " in authorization
    assert "eu-west-1" not in authorization
    assert signed.headers["X-Amz-Region-Set"] == "us-east-1"


def test_a_region_set_without_the_hosts_region_is_warned_once_per_host(caplog):
    """API Gateway refuses a region set that leaves out its own region: said once per host,
    before the 403. A set holding it, '*', or a host that names no region: nothing to say.
    """
    credentials = ("AKIDEXAMPLE", SECRET_KEY)
    elsewhere = SigV4Signer(region_set="eu-west-1,eu-central-1", credentials=credentials)
    covering = SigV4Signer(region_set="eu-west-1,us-east-1", credentials=credentials)
    every = SigV4Signer(region_set="*", credentials=credentials)
    host = "uncovered.execute-api.us-east-1.amazonaws.com"
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        for signer in (covering, every, elsewhere, elsewhere):
            signer.sign("GET", f"https://{host}/prod", timestamp=NOW)
        elsewhere.sign("GET", "https://api.example.com/prod", timestamp=NOW)
    warned = (
        f"region_set='eu-west-1,eu-central-1' leaves out 'us-east-1', the region of host "
        f"{host!r}: AWS refuses the signature there, so expect a 403; add 'us-east-1' to "
        "region_set= (or pass region_set='*')"
    )
    assert [record.getMessage() for record in caplog.records] == [warned]


def test_a_header_set_serves_requests_whose_unsigned_values_change(monkeypatch):
    """Content-Length follows each body and X-Amzn-Trace-Id is new per request: neither is
    signed, so the header set made for the first request serves the next (counted, not
    timed); a changed signed value is read afresh, and a CR in an unsigned value is refused.
    Each request still verifies with the botocore-based verifier.
    """
    monkeypatch.setattr(_sigv4, "_HEADER_SETS", {}, raising=False)
    built: list[int] = []
    real = _sigv4.header_set
    monkeypatch.setattr(_sigv4, "header_set", lambda *args: built.append(1) or real(*args))
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/items"

    def sign(size: int, content_type: str = "application/json", trace: str = "Root=1-a") -> None:
        body = b"x" * size
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        signed = signer().sign(
            "POST", url, headers={**headers, "X-Amzn-Trace-Id": trace}, body=body, timestamp=NOW
        )
        received = ReceivedRequest(
            "POST", signed.url.partition(".com")[2], tuple(signed.headers.items()), body
        )
        verify(
            received,
            credentials={"AKIDEXAMPLE": (SECRET_KEY, None)},
            region="us-east-1",
            service="execute-api",
            now=NOW,
        )

    for size in range(100, 105):
        sign(size, trace=f"Root=1-{size}")
    assert len(built) == 1
    # Names and values as bytes, as httpx holds them (the adapters' route): the same.
    for size in range(100, 105):
        raw = ((b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % size))
        signer()._sign_for_wire("POST", url, raw, EMPTY, timestamp=NOW)
    assert len(built) == 2
    sign(100, content_type="text/plain")
    assert len(built) == 3
    with pytest.raises(UnsignableRequestError, match="CR, LF or NUL"):
        sign(100, trace="Root=1-a\r\nX-Injected: 1")


def _reference_signatures(value: str) -> tuple[str, str]:
    """botocore's and awscrt's (aws-c-auth's) signatures of one GET with ``X-Meta: value``."""
    import awscrt.auth  # noqa: PLC0415 - only this test compares with the AWS CRT
    import awscrt.http  # noqa: PLC0415
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import Credentials as BotocoreCredentials  # noqa: PLC0415

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    stamp = amz_date(when)
    request = AWSRequest(
        "GET", "https://h.example/p", headers={"X-Meta": value, "X-Amz-Date": stamp}
    )
    request.context["timestamp"] = stamp
    auth = SigV4Auth(BotocoreCredentials("AKIDEXAMPLE", SECRET_KEY), "execute-api", "us-east-1")
    by_botocore = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    config = awscrt.auth.AwsSigningConfig(
        algorithm=awscrt.auth.AwsSigningAlgorithm.V4,
        signature_type=awscrt.auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=awscrt.auth.AwsCredentialsProvider.new_static(
            "AKIDEXAMPLE", SECRET_KEY
        ),
        region="us-east-1",
        service="execute-api",
        date=when,
        signed_body_header_type=awscrt.auth.AwsSignedBodyHeaderType.NONE,
    )
    crt_request = awscrt.http.HttpRequest(
        "GET", "/p", awscrt.http.HttpHeaders([("host", "h.example"), ("x-meta", value)])
    )
    awscrt.auth.aws_sign_request(crt_request, config).result()
    by_crt = dict(crt_request.headers)["Authorization"].rpartition("Signature=")[2]
    return by_botocore, by_crt


@pytest.mark.parametrize("separator", ["\x1c", "\x1d", "\x1e", "\x1f"])
def test_a_header_value_the_aws_signers_read_differently_is_refused(separator):
    """0x1C-0x1F fold to a space in botocore, not in aws-c-auth: no signature over them is
    sure to verify, so a signed header holding one is refused; an unsigned one may."""
    value = f"a{separator}b"
    by_botocore, by_crt = _reference_signatures(value)
    assert by_botocore != by_crt
    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY))
    with pytest.raises(UnsignableRequestError, match="0x1C-0x1F") as refused:
        signer.sign("GET", "https://h.example/p", headers={"X-Meta": value})
    assert value not in str(refused.value)
    signed = signer.sign("GET", "https://h.example/p", headers={"User-Agent": value})
    assert "user-agent" not in signed.headers["Authorization"]


@pytest.mark.parametrize("value", ["a\x0bb", "a\x0cb", "a \t b"])
def test_whitespace_the_aws_signers_fold_alike_is_signed_as_both_do(value):
    """Vertical tab, form feed and runs of spaces: botocore and aws-c-auth agree, and so do we."""
    by_botocore, by_crt = _reference_signatures(value)
    assert by_botocore == by_crt
    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY))
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    signed = signer.sign("GET", "https://h.example/p", headers={"X-Meta": value}, timestamp=when)
    assert signed.signing is not None
    assert signed.signing.signature == by_botocore


def test_a_request_without_host_is_refused_by_the_signer_and_by_the_core():
    """SigV4 always signs host: a pre-split request without one says so, at either entry."""
    request = SignableRequest("GET", "/p", (), (("Accept", "*/*"),), EMPTY)
    with pytest.raises(UnsignableRequestError, match="no Host header"):
        signer().sign_request(request, timestamp=NOW)
    config = SigningConfig("us-east-1", "execute-api")
    with pytest.raises(UnsignableRequestError, match="no Host header"):
        sign(request, Credentials("AKIDEXAMPLE", "secret"), config, NOW)


def test_host_cannot_be_left_unsigned():
    """SigV4 always signs host: naming it among the unsigned headers is refused at once."""
    with pytest.raises(InvalidConfigError, match="host header is always signed"):
        SigV4Signer(
            region="us-east-1", credentials=("AKIDEXAMPLE", SECRET_KEY), unsigned_headers=["Host"]
        )
