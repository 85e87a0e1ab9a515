"""SigV4a cryptography (``apigw_iam_auth._sigv4a``): key derivation, signing and verification.

Three independent references check the derivation: the aws-c-auth SigV4a vectors
(``tests/vectors/sigv4-test-suite/v4a``: every case's ``public-key.json`` and both of its given
signatures), aws-c-auth's own known-answer test (``tests/key_derivation_tests.c``), and awscrt
itself, whose signatures for random credentials must verify under the key we derive.
``APIGW_SIGV4A_TEST_SUITE`` may point at another ``v4a`` folder; a missing suite fails, never
skips.

The KDF's retry branch (a candidate above n - 2) happens for about one credential in 2**32, so no
natural input is known; it is proven by checking the candidate rule at its boundaries and by
substituting the candidate function inside the real derivation loop.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING

import aws_vectors
import pytest
from awscrt import auth as crt_auth
from awscrt import http as crt_http
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from apigw_iam_auth import _sigv4a
from apigw_iam_auth._sigv4a import (
    ALGORITHM_V4A,
    P256_ORDER,
    derive_private_key,
    load_public_key,
    public_key_from_private,
    public_key_xy,
    sign,
    verify,
)
from apigw_iam_auth.errors import InvalidConfigError, SigningError

if TYPE_CHECKING:
    from pathlib import Path

SUITE = aws_vectors.V4A
EXPECTED_CASE_COUNT = 38
# Folders of the suite that hold no expected outputs, so there is nothing to verify.
WITHOUT_OUTPUTS = {
    "get-vanilla-query-order-key": "upstream ships only context.json and request.txt",
    "get-vanilla-query-order-value": "upstream ships only context.json and request.txt",
}
LOCATIONS = ("header", "query")
_MISSING = "sigv4a-test-suite-missing"
EXTRA_HINT = "pip install 'cryptography>=42'"

# aws-c-auth tests/key_derivation_tests.c: "Values derived in synchronicity with Golang and IAM
# implementations".
KAT_ACCESS_KEY = "AKISORANDOMAASORANDOM"
KAT_SECRET = "q+jcrXGc+0zWN6uzclKVhvMmUsIfRPa4rlRandom"
KAT_X = "15d242ceebf8d8169fd6a8b5a746c41140414c3b07579038da06af89190fffcb"
KAT_Y = "0515242cedd82e94799482e4c0514b505afccf2c0c98d6a553bf539f424c5ec0"

VECTOR_ACCESS_KEY = "AKIDEXAMPLE"
VECTOR_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
STRING_TO_SIGN = (
    "AWS4-ECDSA-P256-SHA256\n20150830T123600Z\n20150830/service/aws4_request\n"
    "cf59db423e841c8b7e3444158185aa261b724a5c27cbe762676f3eed19f4dc02"
)


def _case_names() -> list[str]:
    if not SUITE.is_dir():
        return []
    return sorted(entry.name for entry in SUITE.iterdir() if (entry / "public-key.json").is_file())


CASES = _case_names() or [_MISSING]


def _require_suite() -> None:
    aws_vectors.require("v4a")


@dataclass(frozen=True)
class Case:
    """One SigV4a vector: credentials, expected public point, and per-placement outputs."""

    access_key: str
    secret_key: str
    x: str
    y: str
    folder: Path

    def text(self, location: str, stage: str) -> str:
        return (self.folder / f"{location}-{stage}.txt").read_bytes().decode()

    def signatures(self, location: str) -> list[str]:
        """The given signature file and the one inside the signed request (they differ)."""
        signed = re.search(r"Signature=([0-9a-f]+)", self.text(location, "signed-request"))
        assert signed is not None
        return [self.text(location, "signature"), signed.group(1)]


@cache
def load(name: str) -> Case:
    _require_suite()
    folder = SUITE / name
    credentials = json.loads((folder / "context.json").read_bytes())["credentials"]
    point = json.loads((folder / "public-key.json").read_bytes())
    return Case(
        credentials["access_key_id"],
        credentials["secret_access_key"],
        point["X"],
        point["Y"],
        folder,
    )


@cache
def derived(access_key: str, secret_key: str) -> ec.EllipticCurvePrivateKey:
    return derive_private_key(access_key, secret_key)


def _flip(text: str, index: int) -> str:
    """Change one hex digit (or any character) at ``index`` to a different one."""
    replacement = "1" if text[index] != "1" else "2"
    return text[:index] + replacement + text[index + 1 :]


# --- the vectors ---------------------------------------------------------------------------------


def test_suite_is_present_with_every_case():
    """The v4a suite is found and has 38 cases with public-key.json; the rest are listed."""
    _require_suite()
    assert len(CASES) == EXPECTED_CASE_COUNT, CASES
    others = {entry.name for entry in SUITE.iterdir() if entry.is_dir()} - set(CASES)
    assert others == set(WITHOUT_OUTPUTS)


@pytest.mark.parametrize("name", CASES)
def test_derived_public_key_is_the_vectors(name):
    """The key derived from the case's credentials has exactly the public point of the case."""
    case = load(name)
    key = derived(case.access_key, case.secret_key)
    assert public_key_xy(public_key_from_private(key)) == (case.x.lower(), case.y.lower())


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("name", CASES)
def test_vector_signatures_verify(name, location):
    """Both given signatures of the case verify over its string to sign with public-key.json."""
    case = load(name)
    public = load_public_key(case.x, case.y)
    string_to_sign = case.text(location, "string-to-sign")
    assert string_to_sign.startswith(ALGORITHM_V4A + "\n")
    for signature in case.signatures(location):
        assert verify(public, signature, string_to_sign)


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("name", CASES)
def test_vector_signature_refused_for_a_tampered_string_to_sign(name, location):
    """Changing one character of the string to sign (or appending one) makes verification fail."""
    case = load(name)
    public = load_public_key(case.x, case.y)
    string_to_sign = case.text(location, "string-to-sign")
    signature = case.text(location, "signature")
    for tampered in (_flip(string_to_sign, len(string_to_sign) - 1), string_to_sign + "\n"):
        assert not verify(public, signature, tampered)


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("name", CASES)
def test_tampered_vector_signature_is_refused(name, location):
    """A signature with a changed digit, cut short or with bytes appended does not verify."""
    case = load(name)
    public = load_public_key(case.x, case.y)
    string_to_sign = case.text(location, "string-to-sign")
    signature = case.text(location, "signature")
    tampered = [
        _flip(signature, len(signature) - 1),  # s
        _flip(signature, 20),  # r
        _flip(signature, 1),  # the DER header
        signature[:-2],
        signature + "00",
    ]
    for bad in tampered:
        assert not verify(public, bad, string_to_sign), bad


def test_aws_c_auth_known_answer():
    """The aws-c-auth key-derivation known answer (shared with Go and IAM) is reproduced."""
    key = derive_private_key(KAT_ACCESS_KEY, KAT_SECRET)
    assert public_key_xy(public_key_from_private(key)) == (KAT_X, KAT_Y)


# --- derivation ----------------------------------------------------------------------------------


def test_derivation_is_deterministic_and_uses_counter_one_plus_one():
    """Same credentials give the same scalar: the counter-1 KDF output plus one."""
    first = derive_private_key(VECTOR_ACCESS_KEY, VECTOR_SECRET).private_numbers().private_value
    again = derive_private_key(VECTOR_ACCESS_KEY, VECTOR_SECRET).private_numbers().private_value
    candidate = _sigv4a._kdf_candidate(
        b"AWS4A" + VECTOR_SECRET.encode(), VECTOR_ACCESS_KEY.encode(), 1
    )
    assert first == again == int.from_bytes(candidate, "big") + 1


def test_different_secrets_or_access_keys_give_different_keys():
    """The secret and the access key id both feed the KDF: changing either changes the key."""
    points = {
        public_key_xy(public_key_from_private(derive_private_key(access_key, secret)))
        for access_key, secret in [
            (VECTOR_ACCESS_KEY, VECTOR_SECRET),
            (VECTOR_ACCESS_KEY, VECTOR_SECRET[:-1] + "X"),
            (VECTOR_ACCESS_KEY, ""),
            (VECTOR_ACCESS_KEY + "2", VECTOR_SECRET),
            (KAT_ACCESS_KEY, VECTOR_SECRET),
        ]
    }
    assert len(points) == 5


def test_order_constant_is_the_p256_order():
    """P256_ORDER is n: (n - 1)G = -G, and cryptography refuses n itself as a scalar."""
    generator = ec.derive_private_key(1, ec.SECP256R1()).public_key().public_numbers()
    minus_generator = ec.derive_private_key(P256_ORDER - 1, ec.SECP256R1())
    assert minus_generator.public_key().public_numbers().x == generator.x
    assert minus_generator.public_key().public_numbers().y != generator.y
    with pytest.raises(ValueError, match=r"out of range|point is at infinity"):
        ec.derive_private_key(P256_ORDER, ec.SECP256R1())


@pytest.mark.parametrize(
    ("candidate", "scalar"),
    [
        (0, 1),
        (1, 2),
        ((P256_ORDER >> 1) + 1, (P256_ORDER >> 1) + 2),  # above n/2: an old smithy-rs slip
        (P256_ORDER - 2, P256_ORDER - 1),
        (P256_ORDER - 1, None),
        (P256_ORDER, None),
        (2**256 - 1, None),
    ],
    ids=["zero", "one", "above-half-n", "n-minus-2", "n-minus-1", "n", "max"],
)
def test_candidate_rule_at_its_boundaries(candidate, scalar):
    """FIPS 186-5 A.2.2: candidates up to n - 2 become candidate + 1; larger ones are refused."""
    assert _sigv4a._scalar_from_candidate(candidate.to_bytes(32, "big")) == scalar


def test_rejected_first_candidate_retries_with_the_next_counter(monkeypatch):
    """A first candidate above n - 2 is dropped and the counter-2 candidate + 1 becomes the key."""
    real = _sigv4a._kdf_candidate
    counters: list[int] = []

    def first_too_large(kdf_key: bytes, access_key_id: bytes, counter: int) -> bytes:
        counters.append(counter)
        return b"\xff" * 32 if counter == 1 else real(kdf_key, access_key_id, counter)

    monkeypatch.setattr(_sigv4a, "_kdf_candidate", first_too_large)
    key = derive_private_key(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    second = real(b"AWS4A" + VECTOR_SECRET.encode(), VECTOR_ACCESS_KEY.encode(), 2)
    assert counters == [1, 2]
    assert key.private_numbers().private_value == int.from_bytes(second, "big") + 1


def test_every_candidate_rejected_raises_signing_error(monkeypatch):
    """After counters 1..254 all fail, a SigningError is raised that does not show the secret."""
    counters: list[int] = []

    def always_too_large(_kdf_key: bytes, _access_key_id: bytes, counter: int) -> bytes:
        counters.append(counter)
        return b"\xff" * 32

    monkeypatch.setattr(_sigv4a, "_kdf_candidate", always_too_large)
    with pytest.raises(SigningError) as caught:
        derive_private_key(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    assert counters == list(range(1, 255))
    assert VECTOR_SECRET not in str(caught.value)


def test_unencodable_credentials_are_a_config_error_without_the_value():
    """A secret or key id with a lone surrogate raises InvalidConfigError that does not echo it."""
    secret = "abc\ud800def"
    for access_key, secret_key in [(VECTOR_ACCESS_KEY, secret), (secret, VECTOR_SECRET)]:
        with pytest.raises(InvalidConfigError) as caught:
            derive_private_key(access_key, secret_key)
        assert "abc" not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__


# --- public keys ---------------------------------------------------------------------------------


def test_public_key_xy_pads_coordinates_to_64_digits():
    """A coordinate with leading zero bits is still written as 64 digits and loads back."""
    for index in range(500):
        public = public_key_from_private(derive_private_key("AKID", f"secret-{index}"))
        numbers = public.public_numbers()
        if numbers.x < 2**252 or numbers.y < 2**252:
            break
    else:
        pytest.fail("no coordinate below 2**252 in 500 keys")
    x, y = public_key_xy(public)
    assert len(x) == len(y) == 64
    assert (int(x, 16), int(y, 16)) == (numbers.x, numbers.y)
    assert load_public_key(x, y).public_numbers() == numbers


def test_load_public_key_accepts_either_case():
    """Upper- and lower-case hex coordinates load the same point."""
    lower = load_public_key(KAT_X, KAT_Y).public_numbers()
    assert load_public_key(KAT_X.upper(), KAT_Y.upper()).public_numbers() == lower


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (KAT_X, KAT_X),  # not on the curve
        (KAT_X, f"{int(KAT_Y, 16) + 1:064x}"),  # not on the curve
        ("0" * 64, "0" * 64),  # the point at infinity has no affine coordinates
        (KAT_X[2:], KAT_Y),  # short
        ("0x" + KAT_X[2:], KAT_Y),  # prefixed
        (KAT_X, KAT_Y + "0"),  # long
        (KAT_X[:-1] + "g", KAT_Y),  # not hex
        (KAT_X[:-1] + "\u0663", KAT_Y),  # a non-ASCII digit
        (" " + KAT_X[1:], KAT_Y),  # whitespace
    ],
)
def test_load_public_key_refuses_anything_but_a_p256_point(x, y):
    """Off-curve points and coordinates that are not exactly 64 hex digits are config errors."""
    with pytest.raises(InvalidConfigError, match="SigV4a public key"):
        load_public_key(x, y)


# --- signing and verification --------------------------------------------------------------------


def test_own_signature_verifies_with_ours_and_with_cryptography():
    """sign() is DER ECDSA over SHA-256 of the string: ours and cryptography (plain and prehashed) accept it."""  # noqa: E501
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    public = public_key_from_private(key)
    signature = sign(key, STRING_TO_SIGN)
    assert re.fullmatch(r"30[0-9a-f]+", signature)
    assert verify(public, signature, STRING_TO_SIGN)
    assert verify(load_public_key(*public_key_xy(public)), signature, STRING_TO_SIGN)
    der = bytes.fromhex(signature)
    public.verify(der, STRING_TO_SIGN.encode(), ec.ECDSA(hashes.SHA256()))
    digest = hashlib.sha256(STRING_TO_SIGN.encode()).digest()
    public.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_signing_is_randomised_and_every_signature_verifies():
    """Two signatures of one string differ (ECDSA with a random nonce) and both verify."""
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    first, second = sign(key, STRING_TO_SIGN), sign(key, STRING_TO_SIGN)
    assert first != second
    public = public_key_from_private(key)
    assert verify(public, first, STRING_TO_SIGN)
    assert verify(public, second, STRING_TO_SIGN)


def test_non_ascii_string_to_sign_is_signed_as_utf8():
    """A string to sign with non-ASCII text is signed over its UTF-8 bytes."""
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    text = STRING_TO_SIGN + "\u20ac\u00fc"
    signature = sign(key, text)
    public = public_key_from_private(key)
    public.verify(bytes.fromhex(signature), text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    assert verify(public, signature, text)


def test_signature_from_another_key_is_refused():
    """A valid signature made with a different key does not verify."""
    other = derived(KAT_ACCESS_KEY, KAT_SECRET)
    ours = public_key_from_private(derived(VECTOR_ACCESS_KEY, VECTOR_SECRET))
    assert not verify(ours, sign(other, STRING_TO_SIGN), STRING_TO_SIGN)


def test_uppercase_hex_signature_is_accepted():
    """Hex case does not change the signature's bytes, so upper-case hex verifies too."""
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    signature = sign(key, STRING_TO_SIGN)
    assert verify(public_key_from_private(key), signature.upper(), STRING_TO_SIGN)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "3",
        "zz",
        "30 44",
        "0x3044",
        "\u0663\u0660",
        "00" * 72,
        "30" * 73,
        "3006020100020100",  # r = s = 0
        "a" * 1_000_000,
    ],
)
def test_malformed_signatures_are_refused_without_raising(signature):
    """Empty, odd-length, non-hex, spaced, zero, over-long or non-DER signatures give False."""
    public = public_key_from_private(derived(VECTOR_ACCESS_KEY, VECTOR_SECRET))
    assert verify(public, signature, STRING_TO_SIGN) is False


def test_whitespace_around_a_valid_signature_is_refused():
    """A valid signature with surrounding whitespace is not accepted (no lenient parsing)."""
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    signature = sign(key, STRING_TO_SIGN)
    public = public_key_from_private(key)
    for padded in (f" {signature}", f"{signature}\n", signature[:10] + " " + signature[10:]):
        assert not verify(public, padded, STRING_TO_SIGN)


def test_unencodable_string_to_sign_is_refused_without_raising():
    """A string to sign with a lone surrogate cannot have been signed, so verify returns False."""
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    signature = sign(key, STRING_TO_SIGN)
    assert verify(public_key_from_private(key), signature, STRING_TO_SIGN + "\ud800") is False


@given(signature=st.text(max_size=200), string_to_sign=st.text(max_size=50))
def test_verify_never_raises_on_arbitrary_text(signature, string_to_sign):
    """Any text as signature or string to sign gives a bool, never an exception."""
    public = public_key_from_private(derived(VECTOR_ACCESS_KEY, VECTOR_SECRET))
    assert verify(public, signature, string_to_sign) is False


@given(der=st.binary(max_size=80))
def test_verify_refuses_arbitrary_bytes_as_hex(der):
    """Arbitrary bytes, hex-encoded, are refused (they are not a signature of the string)."""
    public = public_key_from_private(derived(VECTOR_ACCESS_KEY, VECTOR_SECRET))
    assert verify(public, der.hex(), STRING_TO_SIGN) is False


# --- cryptography is optional --------------------------------------------------------------------


def test_missing_cryptography_names_the_extra(monkeypatch):
    """Without cryptography, each function that needs it raises InvalidConfigError naming the extra."""  # noqa: E501
    key = derived(VECTOR_ACCESS_KEY, VECTOR_SECRET)
    public = public_key_from_private(key)
    for name in [name for name in sys.modules if name.partition(".")[0] == "cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)
    calls = [
        lambda: derive_private_key(VECTOR_ACCESS_KEY, VECTOR_SECRET),
        lambda: load_public_key(KAT_X, KAT_Y),
        lambda: sign(key, STRING_TO_SIGN),
        lambda: verify(public, "3006020101020101", STRING_TO_SIGN),
    ]
    for call in calls:
        with pytest.raises(InvalidConfigError, match=re.escape(EXTRA_HINT)) as caught:
            call()
        assert isinstance(caught.value, ValueError)
        assert isinstance(caught.value.__cause__, ImportError)


def test_module_imports_without_cryptography():
    """In a fresh interpreter with cryptography blocked, the module imports and names the extra."""
    program = """
import sys
sys.modules["cryptography"] = None
import apigw_iam_auth._sigv4a as m
from apigw_iam_auth.errors import InvalidConfigError
assert not [n for n in sys.modules if n.startswith("cryptography") and sys.modules[n]]
try:
    m.derive_private_key("AKID", "secret")
except InvalidConfigError as exc:
    print(exc)
"""
    result = subprocess.run(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert EXTRA_HINT in result.stdout


# --- differential: awscrt ------------------------------------------------------------------------

HOST = "example.amazonaws.com"
SERVICE = "service"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def rebuilt_string_to_sign(when: datetime, region_set: str) -> str:
    """The SigV4a string to sign of ``GET /`` with only Host, X-Amz-Date and X-Amz-Region-Set."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    canonical_request = "\n".join(
        [
            "GET",
            "/",
            "",
            f"host:{HOST}",
            f"x-amz-date:{amz_date}",
            f"x-amz-region-set:{region_set}",
            "",
            "host;x-amz-date;x-amz-region-set",
            EMPTY_SHA256,
        ]
    )
    scope = f"{amz_date[:8]}/{SERVICE}/aws4_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{ALGORITHM_V4A}\n{amz_date}\n{scope}\n{digest}"


def awscrt_authorization(
    access_key: str, secret_key: str, when: datetime, region_set: str
) -> dict[str, str]:
    """The headers awscrt's SigV4a signer adds to ``GET /`` on HOST."""
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4_ASYMMETRIC,
        credentials_provider=crt_auth.AwsCredentialsProvider.new_static(access_key, secret_key),
        region=region_set,
        service=SERVICE,
        date=when,
    )
    request = crt_http.HttpRequest("GET", "/", crt_http.HttpHeaders([("Host", HOST)]))
    signed = crt_auth.aws_sign_request(request, config).result(timeout=10)
    return {name.lower(): value for name, value in signed.headers}


def test_rebuilt_string_to_sign_is_the_vectors():
    """The rebuild used below gives the suite's get-vanilla string to sign for its inputs."""
    when = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)
    assert rebuilt_string_to_sign(when, "us-east-1") == load("get-vanilla").text(
        "header", "string-to-sign"
    )


_credential_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
    min_size=1,
    max_size=64,
)
_access_keys = st.one_of(
    st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=128),
    _credential_text,
)
_secrets = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "+/", min_size=40, max_size=40),
    _credential_text,
)


@settings(max_examples=50)
@given(
    access_key=_access_keys,
    secret_key=_secrets,
    when=st.datetimes(
        # hypothesis takes naive bounds; timezones= makes every value UTC
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2099, 12, 31),  # noqa: DTZ001
        timezones=st.just(timezone.utc),
    ).map(lambda moment: moment.replace(microsecond=0)),
    region_set=st.sampled_from(["us-east-1", "eu-west-1", "us-east-1,us-west-2", "*"]),
)
def test_awscrt_signature_verifies_with_our_derived_key(access_key, secret_key, when, region_set):
    """For random credentials, awscrt's SigV4a signature verifies under derive_private_key's key."""
    headers = awscrt_authorization(access_key, secret_key, when, region_set)
    authorization = headers["authorization"]
    assert authorization.startswith(f"{ALGORITHM_V4A} Credential={access_key}/")
    assert "SignedHeaders=host;x-amz-date;x-amz-region-set," in authorization
    assert headers["x-amz-region-set"] == region_set
    signature = authorization.rpartition("Signature=")[2]
    string_to_sign = rebuilt_string_to_sign(when, region_set)

    public = public_key_from_private(derive_private_key(access_key, secret_key))
    assert verify(public, signature, string_to_sign)
    assert not verify(public, signature, string_to_sign + " ")
    if (access_key, secret_key) != (VECTOR_ACCESS_KEY, VECTOR_SECRET):
        stranger = public_key_from_private(derived(VECTOR_ACCESS_KEY, VECTOR_SECRET))
        assert not verify(stranger, signature, string_to_sign)


def test_awscrt_signature_date_is_the_one_rebuilt():
    """awscrt stamps X-Amz-Date from the config's date, which the rebuild relies on."""
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    headers = awscrt_authorization(VECTOR_ACCESS_KEY, VECTOR_SECRET, when, "us-east-1")
    assert headers["x-amz-date"] == "20300102T030405Z"
