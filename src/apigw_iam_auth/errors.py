"""The exception tree, split by what the caller has to do about it.

Messages say what to fix next. None of them ever contains an access key's secret, a session
token or a signature: callers log exceptions, and logs travel further than credentials should.
"""

from __future__ import annotations

__all__ = [
    "ApiGwIamAuthError",
    "CredentialsError",
    "CredentialsRefreshError",
    "InvalidConfigError",
    "NoCredentialsError",
    "SigningError",
    "UnsignableRequestError",
]


class ApiGwIamAuthError(Exception):
    """Base of every error this library raises on purpose."""


class InvalidConfigError(ApiGwIamAuthError, ValueError):
    """A setting is wrong: region, service, expiry, URL, timestamp. Fix the call site."""


class CredentialsError(ApiGwIamAuthError):
    """Credentials could not be had. Fix the environment, profile or provider."""


class NoCredentialsError(CredentialsError):
    """No provider yielded credentials; the message lists each provider tried and why."""


class CredentialsRefreshError(CredentialsError):
    """A provider failed while fetching or refreshing; its exception is chained as the cause."""


class SigningError(ApiGwIamAuthError):
    """The request could not be signed."""


class UnsignableRequestError(SigningError, ValueError):
    """The request itself cannot be signed as given: a header with CR/LF, a body of unknown type."""
