"""IAM-authenticated endpoints beyond execute-api, each signature recomputed by botocore.

AppSync, VPC Lattice, OpenSearch (managed and serverless) and Lambda function URLs: the signer
reads service and region off the host and picks the payload rule the service wants; botocore's
own ``SigV4Auth``, given the request as sent, must compute the very same signature.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from apigw_iam_auth import ApiGwIamAuth, InvalidConfigError, SignatureLocation, SigV4Signer
from apigw_iam_auth._models import SignableRequest

KEY, SECRET, TOKEN = "AKIDSERVICES", "services/secret+EXAMPLE", "services-token"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
BODY = b'{"query":"{ listPets { id } }"}'

# host, the service and region botocore must be told, whether the payload is unsigned, and
# whether x-amz-content-sha256 is sent (hosts from the services' documentation, see _region.py).
SERVICES = [
    pytest.param(
        "abcdefghij.appsync-api.eu-west-1.amazonaws.com",
        "appsync",
        "eu-west-1",
        False,
        False,
        id="appsync",
    ),
    pytest.param(
        "svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-west-2.on.aws",
        "vpc-lattice-svcs",
        "us-west-2",
        True,
        True,
        id="vpc-lattice",
    ),
    pytest.param(
        "search-pets-abcdefghijklmnop.ap-south-1.es.amazonaws.com",
        "es",
        "ap-south-1",
        False,
        True,
        id="opensearch",
    ),
    pytest.param(
        "abc123xyz.us-east-2.aoss.amazonaws.com",
        "aoss",
        "us-east-2",
        False,
        True,
        id="opensearch-serverless",
    ),
    pytest.param(
        "abcdefghijklmnopqrstuvwxyz012345.lambda-url.ca-central-1.on.aws",
        "lambda",
        "ca-central-1",
        False,
        False,
        id="lambda-url",
    ),
]


def botocore_signature(method, url, headers, body, service, region, *, unsigned):
    """The signature botocore's SigV4Auth computes for the request exactly as it is sent."""
    request = AWSRequest(method=method, url=url, data=body)
    for name, value in headers.items():
        if name.lower() != "authorization":
            request.headers[name] = value
    request.context["timestamp"] = headers["X-Amz-Date"]
    request.context["payload_signing_enabled"] = not unsigned
    auth = botocore.auth.SigV4Auth(BotoCredentials(KEY, SECRET, TOKEN), service, region)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


@pytest.mark.parametrize(("host", "service", "region", "unsigned", "sha_header"), SERVICES)
def test_service_and_region_are_read_off_the_host_and_botocore_agrees(
    host, service, region, unsigned, sha_header
):
    """No region= or service=: the host decides both, and botocore computes our signature."""
    signer = SigV4Signer(credentials=(KEY, SECRET, TOKEN))
    url = f"https://{host}/graphql?limit=2"
    signed = signer.sign(
        "POST", url, headers={"Content-Type": "application/json"}, body=BODY, timestamp=WHEN
    )
    assert f"/{region}/{service}/aws4_request" in signed.headers["Authorization"]
    assert ("X-Amz-Content-SHA256" in signed.headers) is sha_header
    if unsigned:
        assert signed.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    expected = botocore_signature(
        "POST", signed.url, signed.headers, BODY, service, region, unsigned=unsigned
    )
    assert signed.headers["Authorization"].endswith(f"Signature={expected}")


def test_payload_choice_overrides_the_service_default():
    """payload='signed' on Lattice signs the hash; 'unsigned' signs UNSIGNED-PAYLOAD anywhere."""
    lattice = "https://svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-west-2.on.aws/x"
    signed = SigV4Signer(credentials=(KEY, SECRET), payload="signed").sign(
        "POST", lattice, body=BODY, timestamp=WHEN
    )
    assert signed.headers["X-Amz-Content-SHA256"] != "UNSIGNED-PAYLOAD"
    custom = SigV4Signer(
        "eu-west-1", service="appsync", credentials=(KEY, SECRET), payload="unsigned"
    )
    signed = custom.sign("POST", "https://api.example.com/graphql", body=BODY, timestamp=WHEN)
    assert signed.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert signed.signing is not None
    assert signed.signing.canonical_request.endswith("\nUNSIGNED-PAYLOAD")


LATTICE = "https://svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-west-2.on.aws/x"


@pytest.mark.parametrize(
    ("url", "payload"),
    [(LATTICE, None), ("https://abc.execute-api.us-east-1.amazonaws.com/p", "unsigned")],
)
def test_unsigned_payload_is_not_presigned_into_a_link_no_service_can_verify(url, payload):
    """UNSIGNED-PAYLOAD is declared only in a header: a link signing it would never verify.

    aws-c-auth signs that header in query mode for VPC Lattice, so the link's user must send it
    too; no shareable link can, so presigning is refused, saying what works instead.
    """
    signer = SigV4Signer(credentials=(KEY, SECRET), payload=payload)
    with pytest.raises(InvalidConfigError, match=r"sign with headers instead \(presign=False;"):
        signer.presign("GET", url, timestamp=WHEN)
    if payload is None:  # the service's rule, known from the host: refused per request
        auth = ApiGwIamAuth(credentials=(KEY, SECRET), presign=True)
        with pytest.raises(InvalidConfigError, match="UNSIGNED-PAYLOAD"):
            requests.Request("GET", url, auth=auth).prepare()
    else:  # chosen for every request: refused where the auth object is built
        with pytest.raises(InvalidConfigError, match="presign=True cannot sign payload='unsigned'"):
            ApiGwIamAuth(credentials=(KEY, SECRET), payload=payload, presign=True)
    host = urlsplit(url).hostname
    given = SignableRequest("GET", "/x", (), (("Host", host),), "UNSIGNED-PAYLOAD")
    with pytest.raises(InvalidConfigError, match="UNSIGNED-PAYLOAD"):
        SigV4Signer(credentials=(KEY, SECRET)).sign_request(
            given, location=SignatureLocation.QUERY, timestamp=WHEN
        )


def test_auth_object_takes_the_same_payload_choice():
    """ApiGwIamAuth passes payload= to its signer (a bad value fails at construction)."""
    auth = ApiGwIamAuth(credentials=(KEY, SECRET), payload="unsigned")
    signed = auth.signer.sign("GET", "https://abc.execute-api.us-east-1.amazonaws.com/p")
    assert signed.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    with pytest.raises(ValueError, match="payload must be"):
        ApiGwIamAuth(payload="maybe")  # type: ignore[arg-type]
