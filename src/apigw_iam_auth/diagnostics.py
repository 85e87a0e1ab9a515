"""Explain API Gateway's "signature does not match" 403, line by line, without leaking secrets.

When API Gateway rejects a signature it quotes the canonical request and the string to sign it
computed (SIGV4_NOTES.md section 5). Set side by side with what we signed
(``SigningResult.canonical_request`` / ``.string_to_sign``), the first differing line names the
culprit: the path encoding, the query, a header a proxy rewrote, the body. Session tokens and
signatures are redacted from everything this module returns or logs.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apigw_iam_auth._models import SigningResult

__all__ = [
    "ExpectedSigning",
    "explain_signature_mismatch",
    "log_signature_mismatch",
    "parse_signature_mismatch",
    "redact",
]

_log = logging.getLogger("apigw_iam_auth")

_MISMATCH_MARKER = "signature we calculated does not match"
_EXPECTED = re.compile(
    r"The Canonical String for this request should have been\n'(?P<canonical>.*)'\n\n"
    r"The String-to-Sign should have been\n'(?P<to_sign>.*)'\s*\Z",
    re.DOTALL,
)
_REDACTED = "<redacted>"
# Values that must never reach a log: session tokens (header line or query parameter) and
# signatures (Authorization header or presigned query). Access key ids are not secret.
_SECRETS = (
    re.compile(r"(?im)^(\s*x-amz-security-token\s*:\s*).+$"),
    re.compile(r"(?i)(x-amz-security-token=)[^&\s'\"]+"),
    re.compile(r"(?i)(x-amz-signature=)[^&\s'\"]+"),
    re.compile(r"(?i)(\bSignature=)[0-9a-f]+"),
)
_HINTS = {
    "method": "the HTTP method differs: sign the method that is sent",
    "path": (
        "the path differs: API Gateway percent-encodes the path it received once more "
        "(wire %20 -> %2520) and removes dot segments; sign exactly the path that goes on the wire"
    ),
    "query": (
        "the query string differs: API Gateway reads '+' as a space, encodes everything but "
        "A-Z a-z 0-9 -_.~ and sorts by name then value; send the query exactly as signed"
    ),
    "signed headers": "the list of signed headers differs: a signed header was not sent",
    "payload hash": (
        "the body hash differs: the body sent is not the body signed "
        "(re-encoded JSON, compression, a consumed stream, a proxy)"
    ),
}


@dataclass(frozen=True, slots=True)
class ExpectedSigning:
    """What API Gateway says it computed; both are None when the body did not quote them."""

    message: str = field(repr=False)
    canonical_request: str | None = field(default=None, repr=False)
    string_to_sign: str | None = field(default=None, repr=False)


def redact(text: str) -> str:
    """Mask session tokens and signatures in headers, URLs, canonical strings and log text."""
    for pattern in _SECRETS:
        text = pattern.sub(rf"\g<1>{_REDACTED}", text)
    return text


def _message(body: str | bytes) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    if isinstance(decoded, dict):
        for key, value in decoded.items():
            if key.lower() == "message" and isinstance(value, str):
                return value
    return text


def parse_signature_mismatch(response_body: str | bytes) -> ExpectedSigning | None:
    """Read API Gateway's 403 body; None unless it is a "signature does not match" answer."""
    message = _message(response_body)
    if _MISMATCH_MARKER not in message:
        return None
    found = _EXPECTED.search(message)
    if found is None:
        # Some responses carry only the first sentences (okigan/awscurl#27).
        return ExpectedSigning(message)
    return ExpectedSigning(message, found.group("canonical"), found.group("to_sign"))


def _roles(canonical_lines: list[str]) -> list[str]:
    """Name each line of a canonical request: method, path, query, headers, list, hash."""
    roles = ["method", "path", "query"]
    rest = canonical_lines[3:]
    blank = rest.index("") if "" in rest else len(rest)
    roles.extend(f"header '{line.partition(':')[0]}'" for line in rest[:blank])
    roles += ["(blank)", "signed headers", "payload hash"]
    return roles[: len(canonical_lines)] + ["(extra)"] * (len(canonical_lines) - len(roles))


def _diff(expected: list[str], ours: list[str]) -> tuple[list[str], int | None]:
    """A redacted line diff and the index (in ``expected``) of the first differing line."""
    out: list[str] = []
    first: int | None = None
    matcher = difflib.SequenceMatcher(a=expected, b=ours, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            out += [f"    {redact(line)}".rstrip() for line in expected[a1:a2]]
            continue
        if first is None:
            first = a1
        out += [f"  - {redact(line)}".rstrip() for line in expected[a1:a2]]
        out += [f"  + {redact(line)}".rstrip() for line in ours[b1:b2]]
    return out, first


def _hint(roles: list[str], first: int | None) -> str:
    if first is None or first >= len(roles):
        return "a line was added or dropped at the end of the canonical request"
    role = roles[first]
    if role.startswith("header "):
        return (
            f"{role} differs: it was changed after signing (by the HTTP client or a proxy) "
            "or not sent; sign only headers that reach API Gateway unchanged"
        )
    return _HINTS.get(role, f"the {role} line differs")


def explain_signature_mismatch(response_body: str | bytes, signed: SigningResult) -> str | None:
    """A readable, redacted diff of API Gateway's expected signing strings against ours.

    Returns None when the body is not a signature-mismatch 403. Lines starting ``-`` are what
    API Gateway expected, ``+`` what we signed; the last line names the likely cause.
    """
    expected = parse_signature_mismatch(response_body)
    if expected is None:
        return None
    if expected.canonical_request is None or expected.string_to_sign is None:
        return (
            "API Gateway says the signature does not match but did not quote its canonical "
            "request. What we signed:\n"
            + "\n".join(f"    {redact(line)}" for line in signed.canonical_request.split("\n"))
        )
    theirs = expected.canonical_request.split("\n")
    canonical, first = _diff(theirs, signed.canonical_request.split("\n"))
    to_sign, first_sts = _diff(
        expected.string_to_sign.split("\n"), signed.string_to_sign.split("\n")
    )
    if first is not None:
        verdict = _hint(_roles(theirs), first)
    elif first_sts is not None:
        verdict = (
            "the canonical requests agree but the string to sign differs: check the date, "
            "region and service of the credential scope"
        )
    else:
        verdict = (
            "API Gateway computed the same strings, so the secret key is wrong: it does not "
            "belong to the access key id that was sent"
        )
    return "\n".join(
        [
            "Signature mismatch (- API Gateway expected, + we signed)",
            "canonical request:",
            *canonical,
            "string to sign:",
            *to_sign,
            f"likely cause: {verdict}",
        ]
    )


def log_signature_mismatch(
    status: int,
    response_body: str | bytes,
    signed: SigningResult,
    logger: logging.Logger | None = None,
) -> None:
    """For adapters: log the explanation at DEBUG for a 403 mismatch; free when DEBUG is off."""
    target = logger or _log
    if status != 403 or not target.isEnabledFor(logging.DEBUG):  # noqa: PLR2004 - HTTP 403
        return
    explanation = explain_signature_mismatch(response_body, signed)
    if explanation is not None:
        target.debug("%s", explanation)
