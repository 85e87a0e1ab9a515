"""AWS Signature Version 4 (IAM) authentication for API Gateway, for requests and httpx.

The client side. The server side (a verifier and a local IAM-auth server) is
:mod:`apigw_iam_auth.server`.
"""

from importlib.metadata import PackageNotFoundError, version

from apigw_iam_auth._models import Credentials, SignatureLocation, SignedRequest
from apigw_iam_auth.auth import ApiGwIamAuth
from apigw_iam_auth.credentials import (
    BotocoreProvider,
    CallableProvider,
    ChainProvider,
    CredentialsProvider,
    StaticProvider,
)
from apigw_iam_auth.diagnostics import explain_signature_mismatch
from apigw_iam_auth.errors import (
    ApiGwIamAuthError,
    CredentialsError,
    CredentialsRefreshError,
    InvalidConfigError,
    NoCredentialsError,
    SigningError,
    UnsignableRequestError,
)
from apigw_iam_auth.presign import presign_url
from apigw_iam_auth.signer import SigV4Signer

try:
    __version__ = version("apigw-iam-auth")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "ApiGwIamAuth",
    "ApiGwIamAuthError",
    "BotocoreProvider",
    "CallableProvider",
    "ChainProvider",
    "Credentials",
    "CredentialsError",
    "CredentialsProvider",
    "CredentialsRefreshError",
    "InvalidConfigError",
    "NoCredentialsError",
    "SigV4Signer",
    "SignatureLocation",
    "SignedRequest",
    "SigningError",
    "StaticProvider",
    "UnsignableRequestError",
    "__version__",
    "explain_signature_mismatch",
    "presign_url",
]
