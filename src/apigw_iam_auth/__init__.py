"""AWS Signature Version 4 (IAM) authentication for API Gateway: requests, httpx, httpx2, aiohttp.

The client side. The server side (a verifier and a local IAM-auth server) is
:mod:`apigw_iam_auth.server`. Names are imported on first use, so importing the package (as
the pytest plugin does in every test session) loads no HTTP client and no botocore.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from apigw_iam_auth.errors import (
    ApiGwIamAuthError,
    CredentialsError,
    CredentialsRefreshError,
    InvalidConfigError,
    NoCredentialsError,
    SigningError,
    UnsignableRequestError,
)

if TYPE_CHECKING:
    from apigw_iam_auth._models import (
        DEFAULT_UNSIGNED_HEADERS,
        Credentials,
        SignableRequest,
        SignatureLocation,
        SignedRequest,
        SigningResult,
    )
    from apigw_iam_auth.auth import ApiGwIamAuth
    from apigw_iam_auth.credentials import (
        BotocoreCompatibilityWarning,
        BotocoreProvider,
        CallableProvider,
        ChainProvider,
        CredentialsProvider,
        CredentialsSource,
        KeyTuple,
        SessionLike,
        StaticProvider,
        reset_shared_providers,
    )
    from apigw_iam_auth.diagnostics import RedactingFilter, explain_signature_mismatch, redact
    from apigw_iam_auth.presign import presign_url
    from apigw_iam_auth.signer import Body, Clock, HeadersLike, Payload, SigV4Signer

    __version__: str

__all__ = [
    "DEFAULT_UNSIGNED_HEADERS",
    "ApiGwIamAuth",
    "ApiGwIamAuthError",
    "Body",
    "BotocoreCompatibilityWarning",
    "BotocoreProvider",
    "CallableProvider",
    "ChainProvider",
    "Clock",
    "Credentials",
    "CredentialsError",
    "CredentialsProvider",
    "CredentialsRefreshError",
    "CredentialsSource",
    "HeadersLike",
    "InvalidConfigError",
    "KeyTuple",
    "NoCredentialsError",
    "Payload",
    "RedactingFilter",
    "SessionLike",
    "SigV4Signer",
    "SignableRequest",
    "SignatureLocation",
    "SignedRequest",
    "SigningError",
    "SigningResult",
    "StaticProvider",
    "UnsignableRequestError",
    "__version__",
    "explain_signature_mismatch",
    "presign_url",
    "redact",
    "reset_shared_providers",
]

# Where each lazily imported name lives.
_MODULES = {
    "ApiGwIamAuth": "auth",
    "Body": "signer",
    "BotocoreCompatibilityWarning": "credentials",
    "BotocoreProvider": "credentials",
    "CallableProvider": "credentials",
    "ChainProvider": "credentials",
    "Clock": "signer",
    "Credentials": "_models",
    "CredentialsProvider": "credentials",
    "CredentialsSource": "credentials",
    "DEFAULT_UNSIGNED_HEADERS": "_models",
    "HeadersLike": "signer",
    "KeyTuple": "credentials",
    "Payload": "signer",
    "RedactingFilter": "diagnostics",
    "SessionLike": "credentials",
    "SigV4Signer": "signer",
    "SignableRequest": "_models",
    "SignatureLocation": "_models",
    "SignedRequest": "_models",
    "SigningResult": "_models",
    "StaticProvider": "credentials",
    "explain_signature_mismatch": "diagnostics",
    "presign_url": "presign",
    "redact": "diagnostics",
    "reset_shared_providers": "credentials",
}


if not TYPE_CHECKING:  # type checkers read the imports above: a misspelt name is an error

    def __getattr__(name: str) -> Any:  # noqa: ANN401 - any public name of the package
        """Import a public name on first use (PEP 562), then keep it in the module."""
        if name == "__version__":
            from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

            try:
                value: Any = version("apigw-iam-auth")
            except PackageNotFoundError:  # pragma: no cover - a source tree without install
                value = "0.0.0"
        elif name in _MODULES:
            value = getattr(importlib.import_module(f"apigw_iam_auth.{_MODULES[name]}"), name)
        else:
            raise AttributeError(f"module 'apigw_iam_auth' has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(__all__)
