"""SigV4a cryptography: the ECDSA P-256 key AWS derives from an access key, and its signatures.

SigV4a (algorithm ``AWS4-ECDSA-P256-SHA256``) is the asymmetric variant of SigV4 that AWS uses
for multi-region endpoints: the canonical request and string to sign are built as in SigV4 (the
credential scope drops the region, which travels in the signed ``X-Amz-Region-Set``), but the
string to sign is signed with ECDSA over P-256 instead of an HMAC chain. The service verifies
with the public half, so one signature is valid in every region of the set.

The key is not random: both sides derive it from the secret access key. The derivation is the
one implemented by aws-c-auth (``source/key_derivation.c``, whose tests pin a known answer
"derived in synchronicity with Golang and IAM implementations") and by smithy-rs
(``aws/rust-runtime/aws-sigv4/src/sign/v4a.rs``): a NIST SP 800-108 KDF in counter mode with
HMAC-SHA256 as the PRF, keyed by ``"AWS4A" + secret``, producing a 256-bit candidate that is
turned into a private scalar by the rejection sampling of FIPS 186-5 A.2.2 (retry with the next
counter if the candidate exceeds n - 2, else use candidate + 1). Written here from those
descriptions and checked against the aws-c-auth vectors' ``public-key.json`` and against awscrt.

Why not awscrt (botocore's only SigV4a path): its Python API signs a whole request with its own
canonicaliser, so our tested execute-api rules would be bypassed, and it exposes neither the
credential-to-key derivation nor signature verification, which the local verifying server needs.
``cryptography`` has ECDSA P-256 with DER signatures and wheels for every platform, and the
derivation itself is a few stdlib HMAC calls. It is an optional extra (``[sigv4a]``), imported
only when one of these functions runs, so SigV4-only users never pay for it.

Everything here is pure: no I/O, no clock, no caching (the caller caches derived keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import TYPE_CHECKING, NamedTuple

from apigw_iam_auth.errors import InvalidConfigError, SigningError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric.ec import (
        ECDSA,
        EllipticCurve,
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
        EllipticCurvePublicNumbers,
    )

__all__ = [
    "ALGORITHM_V4A",
    "P256_ORDER",
    "derive_private_key",
    "load_public_key",
    "public_key_from_private",
    "public_key_xy",
    "sign",
    "verify",
]

ALGORITHM_V4A = "AWS4-ECDSA-P256-SHA256"

# The order n of the P-256 base point (NIST SP 800-186 section 3.2.1.3).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# FIPS 186-5 A.2.2: a candidate c is usable when c <= n - 2; the private scalar is then c + 1,
# which lands in [1, n - 1] as a P-256 private key must.
_MAX_CANDIDATE = P256_ORDER - 2
# aws-c-auth's MAX_KEY_DERIVATION_COUNTER_VALUE: counters 1..254. Each candidate is rejected with
# probability about 2**-32, so the limit is never reached in practice.
_MAX_COUNTER = 254

# The fixed parts of the KDF input, SP 800-108 counter mode: [i]_32 || Label || 0x00 || Context
# || [L]_32, with one PRF block (i = 1) since L = 256 bits is exactly one HMAC-SHA256 output.
# Context is the access key id followed by the one-byte retry counter.
_KDF_SECRET_PREFIX = b"AWS4A"
_KDF_BLOCK_INDEX = (1).to_bytes(4, "big")
_KDF_LABEL = ALGORITHM_V4A.encode("ascii") + b"\x00"
_KDF_OUTPUT_BITS = (256).to_bytes(4, "big")

# A DER ECDSA P-256 signature is at most 72 bytes (SEQUENCE of two INTEGERs of up to 33 bytes);
# anything longer is refused before it reaches the parser.
_MAX_SIGNATURE_HEX = 2 * 72
_HEX_SIGNATURE = re.compile(r"(?:[0-9a-fA-F]{2})+")
_HEX_COORDINATE = re.compile(r"[0-9a-fA-F]{64}")

_MISSING_CRYPTOGRAPHY = (
    "SigV4a needs the optional 'cryptography' package: pip install 'cryptography>=42' "
    "(or the sigv4a extra: pip install '.[sigv4a]' in a checkout of apigw-iam-auth)"
)


class _Backend(NamedTuple):
    """The few pieces of ``cryptography`` this module uses, imported on demand."""

    curve: EllipticCurve
    ecdsa_sha256: ECDSA
    derive_private_key: Callable[[int, EllipticCurve], EllipticCurvePrivateKey]
    public_numbers: type[EllipticCurvePublicNumbers]
    invalid_signature: type[Exception]


def _backend() -> _Backend:
    """Import ``cryptography`` now, or say which extra installs it."""
    try:
        # Imported here, not at the top: SigV4-only users need not install the extra.
        from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
        from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    except ImportError as exc:
        raise InvalidConfigError(_MISSING_CRYPTOGRAPHY) from exc
    return _Backend(
        curve=ec.SECP256R1(),
        ecdsa_sha256=ec.ECDSA(hashes.SHA256()),
        derive_private_key=ec.derive_private_key,
        public_numbers=ec.EllipticCurvePublicNumbers,
        invalid_signature=InvalidSignature,
    )


def _utf8(value: str, what: str) -> bytes:
    """Encode a credential part; the message never shows the value."""
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidConfigError(
            f"the {what} is not valid text (it cannot be UTF-8 encoded)"
        ) from None


def _kdf_candidate(kdf_key: bytes, access_key_id: bytes, counter: int) -> bytes:
    """One SP 800-108 counter-mode output: 32 bytes for this access key id and retry counter."""
    fixed_input = (
        _KDF_BLOCK_INDEX + _KDF_LABEL + access_key_id + bytes((counter,)) + _KDF_OUTPUT_BITS
    )
    return hmac.new(kdf_key, fixed_input, hashlib.sha256).digest()


def _scalar_from_candidate(candidate: bytes) -> int | None:
    """FIPS 186-5 A.2.2: the private scalar candidate + 1, or None when the candidate is > n - 2.

    The comparison is not constant time, like smithy-rs's: it runs on the client over its own
    secret, and it only leaks whether a 2**-32 event happened.
    """
    value = int.from_bytes(candidate, "big")
    return value + 1 if value <= _MAX_CANDIDATE else None


def derive_private_key(access_key: str, secret_key: str) -> EllipticCurvePrivateKey:
    """The SigV4a signing key AWS derives from these credentials (not cached; cache the result).

    Raises :class:`~apigw_iam_auth.errors.InvalidConfigError` when ``cryptography`` is missing or
    a credential cannot be UTF-8 encoded, and :class:`~apigw_iam_auth.errors.SigningError` in the
    astronomically unlikely case that all 254 KDF candidates are out of range.
    """
    backend = _backend()
    kdf_key = _KDF_SECRET_PREFIX + _utf8(secret_key, "secret access key")
    access_key_id = _utf8(access_key, "access key id")
    for counter in range(1, _MAX_COUNTER + 1):
        scalar = _scalar_from_candidate(_kdf_candidate(kdf_key, access_key_id, counter))
        if scalar is not None:
            return backend.derive_private_key(scalar, backend.curve)
    # Reached only after 254 rejections in a row, probability about 2**-8128.
    raise SigningError(
        f"no SigV4a key could be derived from these credentials in {_MAX_COUNTER} attempts; "
        "rotate the access key"
    )


def public_key_from_private(private_key: EllipticCurvePrivateKey) -> EllipticCurvePublicKey:
    """The public half of a derived key, which is what a verifier holds."""
    return private_key.public_key()


def public_key_xy(public_key: EllipticCurvePublicKey) -> tuple[str, str]:
    """The public point as (X, Y): 64 lowercase hex digits each, the layout of public-key.json."""
    numbers = public_key.public_numbers()
    return f"{numbers.x:064x}", f"{numbers.y:064x}"


def load_public_key(x: str, y: str) -> EllipticCurvePublicKey:
    """A P-256 public key from public-key.json's ``X`` and ``Y`` (64 hex digits each).

    Raises :class:`~apigw_iam_auth.errors.InvalidConfigError` for anything that is not a point of
    P-256, or when ``cryptography`` is missing.
    """
    backend = _backend()
    if not (_HEX_COORDINATE.fullmatch(x) and _HEX_COORDINATE.fullmatch(y)):
        raise InvalidConfigError(
            "a SigV4a public key needs X and Y as 64 hex digits each, as in public-key.json"
        )
    try:
        return backend.public_numbers(int(x, 16), int(y, 16), backend.curve).public_key()
    except ValueError:
        raise InvalidConfigError(
            "the SigV4a public key's X and Y are not a point of P-256; check both coordinates"
        ) from None


def sign(private_key: EllipticCurvePrivateKey, string_to_sign: str) -> str:
    """The SigV4a signature: hex of the DER ECDSA signature over SHA-256 of the string to sign.

    ECDSA is randomised: two calls give different signatures, both valid. Check by verifying.
    """
    backend = _backend()
    return private_key.sign(string_to_sign.encode("utf-8"), backend.ecdsa_sha256).hex()


def signer_for(private_key: EllipticCurvePrivateKey) -> Callable[[str], str]:
    """:func:`sign` bound to one key, with ``cryptography`` looked up once, not per signature."""
    algorithm = _backend().ecdsa_sha256
    sign_bytes = private_key.sign

    def sign_text(string_to_sign: str) -> str:
        return sign_bytes(string_to_sign.encode("utf-8"), algorithm).hex()

    return sign_text


def verify(public_key: EllipticCurvePublicKey, signature_hex: str, string_to_sign: str) -> bool:
    """Whether ``signature_hex`` is a SigV4a signature of ``string_to_sign`` under this key.

    Returns False, never raises, for any signature that is not hex of a valid DER signature
    (wrong case is accepted, whitespace and over-long input are not).
    """
    backend = _backend()
    if len(signature_hex) > _MAX_SIGNATURE_HEX or not _HEX_SIGNATURE.fullmatch(signature_hex):
        return False
    try:
        message = string_to_sign.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no client could have signed these bytes
        return False
    try:
        public_key.verify(bytes.fromhex(signature_hex), message, backend.ecdsa_sha256)
    except backend.invalid_signature:
        return False
    return True
