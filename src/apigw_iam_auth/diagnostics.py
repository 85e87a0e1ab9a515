"""Explain API Gateway's "signature does not match" 403, line by line, without leaking secrets.

When API Gateway rejects a signature it quotes the canonical request and the string to sign it
computed. Set side by side with what we signed
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

from apigw_iam_auth._models import SignedRequest, SigningResult
from apigw_iam_auth._sigv4 import UNSIGNED_PAYLOAD
from apigw_iam_auth.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "FORBIDDEN",
    "MAX_REFUSAL_BYTES",
    "ExpectedSigning",
    "RedactingFilter",
    "explain_signature_mismatch",
    "log_signature_mismatch",
    "parse_signature_mismatch",
    "redact",
]

_log = logging.getLogger("apigw_iam_auth")

_MISMATCH_MARKER = "signature we calculated does not match"
# The status of every API Gateway refusal of a signature (and of IAM denials).
FORBIDDEN = 403
# API Gateway's answers are a few KiB (its requests are limited to ~10 KiB of headers and
# ~8 KiB of URL); anything much larger is not one, and diffing megabytes of lines is slow.
MAX_REFUSAL_BYTES = 64 * 1024
# The two quoted strings of the body: "<intro>'<canonical>'<between>'<to_sign>'" then only
# whitespace. Found with str.find/rfind, which stay linear on any body (a regex with two
# ``.*`` groups backtracks quadratically over a body repeating the intro).
_CANONICAL_INTRO = "The Canonical String for this request should have been\n'"
_TO_SIGN_INTRO = "'\n\nThe String-to-Sign should have been\n'"
_REDACTED = "<redacted>"
# Values that must never reach a log or a terminal: session tokens, signatures and secret keys,
# and the web identity token and SAML assertion of AssumeRoleWith* requests, wherever they
# stand. Access key ids, dates and scopes (X-Amz-Credential) are not secret.
_MASKED_NAMES = (
    r"x-amz-security-token|x-amz-signature|aws_session_token|aws_security_token"
    r"|aws_secret_access_key|webidentitytoken|samlassertion"
)
# Other signed headers whose values are secrets of their own: an API key (API Gateway's usage
# plans), session cookies, a proxy's credentials.
_MASKED_HEADERS = r"x-api-key|cookie|set-cookie|proxy-authorization"
# Keys of the documents that carry credentials: STS (JSON and the XML botocore logs at DEBUG),
# Cognito Identity's GetCredentialsForIdentity (SecretKey), the container and IMDS endpoints,
# and the SSO token cache (~/.aws/sso/cache/*.json).
_MASKED_KEYS = (
    rf"{_MASKED_NAMES}|sessiontoken|secretaccesskey|secretkey|token|accesstoken|refreshtoken"
    r"|clientsecret"
)
# The same keys as fields of a YAML document (the AWS CLI's --output yaml), a log line or a
# program's arguments, in any case and with "_" or "-" between words or none; an option's
# name is masked before "=" (--client-secret=...), not before ":" ("--security_token: keys
# never go on the command line").
_MASKED_FIELDS = (
    r"secret[_-]?(?:access[_-]?)?key|session[_-]?token|security[_-]?token|access[_-]?token"
    r"|refresh[_-]?token|client[_-]?secret"
)
# Every pattern is linear: a name anchors each match and the value is one run of characters
# that cannot contain the value's terminator, so no position is ever scanned twice over. A
# line break allowed within a run of blanks opens its own group ("(?:\n...)?"), so the run is
# read one way only: "[^\S\n]*\n?[^\S\n]*" could split n blanks n ways, each tried.
# "<" ends every value, so a value already "<redacted>" is never matched again (idempotence).
_SECRETS = (
    # A header or canonical-request line: the whole rest of the line. [^\S\n]: whitespace
    # within the line; a bare \s would let each of n blank lines scan all the lines after it.
    # A bare "Token:" line too: the container credential endpoint's document as YAML.
    re.compile(
        rf"(?im)^([^\S\n]*(?:{_MASKED_NAMES}|{_MASKED_HEADERS}|token)[^\S\n]*:[^\S\n]*)[^\s<].*$"
    ),
    # name=value or name: value anywhere: a query string (also percent-encoded once or more
    # inside another URL, up to its %26 / %2526), an environment or .env assignment (export,
    # PowerShell's $Env:), a YAML or log line, Python keyword arguments, a "> Header: value"
    # line. The value may open with a quote (b'' too), which the quote ending it is left with;
    # the quote is taken whenever it is there, so a second pass never reads the b as the value.
    # The name follows a non-alphanumeric, an encoded delimiter %XX, one encoded again
    # (%25XX, which also ends any deeper encoding), or a newline escaped in a JSON string: API
    # Gateway's 403 body quotes its canonical request, token line included, as "...\nname:value".
    # A value also ends at a JSON escape that ends a line or string (\n \r \t \"), but not at
    # \/, which some JSON writers put for every "/" of a token or secret key.
    re.compile(
        rf"(?i)(?:(?<![A-Za-z0-9])|(?<=%[0-9A-F]{{2}})|(?<=25[0-9A-F]{{2}})|(?<=\\n))"
        rf"((?:{_MASKED_NAMES}|(?:{_MASKED_FIELDS})(?=[^\S\n]*=)|(?<!-)(?:{_MASKED_FIELDS}))"
        rf"(?:[^\S\n]*[:=][^\S\n]*(?:b?[\"']|(?!b?[\"']))|%(?:25)*3D))"
        r"(?:(?!%(?:25)*26|\\[nrt\"])[^&\s'\"<>,;])+"
    ),
    # A command line's option and its value after a space: --session-token <value>. Not a
    # value that starts with "-": that is the next option.
    re.compile(
        rf"(?i)(?<![A-Za-z0-9-])(--(?:aws[_-])?(?:{_MASKED_FIELDS})[^\S\n]+)(?![-<])[^\s'\"]+"
    ),
    # JSON, a Python repr or an echoed pair: "SessionToken": "...", ['x-amz-signature', '...'],
    # (b'x-amz-security-token', b'...'), parse_qs's {'X-Amz-Signature': ['...']}, botocore's
    # refresh metadata {'secret_key': '...'} (or a vault's {"secret": ...}), and an
    # assignment by subscript: os.environ["AWS_SESSION_TOKEN"] = "...". The value may stand
    # on the next line, as some JSON writers put a long one.
    re.compile(
        rf"""(?i)(["'](?:{_MASKED_KEYS}|{_MASKED_HEADERS}|{_MASKED_FIELDS}|secret)["']"""
        r"""[^\S\n]*(?:[:,]|\][^\S\n]*=)"""
        r"""[^\S\n]*(?:\n[^\S\n]*)?[\[(]?b?["'])[^"'\n<]+"""
    ),
    # botocore's ReadOnlyCredentials repr: secret_key='...', token='...'.
    re.compile(r"""(?i)(?<![A-Za-z0-9])((?:secret_key|token)[^\S\n]*=[^\S\n]*b?["'])[^"'\n<]+"""),
    # XML: STS's <SecretAccessKey>...</SecretAccessKey> and <SessionToken>, which botocore
    # logs at DEBUG with every response body.
    re.compile(rf"(?i)(<(?:{_MASKED_KEYS})>[^\S\n]*)[^<\s]+"),
    # The Authorization header of SigV4 (also in a canonical or curl form).
    re.compile(r"(?i)(\bSignature=)[0-9a-f]+"),
    # botocore's DEBUG line of SigV4 (botocore/auth.py): "Signature:\n<64 hex digits>".
    re.compile(r"(?i)(\bSignature:[^\S\n]*(?:\n[^\S\n]*)?)[0-9a-f]{64,}"),
    # Any other Authorization scheme carrying a bearer secret.
    re.compile(
        r"(?i)(\bauthorization[\"']?[^\S\n]*[:=,][^\S\n]*[\"']?(?:bearer|basic|token)[^\S\n]+)"
        r"[^\s\"',<]+"
    ),
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
# The payload hash line differs because none was signed: the service hashed the body it
# received. API Gateway (execute-api) never takes UNSIGNED-PAYLOAD, whatever the body.
_UNSIGNED_HINT = (
    f"{UNSIGNED_PAYLOAD} was signed but the service hashed the body instead: API Gateway "
    "(execute-api) never accepts an unsigned payload; sign the body's SHA-256 (execute-api's "
    "default)"
)


@dataclass(frozen=True, slots=True)
class ExpectedSigning:
    """What API Gateway says it computed; both are None when the body did not quote them."""

    message: str = field(repr=False)
    canonical_request: str | None = field(default=None, repr=False)
    string_to_sign: str | None = field(default=None, repr=False)


def redact(text: str) -> str:
    """Mask session tokens, signatures and secret keys in any text: headers, URLs, logs.

    Covers the ``Authorization`` header's ``Signature=``, presigned URLs' ``X-Amz-Signature``
    and ``X-Amz-Security-Token`` (also percent-encoded once or twice inside another URL), header
    and canonical-request lines, ``aws_session_token`` / ``aws_secret_access_key`` in INI files,
    the environment, ``.env``, shell and PowerShell exports, YAML and keyword arguments (quoted
    or not), command-line options (``--session-token value``), assignments such as
    ``os.environ["AWS_SESSION_TOKEN"] = ...``, credential JSON, YAML and STS XML
    (``SessionToken``, ``SecretAccessKey``, ``Token``, Cognito's ``SecretKey``; a JSON value
    on the line after its key too), the SSO token cache (``accessToken``,
    ``refreshToken``, ``clientSecret``), botocore's ``ReadOnlyCredentials`` repr and
    ``Signature:`` DEBUG line, header pairs as str or bytes, bearer ``Authorization`` values,
    and the values of signed headers that are secrets of their own (``x-api-key``, ``cookie``,
    ``proxy-authorization``). Each value becomes ``<redacted>``; access key ids, dates and
    scopes stay readable. Running it twice changes nothing more; time is linear in the text.

    >>> redact("https://h/p?X-Amz-Signature=ab12&X-Amz-Date=20240101T000000Z")
    'https://h/p?X-Amz-Signature=<redacted>&X-Amz-Date=20240101T000000Z'
    """
    for pattern in _SECRETS:
        text = pattern.sub(rf"\g<1>{_REDACTED}", text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that lets every record through with its text :func:`redact`-ed.

    httpx logs each request's URL at INFO, urllib3 at DEBUG, and both clients quote it in
    their exceptions: a presigned URL (``presign=True``) carries the signature and the session
    token. Add it to your handlers (``handler.addFilter(RedactingFilter())``): a handler's
    filters see every record it writes, a logger's only the records logged on that logger.
    The message, a logged exception's traceback and ``stack_info`` are masked: the traceback
    is rendered here (as ``logging.Formatter`` renders it) and the exception itself taken off
    the record, so no formatter can render it again unmasked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record's message and tracebacks; never drop it."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format: logging reports it, as without us
            return True
        shown = redact(message)
        if shown != message:
            record.msg, record.args = shown, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def readable_refusal(headers: Mapping[str, str]) -> bool:
    """Whether an adapter may read a refusal's body: its ``Content-Length`` says it is small.

    ``headers`` are the response's, as the client holds them (any case-insensitive mapping).

    API Gateway's refusals carry a length of a few hundred bytes. A body without one (chunked:
    an event stream, a streaming function URL) may never end, and reading a large one buffers
    it all: such a refusal is handed back unread, not explained, and taken for the clock only
    where it answers a HEAD (by its ``Date``).
    """
    text = (headers.get("Content-Length") or "").strip()
    return (
        0 < len(text) <= len(str(MAX_REFUSAL_BYTES))
        and text.isdigit()
        and (int(text) <= MAX_REFUSAL_BYTES)
    )


_TRACEBACKS = logging.Formatter()  # only its formatException, as every formatter's


def _message(body: str | bytes) -> str | None:
    """The ``message`` of a JSON body, or else the whole body as text (a proxy may unwrap it).

    None for a body far larger than any API Gateway answer.
    """
    if not isinstance(body, (str, bytes, bytearray, memoryview)):
        raise InvalidConfigError(
            f"response body must be str or bytes (the response's content), got "
            f"{type(body).__name__}"
        )
    if (body.nbytes if isinstance(body, memoryview) else len(body)) > MAX_REFUSAL_BYTES:
        return None
    text = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: '[[[[...' nested past the C stack
        return text
    if isinstance(decoded, dict):
        for key, value in decoded.items():
            if key.lower() == "message" and isinstance(value, str):
                return value
    return text


def parse_signature_mismatch(response_body: str | bytes) -> ExpectedSigning | None:
    """Read API Gateway's 403 body; None unless it is a "signature does not match" answer.

    Bodies over 64 KiB are not read (None): API Gateway's answers are a few KiB.
    """
    message = _message(response_body)
    if message is None or _MISMATCH_MARKER not in message:
        return None
    quoted = _quoted_strings(message)
    if quoted is None:
        # Some responses carry only the first sentences (okigan/awscurl#27).
        return ExpectedSigning(message)
    return ExpectedSigning(message, *quoted)


def _quoted_strings(message: str) -> tuple[str, str] | None:
    """The canonical request and string to sign quoted in ``message``, in linear time.

    The canonical request starts after the first intro and runs to the last separator; the
    string to sign runs from there to the closing quote, after which only whitespace may follow.
    """
    start = message.find(_CANONICAL_INTRO)
    if start == -1:
        return None
    start += len(_CANONICAL_INTRO)
    text = message.rstrip()
    if not text.endswith("'"):
        return None
    end = len(text) - 1
    between = text.rfind(_TO_SIGN_INTRO, start, end)
    if between == -1:
        return None
    return text[start:between], text[between + len(_TO_SIGN_INTRO) : end]


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


def _hint(roles: list[str], first: int | None, ours: list[str]) -> str:
    if first is None or first >= len(roles):
        return "a line was added or dropped at the end of the canonical request"
    role = roles[first]
    if role == "payload hash" and ours[-1] == UNSIGNED_PAYLOAD:
        return _UNSIGNED_HINT
    if role.startswith("header "):
        return (
            f"{role} differs: it was changed after signing (by the HTTP client or a proxy) "
            "or not sent; sign only headers that reach API Gateway unchanged"
        )
    return _HINTS.get(role, f"the {role} line differs")


def explain_signature_mismatch(
    response_body: str | bytes, signed: SigningResult | SignedRequest
) -> str | None:
    """A readable, redacted diff of API Gateway's expected signing strings against ours.

    ``signed`` is what :meth:`SigV4Signer.sign` returned for the refused request, or its
    ``signing``. Returns None when the body is not a signature-mismatch 403. Lines starting
    ``-`` are what API Gateway expected, ``+`` what we signed; the last line names the likely
    cause. A body that is not str or bytes, or ``signed`` that holds no ``SigningResult``,
    raises :class:`~apigw_iam_auth.errors.InvalidConfigError`.
    """
    result = signed.signing if isinstance(signed, SignedRequest) else signed
    if not isinstance(result, SigningResult):
        given = "a SignedRequest without signing (built by hand?)"
        raise InvalidConfigError(
            "signed must be the SignedRequest that SigV4Signer.sign returned for the refused "
            "request, or its SigningResult, got "
            f"{given if isinstance(signed, SignedRequest) else type(signed).__name__}"
        )
    expected = parse_signature_mismatch(response_body)
    if expected is None:
        return None
    if expected.canonical_request is None or expected.string_to_sign is None:
        return (
            "API Gateway says the signature does not match but did not quote its canonical "
            "request. What we signed:\n"
            + "\n".join(f"    {redact(line)}" for line in result.canonical_request.split("\n"))
        )
    theirs, ours = expected.canonical_request.split("\n"), result.canonical_request.split("\n")
    canonical, first = _diff(theirs, ours)
    to_sign, first_sts = _diff(
        expected.string_to_sign.split("\n"), result.string_to_sign.split("\n")
    )
    if first is not None:
        verdict = _hint(_roles(theirs), first, ours)
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
) -> None:
    """For adapters: log the explanation at DEBUG for a 403 mismatch; free when DEBUG is off.

    Never raises on what a response carries: a body that is not str or bytes is not explained.
    """
    if status != 403 or not _log.isEnabledFor(logging.DEBUG):  # noqa: PLR2004 - HTTP 403
        return
    if not isinstance(response_body, (str, bytes, bytearray, memoryview)):
        return
    explanation = explain_signature_mismatch(response_body, signed)
    if explanation is not None:
        _log.debug("%s", explanation)
