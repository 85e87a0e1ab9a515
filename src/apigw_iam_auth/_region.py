"""Reading the credential scope (region, service) off an AWS hostname.

Only hostnames whose shape AWS documents are read; anything else (custom domains, load
balancers, a local server) needs an explicit ``region=``, because guessing a scope yields a 403
that names neither the host nor the fix.
"""

from __future__ import annotations

import re
from functools import lru_cache

from apigw_iam_auth.errors import InvalidConfigError

__all__ = ["LAMBDA_SERVICE", "infer_scope"]

LAMBDA_SERVICE = "lambda"
_EXECUTE_API = "execute-api"

# DNS suffixes of the partitions that serve execute-api (botocore data/endpoints.json dnsSuffix).
_SUFFIX = (
    r"(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|c2s\.ic\.gov|sc2s\.sgov\.gov"
    r"|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)"
)
_REGION = r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
# {api-id}.execute-api.{region}.amazonaws.com       public and private-DNS REST/HTTP APIs
# {api-id}-{vpce-id}.execute-api.{region}.amazonaws.com   Route 53 alias of a private API
# {vpce-dns}.execute-api.{region}.vpce.amazonaws.com      endpoint-specific VPC endpoint DNS
_EXECUTE_API_HOST = re.compile(rf"[a-z0-9-]+\.execute-api\.{_REGION}\.(?:vpce\.)?{_SUFFIX}")
# {url-id}.lambda-url.{region}.on.aws                Lambda function URLs, signed as "lambda"
_LAMBDA_URL_HOST = re.compile(rf"[a-z0-9]+\.lambda-url\.{_REGION}\.on\.aws")


@lru_cache(maxsize=256)
def infer_scope(host: str, region: str | None, service: str) -> tuple[str, str]:
    """Return the ``(region, service)`` to sign a request to ``host`` with.

    An explicit region wins. A Lambda function URL implies service ``lambda`` unless the caller
    asked for another service than the default ``execute-api``.
    """
    hostname = _strip_port(host)
    lambda_url = _LAMBDA_URL_HOST.fullmatch(hostname)
    if lambda_url and service == _EXECUTE_API:
        service = LAMBDA_SERVICE
    if region is not None:
        return region, service
    match = lambda_url or _EXECUTE_API_HOST.fullmatch(hostname)
    if match is None:
        raise InvalidConfigError(
            f"cannot tell the AWS region from host {hostname!r}: it is not an "
            "execute-api or Lambda function URL hostname (a custom domain or proxy?). "
            "Pass region='<the API's region>', e.g. ApiGwIamAuth(region='us-east-1') "
            "(--region on the command line)"
        )
    return match.group("region"), service


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[: host.index("]") + 1]
    return host.partition(":")[0]
