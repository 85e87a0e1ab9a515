"""Region and service inference from AWS hostnames."""

import pytest

from apigw_iam_auth import InvalidConfigError, SigV4Signer
from apigw_iam_auth._region import infer_scope


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("abc123.execute-api.ap-northeast-1.amazonaws.com", ("ap-northeast-1", "execute-api")),
        ("abc123.execute-api.us-gov-west-1.amazonaws.com", ("us-gov-west-1", "execute-api")),
        ("abc123.execute-api.cn-north-1.amazonaws.com.cn", ("cn-north-1", "execute-api")),
        (
            "abc123-vpce-0123456789abcdef0.execute-api.eu-west-1.amazonaws.com",
            ("eu-west-1", "execute-api"),
        ),
        (
            "vpce-01234567abcdef012-01234567.execute-api.us-east-2.vpce.amazonaws.com",
            ("us-east-2", "execute-api"),
        ),
        ("abc123.execute-api.eu-central-1.amazonaws.com:8443", ("eu-central-1", "execute-api")),
        ("xyz0123456789.lambda-url.sa-east-1.on.aws", ("sa-east-1", "lambda")),
    ],
)
def test_infers_scope_from_documented_hostnames(host, expected):
    """Every documented execute-api and Lambda URL host shape yields its region and service."""
    assert infer_scope(host, None, "execute-api") == expected


def test_explicit_region_wins_over_hostname():
    """A region passed by the caller is used even when the host names another."""
    host = "abc.execute-api.us-east-1.amazonaws.com"
    assert infer_scope(host, "eu-west-1", "execute-api") == ("eu-west-1", "execute-api")


def test_lambda_url_keeps_an_explicitly_chosen_service():
    """Only the default service is swapped for lambda on function URL hosts."""
    assert infer_scope("x1.lambda-url.us-east-1.on.aws", None, "vpc-lattice") == (
        "us-east-1",
        "vpc-lattice",
    )


@pytest.mark.parametrize(
    "host", ["api.example.com", "127.0.0.1:8080", "[::1]:8080", "execute-api.amazonaws.com"]
)
def test_custom_domain_without_region_names_host_and_fix(host):
    """A host without a readable region fails with the host and the region= fix in the message."""
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    with pytest.raises(InvalidConfigError) as info:
        signer.sign("GET", f"https://{host}/prod")
    message = str(info.value)
    assert "region=" in message
    assert host.split(":")[0].strip("[]") in message or host in message


def test_signing_uses_inferred_region_in_scope():
    """The Authorization credential scope carries the region read off the URL."""
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    signed = signer.sign("GET", "https://a1.execute-api.ap-south-2.amazonaws.com/prod/x")
    assert "/ap-south-2/execute-api/aws4_request" in signed.headers["Authorization"]
