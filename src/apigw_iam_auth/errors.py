"""The exception tree, split by what the caller has to do about it.

::

    ApiGwIamAuthError
    ├── InvalidConfigError (also ValueError)    a setting is wrong: region, service, expires,
    │                                           URL, clock; raised where the object is built
    ├── CredentialsError
    │   ├── NoCredentialsError                  no provider had credentials; lists each one
    │   │                                       tried and why, never a value
    │   └── CredentialsRefreshError             a provider failed; its exception is the cause
    ├── SigningError
    │   └── UnsignableRequestError (also ValueError)
    │                                           the request cannot be signed as given: a
    │                                           header with CR/LF, a body of unknown type
    └── VerificationError                       (server side) a signed request refused as
                                                API Gateway would; ``kind`` is a FailureKind

Messages say what to fix next. None of them ever contains an access key's secret, a session
token or a signature: callers log exceptions, and logs travel further than credentials should.
"""

from __future__ import annotations

import enum
import json
from typing import Any

__all__ = [
    "ApiGwIamAuthError",
    "CredentialsError",
    "CredentialsRefreshError",
    "FailureKind",
    "InvalidConfigError",
    "NoCredentialsError",
    "SigningError",
    "UnsignableRequestError",
    "VerificationError",
]

# API Gateway's status for every refused signature (and for IAM denials).
_FORBIDDEN = 403
# How a message names the exception chained as its cause, after its type; the command line,
# which prints no traceback, says that cause in its place.
SEE_CAUSE = "(see the chained exception)"


class ApiGwIamAuthError(Exception):
    """Base of every error this library raises on purpose."""


class InvalidConfigError(ApiGwIamAuthError, ValueError):
    """A setting is wrong: region, service, expiry, URL, timestamp. Fix the call site."""


class CredentialsError(ApiGwIamAuthError):
    """Credentials could not be had. Fix the environment, profile or provider."""


class NoCredentialsError(CredentialsError):
    """No provider yielded credentials; the message lists each provider tried and why.

    ``reason`` is the why alone (one provider's lack, or a chain's numbered list).
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        """Keep the message, and the reason alone for a chain's summary."""
        super().__init__(message)
        self.reason: str = message if reason is None else reason


class CredentialsRefreshError(CredentialsError):
    """A provider failed while fetching or refreshing; its exception is chained as the cause."""


class SigningError(ApiGwIamAuthError):
    """The request could not be signed."""


class UnsignableRequestError(SigningError, ValueError):
    """The request itself cannot be signed as given: a header with CR/LF, a body of unknown type."""


class FailureKind(enum.Enum):
    """Why a request was refused; ``error_type`` is API Gateway's ``x-amzn-ErrorType`` for it."""

    MISSING_AUTHENTICATION_TOKEN = "missing_authentication_token"  # noqa: S105 - a name
    INCOMPLETE_SIGNATURE = "incomplete_signature"
    INVALID_SCOPE = "invalid_scope"
    SIGNATURE_EXPIRED = "signature_expired"
    SIGNATURE_NOT_YET_CURRENT = "signature_not_yet_current"
    UNRECOGNIZED_CLIENT = "unrecognized_client"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - a name
    SIGNATURE_MISMATCH = "signature_mismatch"
    ACCESS_DENIED = "access_denied"
    BAD_REQUEST = "bad_request"  # the request line, refused before any signature is read

    @property
    def error_type(self) -> str:
        """The ``x-amzn-ErrorType`` header value API Gateway sends for this failure."""
        return _ERROR_TYPES[self]

    @property
    def default_cause(self) -> str:
        """What the client most likely did, when nothing more precise is known (log-safe)."""
        return _CAUSES[self]


_ERROR_TYPES = {
    FailureKind.MISSING_AUTHENTICATION_TOKEN: "MissingAuthenticationTokenException",
    FailureKind.INCOMPLETE_SIGNATURE: "IncompleteSignatureException",
    FailureKind.INVALID_SCOPE: "InvalidSignatureException",
    FailureKind.SIGNATURE_EXPIRED: "InvalidSignatureException",
    FailureKind.SIGNATURE_NOT_YET_CURRENT: "InvalidSignatureException",
    FailureKind.UNRECOGNIZED_CLIENT: "UnrecognizedClientException",
    FailureKind.EXPIRED_TOKEN: "ExpiredTokenException",
    FailureKind.SIGNATURE_MISMATCH: "InvalidSignatureException",
    FailureKind.ACCESS_DENIED: "AccessDeniedException",
    FailureKind.BAD_REQUEST: "BadRequestException",
}

# What the client most likely did, when the check that refused it knows nothing more precise.
# Log-safe: these never quote anything the client sent.
_CAUSES = {
    FailureKind.MISSING_AUTHENTICATION_TOKEN: (
        "the request is not signed: no Authorization header and no X-Amz-Signature query "
        "parameter (was auth= left out, or did a proxy drop the header?)"
    ),
    FailureKind.INCOMPLETE_SIGNATURE: (
        "the signature is malformed or incomplete (the reason names the part): sign with "
        "AWS4-HMAC-SHA256 and send every part of it"
    ),
    FailureKind.INVALID_SCOPE: (
        "the client signed for another region, service or date than this server verifies"
    ),
    FailureKind.SIGNATURE_EXPIRED: (
        "the client's clock is behind the server's, or the request was sent long after signing"
    ),
    FailureKind.SIGNATURE_NOT_YET_CURRENT: "the client's clock is ahead of the server's",
    FailureKind.UNRECOGNIZED_CLIENT: (
        "the access key id is unknown here, or its session token is missing or wrong"
    ),
    FailureKind.EXPIRED_TOKEN: "the temporary credentials expired: refresh them and sign again",
    FailureKind.SIGNATURE_MISMATCH: (
        "the secret key does not belong to the access key id, or the request changed after "
        "signing (method, path, query, a signed header or the body)"
    ),
    FailureKind.ACCESS_DENIED: "the IAM policy does not allow this call",
    FailureKind.BAD_REQUEST: (
        "the request line cannot be canonicalised: a raw client or a proxy mangled it"
    ),
}


class VerificationError(ApiGwIamAuthError):
    """A signed request was refused (server side); ``message`` is API Gateway's body text.

    ``message`` may quote what the caller sent (its own Authorization header or, in a signature
    mismatch, the canonical request including its session token), exactly as AWS does in the
    403 body. ``str(error)`` is the log-safe form: quoted credentials are redacted there.
    ``likely_cause`` is one log-safe sentence on what the client probably did wrong; AWS never
    sends it, the local server logs it.
    """

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int = _FORBIDDEN,
        error_type: str | None = None,
        log_message: str | None = None,
        likely_cause: str | None = None,
    ) -> None:
        """Record the failure; ``log_message`` replaces ``message`` in ``str()`` when set."""
        super().__init__(log_message if log_message is not None else message)
        self.kind = kind
        self.message = message
        self.status = status
        self.error_type = error_type or kind.error_type
        self.likely_cause = likely_cause or kind.default_cause

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled whole, as a process pool returns it: rebuilt with its log-safe text."""
        return (_rebuilt, (type(self), self.kind, self.message, str(self)), vars(self))

    def to_json(self) -> str:
        """The response body, byte for byte as API Gateway writes it (compact JSON).

        Authorization denials use ``Message`` with a capital M; every other 403 uses ``message``.
        """
        key = "Message" if self.kind is FailureKind.ACCESS_DENIED else "message"
        return json.dumps({key: self.message}, separators=(",", ":"))


def _rebuilt(
    cls: type[VerificationError], kind: FailureKind, message: str, log_message: str
) -> VerificationError:
    """A :class:`VerificationError` unpickled: its other attributes follow as its state."""
    return cls(kind, message, log_message=log_message)
