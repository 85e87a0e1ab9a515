"""The server side: verify SigV4 requests as API Gateway does, and a local IAM-auth server.

A separate product from the client side (:mod:`apigw_iam_auth`): it imports the client's pure
core to recompute signatures, and nothing on the client side imports it.

* :func:`verify_request` -- the pure verifier (no I/O, ``now`` is an argument);
* :class:`IamAuthServer` -- a loopback HTTP server that authenticates with it, for offline
  development and tests, answering with API Gateway's 403 bodies, logging one line per request
  on :data:`ACCESS_LOGGER` and keeping a :class:`RequestRecord` of each;
* the pytest fixtures built on it live in :mod:`apigw_iam_auth.pytest_plugin`.
"""

from apigw_iam_auth.server._http import (
    ACCESS_LOGGER,
    IamAuthServer,
    Reply,
    RequestRecord,
    keys_from_env,
    load_keys,
    load_policy,
)
from apigw_iam_auth.server._verify import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_MAX_SKEW,
    UNSIGNED_PAYLOAD,
    UNSIGNED_PAYLOAD_SERVICES,
    FailureKind,
    KeyLookup,
    KnownKey,
    VerificationError,
    VerifiedRequest,
    verify_request,
)

__all__ = [
    "ACCESS_LOGGER",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_MAX_SKEW",
    "UNSIGNED_PAYLOAD",
    "UNSIGNED_PAYLOAD_SERVICES",
    "FailureKind",
    "IamAuthServer",
    "KeyLookup",
    "KnownKey",
    "Reply",
    "RequestRecord",
    "VerificationError",
    "VerifiedRequest",
    "keys_from_env",
    "load_keys",
    "load_policy",
    "verify_request",
]
