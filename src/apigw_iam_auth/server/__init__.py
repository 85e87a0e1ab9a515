"""The server side: verify SigV4 requests as API Gateway does, and a local IAM-auth server.

A separate product from the client side (:mod:`apigw_iam_auth`): it imports the client's pure
core to recompute signatures, and nothing on the client side imports it.

* :func:`verify_request` -- the pure verifier (no I/O, ``now`` is an argument);
* :class:`IamAuthServer` -- a loopback HTTP server that authenticates with it, for offline
  development and tests, answering with API Gateway's 403 bodies.
"""

from apigw_iam_auth.server._http import IamAuthServer, Reply, keys_from_env, load_keys, load_policy
from apigw_iam_auth.server._verify import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_MAX_SKEW,
    FailureKind,
    KeyLookup,
    KnownKey,
    VerificationError,
    VerifiedRequest,
    verify_request,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_MAX_SKEW",
    "FailureKind",
    "IamAuthServer",
    "KeyLookup",
    "KnownKey",
    "Reply",
    "VerificationError",
    "VerifiedRequest",
    "keys_from_env",
    "load_keys",
    "load_policy",
    "verify_request",
]
