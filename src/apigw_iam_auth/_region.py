"""The credential scope (region, service) of a request, and the payload rules of each service.

Region, in this order (:func:`infer_scope`):

1. ``region=``, checked once at construction by :func:`check_region`;
2. the region read off the host, for the hostnames AWS documents (execute-api, its VPC
   endpoint names, Lambda function URLs, AppSync, VPC Lattice, OpenSearch Service and
   Serverless);
3. the configured region (:func:`configured_region`): ``AWS_REGION`` (read by the AWS CLI v2 and
   the other SDKs; botocore itself reads only ``AWS_DEFAULT_REGION``), then botocore's region for
   the profile in use (``AWS_DEFAULT_REGION``, then the profile's ``region`` in the config file);
4. otherwise an error naming the host and the fixes.

Only hostname shapes AWS documents are read: guessing a scope for anything else (custom
domains, load balancers, a local server) yields a 403 that names neither the host nor the fix.

Nothing here is cached: the signer keeps one configuration per host, so each function runs once
per host, not per request. The only state is the bounded set of hosts already warned about.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from typing import TYPE_CHECKING, NamedTuple

from apigw_iam_auth import _botocore
from apigw_iam_auth.errors import InvalidConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "APPSYNC_SERVICE",
    "EXECUTE_API_SERVICE",
    "LAMBDA_SERVICE",
    "OPENSEARCH_SERVERLESS_SERVICE",
    "OPENSEARCH_SERVICE",
    "VPC_LATTICE_SERVICE",
    "ServiceDefaults",
    "check_region",
    "configured_region",
    "infer_scope",
    "names_scope",
    "partition_of",
    "region_names",
    "service_defaults",
]

_log = logging.getLogger("apigw_iam_auth")

# Signing names (the service of the credential scope), as botocore's service models and the
# services' SigV4 guides spell them.
EXECUTE_API_SERVICE = "execute-api"
LAMBDA_SERVICE = "lambda"
APPSYNC_SERVICE = "appsync"
VPC_LATTICE_SERVICE = "vpc-lattice-svcs"
OPENSEARCH_SERVICE = "es"
OPENSEARCH_SERVERLESS_SERVICE = "aoss"


class ServiceDefaults(NamedTuple):
    """How a service wants the payload signed."""

    unsigned_payload: bool
    """Sign the literal ``UNSIGNED-PAYLOAD`` instead of the body's SHA-256."""
    content_sha256_header: bool
    """Send (and sign) ``x-amz-content-sha256`` with the payload hash used."""


_BODY_HASH = ServiceDefaults(unsigned_payload=False, content_sha256_header=False)
_SERVICE_DEFAULTS = {
    # "VPC Lattice does not support payload signing. You must send an x-amz-content-sha256
    # header with the value set to UNSIGNED-PAYLOAD"
    # (docs.aws.amazon.com/vpc-lattice/latest/ug/sigv4-authenticated-requests.html).
    VPC_LATTICE_SERVICE: ServiceDefaults(unsigned_payload=True, content_sha256_header=True),
    # OpenSearch Serverless requires x-amz-content-sha256 with the body's real hash
    # (opensearch-project/opensearch-java#339: "a required header for Amazon OpenSearch
    # Serverless"); the OpenSearch clients send it to managed domains ("es") as well
    # (opensearch-py opensearchpy/helpers/signer.py, for either service).
    OPENSEARCH_SERVICE: ServiceDefaults(unsigned_payload=False, content_sha256_header=True),
    OPENSEARCH_SERVERLESS_SERVICE: ServiceDefaults(
        unsigned_payload=False, content_sha256_header=True
    ),
}

# DNS suffixes of the partitions (botocore data/endpoints.json "dnsSuffix"; a test checks this
# list against botocore's data, so a new partition fails the suite instead of going unread).
_SUFFIX = (
    r"(?:amazonaws\.com(?:\.cn)?|amazonaws\.eu|c2s\.ic\.gov|sc2s\.sgov\.gov"
    r"|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)"
)
# A region inside a hostname: us-east-1, us-gov-west-1, cn-north-1, us-isob-east-1,
# eusc-de-east-1. Loose on purpose: it sits between fixed labels, and botocore's patterns check
# names given by the user, not names AWS itself put in DNS.
_REGION = r"(?P<region>[a-z]{2,4}(?:-[a-z]+)+-\d+)"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"

# Each documented hostname shape and the service its requests are signed for.
_HOST_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # API Gateway (developerguide how-to-call-api.html and
    # apigateway-private-api-test-invoke-url.html):
    #   {api-id}.execute-api.{region}.amazonaws.com            public, private DNS
    #   {api-id}-{vpce-id}.execute-api.{region}.amazonaws.com  Route 53 alias of a private API
    #   {vpce-dns}.execute-api.{region}.vpce.amazonaws.com     endpoint-specific VPCE name
    (
        re.compile(rf"{_LABEL}\.execute-api\.{_REGION}\.(?:vpce\.)?{_SUFFIX}"),
        EXECUTE_API_SERVICE,
    ),
    # Lambda function URLs: https://{url-id}.lambda-url.{region}.on.aws
    # (docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html), signed as "lambda".
    (re.compile(rf"{_LABEL}\.lambda-url\.{_REGION}\.on\.aws"), LAMBDA_SERVICE),
    # AppSync GraphQL and Events APIs: {id}.appsync-api.{region}.amazonaws.com and the
    # real-time endpoint {id}.appsync-realtime-api.{region}.amazonaws.com
    # (docs.aws.amazon.com/appsync/latest/devguide/real-time-websocket-client.html).
    (
        re.compile(rf"{_LABEL}\.appsync-(?:realtime-)?api\.{_REGION}\.{_SUFFIX}"),
        APPSYNC_SERVICE,
    ),
    # VPC Lattice services: {service_name}-{service_id}.{partition_id}.vpc-lattice-svcs.
    # {region}.on.aws (docs.aws.amazon.com/vpc-lattice/latest/ug/service-custom-domain-name.html).
    (
        re.compile(rf"(?:{_LABEL}\.)+vpc-lattice-svcs\.{_REGION}\.on\.aws"),
        VPC_LATTICE_SERVICE,
    ),
    # OpenSearch Service domains: {domain-id}.{region}.es.amazonaws.com, where the domain id is
    # search-{name}-{hash} (public) or vpc-{name}-{hash} (VPC access), per the developer guide
    # page managedomains-signing-service-requests.html; and the dual-stack "endpoint v2"
    # {domain-id}.aos.{region}.on.aws (the console's "Domain endpoint v2 (dual stack)";
    # aws/aws-cdk#30480, santthosh/aws-es-kibana#73).
    (re.compile(rf"{_LABEL}\.{_REGION}\.es\.{_SUFFIX}"), OPENSEARCH_SERVICE),
    (re.compile(rf"{_LABEL}\.aos\.{_REGION}\.on\.aws"), OPENSEARCH_SERVICE),
    # OpenSearch Serverless collections: classic {collection-id}.{region}.aoss.amazonaws.com
    # and its FIPS variant {collection-id}.{region}.aoss-fips.amazonaws.com
    # (fips-compliance-opensearch-serverless.html), NextGen {collection-id}.aoss.{region}.on.aws
    # and per-account {account-id}.aoss.{region}.on.aws
    # (opensearch-service/latest/developerguide/serverless-collection-endpoints.html).
    (
        re.compile(rf"{_LABEL}\.{_REGION}\.aoss(?:-fips)?\.{_SUFFIX}"),
        OPENSEARCH_SERVERLESS_SERVICE,
    ),
    (re.compile(rf"{_LABEL}\.aoss\.{_REGION}\.on\.aws"), OPENSEARCH_SERVERLESS_SERVICE),
)

# Hosts already warned about, with the warning: a region contradiction, or a region set that
# leaves the host's region out. Bounded: a process talking to many hosts stays flat; when full
# it is emptied, so a host may be warned about again later. Two threads resolving one host at
# the same moment may both warn; a duplicate line is the only cost.
_MAX_WARNED_HOSTS = 256

# How alike (difflib ratio) a listed region must be to be suggested; difflib's own default.
_MIN_SIMILARITY = 0.6
_WARNED_HOSTS: set[tuple[str, str]] = set()


def region_names(text: str) -> list[str]:
    """The names of a SigV4a region set written as its header is: ``us-east-1,eu-west-1``.

    Spaces around the commas are allowed (``--region-set "us-east-1, eu-west-1"``).
    """
    return [name for name in re.split(r"[\s,]+", text) if name]


def check_region(region: str) -> str:
    """Return ``region`` unchanged if it names a region of some AWS partition, else refuse it.

    A region is accepted when a partition lists it, it matches a partition's ``regionRegex``
    (botocore's endpoints data), or it is shaped like a region name (``xx-west-1``): a region or
    partition newer than the installed botocore must not be refused, so a typo of that shape
    (``ue-west-1``) gets through to AWS. Anything else raises
    :class:`InvalidConfigError` naming the closest listed region, e.g. ``region 'us-east1' is
    not an AWS region; did you mean 'us-east-1'?``. Called when a signer is built, so a typo
    fails there rather than as a 403 later.
    """
    return _checked(region, "region")


def check_region_set_name(region: str) -> str:
    """:func:`check_region` of one name of a SigV4a region set, blamed on ``region_set``."""
    return _checked(region, "region_set name")


def mistyped_region(region: str) -> bool:
    """Whether ``region`` is no region but close to a listed one (``us-east1``, ``us-east-1a``).

    False for a region :func:`check_region` accepts, and for a name like no region at all
    (``local``): botocore signs for any name, so a verifier may stand in for such a scope.
    """
    try:
        check_region(region)
    except InvalidConfigError:
        return _closest(region, _botocore.region_data().names) is not None
    return False


def configured_region(profile: str | None, session: object = None) -> str | None:
    """The region configured outside the code, as the AWS CLI v2 resolves it; None if none.

    ``AWS_REGION`` first (the AWS CLI v2 and the SDKs read it; botocore does not), then what
    botocore resolves for ``profile`` (None: ``AWS_PROFILE`` or ``default``):
    ``AWS_DEFAULT_REGION``, then the profile's ``region`` in the config file. A botocore or
    boto3 ``session`` given as credentials is asked first: the region its own clients use
    (which botocore does not take from ``AWS_REGION``), then ``AWS_REGION``. Empty values
    count as unset. The region found is checked like :func:`check_region`, the message naming
    where it came from. A missing profile or an unparsable config or credentials file raises
    :class:`InvalidConfigError` (see :mod:`apigw_iam_auth._botocore`). Reads the files on every
    call; the signer calls it at most once per host, and only when the host says no region.
    """
    region = os.environ.get("AWS_REGION")
    from_env = (region, "AWS_REGION") if region else None
    if session is None:
        found = from_env or _botocore.profile_region(profile)
    else:
        found = _botocore.profile_region(None, session) or from_env
    return None if found is None else _checked(*found)


def service_defaults(service: str) -> ServiceDefaults:
    """How ``service`` wants its payload signed.

    ``vpc-lattice-svcs``: ``UNSIGNED-PAYLOAD`` with the ``x-amz-content-sha256`` header (the
    only form VPC Lattice accepts). ``es`` and ``aoss``: the body's SHA-256, sent in
    ``x-amz-content-sha256`` too. Every other service (``execute-api``, ``lambda``,
    ``appsync``...): the body's SHA-256, no extra header.
    """
    return _SERVICE_DEFAULTS.get(service, _BODY_HASH)


def infer_scope(
    host: str,
    region: str | None,
    service: str | None,
    fallback_region: Callable[[], str | None],
    region_set: tuple[str, ...] | None = None,
) -> tuple[str, str]:
    """Return the ``(region, service)`` to sign a request to ``host`` with.

    ``host`` is a Host header value (it may carry ``:port``, may be a bracketed IPv6 address;
    letter case and a final dot are ignored). ``region`` is the caller's (already checked by
    :func:`check_region`) or None; ``service`` likewise.

    Region: the caller's; else the one in a documented AWS hostname; else ``fallback_region()``
    (called only then, typically ``lambda: configured_region(profile)``); else
    :class:`InvalidConfigError` naming the host and the fixes. A caller's region that contradicts
    the host's is still used, and logged at WARNING on the ``apigw_iam_auth`` logger once per
    host, naming both. With a SigV4a ``region_set``, whose scope names no region, ``region``
    plays no part; a set that leaves out the host's region is logged the same way instead.

    Service: the caller's; else the host's (``lambda`` for a function URL, ``appsync``,
    ``vpc-lattice-svcs``, ``es``, ``aoss``); else ``execute-api``. The caller's
    ``execute-api`` counts as the default on the hosts of another service, where it cannot
    be right (a function URL signed for execute-api is always refused).
    """
    hostname = _hostname(host)
    host_region, host_service = _read_host(hostname)
    if service is None or (service == EXECUTE_API_SERVICE and host_service is not None):
        service = host_service or EXECUTE_API_SERVICE
    if region_set is not None:
        region = None
        if host_region is not None and not {"*", host_region} & set(region_set):
            _warn_once(
                hostname,
                "region_set=%r leaves out %r, the region of host %r: AWS refuses the "
                "signature there, so expect a 403; add %r to region_set= (or pass "
                "region_set='*')",
                ",".join(region_set),
                host_region,
                hostname,
                host_region,
            )
    if region is not None:
        if host_region is not None and host_region != region:
            _warn_once(
                hostname,
                "region=%r contradicts host %r, which is in region %r; signing with %r as "
                "asked. AWS checks the scope against the host's region, so expect a 403: drop "
                "region= to use the host's",
                region,
                hostname,
                host_region,
                region,
            )
        return region, service
    if host_region is not None:
        return host_region, service
    configured = fallback_region()
    if configured:
        return configured, service
    hidden = ""
    if os.environ.get("AWS_DEFAULT_REGION") == "":  # botocore's answer: the profile is not read
        hidden = "; AWS_DEFAULT_REGION is set but empty, which hides the profile's (unset it)"
    raise InvalidConfigError(
        f"cannot tell the AWS region for host {hostname!r}: it is not an execute-api, Lambda "
        "function URL, AppSync, VPC Lattice or OpenSearch hostname (a custom domain or "
        "proxy?), and no region is configured (AWS_REGION, AWS_DEFAULT_REGION, or `region` "
        "in the profile's section of the AWS config file, ~/.aws/config or AWS_CONFIG_FILE"
        f"{hidden}). Pass region='<the API's region>' (and service='<its service>': lambda, "
        "appsync, vpc-lattice-svcs, es or aoss, where the domain is not API Gateway's), or set "
        "AWS_REGION"
    )


def partition_of(region: str) -> str:
    """The partition whose ARNs name ``region``: ``aws``, ``aws-cn``, ``aws-us-gov``...

    ``aws`` where no partition of botocore's data names it (a newer region, or ``*``).
    """
    return _partition_naming(region) or "aws"


def _partition_naming(region: str) -> str | None:
    r"""The partition that lists ``region``, else the first whose ``regionRegex`` matches it.

    A name matched by a pattern only must also be shaped like a region (lowercase): the
    patterns' ``\w`` takes ``us-East-1`` and ``us-east_x-1``, which no scope may hold.
    """
    partitions = _botocore.region_data().partitions
    for name, _, listed in partitions:
        if region in listed:
            return name
    if not _REGION_SHAPE.fullmatch(region):
        return None
    for name, pattern, _ in partitions:
        if pattern is not None and pattern.fullmatch(region):
            return name
    return None


def _checked(region: str, source: str) -> str:
    if _REGION_SHAPE.fullmatch(region):
        # Every region is shaped so, and so is a name the installed botocore does not know yet
        # (a region or partition newer than it, e.g. mx-central-1 under botocore 1.34):
        # accepted, as AWS may know it. Tested first, so that a good name costs no load of
        # botocore's data (~100 ms: its import and a JSON parse that holds the GIL, which an
        # async client's first request, reading AWS_REGION in a worker thread, would feel).
        return region
    if _partition_naming(region) is not None:
        return region
    closest = _closest(region, _botocore.region_data().names)
    if closest is None:
        hint = "; AWS region names look like 'us-east-1', 'eu-west-1' or 'cn-north-1'"
    else:
        hint = f"; did you mean {closest!r}?"
    raise InvalidConfigError(f"{source} {region!r} is not an AWS region{hint}")


# Every AWS region name: a 2-4 letter area, one or more words, a number ("us-gov-west-1",
# "eusc-de-east-1"). Typos such as "us-east1" or "US-EAST-1" do not have this shape.
_REGION_SHAPE = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-[0-9]{1,2}", re.ASCII)


def _closest(region: str, names: tuple[str, ...]) -> str | None:
    """The listed region most like ``region`` (difflib's ratio), if any is alike enough."""
    matcher = difflib.SequenceMatcher(b=region.strip().lower())
    closest, best = None, _MIN_SIMILARITY
    for name in names:  # sorted, so of equally close names the first wins: eu-west-1, not -3
        matcher.set_seq1(name)
        ratio = matcher.ratio()
        if ratio > best:
            closest, best = name, ratio
    return closest


def names_scope(host: str) -> bool:
    """Whether ``host`` (a Host header value) is a hostname AWS documents, naming its region."""
    return _read_host(_hostname(host)) != (None, None)


def _hostname(host: str) -> str:
    """``host`` without its port and final dot, in lower case (DNS ignores case)."""
    if host.startswith("["):  # an IPv6 literal: no AWS hostname, kept for the message
        end = host.find("]")
        return host if end == -1 else host[: end + 1]
    if host.count(":") > 1:  # an IPv6 literal without brackets (not valid HTTP): kept whole
        return host.lower()
    return host.partition(":")[0].rstrip(".").lower()


def _read_host(hostname: str) -> tuple[str | None, str | None]:
    for pattern, service in _HOST_SHAPES:
        match = pattern.fullmatch(hostname)
        if match is not None:
            return match.group("region"), service
    return None, None


def _warn_once(hostname: str, message: str, *args: str) -> None:
    """Log ``message`` at WARNING, the first time it is said of ``hostname``."""
    key = (hostname, message)
    if key in _WARNED_HOSTS:
        return
    if len(_WARNED_HOSTS) >= _MAX_WARNED_HOSTS:
        _WARNED_HOSTS.clear()
    _WARNED_HOSTS.add(key)
    _log.warning(message, *args)
