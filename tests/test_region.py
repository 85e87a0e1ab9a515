"""Region and service: read off AWS hostnames, checked against botocore, configured outside."""

import asyncio
import importlib
import logging
import subprocess
import sys
import threading
import traceback
from datetime import timedelta
from typing import Any

import aiohttp
import botocore.credentials
import botocore.loaders
import botocore.session
import httpx
import pytest
import requests
from aws_server import ACCESS_KEY, SECRET_KEY, running_server
from integration_cases import NEEDS_HTTPX2

from apigw_iam_auth import ApiGwIamAuth, InvalidConfigError, SignableRequest, SigV4Signer, _region
from apigw_iam_auth import signer as signer_module
from apigw_iam_auth._region import (
    ServiceDefaults,
    check_region,
    configured_region,
    infer_scope,
    service_defaults,
)
from apigw_iam_auth._sigv4 import EMPTY_SHA256
from apigw_iam_auth.credentials import BotocoreProvider, reset_shared_providers, shared_provider
from apigw_iam_auth.server import IamAuthServer, KnownKey

_AWS_ENV = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@pytest.fixture(autouse=True)
def isolated_aws(tmp_path, monkeypatch):
    """No AWS variable of the machine running the tests, its ~/.aws, or earlier warnings."""
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setattr(_region, "_WARNED_HOSTS", set())


def write_config(tmp_path, text, name="config"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def no_fallback():
    raise AssertionError("fallback_region() was called although the region was known")


def botocore_partitions():
    return botocore.loaders.create_loader().load_data("endpoints")["partitions"]


# --- reading the host -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        # API Gateway: public, private DNS, Route 53 alias, endpoint-specific VPCE names.
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
        (
            "vpce-01234567abcdef012-01234567.execute-api.cn-northwest-1.vpce.amazonaws.com.cn",
            ("cn-northwest-1", "execute-api"),
        ),
        ("abc123.execute-api.eu-central-1.amazonaws.com:8443", ("eu-central-1", "execute-api")),
        ("ABC123.Execute-Api.US-EAST-1.AmazonAWS.com", ("us-east-1", "execute-api")),
        ("abc123.execute-api.us-east-1.amazonaws.com.", ("us-east-1", "execute-api")),
        ("abc123.execute-api.eusc-de-east-1.amazonaws.eu", ("eusc-de-east-1", "execute-api")),
        ("abc123.execute-api.us-isob-east-1.sc2s.sgov.gov", ("us-isob-east-1", "execute-api")),
        # Lambda function URLs.
        ("xyz0123456789.lambda-url.sa-east-1.on.aws", ("sa-east-1", "lambda")),
        ("XYZ0123456789.LAMBDA-URL.EU-WEST-2.ON.AWS:443", ("eu-west-2", "lambda")),
        # AppSync GraphQL / Events and real-time endpoints.
        ("abcdefghij1234567890.appsync-api.us-west-2.amazonaws.com", ("us-west-2", "appsync")),
        (
            "abcdefghij1234567890.appsync-realtime-api.eu-west-1.amazonaws.com:443",
            ("eu-west-1", "appsync"),
        ),
        ("abcdefghij1234567890.appsync-api.cn-north-1.amazonaws.com.cn", ("cn-north-1", "appsync")),
        # VPC Lattice generated service names.
        (
            "my-svc-0123456789abcdef0.7d67968.vpc-lattice-svcs.us-west-2.on.aws",
            ("us-west-2", "vpc-lattice-svcs"),
        ),
        (
            "data-svc-022f67d3a42.1234abc.vpc-lattice-svcs.us-gov-east-1.on.aws:8443",
            ("us-gov-east-1", "vpc-lattice-svcs"),
        ),
        # OpenSearch Service domains: public, VPC, dual-stack, China, GovCloud.
        ("search-movies-abc123def456.us-east-1.es.amazonaws.com", ("us-east-1", "es")),
        ("vpc-movies-abc123def456.eu-central-1.es.amazonaws.com:443", ("eu-central-1", "es")),
        ("search-movies-abc123def456.aos.ap-south-1.on.aws", ("ap-south-1", "es")),
        ("search-movies-abc123.cn-northwest-1.es.amazonaws.com.cn", ("cn-northwest-1", "es")),
        ("vpc-movies-abc123.us-gov-west-1.es.amazonaws.com", ("us-gov-west-1", "es")),
        # OpenSearch Serverless: classic, NextGen per collection, NextGen per account.
        ("1tg2xudton46knx2a95g.us-east-1.aoss.amazonaws.com", ("us-east-1", "aoss")),
        ("1tg2xudton46knx2a95g.us-east-1.aoss-fips.amazonaws.com", ("us-east-1", "aoss")),
        ("1tg2xudton46knx2a95g.aoss.us-east-1.on.aws", ("us-east-1", "aoss")),
        ("123456789012.aoss.eu-west-3.on.aws:443", ("eu-west-3", "aoss")),
        ("1TG2XUDTON46KNX2A95G.US-GOV-WEST-1.AOSS.AMAZONAWS.COM", ("us-gov-west-1", "aoss")),
    ],
)
def test_infers_scope_from_documented_hostnames(host, expected):
    """Every documented host shape yields its region and service, without the fallback."""
    assert infer_scope(host, None, None, no_fallback) == expected


@pytest.mark.parametrize(
    ("shape", "service"),
    [
        ("abc123.execute-api.{region}.{suffix}", "execute-api"),
        ("vpce-0123456789abcdef0-abcd.execute-api.{region}.vpce.{suffix}", "execute-api"),
        ("abcdefghij.appsync-api.{region}.{suffix}", "appsync"),
        ("search-d-abc.{region}.es.{suffix}", "es"),
        ("collection1.{region}.aoss.{suffix}", "aoss"),
        ("collection1.{region}.aoss-fips.{suffix}", "aoss"),
        ("urlid.lambda-url.{region}.on.aws", "lambda"),
        ("svc-0123.abc.vpc-lattice-svcs.{region}.on.aws", "vpc-lattice-svcs"),
        ("search-d-abc.aos.{region}.on.aws", "es"),
        ("collection1.aoss.{region}.on.aws", "aoss"),
    ],
)
def test_every_botocore_partition_and_region_is_read_off_hosts(shape, service):
    """Each region botocore lists, under its partition's DNS suffix, is read in every shape."""
    unread = []
    for partition in botocore_partitions():
        for region in partition["regions"]:
            host = shape.format(region=region, suffix=partition["dnsSuffix"])
            if infer_scope(host, None, None, no_fallback) != (region, service):
                unread.append(host)
    assert unread == []


def test_old_default_service_is_swapped_on_lambda_urls():
    """execute-api (the old default) on a function URL host is signed as lambda."""
    host = "xyz0123456789.lambda-url.sa-east-1.on.aws"
    assert infer_scope(host, None, "execute-api", no_fallback) == ("sa-east-1", "lambda")


@pytest.mark.parametrize(
    "host",
    [
        "abcdefghij.appsync-api.us-west-2.amazonaws.com",
        "svc-0123.abc.vpc-lattice-svcs.us-west-2.on.aws",
        "search-d-abc.us-west-2.es.amazonaws.com",
        "c1.us-west-2.aoss.amazonaws.com",
    ],
)
def test_execute_api_counts_as_the_default_on_other_services_hosts(host):
    """execute-api is never right on another service's host, so the host's service is used."""
    region, service = infer_scope(host, None, "execute-api", no_fallback)
    assert (region, service) == ("us-west-2", infer_scope(host, None, None, no_fallback)[1])
    assert service != "execute-api"


def test_lambda_url_keeps_an_explicitly_chosen_service():
    """A service the caller chose (other than the default) is kept on function URL hosts."""
    assert infer_scope("x1.lambda-url.us-east-1.on.aws", None, "vpc-lattice", no_fallback) == (
        "us-east-1",
        "vpc-lattice",
    )


def test_explicit_service_wins_over_the_hosts_service():
    """A caller's service other than execute-api is never replaced by the host's."""
    host = "1tg2xudton46knx2a95g.us-east-1.aoss.amazonaws.com"
    assert infer_scope(host, None, "es", no_fallback) == ("us-east-1", "es")


def test_unknown_host_without_service_is_signed_for_execute_api():
    """With no service given and none readable off the host, the service is execute-api."""
    assert infer_scope("api.example.com", "eu-west-1", None, no_fallback) == (
        "eu-west-1",
        "execute-api",
    )


# --- region order ------------------------------------------------------------------------------


def test_explicit_region_wins_over_hostname():
    """A region passed by the caller is used even when the host names another."""
    host = "abc.execute-api.us-east-1.amazonaws.com"
    assert infer_scope(host, "eu-west-1", None, no_fallback) == ("eu-west-1", "execute-api")


def test_fallback_is_called_only_for_hosts_without_a_region():
    """fallback_region() runs once for a custom domain, never when a region is known."""
    calls = []

    def fallback():
        calls.append(1)
        return "eu-north-1"

    assert infer_scope("api.example.com", "us-east-1", None, fallback) == (
        "us-east-1",
        "execute-api",
    )
    assert infer_scope("a.execute-api.us-east-2.amazonaws.com", None, None, fallback)[0] == (
        "us-east-2"
    )
    assert calls == []
    assert infer_scope("api.example.com:8443", None, None, fallback) == (
        "eu-north-1",
        "execute-api",
    )
    assert calls == [1]


@pytest.mark.parametrize(
    ("host", "named"),
    [
        ("api.example.com", "api.example.com"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "[::1]"),
        ("::1", "::1"),  # unbracketed, as no client sends it: named whole, not as ''
        ("execute-api.amazonaws.com", "execute-api.amazonaws.com"),
    ],
)
def test_custom_domain_without_region_names_host_and_fixes(host, named):
    """No region anywhere fails naming the host (without its port), region= and AWS_REGION."""
    with pytest.raises(InvalidConfigError) as info:
        infer_scope(host, None, None, lambda: None)
    message = str(info.value)
    assert "region=" in message
    assert "AWS_REGION" in message
    assert "profile" in message
    assert f"cannot tell the AWS region for host {named!r}:" in message


def test_signing_scope_uses_the_region_read_off_the_url():
    """The scope of an execute-api URL carries the host's region, not a configured one."""
    assert infer_scope("a1.execute-api.ap-south-2.amazonaws.com", None, None, lambda: "x") == (
        "ap-south-2",
        "execute-api",
    )


def test_aws_region_comes_before_everything_botocore_reads(tmp_path, monkeypatch):
    """AWS_REGION beats AWS_DEFAULT_REGION and the profile's region in the config file."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert configured_region(None) == "eu-north-1"


def test_aws_default_region_comes_before_the_config_file(tmp_path, monkeypatch):
    """Without AWS_REGION, botocore's AWS_DEFAULT_REGION beats the profile's region."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    assert configured_region(None) == "eu-west-2"


def test_config_file_region_of_the_default_profile(tmp_path):
    """With no variable set, the default profile's region in the config file is used."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    assert configured_region(None) == "ap-south-1"


def test_aws_profile_picks_the_config_section(tmp_path, monkeypatch):
    """AWS_PROFILE selects which profile's region botocore reads."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n[profile dev]\nregion = ca-west-1\n")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert configured_region(None) == "ca-west-1"


def test_explicit_profile_beats_aws_profile(tmp_path, monkeypatch):
    """profile= wins over AWS_PROFILE, as botocore's Session(profile=...) does."""
    write_config(
        tmp_path, "[profile dev]\nregion = ca-west-1\n[profile ops]\nregion = il-central-1\n"
    )
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert configured_region("ops") == "il-central-1"


def test_env_region_beats_an_explicit_profile(tmp_path, monkeypatch):
    """AWS_REGION still wins when a profile is named, as in the AWS CLI."""
    write_config(tmp_path, "[profile ops]\nregion = il-central-1\n")
    monkeypatch.setenv("AWS_REGION", "us-west-1")
    assert configured_region("ops") == "us-west-1"


def test_empty_aws_region_counts_as_unset(tmp_path, monkeypatch):
    """AWS_REGION='' falls through to botocore's answer."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_REGION", "")
    assert configured_region(None) == "ap-south-1"


@pytest.mark.parametrize("config", [None, "[default]\noutput = json\n"])
def test_no_configured_region_is_none(tmp_path, config):
    """No variable and no region in the (missing or region-less) config file gives None."""
    if config is not None:
        write_config(tmp_path, config)
    assert configured_region(None) is None


def test_profile_only_in_the_credentials_file_has_no_region(tmp_path):
    """A profile botocore knows from the credentials file alone yields None, not an error."""
    write_config(
        tmp_path,
        "[ci]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = s3cr3t\n",
        "credentials",
    )
    assert configured_region("ci") is None


@pytest.mark.parametrize(("profile", "origin"), [("nope", "profile="), (None, "AWS_PROFILE")])
def test_missing_profile_is_refused_naming_it(tmp_path, monkeypatch, profile, origin):
    """A profile that does not exist raises InvalidConfigError naming it and its origin."""
    config = write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    if profile is None:
        monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(InvalidConfigError) as info:
        configured_region(profile)
    message = str(info.value)
    assert "'nope'" in message
    assert origin in message
    assert str(config) in message
    assert "region=" in message


def test_unparsable_credentials_file_is_refused_without_quoting_it(tmp_path):
    """A broken credentials file is named, and no line of it reaches the message or traceback."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    credentials = write_config(
        tmp_path, "[default]\naws_secret_access_key SECRETXYZ\n", "credentials"
    )
    with pytest.raises(InvalidConfigError) as info:
        configured_region(None)
    assert str(credentials) in str(info.value)
    rendered = "".join(traceback.format_exception(info.value))
    assert "SECRETXYZ" not in rendered
    assert "SECRETXYZ" not in repr(info.value)


@pytest.mark.parametrize(
    ("variable", "source"),
    [("AWS_REGION", "AWS_REGION"), ("AWS_DEFAULT_REGION", "AWS_DEFAULT_REGION")],
)
def test_configured_typo_is_refused_naming_its_source(monkeypatch, variable, source):
    """A misspelt region in the environment is refused, naming the variable and the fix."""
    monkeypatch.setenv(variable, "us-east1")
    with pytest.raises(InvalidConfigError, match=rf"^{source} 'us-east1' .*'us-east-1'\?$"):
        configured_region(None)


def test_config_file_typo_is_refused_naming_the_profile_and_file(tmp_path):
    """A misspelt region in the config file is refused, naming the profile and the file."""
    config = write_config(tmp_path, "[profile dev]\nregion = eu-west1\n")
    with pytest.raises(InvalidConfigError) as info:
        configured_region("dev")
    message = str(info.value)
    assert "'dev'" in message
    assert str(config) in message
    assert "did you mean 'eu-west-1'?" in message


def test_custom_domain_signs_with_the_profiles_region(tmp_path, monkeypatch):
    """A custom domain gets the profile's region through fallback_region, read afresh each call."""
    write_config(tmp_path, "[profile dev]\nregion = ca-west-1\n")

    def fallback():
        return configured_region("dev")

    assert infer_scope("api.example.com", None, None, fallback) == ("ca-west-1", "execute-api")
    monkeypatch.setenv("AWS_REGION", "sa-east-1")  # nothing was cached: the change is seen
    assert infer_scope("api.example.com", None, None, fallback) == ("sa-east-1", "execute-api")


def _scope_signed_with(credentials) -> str:
    """The region of the scope a custom domain is signed for with these credentials."""
    authorization = SigV4Signer(credentials=credentials).sign("GET", "https://api.example.com/")
    return authorization.headers["Authorization"].split("/")[2]


def test_a_session_given_as_credentials_signs_with_its_own_region(tmp_path, monkeypatch):
    """A botocore Session's keys and region go together: its profile's region, or one set on
    it, as its own clients use (botocore reads no AWS_REGION), never the default profile's (a
    403 on a custom domain). Only a session without a region takes AWS_REGION.
    """
    write_config(tmp_path, "[default]\nregion = us-east-1\n[profile eu]\nregion = eu-west-1\n")
    write_config(
        tmp_path,
        "[eu]\naws_access_key_id = AKIDEU\naws_secret_access_key = eu-secret\n"
        "[bare]\naws_access_key_id = AKIDBARE\naws_secret_access_key = bare-secret\n",
        "credentials",
    )
    keys = {"AKIDEU": KnownKey("eu-secret")}
    session = botocore.session.Session(profile="eu")
    monkeypatch.setenv("AWS_REGION", "sa-east-1")  # the session's clients would not read it
    with IamAuthServer(region="eu-west-1", keys=keys) as server:
        auth = ApiGwIamAuth(credentials=session)
        response = requests.get(f"{server.url}/prod/orders", auth=auth, timeout=10)
        assert response.status_code == 200, response.text
        assert server.requests[-1].access_key == "AKIDEU"
    assert _scope_signed_with(session) == session.get_config_variable("region") == "eu-west-1"
    session.set_config_variable("region", "ap-southeast-2")
    assert _scope_signed_with(session) == "ap-southeast-2"
    assert _scope_signed_with(botocore.session.Session(profile="bare")) == "sa-east-1"


def test_a_provider_for_a_profile_signs_with_that_profiles_region(tmp_path, monkeypatch):
    """BotocoreProvider("eu") and shared_provider("eu") sign with eu's keys, so with eu's
    region too (a custom domain names none), not the default profile's: that is a 403."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    write_config(tmp_path, "[default]\nregion = us-east-1\n[profile eu]\nregion = eu-west-1\n")
    write_config(
        tmp_path,
        "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = def-secret\n"
        "[eu]\naws_access_key_id = AKIDEU\naws_secret_access_key = eu-secret\n",
        "credentials",
    )
    reset_shared_providers()
    try:
        with IamAuthServer(region="eu-west-1", keys={"AKIDEU": KnownKey("eu-secret")}) as server:
            for provider in (BotocoreProvider("eu"), shared_provider("eu")):
                auth = ApiGwIamAuth(credentials=provider)
                response = requests.get(f"{server.url}/prod/orders", auth=auth, timeout=10)
                assert response.status_code == 200, response.text
                assert _scope_signed_with(provider) == "eu-west-1"
        assert _scope_signed_with(BotocoreProvider()) == "us-east-1"
    finally:
        reset_shared_providers()


def test_a_sessions_missing_profile_is_named_as_the_sessions(monkeypatch):
    """Its profile is the session's own: the message does not blame AWS_PROFILE or profile=."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session = botocore.session.Session(profile="nowhere")
    with pytest.raises(InvalidConfigError) as refused:
        SigV4Signer(credentials=session).sign("GET", "https://api.example.com/")
    assert str(refused.value) == (
        "cannot read the region of the Session given as credentials: its profile 'nowhere' "
        "does not exist. Fix the session, or pass region="
    )


class _Boto3LikeSession:
    """boto3.Session's public surface that the signer reads (boto3 is not a test dependency):
    ``get_credentials()`` and ``region_name``, with no ``get_config_variable``.
    """

    region_name = "ca-central-1"
    profile_name = "ops"

    def get_credentials(self):
        return botocore.credentials.Credentials("AKIDOPS", "ops-secret")


def test_a_boto3_session_given_as_credentials_signs_with_its_region_name():
    signed = SigV4Signer(credentials=_Boto3LikeSession()).sign("GET", "https://api.example.com/")
    assert "AKIDOPS/" in signed.headers["Authorization"]
    assert "/ca-central-1/execute-api/" in signed.headers["Authorization"]


def test_a_sessions_bad_region_is_refused_naming_the_session():
    session = botocore.session.Session()
    session.set_config_variable("region", "eu west 1")
    session.set_credentials("AKID", "secret")
    with pytest.raises(InvalidConfigError, match="the Session given as credentials"):
        SigV4Signer(credentials=session).sign("GET", "https://api.example.com/")


def test_host_region_beats_the_configured_region(tmp_path, monkeypatch):
    """A region in the host wins over AWS_REGION and the profile (the host cannot lie)."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_REGION", "sa-east-1")
    host = "abc.execute-api.eu-west-3.amazonaws.com"
    assert infer_scope(host, None, None, lambda: configured_region(None)) == (
        "eu-west-3",
        "execute-api",
    )


# --- region validation against botocore's data ----------------------------------------------


def test_every_region_botocore_lists_is_accepted():
    """check_region accepts, unchanged, every region of every partition in botocore's data."""
    listed = [region for partition in botocore_partitions() for region in partition["regions"]]
    assert len(listed) > 30
    assert [check_region(region) for region in listed] == listed


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("us-east1", "us-east-1"),
        ("useast1", "us-east-1"),
        ("US-EAST-1", "us-east-1"),
        (" us-east-1", "us-east-1"),
        ("us-east-1\n", "us-east-1"),
        ("eu-west-l", "eu-west-1"),
        ("ap-southeast2", "ap-southeast-2"),
        ("us-gov-west1", "us-gov-west-1"),
        ("cn-north1", "cn-north-1"),
        ("us-\u0435ast-1", "us-east-1"),  # a Cyrillic "e"
        ("us-East-1", "us-east-1"),  # partitions' regionRegex (\\w) takes capitals
        ("us-gov-West-1", "us-gov-west-1"),
        ("eu-west_x-1", "eu-west-1"),  # and "_"
    ],
)
def test_typo_is_refused_naming_the_closest_region(typo, suggestion):
    """A name no partition accepts is refused, naming the closest listed region."""
    with pytest.raises(InvalidConfigError) as info:
        check_region(typo)
    assert str(info.value) == (
        f"region {typo!r} is not an AWS region; did you mean {suggestion!r}?"
    )
    with pytest.raises(InvalidConfigError, match=r"^region_set name "):  # refused when built
        SigV4Signer(credentials=("AKIDEXAMPLE", "secret"), region_set=[typo])


@pytest.mark.parametrize("nonsense", ["", "xyz", "aws-global", "localhost"])
def test_nonsense_region_is_refused_with_examples(nonsense):
    """A name like no region at all is refused with examples instead of a far-fetched guess."""
    with pytest.raises(InvalidConfigError, match="region names look like 'us-east-1'"):
        check_region(nonsense)


@pytest.mark.parametrize(
    "region", ["us-east-9", "ap-northeast-7", "eusc-de-west-2", "us-isof-west-1"]
)
def test_unlisted_region_matching_a_partition_pattern_is_accepted(region):
    """A region newer than the installed botocore passes when its partition's pattern covers it."""
    assert check_region(region) == region


# --- contradiction warning ---------------------------------------------------------------------


def test_contradicting_region_is_warned_once_per_host(caplog):
    """An explicit region unlike the host's is used, and logged once per host, naming both."""
    host = "abc.execute-api.us-east-1.amazonaws.com"
    other = "xyz.execute-api.us-east-2.amazonaws.com"
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        for spelling in (host, host, f"{host}:443", host.upper()):
            assert infer_scope(spelling, "eu-west-1", None, no_fallback)[0] == "eu-west-1"
        assert infer_scope(other, "eu-west-1", None, no_fallback)[0] == "eu-west-1"
    records = [r for r in caplog.records if r.name == "apigw_iam_auth"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    first = records[0].getMessage()
    assert "'eu-west-1'" in first
    assert "'us-east-1'" in first
    assert host in first
    assert other in records[1].getMessage()


def test_agreeing_or_unreadable_host_is_not_warned(caplog):
    """No warning when the explicit region matches the host's, or the host names none."""
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        infer_scope("abc.execute-api.eu-west-1.amazonaws.com", "eu-west-1", None, no_fallback)
        infer_scope("api.example.com", "eu-west-1", None, no_fallback)
    assert caplog.records == []


def test_warned_hosts_stay_bounded():
    """The set of warned hosts never grows past its bound, however many hosts are seen."""
    for number in range(3 * _region._MAX_WARNED_HOSTS):
        infer_scope(
            f"a{number}.execute-api.us-east-1.amazonaws.com", "eu-west-1", None, no_fallback
        )
        assert len(_region._WARNED_HOSTS) <= _region._MAX_WARNED_HOSTS


# --- payload defaults per service --------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        ("vpc-lattice-svcs", ServiceDefaults(unsigned_payload=True, content_sha256_header=True)),
        ("es", ServiceDefaults(unsigned_payload=False, content_sha256_header=True)),
        ("aoss", ServiceDefaults(unsigned_payload=False, content_sha256_header=True)),
        ("execute-api", ServiceDefaults(unsigned_payload=False, content_sha256_header=False)),
        ("lambda", ServiceDefaults(unsigned_payload=False, content_sha256_header=False)),
        ("appsync", ServiceDefaults(unsigned_payload=False, content_sha256_header=False)),
        ("my-own-service", ServiceDefaults(unsigned_payload=False, content_sha256_header=False)),
    ],
)
def test_service_defaults(service, expected):
    """Lattice signs UNSIGNED-PAYLOAD with the header; OpenSearch sends the hash header."""
    assert service_defaults(service) == expected


def test_lattice_host_gets_the_unsigned_payload_rule():
    """A VPC Lattice URL, with no service given, ends in UNSIGNED-PAYLOAD plus the header."""
    _, service = infer_scope(
        "svc-0123.abc.vpc-lattice-svcs.us-west-2.on.aws", None, None, no_fallback
    )
    assert service_defaults(service) == (True, True)


def test_a_region_of_the_usual_shape_loads_no_botocore_data():
    """A region given, or read from ``AWS_REGION``, is checked without loading botocore or its
    endpoints data: that took ~120 ms when a signer was built, or at the first request (on an
    async client, in a worker thread, with a JSON parse that holds the GIL meanwhile). Only a
    name of another shape is looked up (to be accepted, or refused naming the closest).
    """
    code = (
        "import os, sys\n"
        "from apigw_iam_auth import ApiGwIamAuth, SigV4Signer\n"
        "ApiGwIamAuth(region='eu-west-1', credentials=('AKIDEXAMPLE', 'secret'))\n"
        "os.environ['AWS_REGION'] = 'ap-northeast-1'\n"
        "signer = SigV4Signer(credentials=('AKIDEXAMPLE', 'secret'))\n"
        "signed = signer.sign('GET', 'http://127.0.0.1:8080/prod')\n"
        "assert '/ap-northeast-1/' in signed.headers['Authorization']\n"
        "assert 'botocore' not in sys.modules, 'botocore imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603 - our own interpreter


def test_a_well_formed_region_unknown_to_botocore_is_accepted():
    """A region newer than the installed botocore (its shape is a region's) is not refused."""
    assert check_region("zz-central-7") == "zz-central-7"
    assert check_region("eusc-de-west-2") == "eusc-de-west-2"
    with pytest.raises(InvalidConfigError, match="did you mean 'us-east-1'"):
        check_region("us-east1")


# --- the configured region in the signer: read once, and off the event loop ------------------


def watch_configured_region(monkeypatch):
    """Record the thread of each read of the configured region; each read still reads the files."""
    reads: list[int] = []
    read = signer_module.configured_region

    def watched(profile, session=None):
        reads.append(threading.get_ident())
        return read(profile, session)

    monkeypatch.setattr(signer_module, "configured_region", watched)
    return reads


def test_signer_reads_the_configured_region_once_for_every_host(tmp_path, monkeypatch):
    """Custom domains share one read of the config files; the region read is the one signed."""
    write_config(tmp_path, "[default]\nregion = ca-west-1\n")
    reads = watch_configured_region(monkeypatch)
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    for host in ("api.example.com", "api.example.org", "127.0.0.1:8080"):
        signed = signer.sign("GET", f"https://{host}/prod/pets")
        assert "/ca-west-1/execute-api/aws4_request" in signed.headers["Authorization"]
    assert len(reads) == 1


def test_a_broken_profile_fails_only_the_hosts_that_need_it(monkeypatch):
    """A missing profile fails each custom-domain request, never one whose host names a region."""
    monkeypatch.setenv("AWS_PROFILE", "missing")
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    for _ in range(2):
        with pytest.raises(InvalidConfigError, match="'missing'"):
            signer.sign("GET", "https://api.example.com/prod/pets")
    signed = signer.sign("GET", "https://abc.execute-api.eu-west-3.amazonaws.com/prod/pets")
    assert "/eu-west-3/execute-api/aws4_request" in signed.headers["Authorization"]


VPC_ENDPOINT = "https://vpce-0123456789abcdef0-abcdefgh.execute-api.us-east-1.vpce.amazonaws.com"


def scope_of(signed) -> str:
    return signed.headers["Authorization"].split("Credential=AKIDEXAMPLE/")[1].split(",")[0]


def test_host_header_naming_an_aws_host_scopes_a_url_that_names_none():
    """An API called at an address with its own Host header is signed for the Host's region."""
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    host = {"Host": "abc123.execute-api.eu-west-1.amazonaws.com"}
    signed = signer.sign("GET", "https://10.0.0.5/prod/pets", headers=host)
    assert scope_of(signed).endswith("/eu-west-1/execute-api/aws4_request")
    with pytest.raises(InvalidConfigError, match=r"region for host '10\.0\.0\.5'"):
        signer.sign("GET", "https://10.0.0.5/prod/pets")  # no Host header: no region
    with pytest.raises(InvalidConfigError, match=r"for host '10\.0\.0\.5'"):
        signer.sign("GET", "https://10.0.0.5/prod/pets", headers={"Host": "10.0.0.5"})


@pytest.mark.parametrize("host", [None, "10.0.0.5", "api.example.com"])
def test_a_missing_region_is_said_before_credentials_are_loaded(host):
    """No region anywhere: that is the error, raised before any credentials are loaded (a
    botocore chain may take seconds: SSO, instance metadata), whatever Host is sent."""
    loads = []

    def credentials():
        loads.append(1)
        return ("AKIDEXAMPLE", "secret")

    signer = SigV4Signer(credentials=credentials)
    headers = {} if host is None else {"Host": host}
    with pytest.raises(InvalidConfigError, match="cannot tell the AWS region"):
        signer.sign("GET", "https://10.0.0.5/prod/pets", headers=headers)
    client = httpx.Client(auth=ApiGwIamAuth(credentials=credentials))  # it always sends Host
    with client, pytest.raises(InvalidConfigError, match="cannot tell the AWS region"):
        client.get("https://10.0.0.5/prod/pets", headers=headers)
    assert loads == []


def test_custom_host_header_takes_the_region_of_the_vpc_endpoint_it_is_sent_to(monkeypatch):
    """A private custom domain sent as Host to a VPC endpoint: the endpoint's region, not
    AWS_REGION's (which would sign for another region, a certain 403)."""
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    custom = {"Host": "api.internal.example.com"}
    signed = signer.sign("GET", f"{VPC_ENDPOINT}/prod/pets", headers=custom)
    assert scope_of(signed).endswith("/us-east-1/execute-api/aws4_request")
    aws_host = {"Host": "abc123.execute-api.ap-south-1.amazonaws.com"}  # names its own region
    signed = signer.sign("GET", f"{VPC_ENDPOINT}/prod/pets", headers=aws_host)
    assert scope_of(signed).endswith("/ap-south-1/execute-api/aws4_request")


@pytest.mark.parametrize(
    "client", ["requests", "httpx", pytest.param("httpx2", marks=NEEDS_HTTPX2), "aiohttp"]
)
def test_api_called_at_its_address_with_its_host_is_accepted_over_loopback(client):
    """A call to 127.0.0.1 with the API's Host, no region configured: the server accepts it.

    aiohttp holds header names as multidict's ``istr``, a str subclass: read as any str.
    """
    keys = {"AKIDEXAMPLE": KnownKey("secret")}
    with IamAuthServer(keys=keys, region="eu-west-1") as server:
        auth = ApiGwIamAuth(credentials=("AKIDEXAMPLE", "secret"))
        host = {"Host": "abc123.execute-api.eu-west-1.amazonaws.com"}
        url = f"{server.url}/prod/pets"
        assert send_with_headers(client, auth, url, host) == 200


def send_with_headers(client: str, auth: ApiGwIamAuth, url: str, headers: dict[str, str]) -> int:
    """The status of a GET of ``url`` with ``headers`` through ``client``, signed by ``auth``."""
    if client == "requests":
        with requests.Session() as session:
            session.trust_env = False
            return session.get(url, headers=headers, auth=auth).status_code
    if client == "aiohttp":

        async def get() -> int:
            async with (
                aiohttp.ClientSession(middlewares=(auth,)) as session,
                session.get(url, headers=headers) as sent,
            ):
                return sent.status

        return asyncio.run(get())
    package = importlib.import_module(client)
    with package.Client(auth=auth, trust_env=False) as session:
        return int(session.get(url, headers=headers).status_code)


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def send_async(client, auth, url):
    if client == "aiohttp":
        async with aiohttp.ClientSession(middlewares=(auth,)) as session, session.get(url) as sent:
            return sent.status
    package = importlib.import_module(client)
    async with package.AsyncClient(auth=auth, trust_env=False) as session:
        return (await session.get(url)).status_code


@pytest.mark.anyio
@pytest.mark.parametrize("client", ["aiohttp", "httpx", pytest.param("httpx2", marks=NEEDS_HTTPX2)])
async def test_async_clients_read_the_configured_region_off_the_event_loop(
    tmp_path, monkeypatch, client
):
    """Without region=, the config files are read once, on a worker thread, not on the loop.

    The read waits until the loop has run a callback it scheduled: on the loop's own thread that
    callback could never run, and the read would time out.
    """
    write_config(tmp_path, "[default]\nregion = ca-west-1\n")
    reads = watch_configured_region(monkeypatch)
    loop = asyncio.get_running_loop()
    read = signer_module.configured_region

    def read_while_the_loop_runs(profile, session=None):
        loop_ran = threading.Event()
        loop.call_soon_threadsafe(loop_ran.set)
        assert loop_ran.wait(timeout=10), "the configured region was read on the event loop"
        return read(profile, session)

    monkeypatch.setattr(signer_module, "configured_region", read_while_the_loop_runs)
    keys = {"AKIDEXAMPLE": KnownKey("secret")}
    with IamAuthServer(host="127.0.0.1", port=0, region="ca-west-1", keys=keys) as server:
        auth = ApiGwIamAuth(credentials=("AKIDEXAMPLE", "secret"))
        statuses = [await send_async(client, auth, f"{server.url}/prod/n{n}") for n in range(3)]
    assert statuses == [200, 200, 200]  # signed for ca-west-1, the server's region
    assert len(reads) == 1
    assert reads[0] != threading.get_ident()


def _sign_each_way(signer: SigV4Signer, how: str):
    """Sign a request to a custom domain as ``sign``, with a Host header, or ``sign_request``."""
    url = "https://api.example.com/prod/pets"
    if how == "sign":
        return signer.sign("GET", url).headers["Authorization"]
    if how == "host header":  # a Host naming no region either: the same search
        headers = {"Host": "api.example.org"}
        return signer.sign("GET", url, headers=headers).headers["Authorization"]
    request = SignableRequest("GET", "/prod/pets", (), (("Host", "api.example.com"),), EMPTY_SHA256)
    return signer.sign_request(request).headers[-1][1]


@pytest.mark.parametrize("how", ["sign", "host header", "sign_request"])
def test_a_region_set_after_the_error_is_found_by_the_same_signer(monkeypatch, how):
    """The no-region error asks for AWS_REGION: set, it is found at the same signer's next
    request (the failed read is not kept), and the configuration is then read no more.
    """
    reads = watch_configured_region(monkeypatch)
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "secret"))
    for _ in range(2):
        with pytest.raises(InvalidConfigError, match="AWS_REGION"):
            _sign_each_way(signer, how)
    monkeypatch.setenv("AWS_REGION", "eu-south-2")
    for _ in range(2):
        assert "/eu-south-2/execute-api/aws4_request" in _sign_each_way(signer, how)
    assert len(reads) == 3


@pytest.mark.anyio
@pytest.mark.parametrize("client", ["aiohttp", "httpx", pytest.param("httpx2", marks=NEEDS_HTTPX2)])
async def test_async_clients_find_a_region_set_after_the_error(monkeypatch, client):
    """Through an async client too, off the event loop: refused without a region, then signed
    by the same auth object for the one set since."""
    reads = watch_configured_region(monkeypatch)
    keys = {"AKIDEXAMPLE": KnownKey("secret")}
    with IamAuthServer(host="127.0.0.1", port=0, region="ca-west-1", keys=keys) as server:
        auth = ApiGwIamAuth(credentials=("AKIDEXAMPLE", "secret"))
        with pytest.raises(InvalidConfigError, match="AWS_REGION"):
            await send_async(client, auth, f"{server.url}/prod/a")
        monkeypatch.setenv("AWS_REGION", "ca-west-1")
        statuses = [await send_async(client, auth, f"{server.url}/prod/n{n}") for n in range(2)]
    assert statuses == [200, 200]
    assert len(reads) == 2
    assert threading.get_ident() not in reads


@pytest.mark.anyio
@pytest.mark.parametrize("client", ["aiohttp", "httpx"])
async def test_a_request_failing_for_its_region_makes_no_other_read_it_on_the_loop(
    monkeypatch, client
):
    """While request A is out (its Host names a region, its URL none), request B to the same
    origin fails for want of a region and drops what was read; A's clock-skew retry reads the
    configuration again off the loop, not on it."""
    reads = watch_configured_region(monkeypatch)
    host = {"Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    with running_server() as server:
        auth = ApiGwIamAuth(credentials=(ACCESS_KEY, SECRET_KEY))
        if client == "aiohttp":
            session: Any = aiohttp.ClientSession(middlewares=(auth,))

            async def get(path: str, headers: dict[str, str]) -> int:
                async with session.get(server.url(path), headers=headers) as sent:
                    return sent.status
        else:
            session = httpx.AsyncClient(auth=auth, trust_env=False)

            async def get(path: str, headers: dict[str, str]) -> int:
                return (await session.get(server.url(path), headers=headers)).status_code

        async def failing() -> str:
            with pytest.raises(InvalidConfigError, match="AWS_REGION"):
                await get("/prod/b", {})
            return "refused"

        try:
            assert await get("/prod/warm", host) == 200
            server.clock_offset = timedelta(minutes=10)  # A's first attempt is refused for skew
            outcomes = await asyncio.gather(get("/prod/a", host), failing())
        finally:
            await (session.close() if client == "aiohttp" else session.aclose())
    assert outcomes == [200, "refused"]
    assert len(reads) == 2
    assert threading.get_ident() not in reads


def test_an_empty_aws_default_region_is_named_when_no_region_is_found(tmp_path, monkeypatch):
    """AWS_DEFAULT_REGION='' hides the profile's region from botocore: the error says so."""
    write_config(tmp_path, "[default]\nregion = ap-south-1\n")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "")
    assert configured_region(None) is None  # as botocore: its answer is the empty variable
    signer = SigV4Signer(credentials=("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
    with pytest.raises(InvalidConfigError, match="AWS_DEFAULT_REGION is set but empty"):
        signer.sign("GET", "https://api.example.com/prod/pets")
    write_config(tmp_path, "[default]\noutput = json\n")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(InvalidConfigError, match="no region is configured") as refused:
        SigV4Signer(credentials=("AKIDEXAMPLE", "x" * 40)).sign("GET", "https://api.example.com/")
    assert "AWS_DEFAULT_REGION is set" not in str(refused.value)
    # What to pass, for any entry point (not one class's), and for a domain of another service.
    assert "~/.aws/config or AWS_CONFIG_FILE" in str(refused.value)
    assert "Pass region='<the API's region>' (and service='<its service>': lambda," in str(
        refused.value
    )
