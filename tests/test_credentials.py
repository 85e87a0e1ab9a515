"""Credential providers against botocore's real providers pointed at real local things.

Env vars, profile files in tmp_path, a credential_process script, the container endpoint and STS
served on 127.0.0.1 (tests/credential_servers.py). Signatures are checked with botocore's
SigV4Auth using the secret of the key each signature names, so a torn key/secret pair fails.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import importlib
import json
import logging
import os
import re
import sys
import threading
import traceback
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import botocore.credentials
import botocore.exceptions
import botocore.session
import httpx
import pytest
from credential_servers import CredentialServer, FakeClock, running, verify
from forking import HANG_GUARD, HELD, NEEDS_FORK, in_a_forked_child

import apigw_iam_auth.credentials
from apigw_iam_auth import (
    Credentials,
    CredentialsError,
    CredentialsRefreshError,
    InvalidConfigError,
    NoCredentialsError,
    SigV4Signer,
)
from apigw_iam_auth.auth import ApiGwIamAuth
from apigw_iam_auth.credentials import (
    BotocoreProvider,
    CallableProvider,
    ChainProvider,
    CredentialsProvider,
    StaticProvider,
    _Flight,
    resolve_provider,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Every test runs isolated from the developer's ~/.aws and AWS_* environment.
pytestmark = pytest.mark.usefixtures("aws_env")

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets?id=7"
FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@dataclass
class AwsFiles:
    config: Path
    credentials: Path
    tmp: Path


@pytest.fixture
def aws_env(tmp_path, monkeypatch):
    """Botocore sees only what the test sets: no AWS_* env, no ~/.aws, no IMDS."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BOTO_")):
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    credentials = tmp_path / "credentials"
    config.write_text("")
    credentials.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto.cfg"))
    return AwsFiles(config, credentials, tmp_path)


@pytest.fixture
def server():
    with running() as started:
        yield started


def signed_key(signer: SigV4Signer, secrets) -> str:
    signed = signer.sign("GET", URL)
    return verify("GET", signed.url, signed.headers, secrets)


async def async_signed_key(auth: ApiGwIamAuth, secrets) -> str:
    flow = auth.async_auth_flow(httpx.Request("GET", URL))
    request = await flow.__anext__()
    await flow.aclose()
    return verify(request.method, str(request.url), dict(request.headers), secrets)


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, counting the jobs (thread hops) handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.jobs: list[concurrent.futures.Future[object]] = []

    @property
    def submitted(self) -> int:
        return len(self.jobs)

    def submit(self, fn, /, *args, **kwargs):
        job = super().submit(fn, *args, **kwargs)
        self.jobs.append(job)
        return job


def container_credentials(server: CredentialServer, monkeypatch, clock: FakeClock):
    """botocore's container provider aimed at the server, on the test's clock."""
    monkeypatch.setenv(FULL_URI, server.container_url)
    credentials = botocore.session.Session().get_credentials()
    assert isinstance(credentials, botocore.credentials.RefreshableCredentials)
    # botocore takes a time_fetcher for exactly this; its container provider uses the default.
    credentials._time_fetcher = clock
    return credentials


# --- what credentials= accepts --------------------------------------------------------------


def test_key_tuples_and_credentials_become_static_providers():
    """(key, secret), (key, secret, token) and Credentials resolve to fixed snapshots."""
    two = resolve_provider(("AKIDTWO", "secret-two")).get()
    three = resolve_provider(("AKIDTHREE", "secret-three", "token-three")).get()
    fixed = Credentials("AKIDFIXED", "secret-fixed")
    assert (two.access_key, two.secret_key, two.token) == ("AKIDTWO", "secret-two", None)
    assert three.token == "token-three"
    assert resolve_provider(fixed).get() is fixed
    provider = StaticProvider(fixed)
    assert resolve_provider(provider) is provider


SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documentation example


@pytest.mark.parametrize(
    "given",
    [("AKIDTUPLE", SECRET), ("AKIDTUPLE", SECRET, "tok"), Credentials("AKIDTUPLE", SECRET)],
)
def test_static_provider_takes_what_credentials_takes(given):
    """StaticProvider((key, secret)) works as credentials=(key, secret) does; repr names the key."""
    provider = StaticProvider(given)
    assert provider.get().access_key == "AKIDTUPLE"
    assert repr(provider) == "StaticProvider(access_key='AKIDTUPLE')"


@pytest.mark.parametrize("given", [SECRET, {"AKIDDICT": SECRET}, ("AKIDONLY",), None])
def test_static_provider_refuses_anything_else_now_without_showing_it(given):
    """Not a snapshot: refused when the provider is made, by type; the value is never quoted."""
    with pytest.raises(InvalidConfigError, match="StaticProvider takes") as refused:
        StaticProvider(given)
    assert SECRET not in str(refused.value)


def test_botocore_read_only_credentials_are_accepted():
    """The namedtuple get_frozen_credentials() returns works as a fixed snapshot."""
    # Three fields: botocore 1.34.0 has no account_id (later releases default it to None).
    frozen = botocore.credentials.ReadOnlyCredentials("AKIDFROZEN", "frozen-secret", "tok")
    snapshot = resolve_provider(frozen).get()
    assert (snapshot.access_key, snapshot.secret_key, snapshot.token) == frozen[:3]


@pytest.mark.anyio
async def test_static_aget_returns_without_a_thread():
    """Fixed credentials come back from aget() with no worker thread involved."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    provider = resolve_provider(("AKIDSTATIC", "static-secret"))
    snapshots = await asyncio.gather(*(provider.aget() for _ in range(50)))
    assert {id(snapshot) for snapshot in snapshots} == {id(provider.get())}
    assert executor.submitted == 0


def test_botocore_plain_credentials_object_is_snapshotted():
    """A botocore Credentials object signs with its own key and secret."""
    creds = botocore.credentials.Credentials("AKIDPLAIN", "plain-secret", "plain-token")
    signer = SigV4Signer(credentials=creds, region="us-east-1")
    assert signed_key(signer, {"AKIDPLAIN": "plain-secret"}) == "AKIDPLAIN"
    assert signer.sign("GET", URL).headers["X-Amz-Security-Token"] == "plain-token"


@pytest.mark.anyio
async def test_deferred_botocore_credentials_fetch_once_off_the_loop():
    """DeferredRefreshableCredentials fetch on first use: one call, one thread hop, 50 callers."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    fetched = []

    def refresh():
        fetched.append(1)
        expiry = botocore.credentials._local_now() + timedelta(hours=1)
        return {
            "access_key": "ASIADEFERRED",
            "secret_key": "deferred-secret",
            "token": "deferred-token",
            "expiry_time": expiry.isoformat(),
        }

    deferred = botocore.credentials.DeferredRefreshableCredentials(refresh, "custom-deferred")
    provider = resolve_provider(deferred)
    assert fetched == []
    snapshots = await asyncio.gather(*(provider.aget() for _ in range(50)))
    assert {snapshot.access_key for snapshot in snapshots} == {"ASIADEFERRED"}
    assert snapshots[0].expiry is not None
    assert fetched == [1]
    assert executor.submitted == 1
    await provider.aget()
    assert executor.submitted == 1


def test_unusable_credentials_values_are_refused_at_construction():
    """Wrong types, empty chains and a profile without the default chain fail early."""
    with pytest.raises(InvalidConfigError, match="credentials must be"):
        resolve_provider(42)
    with pytest.raises(InvalidConfigError, match="at least one provider"):
        resolve_provider([])
    with pytest.raises(InvalidConfigError, match="profile="):
        resolve_provider(("AKID", "secret"), profile="dev")
    with pytest.raises(InvalidConfigError, match="secret key"):
        resolve_provider(("AKID", ""))
    with pytest.raises(InvalidConfigError, match="profile= or session="):
        BotocoreProvider("dev", session=botocore.session.Session())


@pytest.mark.parametrize(
    "given",
    [
        botocore.session.Session,
        botocore.credentials.Credentials,
        botocore.credentials.RefreshableCredentials,
        StaticProvider,
        [("AKIDSET", SECRET), botocore.session.Session],
    ],
)
def test_a_class_given_for_an_instance_is_refused_when_built(given):
    """credentials=botocore.session.Session (the parentheses forgotten) fails at construction,
    naming the class and the call, not as a refresh error at the first request.
    """
    name = (given[-1] if isinstance(given, list) else given).__name__
    with pytest.raises(InvalidConfigError, match=rf"is the class {name}, not an instance"):
        SigV4Signer(region="us-east-1", credentials=given)
    with pytest.raises(InvalidConfigError, match="session is the class Session"):
        BotocoreProvider(session=botocore.session.Session)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ((None, None), r"access key and secret key in credentials=\(key, secret\) are None"),
        (("AKIDSET", None), r"^the secret key in credentials=\(key, secret\) is None; is its env"),
        ([None, SECRET, "tok"], r"the access key in credentials=\(key, secret, token\) is None"),
        (("AKIDSET", SECRET, "tok", datetime.now(timezone.utc)), r"str as item 1 of 4.*expiry"),
        (("AKIDSET",), r"str as item 1 of 1, and a str is not a provider"),
        ([("AKIDSET", None), None], r"the secret key in credentials=\(key, secret\) is None"),
    ],
)
def test_a_key_tuple_with_an_unset_item_is_refused_not_read_as_a_chain(monkeypatch, given, problem):
    """(os.getenv(key), os.getenv(secret)) with one unset never signs with the ambient identity.

    None in a list is botocore's default chain, which here would find the environment's keys.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDAMBIENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    with pytest.raises(InvalidConfigError, match=problem) as refused:
        SigV4Signer(region="us-east-1", credentials=given)
    assert SECRET not in str(refused.value)
    assert "AKIDSET" not in str(refused.value)
    chain = resolve_provider([("AKIDSET", SECRET), None])  # a real list of providers still is one
    assert isinstance(chain, ChainProvider)
    assert chain.get().access_key == "AKIDSET"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ((b"AKIDSET", SECRET.encode()), "credentials holds bytes as item 1 of 2"),
        (("AKIDSET", SECRET.encode()), "credentials holds bytes as item 2 of 2"),
        (["AKIDSET", SECRET, bytearray(b"tok")], "the session token is a bytearray"),
        (Credentials("AKIDSET", SECRET), None),
    ],
)
def test_keys_given_as_bytes_are_refused_with_how_to_decode(given, said):
    """Keys read from a file or a KMS call are often bytes: the error says to decode them.

    Never read as a chain of providers (bytes are none), and never shown.
    """
    if said is None:  # the same keys built as bytes, field by field
        with pytest.raises(InvalidConfigError) as refused:
            Credentials("AKIDSET", SECRET.encode())  # type: ignore[arg-type]
        said = "the secret key is bytes"
    else:
        with pytest.raises(InvalidConfigError) as refused:
            SigV4Signer(region="us-east-1", credentials=given)
        # The same keys given per call, or returned by a provider function, are told alike.
        signer = SigV4Signer(region="us-east-1", credentials=("AKIDOTHER", "other-secret"))
        with pytest.raises(InvalidConfigError, match=f"{said}: keys are str; decode them"):
            signer.sign("GET", URL, credentials=given)
        by_function = SigV4Signer(region="us-east-1", credentials=lambda: given)
        with pytest.raises(InvalidConfigError, match=f"returned keys that cannot sign: {said}"):
            by_function.sign("GET", URL)
    message = str(refused.value)
    assert f"{said}: keys are str; decode them" in message
    assert "AKIDSET" not in message
    assert SECRET not in message


def test_provider_function_returning_garbage_is_a_config_error():
    """A provider function returning something unusable says what it should return."""
    provider = resolve_provider(lambda: 42)
    with pytest.raises(InvalidConfigError, match=r"returned int; return \(key, secret"):
        provider.get()


# --- botocore's default chain, pointed at local things ---------------------------------------


def test_default_chain_reads_env_vars(monkeypatch):
    """credentials=None picks up AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN through botocore."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    signer = SigV4Signer(region="us-east-1")
    assert signed_key(signer, {"AKIDENV": "env-secret"}) == "AKIDENV"
    assert signer.sign("GET", URL).headers["X-Amz-Security-Token"] == "env-token"


@pytest.mark.parametrize(
    ("expiration", "said"),
    [
        (
            (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(),
            (
                "The credentials in the environment expired at AWS_CREDENTIAL_EXPIRATION: export "
                "fresh AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and "
                "AWS_CREDENTIAL_EXPIRATION, or unset AWS_CREDENTIAL_EXPIRATION"
            ),
        ),
        (
            "next tuesday-ish",
            (
                "AWS_CREDENTIAL_EXPIRATION is not a time botocore can read: give an ISO 8601 time "
                "such as 2030-01-01T00:00:00Z, or unset it"
            ),
        ),
        (
            "1893456000",  # epoch seconds: botocore's own parser takes them, its env provider not
            (
                "AWS_CREDENTIAL_EXPIRATION is not a time botocore can read: give an ISO 8601 time "
                "such as 2030-01-01T00:00:00Z, or unset it"
            ),
        ),
        (
            "2030-01-01T00:00:00",  # what datetime.utcnow().isoformat() prints
            "AWS_CREDENTIAL_EXPIRATION has no time zone: add one, as in 2030-01-01T00:00:00Z",
        ),
    ],
    ids=["passed", "unreadable", "epoch-seconds", "no-zone"],
)
def test_a_bad_expiry_in_the_environment_says_what_to_fix(monkeypatch, expiration, said):
    """AWS_CREDENTIAL_EXPIRATION passed or unreadable: botocore's text, then what to do."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expiration)
    signer = SigV4Signer(region="us-east-1")
    with pytest.raises(CredentialsRefreshError) as refused:
        signer.sign("GET", URL)
    message = str(refused.value)
    assert message.endswith(f". {said}")
    assert "env-secret" not in message
    assert "env-token" not in message


@pytest.mark.parametrize(
    "environment",
    [
        {"AWS_CREDENTIAL_EXPIRATION": "2030-01-01T00:00:00Z"},
        # Keys and an unreadable expiry in the environment too: profile= removes botocore's
        # environment provider, so the profile's process is still the one to blame.
        {
            "AWS_ACCESS_KEY_ID": "ASIAENV",
            "AWS_SECRET_ACCESS_KEY": "env-secret",
            "AWS_CREDENTIAL_EXPIRATION": "garbage",
        },
    ],
    ids=["valid-expiry-no-keys", "keys-and-garbage-with-a-profile"],
)
def test_a_bad_date_from_another_provider_does_not_blame_the_environments_expiry(
    tmp_path, monkeypatch, environment
):
    """A credential_process's unreadable Expiration, with AWS_CREDENTIAL_EXPIRATION set: botocore's
    words alone, the variable not named, where botocore never read it."""
    script = tmp_path / "process.py"
    script.write_text(
        "import json\nprint(json.dumps({'Version': 1, 'AccessKeyId': 'AKIDPROC', "
        "'SecretAccessKey': 'proc-secret', 'SessionToken': 't', 'Expiration': 'not-a-date'}))\n"
    )
    config = tmp_path / "process-config"
    config.write_text(f'[profile p]\ncredential_process = "{sys.executable}" "{script}"\n')
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    signer = SigV4Signer(region="us-east-1", profile="p")
    with pytest.raises(CredentialsRefreshError) as refused:
        signer.sign("GET", URL)
    message = str(refused.value)
    assert "ParserError" in message or "not-a-date" in message
    assert "AWS_CREDENTIAL_EXPIRATION" not in message
    assert "proc-secret" not in message


def test_unusable_keys_from_botocores_chain_name_the_provider_they_came_from(monkeypatch):
    """A stray newline in AWS_SECRET_ACCESS_KEY is refused naming botocore's env provider."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-NEWLINE\n")
    with pytest.raises(InvalidConfigError, match=r"method='env'\) holds keys that cannot sign: "):
        SigV4Signer(region="us-east-1").sign("GET", URL)
    plain = botocore.credentials.Credentials("AKID PASTED", "plain-secret")
    with pytest.raises(
        InvalidConfigError, match=r"method='explicit'\) holds keys.*access key must be"
    ):
        resolve_provider(plain).get()


def write_profiles(files: AwsFiles) -> None:
    files.credentials.write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n"
        "[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = ci-secret\n"
    )
    files.config.write_text(
        "[profile dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = dev-secret\n"
        "aws_session_token = dev-token\n"
    )


def test_profiles_from_files_follow_botocore_precedence(aws_env, monkeypatch):
    """profile=, AWS_PROFILE and env vars resolve exactly as botocore's chain says."""
    write_profiles(aws_env)
    assert resolve_provider(None).get().access_key == "AKIDDEFAULT"
    dev = resolve_provider(None, profile="dev").get()
    assert (dev.access_key, dev.token) == ("AKIDDEV", "dev-token")
    monkeypatch.setenv("AWS_PROFILE", "ci")
    assert resolve_provider(None).get().access_key == "AKIDCI"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    # Env vars come before the shared files, unless a profile is chosen explicitly.
    assert resolve_provider(None).get().access_key == "AKIDENV"
    assert resolve_provider(None, profile="ci").get().access_key == "AKIDCI"
    signer = SigV4Signer(region="us-east-1", profile="dev")
    assert signed_key(signer, {"AKIDDEV": "dev-secret"}) == "AKIDDEV"


def test_unknown_profile_is_a_config_error_with_cause(aws_env):
    """A profile missing from the files is a setting to fix: named, with the files read."""
    write_profiles(aws_env)
    missing = "'nope' \\(profile=\\): no such profile"
    with pytest.raises(InvalidConfigError, match=missing) as caught:
        resolve_provider(None, profile="nope").get()
    assert isinstance(caught.value.__cause__, botocore.exceptions.ProfileNotFound)
    assert str(aws_env.config) in str(caught.value)


def test_a_chain_stops_at_a_mistyped_profile(aws_env, monkeypatch):
    """A typo in AWS_PROFILE or profile= must not let a chain sign as the next identity."""
    write_profiles(aws_env)
    fallback = ("AKIDFALLBACK", "fallback-secret")
    with pytest.raises(InvalidConfigError, match="'prdo' \\(profile=\\)"):
        SigV4Signer(credentials=[None, fallback], profile="prdo", region="eu-west-1").sign(
            "GET", "https://example.com/"
        )
    monkeypatch.setenv("AWS_PROFILE", "prdo")
    with pytest.raises(InvalidConfigError, match="'prdo' \\(from AWS_PROFILE\\)"):
        asyncio.run(resolve_provider([None, fallback]).aget())


PROCESS_SCRIPT = """
import datetime, json, pathlib, sys
counter = pathlib.Path(sys.argv[1])
number = len(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text("x" * number)
if sys.argv[2] == "fail":
    sys.stderr.write("the vault is sealed\\n")
    sys.exit(3)
if sys.argv[2] == "echo":  # a failing helper that dumps what it half-read
    sys.stderr.write('sealed; read {"SecretAccessKey": "leaked-secret", "Token": "leaked-tok"}')
    sys.exit(3)
if sys.argv[2] == "banner":  # a helper that greets before its JSON
    print("Fetching credentials from the vault...")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
zone = "" if sys.argv[2] == "naive" else "Z"  # naive: an expiry without a time zone
print(json.dumps({
    "Version": 1,
    "AccessKeyId": f"ASIAPROC{number:04d}",
    "SecretAccessKey": f"process-secret-{number}",
    "SessionToken": f"process-token-{number}",
    "Expiration": expiry.strftime("%Y-%m-%dT%H:%M:%S") + zone,
}))
"""


def process_profile(files: AwsFiles, mode: str) -> Path:
    script = files.tmp / "creds.py"
    script.write_text(PROCESS_SCRIPT)
    counter = files.tmp / f"calls-{mode}"
    files.config.write_text(
        f'[profile proc]\ncredential_process = "{sys.executable}" "{script}" "{counter}" {mode}\n'
    )
    return counter


def test_credential_process_runs_once_for_many_signatures(aws_env):
    """A credential_process profile is run once, then its expiring credentials are reused."""
    counter = process_profile(aws_env, "ok")
    signer = SigV4Signer(region="us-east-1", profile="proc")
    keys = {signed_key(signer, {"ASIAPROC0001": "process-secret-1"}) for _ in range(10)}
    assert keys == {"ASIAPROC0001"}
    assert counter.read_text() == "x"
    assert signer._credentials.get().expiry is not None


def test_failing_credential_process_is_chained(aws_env):
    """A credential_process that fails raises CredentialsRefreshError with botocore's cause."""
    process_profile(aws_env, "fail")
    with pytest.raises(CredentialsRefreshError, match="the vault is sealed") as caught:
        resolve_provider(None, profile="proc").get()
    assert isinstance(caught.value.__cause__, botocore.exceptions.CredentialRetrievalError)


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("banner", "answer is not JSON: a credential_process must print its JSON document alone"),
        ("naive", "has no time zone: it must give one, as in 2030-01-01T00:00:00Z"),
    ],
)
def test_a_credential_process_answering_amiss_is_told_what_to_fix(aws_env, mode, said):
    """What botocore lets through from json and datetime unexplained says what to fix, and
    never quotes the answer (it holds the secret)."""
    process_profile(aws_env, mode)
    with pytest.raises(CredentialsRefreshError) as caught:
        signed_key(SigV4Signer(region="us-east-1", profile="proc"), {})
    printed = "".join(traceback.format_exception(caught.value))
    assert said in str(caught.value)
    assert "process-secret" not in printed


def test_a_failing_credential_process_quoting_secrets_is_redacted(aws_env, caplog):
    """botocore quotes the process's stderr: the reason stays, credential values are masked.

    Also in a logged traceback: botocore's exception, which quotes them in full, is not chained.
    """
    process_profile(aws_env, "echo")
    with pytest.raises(CredentialsRefreshError, match="sealed; read") as caught:
        resolve_provider(None, profile="proc").get()
    logging.getLogger("app").error("no credentials", exc_info=caught.value)
    printed = "".join(traceback.format_exception(caught.value)) + caplog.text
    assert "sealed; read" in printed
    assert "leaked-secret" not in printed
    assert "leaked-tok" not in printed
    assert caught.value.__cause__ is None


def test_a_provider_function_whose_error_quotes_a_secret_is_not_chained():
    """A function's own error is chained for debugging, unless its message holds a secret."""

    def leaky() -> None:
        raise RuntimeError("vault said: aws_secret_access_key = leaked-secret")

    def plain() -> None:
        raise RuntimeError("vault sealed")

    with pytest.raises(CredentialsRefreshError, match="RuntimeError") as leaked:
        CallableProvider(leaky).get()
    assert "leaked-secret" not in "".join(traceback.format_exception(leaked.value))
    assert "quotes a secret" in str(leaked.value)
    with pytest.raises(CredentialsRefreshError, match="see the chained") as chained:
        CallableProvider(plain).get()
    assert "vault sealed" in "".join(traceback.format_exception(chained.value))


def test_botocores_own_builtin_errors_keep_their_message():
    """botocore's RuntimeError "refreshed credentials are still expired" keeps its message; a
    refresh function's own RuntimeError, raised through botocore, is still named by type only.
    """
    expired_at = botocore.credentials._local_now() - HOUR

    def stale() -> dict[str, str]:
        return {
            "access_key": "AKIDSTALE",
            "secret_key": "stale-secret",
            "token": "stale-token",
            "expiry_time": expired_at.isoformat(),
        }

    def failing() -> dict[str, str]:
        raise RuntimeError("vault said: sealed")

    create = botocore.credentials.RefreshableCredentials.create_from_metadata
    with pytest.raises(CredentialsRefreshError, match="refreshed credentials are still expired"):
        resolve_provider(create(stale(), stale, "custom-stale")).get()
    with pytest.raises(CredentialsRefreshError, match=r"RuntimeError \(see the chained") as own:
        resolve_provider(create(stale(), failing, "custom-failing")).get()
    assert "vault said" not in str(own.value)


def test_constructing_does_no_io_and_resolution_is_cached(monkeypatch, server):
    """Building a signer calls nothing; the first signature resolves once; later ones reuse it."""
    monkeypatch.setenv(FULL_URI, server.container_url)
    signer = SigV4Signer(region="us-east-1")
    ApiGwIamAuth(region="us-east-1")
    assert server.calls["container"] == 0
    keys = {signed_key(signer, server.secrets) for _ in range(10)}
    assert keys == {"ASIAGEN000001"}
    assert server.calls["container"] == 1


def test_assume_role_through_local_sts(aws_env, monkeypatch, server):
    """A role_arn/source_profile profile assumes the role at STS, signed by the source keys."""
    aws_env.config.write_text(
        "[profile source]\naws_access_key_id = AKIDSOURCE\n"
        "aws_secret_access_key = source-secret\n"
        "[profile assumed]\nrole_arn = arn:aws:iam::123456789012:role/api-caller\n"
        "source_profile = source\nregion = us-east-1\n"
    )
    server.secrets["AKIDSOURCE"] = "source-secret"
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.sts_url)
    signer = SigV4Signer(region="us-east-1", profile="assumed")
    assert server.calls["AssumeRole"] == 0
    keys = {signed_key(signer, server.secrets) for _ in range(5)}
    assert keys == {"ASIAGEN000001"}
    assert server.calls["AssumeRole"] == 1
    assert server.calls["sts-source:AKIDSOURCE"] == 1


@pytest.mark.anyio
async def test_web_identity_through_local_sts_off_the_loop(aws_env, monkeypatch, server):
    """AWS_ROLE_ARN + a token file assume the role at STS, from a worker thread for aget()."""
    token_file = aws_env.tmp / "web-identity-token"
    token_file.write_text("eyJ.fake.jwt")
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.sts_url)
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    auth = ApiGwIamAuth(region="us-east-1")
    keys = await asyncio.gather(*(async_signed_key(auth, server.secrets) for _ in range(20)))
    assert set(keys) == {"ASIAGEN000001"}
    assert server.calls["AssumeRoleWithWebIdentity"] == 1
    assert executor.submitted == 1


# --- sessions, functions and chains -----------------------------------------------------------


class Boto3LikeSession:
    """What boto3.Session offers credential-wise: a wrapped botocore session."""

    def __init__(self) -> None:
        self._session = botocore.session.Session()

    def get_credentials(self):
        return self._session.get_credentials()


def test_botocore_and_boto3_sessions_are_accepted(aws_env):
    """A botocore Session, or anything with boto3's get_credentials(), is resolved lazily."""
    write_profiles(aws_env)
    assert resolve_provider(botocore.session.Session(profile="ci")).get().access_key == "AKIDCI"
    boto3_like = resolve_provider(Boto3LikeSession())
    assert boto3_like.get().access_key == "AKIDDEFAULT"


def test_callable_result_is_cached_until_its_refresh_window():
    """A provider function is called again only 5 minutes before its credentials expire."""
    clock = FakeClock()
    calls = []

    def fetch():
        calls.append(clock())
        return Credentials(
            f"AKIDCALL{len(calls)}", f"call-secret-{len(calls)}", None, clock() + timedelta(hours=1)
        )

    provider = CallableProvider(fetch, clock=clock)
    assert provider.get().access_key == "AKIDCALL1"
    clock.advance(timedelta(minutes=54))
    assert provider.get().access_key == "AKIDCALL1"
    clock.advance(timedelta(minutes=1, seconds=1))
    assert provider.get().access_key == "AKIDCALL2"
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("clock", "returned"),
    [
        (lambda: datetime(2026, 1, 1), "datetime without a time zone"),  # noqa: DTZ001
        (lambda: "2026-01-01T00:00:00Z", "str"),
        ("not callable", "NoneType"),
    ],
)
def test_a_callable_provider_refuses_a_clock_that_is_not_aware(clock, returned):
    """A naive clock is refused when built, not by a TypeError at every load past the chain."""
    with pytest.raises(InvalidConfigError, match=f"aware datetime.*returned {returned}"):
        CallableProvider(lambda: ("AKIDCLOCK", "secret"), clock=clock)


def test_short_lived_callable_results_are_kept_for_half_their_life():
    """Credentials shorter-lived than the window are still reused, for half their lifetime."""
    clock = FakeClock()
    calls = []

    def fetch():
        calls.append(1)
        return Credentials(f"AKIDSHORT{len(calls)}", "short", None, clock() + timedelta(seconds=60))

    provider = CallableProvider(fetch, clock=clock)
    provider.get()
    clock.advance(timedelta(seconds=29))
    assert provider.get().access_key == "AKIDSHORT1"
    clock.advance(timedelta(seconds=2))
    assert provider.get().access_key == "AKIDSHORT2"


def test_callable_returning_expired_credentials_fails():
    """A provider function handing out already-expired credentials is reported, not used."""
    clock = FakeClock()
    provider = CallableProvider(
        lambda: Credentials("AKIDOLD", "old", None, clock() - timedelta(seconds=1)), clock=clock
    )
    with pytest.raises(CredentialsRefreshError, match="expired"):
        provider.get()


@pytest.mark.anyio
async def test_async_provider_runs_natively_once_for_concurrent_callers():
    """An async def provider runs on the loop (no thread), once for 100 concurrent callers."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    release = asyncio.Event()
    calls = []

    async def fetch():
        calls.append(1)
        await release.wait()
        return ("AKIDASYNC", "async-secret", "async-token")

    provider = resolve_provider(fetch)
    waiters = [asyncio.ensure_future(provider.aget()) for _ in range(100)]
    await asyncio.sleep(0)
    release.set()
    snapshots = await asyncio.gather(*waiters)
    assert {snapshot.access_key for snapshot in snapshots} == {"AKIDASYNC"}
    assert len(calls) == 1
    assert executor.submitted == 0


@pytest.mark.anyio
async def test_a_plain_function_returning_a_coroutine_is_run_off_the_loop():
    """A lambda around a coroutine function: its coroutine runs to completion on another loop."""
    caller = threading.get_ident()
    ran_on: list[int] = []

    async def fetch():
        ran_on.append(threading.get_ident())
        await asyncio.sleep(0)
        return ("AKIDWRAPPED", "secret")

    provider = CallableProvider(lambda: fetch())  # noqa: PLW0108 - the shape under test
    assert (await provider.aget()).access_key == "AKIDWRAPPED"
    assert CallableProvider(lambda: fetch()).get().access_key == "AKIDWRAPPED"  # noqa: PLW0108
    assert len(ran_on) == 2
    assert ran_on[0] != caller  # never on the caller's loop, which it would block


def test_async_provider_works_from_sync_code():
    """get() runs an async def provider to completion, with or without a running loop."""

    async def fetch():
        await asyncio.sleep(0)
        return ("AKIDASYNCSYNC", "secret")

    assert CallableProvider(fetch).get().access_key == "AKIDASYNCSYNC"

    async def inside_a_loop():
        return CallableProvider(fetch).get()

    assert asyncio.run(inside_a_loop()).access_key == "AKIDASYNCSYNC"


def test_async_provider_from_sync_code_leaves_the_threads_event_loop_set():
    """A sync app that set an event loop for its thread still has it after a signature."""

    async def fetch():
        return ("AKIDASYNCSYNC", "secret")

    def in_a_thread() -> bool:
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            CallableProvider(fetch).get()
            return asyncio.get_event_loop() is loop
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(in_a_thread).result(timeout=HANG_GUARD)


def test_async_provider_from_sync_code_cancels_the_tasks_it_left():
    """A task the function started and left running is cancelled when its loop ends, as
    asyncio.run cancels it, not destroyed pending.
    """
    ended: list[str] = []

    async def keep_alive() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    async def fetch():
        asyncio.get_running_loop().create_task(keep_alive())
        await asyncio.sleep(0)
        return ("AKIDASYNCSYNC", "secret")

    assert CallableProvider(fetch).get().access_key == "AKIDASYNCSYNC"
    assert ended == ["cancelled"]


@pytest.mark.anyio
async def test_sync_get_on_the_loop_thread_does_not_wait_for_that_loops_own_load():
    """get() on a loop's thread while that loop runs the async load loads separately, no hang."""
    started, release = asyncio.Event(), asyncio.Event()
    calls = []

    async def fetch():
        calls.append(1)
        number = len(calls)
        if number == 1:
            started.set()
            await release.wait()  # the load in flight on this loop, stuck until released
        return (f"AKIDLOAD{number}", "secret")

    provider = CallableProvider(fetch)
    in_flight = asyncio.ensure_future(provider.aget())
    await started.wait()
    assert provider.get().access_key == "AKIDLOAD2"
    release.set()
    assert (await in_flight).access_key == "AKIDLOAD1"


@pytest.mark.anyio
async def test_custom_provider_gets_a_thread_for_aget_by_default():
    """A CredentialsProvider subclass with only get() works with aget() via a worker thread."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)

    class Vault(CredentialsProvider):
        def get(self) -> Credentials:
            return Credentials("AKIDVAULT", "vault-secret")

    assert (await Vault().aget()).access_key == "AKIDVAULT"
    assert executor.submitted == 1


@pytest.mark.anyio
async def test_a_custom_provider_returning_a_key_tuple_signs_and_anything_else_is_named():
    """A CredentialsProvider subclass whose get() returns (key, secret) signs with those keys;
    one returning another type is refused naming its class, not an AttributeError at signing.
    """

    class TupleVault(CredentialsProvider):
        def get(self) -> Credentials:
            return ("AKIDTUPLEVAULT", "tuple-secret")  # type: ignore[return-value]

    class DictVault(CredentialsProvider):
        def get(self) -> Credentials:
            return {"AccessKeyId": "AKIDDICTVAULT", "SecretAccessKey": SECRET}  # type: ignore[return-value]

    auth = ApiGwIamAuth(region="us-east-1", credentials=TupleVault())
    secrets = {"AKIDTUPLEVAULT": "tuple-secret"}
    assert signed_key(auth.signer, secrets) == "AKIDTUPLEVAULT"
    assert await async_signed_key(auth, secrets) == "AKIDTUPLEVAULT"
    assert "TupleVault" in repr(auth.signer)
    refusing = SigV4Signer(region="us-east-1", credentials=DictVault())
    for call in (refusing.sign, refusing.presign):
        with pytest.raises(
            InvalidConfigError, match=r"DictVault\.get\(\) returned dict"
        ) as refused:
            call("GET", URL)
        assert SECRET not in str(refused.value)


@pytest.mark.parametrize("build", [SigV4Signer, ApiGwIamAuth], ids=["signer", "auth"])
def test_a_profile_that_is_not_a_str_is_refused_when_built(build):
    """profile=5 fails where it is written, not at the first signature."""
    with pytest.raises(InvalidConfigError, match="profile must be a str or None, got int"):
        build(region="us-east-1", profile=5)


def test_a_hand_built_chain_checks_its_providers_as_a_list_does():
    """ChainProvider([...]) holds custom providers to the same checks as credentials=[...]; an
    item that is no provider is refused when the chain is built, naming its place.
    """

    class TupleVault(CredentialsProvider):
        def get(self) -> Credentials:
            return ("AKIDTUPLEVAULT", "tuple-secret")  # type: ignore[return-value]

    assert ChainProvider([TupleVault()]).get().access_key == "AKIDTUPLEVAULT"
    with pytest.raises(InvalidConfigError, match=r"item 2 is a tuple") as refused:
        ChainProvider([TupleVault(), ("AKIDPLAIN", SECRET)])  # type: ignore[list-item]
    assert SECRET not in str(refused.value)


@pytest.mark.anyio
async def test_a_custom_provider_is_named_by_its_class_never_by_its_own_repr(caplog):
    """A provider written as a plain dataclass reprs its fields, secret and token among them:
    the auth's and signer's repr, the chain's DEBUG line and a failure name its class only.
    """
    caplog.set_level(logging.DEBUG, logger="apigw_iam_auth")

    @dataclass
    class KeysFromVault(CredentialsProvider):
        access_key: str
        secret_key: str
        token: str
        reachable: bool = True

        def get(self) -> Credentials:
            if not self.reachable:
                raise ConnectionError("vault unreachable")
            return Credentials(self.access_key, self.secret_key, self.token)

    token = "TOKEN-" + "t" * 40
    texts = []
    auth = ApiGwIamAuth(region="us-east-1", credentials=[KeysFromVault("AKIDVAULT", SECRET, token)])
    texts += [repr(auth), repr(auth.signer), str(auth.signer)]
    assert auth.signer.sign("GET", URL).headers["X-Amz-Security-Token"] == token
    unreachable = KeysFromVault("AKIDVAULT", SECRET, token, reachable=False)
    for call in (resolve_provider(unreachable).get, resolve_provider(unreachable).aget):
        with pytest.raises(CredentialsRefreshError, match=r"KeysFromVault.*failed") as failed:
            await call() if call.__name__ == "aget" else call()
        texts.append(str(failed.value))
    texts.append(caplog.text)
    assert "KeysFromVault" in texts[0]
    assert "supplies the credentials" in caplog.text
    everything = "\n".join(texts)
    assert SECRET not in everything
    assert token not in everything


@pytest.mark.anyio
async def test_a_custom_provider_that_fails_raises_our_error():
    """A CredentialsProvider subclass's failure is a CredentialsRefreshError, as a provider
    function's is, with the original chained. Its keys' expiry is judged by the signer's
    clock: keys valid at an injected time sign.
    """

    class Unreachable(CredentialsProvider):
        def get(self) -> Credentials:
            raise ConnectionError("vault unreachable")

    class Issued2015(CredentialsProvider):
        def get(self) -> Credentials:
            return Credentials(
                "AKIDOLD", SECRET, "token", datetime(2015, 8, 30, 13, tzinfo=timezone.utc)
            )

    for call in (resolve_provider(Unreachable()).get, resolve_provider(Unreachable()).aget):
        with pytest.raises(CredentialsRefreshError, match=r"Unreachable.*failed") as failed:
            await call() if call.__name__ == "aget" else call()
        assert isinstance(failed.value.__cause__, ConnectionError)
    then = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)
    signer = SigV4Signer(region="us-east-1", credentials=Issued2015(), clock=lambda: then)
    assert signer.sign("GET", URL).headers["X-Amz-Date"] == "20150830T123600Z"


def test_sync_function_returning_botocore_objects(aws_env):
    """A provider function may return a botocore session or credentials object."""
    write_profiles(aws_env)
    from_session = resolve_provider(lambda: botocore.session.Session(profile="ci")).get()
    assert from_session.access_key == "AKIDCI"
    plain = botocore.credentials.Credentials("AKIDFN", "fn-secret")
    assert resolve_provider(lambda: plain).get().access_key == "AKIDFN"


def test_chain_first_provider_with_credentials_wins_and_sticks():
    """Providers are tried in order; once one answers, the ones before it are not asked again."""
    asked = []

    def nothing():
        asked.append("nothing")

    chain = resolve_provider([nothing, None, ("AKIDCHAIN", "chain-secret")])
    assert isinstance(chain, ChainProvider)
    assert chain.get().access_key == "AKIDCHAIN"
    assert chain.get().access_key == "AKIDCHAIN"
    assert asked == ["nothing"]


def test_chain_with_default_chain_and_profile(aws_env):
    """profile= applies to the None inside a chain."""
    write_profiles(aws_env)
    chain = resolve_provider([lambda: None, None], profile="ci")
    assert chain.get().access_key == "AKIDCI"


def test_empty_chain_lists_every_provider_and_how_to_configure():
    """NoCredentialsError names each provider tried, why it gave nothing, and what to do."""

    def vault():
        return None

    with pytest.raises(NoCredentialsError) as caught:
        resolve_provider([vault, None]).get()
    message = str(caught.value)
    assert "tried 2 providers" in message
    assert "1. CallableProvider(" in message
    assert "vault) returned None" in message
    assert "2. BotocoreProvider(profile=None)" in message
    for method in ("env", "assume-role", "shared-credentials-file", "container-role", "iam-role"):
        assert method in message
    assert "AWS_ACCESS_KEY_ID" in message
    assert "aws sso login" in message


@pytest.mark.anyio
async def test_empty_chain_async_says_the_same():
    """aget() through a chain that finds nothing raises the same listing."""
    with pytest.raises(NoCredentialsError, match="tried 2 providers"):
        await resolve_provider([lambda: None, None]).aget()


def test_failing_provider_stops_the_chain_with_its_cause():
    """A provider that fails is not skipped: its exception is chained, later ones not tried."""
    later = []

    def broken():
        raise ConnectionError("vault unreachable")

    chain = resolve_provider([broken, lambda: later.append(1)])
    with pytest.raises(CredentialsRefreshError, match="ConnectionError") as caught:
        chain.get()
    assert isinstance(caught.value.__cause__, ConnectionError)
    assert later == []


# --- refresh ----------------------------------------------------------------------------------


def test_container_credentials_refresh_in_botocore_windows_not_per_signature(monkeypatch):
    """Refreshes happen at botocore's advisory and mandatory windows, once each, and verify."""
    clock = FakeClock()
    with running(clock=clock) as server:
        creds = container_credentials(server, monkeypatch, clock)
        signer = SigV4Signer(credentials=creds, region="us-east-1", clock=clock)

        def batch():
            return {signed_key(signer, server.secrets) for _ in range(20)}

        assert batch() == {"ASIAGEN000001"}
        clock.advance(timedelta(minutes=44))  # 16 minutes left: nothing due
        assert batch() == {"ASIAGEN000001"}
        assert server.calls["container"] == 1
        clock.advance(timedelta(minutes=2))  # 14 minutes left: botocore's advisory refresh
        assert batch() == {"ASIAGEN000002"}
        assert server.calls["container"] == 2
        clock.advance(timedelta(minutes=61))  # past the expiry: mandatory refresh
        assert batch() == {"ASIAGEN000003"}
        assert server.calls["container"] == 3


@pytest.mark.anyio
async def test_async_refresh_hops_to_a_thread_only_when_due(monkeypatch):
    """aget() reads botocore's snapshot inline; a refresh due is one hop for 100 callers.

    In botocore's advisory window nobody waits for it (botocore's own threads do not); in the
    mandatory window everybody does.
    """
    clock = FakeClock()
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    with running(clock=clock) as server:
        creds = container_credentials(server, monkeypatch, clock)
        auth = ApiGwIamAuth(region="us-east-1", credentials=creds, clock=clock)

        async def batch():
            tasks = (async_signed_key(auth, server.secrets) for _ in range(100))
            return set(await asyncio.gather(*tasks))

        assert await batch() == {"ASIAGEN000001"}
        assert executor.submitted == 0
        server.hold = threading.Event()
        clock.advance(timedelta(minutes=46))  # 14 minutes left: botocore's advisory window
        try:
            assert await asyncio.wait_for(batch(), HANG_GUARD) == {"ASIAGEN000001"}
            assert executor.submitted == 1  # the refresh, started aside and held by the server
        finally:
            server.hold.set()
        await asyncio.wrap_future(executor.jobs[0])
        assert await batch() == {"ASIAGEN000002"}
        assert server.calls["container"] == 2
        clock.advance(timedelta(minutes=61))  # past the second key's expiry: mandatory
        assert await batch() == {"ASIAGEN000003"}
        assert server.calls["container"] == 3  # one load for the 100 waiting callers
        # One hop for that load; a caller that saw the refresh due just before it was published
        # may hop once more, to find botocore's new keys without I/O.
        assert executor.submitted in {2, 3}


def test_presigned_url_expiry_is_capped_to_the_credentials_lifetime(monkeypatch):
    """A presigned URL never outlives its session credentials; expired ones are refused."""
    clock = FakeClock()
    with running(clock=clock, lifetime=timedelta(minutes=20)) as server:
        creds = container_credentials(server, monkeypatch, clock)
        creds._advisory_refresh_timeout = 5 * 60  # keep 20-minute credentials outside the window
        creds._mandatory_refresh_timeout = 2 * 60
        signer = SigV4Signer(credentials=creds, region="us-east-1", clock=clock)

        def expires_of(url):
            return parse_qs(urlsplit(url).query)["X-Amz-Expires"]

        assert expires_of(signer.presign("GET", URL, expires=3600)) == ["1200"]
        assert expires_of(signer.presign("GET", URL, expires=600)) == ["600"]
        assert server.calls["container"] == 1
    stale = Credentials("AKIDSTALE", "stale", "tok", clock() - timedelta(seconds=1))
    with pytest.raises(CredentialsError, match="expire before"):
        SigV4Signer(credentials=stale, region="us-east-1", clock=clock).presign("GET", URL)


# --- concurrency ------------------------------------------------------------------------------


def rotating_function(server: CredentialServer, clock: FakeClock):
    """A provider function fetching from the server; its credentials live 10 clock seconds."""

    def fetch() -> Credentials:
        with urllib.request.urlopen(server.container_url, timeout=5) as response:  # noqa: S310
            body = json.loads(response.read())
        expiry = clock() + timedelta(seconds=10)
        return Credentials(body["AccessKeyId"], body["SecretAccessKey"], body["Token"], expiry)

    return fetch


@pytest.mark.parametrize("source", ["container", "function"])
def test_threads_and_tasks_never_sign_with_torn_credentials(monkeypatch, source):
    """8 threads and 500 tasks share one auth while credentials rotate; every signature verifies."""
    clock = FakeClock()
    # container: five-minute credentials sit inside botocore's mandatory window, so every
    # snapshot refreshes. function: each signature moves the clock 1 s, the function's
    # credentials live 10 s and are replaced after 5 (half their life).
    with running(lifetime=timedelta(minutes=5)) as server:
        if source == "container":
            monkeypatch.setenv(FULL_URI, server.container_url)
            auth = ApiGwIamAuth(region="us-east-1")
        else:
            provider = CallableProvider(rotating_function(server, clock), clock=clock)
            auth = ApiGwIamAuth(region="us-east-1", credentials=provider)
        thread_keys: list[str] = []
        start = threading.Barrier(9)

        def thread_worker():
            start.wait()
            for _ in range(40):
                thread_keys.append(signed_key(auth.signer, server.secrets))
                clock.advance(timedelta(seconds=1))

        async def task_worker():
            keys = []
            for _ in range(2):
                keys.append(await async_signed_key(auth, server.secrets))
                clock.advance(timedelta(seconds=1))
                await asyncio.sleep(0)
            return keys

        async def tasks():
            start.wait()
            return await asyncio.gather(*(task_worker() for _ in range(500)))

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(thread_worker) for _ in range(8)]
            task_keys = [key for keys in asyncio.run(tasks()) for key in keys]
            for future in futures:
                future.result()
    signatures = len(thread_keys) + len(task_keys)
    assert signatures == 8 * 40 + 500 * 2
    assert len(set(thread_keys)) > 10  # credentials really rotated under the threads
    assert len(set(task_keys)) >= 2  # and between the tasks' rounds
    assert len(server.secrets) < signatures  # refreshes were shared, not one per signature


def test_threads_share_one_slow_first_resolution(monkeypatch):
    """Eight threads asking at once during a slow fetch cause one fetch between them."""
    with running(delay=0.3) as server:
        monkeypatch.setenv(FULL_URI, server.container_url)
        provider = resolve_provider(None)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            keys = set(pool.map(lambda _: provider.get().access_key, range(8)))
    assert keys == {"ASIAGEN000001"}
    assert server.calls["container"] == 1


def test_loops_in_several_threads_and_a_sync_thread_share_one_refresh(monkeypatch):
    """Tasks on two event loops and a plain thread join the same in-flight fetch."""
    with running(delay=0.3) as server:
        monkeypatch.setenv(FULL_URI, server.container_url)
        provider = resolve_provider(None)
        start = threading.Barrier(3)

        async def many():
            return {snapshot.access_key for snapshot in await gather_aget(provider, 20)}

        def on_a_loop():
            start.wait()
            return asyncio.run(many())

        def plain():
            start.wait()
            return {provider.get().access_key}

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            results = [pool.submit(on_a_loop), pool.submit(on_a_loop), pool.submit(plain)]
            keys = set().union(*(future.result() for future in results))
    assert keys == {"ASIAGEN000001"}
    assert server.calls["container"] == 1


async def gather_aget(provider: CredentialsProvider, count: int) -> list[Credentials]:
    return await asyncio.gather(*(provider.aget() for _ in range(count)))


@pytest.mark.anyio
async def test_event_loop_keeps_running_while_credentials_load(monkeypatch):
    """A credential fetch held at the endpoint never holds the loop, and is made once for 100
    callers: this test's own steps run while it is held (a fetch on the loop's thread would
    stop them). How long the loop goes without running is measured in
    bench/bench_aiohttp.py, part 4.
    """
    with running() as server:
        server.hold = threading.Event()
        monkeypatch.setenv(FULL_URI, server.container_url)
        provider = resolve_provider(None)
        callers = asyncio.ensure_future(gather_aget(provider, 100))
        await asyncio.to_thread(server.wait_for_calls, "arrived", 1)  # held at the endpoint
        assert not callers.done()
        server.hold.set()
        snapshots = await callers
    assert {snapshot.access_key for snapshot in snapshots} == {"ASIAGEN000001"}
    assert server.calls["container"] == 1


@pytest.mark.anyio
async def test_cancelled_waiter_does_not_cancel_the_shared_refresh(monkeypatch):
    """Cancelling one task waiting for credentials leaves the others' refresh running."""
    with running() as server:
        server.hold = threading.Event()  # the endpoint answers once the first waiter is gone
        monkeypatch.setenv(FULL_URI, server.container_url)
        provider = resolve_provider(None)
        first = asyncio.ensure_future(provider.aget())
        second = asyncio.ensure_future(provider.aget())
        # Both waiters have joined the load once its request reached the endpoint: they ran
        # before the loop could hear of it.
        await asyncio.to_thread(server.wait_for_calls, "arrived", 1)
        first.cancel()
        server.hold.set()
        snapshot = await second
        with pytest.raises(asyncio.CancelledError):
            await first
    assert snapshot.access_key == "ASIAGEN000001"
    assert server.calls["container"] == 1


# --- an async load whose event loop stops first ----------------------------------------------

# Forking tests run wherever os.fork exists (Linux and macOS, so every CI cell); not on Windows.


def two_step_function(first_started: threading.Event, calls: list[int]):
    """An ``async def`` provider function: its first call never ends, its second answers."""

    async def fetch() -> tuple[str, str]:
        calls.append(1)
        if len(calls) == 1:
            first_started.set()
            await asyncio.Event().wait()  # ended only by its loop going away
        return (f"AKIDLOAD{len(calls)}", "secret")

    return fetch


def get_in_a_thread(provider: CallableProvider) -> Credentials:
    """``provider.get()`` in a daemon thread: a hang fails the test instead of stopping pytest."""
    result: concurrent.futures.Future[Credentials] = concurrent.futures.Future()
    threading.Thread(target=lambda: result.set_result(provider.get()), daemon=True).start()
    return result.result(timeout=HANG_GUARD)


def test_an_async_load_cancelled_before_its_first_step_is_started_again():
    """``asyncio.run`` cancels a load task it never ran: the next caller loads, not hangs."""
    calls: list[int] = []

    async def fetch() -> tuple[str, str]:
        calls.append(1)
        return ("AKIDWARM", "secret")

    provider = CallableProvider(fetch)

    async def warm_up_and_leave() -> None:
        asyncio.create_task(provider.aget())  # noqa: RUF006 - left behind on purpose

    asyncio.run(warm_up_and_leave())
    assert calls == []  # the load task was cancelled before it ran
    assert get_in_a_thread(provider).access_key == "AKIDWARM"
    assert calls == [1]


@contextlib.contextmanager
def load_left_pending(
    provider: CallableProvider, loop: asyncio.AbstractEventLoop, started: threading.Event, then: str
) -> Iterator[None]:
    """An ``aget()`` given up once its load has started; the loop then closed or only stopped.

    On exit the pending load task is cancelled on a stopped loop (and the loop closed), or
    left to be destroyed with a closed one.
    """

    async def give_up_once_loading() -> None:
        waiter = asyncio.ensure_future(provider.aget())
        assert await asyncio.to_thread(started.wait, HANG_GUARD)
        waiter.cancel()

    loop.run_until_complete(give_up_once_loading())
    pending = asyncio.all_tasks(loop)
    if then == "closed":
        loop.close()
    try:
        yield
    finally:
        if then == "closed":
            for task in pending:  # asyncio's "destroyed but pending" log line: meant so
                task._log_destroy_pending = False
        else:
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()


@pytest.mark.parametrize("then", ["closed", "stopped"])
def test_an_async_load_left_pending_on_a_loop_stopped_by_hand_is_started_again(then):
    """run_until_complete returned with the load pending, and the loop was closed or is only
    stopped: later callers, sync or async, load anew instead of waiting for good.
    """
    first_started, calls = threading.Event(), []
    provider = CallableProvider(two_step_function(first_started, calls))
    loop = asyncio.new_event_loop()
    with load_left_pending(provider, loop, first_started, then):
        assert get_in_a_thread(provider).access_key == "AKIDLOAD2"
        assert asyncio.run(provider.aget()).access_key == "AKIDLOAD2"
        # The load task is let go once its loop is closed, kept while the loop may run again.
        kept = [task for task in apigw_iam_auth.credentials._TASKS if task.get_loop() is loop]
        assert bool(kept) == (then == "stopped")


def test_a_thread_already_waiting_when_the_loading_loop_closes_loads_again(monkeypatch):
    """A thread blocked on a native load notices its loop closed, and loads for itself."""
    first_started, calls = threading.Event(), []
    provider = CallableProvider(two_step_function(first_started, calls))
    waiting = threading.Event()
    plain_wait = _Flight._wait

    def noted_wait(flight, future):
        waiting.set()
        return plain_wait(flight, future)

    monkeypatch.setattr(_Flight, "_wait", noted_wait)
    result: concurrent.futures.Future[Credentials] = concurrent.futures.Future()
    loop = asyncio.new_event_loop()

    async def leave_a_thread_waiting() -> None:
        waiter = asyncio.ensure_future(provider.aget())
        assert await asyncio.to_thread(first_started.wait, HANG_GUARD)
        getter = threading.Thread(target=lambda: result.set_result(provider.get()), daemon=True)
        getter.start()
        assert await asyncio.to_thread(waiting.wait, HANG_GUARD)
        waiter.cancel()

    loop.run_until_complete(leave_a_thread_waiting())
    load = next(iter(asyncio.all_tasks(loop)))
    loop.close()
    assert result.result(timeout=HANG_GUARD).access_key == "AKIDLOAD2"
    load._log_destroy_pending = False  # asyncio's "destroyed but pending" log line: meant so


def test_waiters_of_an_async_load_whose_loop_ends_load_again():
    """The loop that started a load ends (``asyncio.run`` returns): a task waiting on another
    loop is not told "cancelled" but loads the credentials itself.
    """
    first_started, calls = threading.Event(), []
    provider = CallableProvider(two_step_function(first_started, calls))
    other_joined = threading.Event()

    async def start_then_leave() -> None:
        loading = asyncio.ensure_future(provider.aget())
        await asyncio.to_thread(other_joined.wait, HANG_GUARD)
        assert not loading.done()  # asyncio.run cancels it, and the load, on the way out

    async def join_the_load() -> Credentials:
        waiter = asyncio.ensure_future(provider.aget())
        await asyncio.sleep(0)  # one step: the waiter has joined the load in flight
        assert not waiter.done()
        other_joined.set()
        return await waiter

    starter = threading.Thread(target=asyncio.run, args=(start_then_leave(),), daemon=True)
    starter.start()
    assert first_started.wait(HANG_GUARD)
    snapshot = asyncio.run(asyncio.wait_for(join_the_load(), HANG_GUARD))
    starter.join(HANG_GUARD)
    assert snapshot.access_key == "AKIDLOAD2"
    assert len(calls) == 2


@NEEDS_FORK
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.parametrize("source", ["function", "default-chain"])
def test_a_forked_child_loads_again_instead_of_waiting_for_its_parents_load(source):
    """A load in flight in a parent thread at fork time (gunicorn --preload, multiprocessing's
    fork): the child, which has no such thread, loads for itself instead of waiting for good.
    """
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def fetch() -> botocore.credentials.Credentials:
        calls.append(1)
        if len(calls) == 1:  # the parent's load, held until the child has ended
            started.set()
            assert release.wait(2 * HANG_GUARD)  # outlasts the child's own guard
        return botocore.credentials.Credentials(f"AKIDFORK{len(calls)}", "fork-secret")

    class Session:
        def get_credentials(self) -> botocore.credentials.Credentials:
            return fetch()

    provider = (
        CallableProvider(fetch) if source == "function" else BotocoreProvider(session=Session())
    )
    assert_a_forked_child_loads_for_itself(provider, started, release)
    assert len(calls) == 1


def assert_a_forked_child_loads_for_itself(
    provider: CredentialsProvider, started: threading.Event, release: threading.Event
) -> None:
    """Fork while a parent thread is inside ``provider.get()``, which its source holds until
    ``release``: the child gets AKIDFORK2 by loading itself; the parent thread gets AKIDFORK1.
    """
    parent_load = threading.Thread(target=provider.get, daemon=True)
    parent_load.start()
    assert started.wait(HANG_GUARD)
    try:
        outcome = in_a_forked_child(lambda: provider.get().access_key == "AKIDFORK2")
    finally:
        release.set()
        parent_load.join(HANG_GUARD)
    assert outcome == HELD  # HUNG: the child waited for its parent's load
    assert provider.get().access_key == "AKIDFORK1"  # the parent's own load, unaffected


@NEEDS_FORK
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_refreshes_although_a_parent_thread_held_botocores_refresh_lock():
    """botocore's refreshable credentials refresh under a lock: held by a parent thread at fork
    time, it would be held in the child for good, and the child's first refresh would hang.
    """
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def refresh() -> dict[str, str]:
        calls.append(1)
        if len(calls) == 1:  # the parent's refresh, holding the lock until the child has ended
            started.set()
            assert release.wait(2 * HANG_GUARD)
        expiry = datetime.now(timezone.utc) + timedelta(hours=1)
        return {
            "access_key": f"AKIDFORK{len(calls)}",
            "secret_key": "fork-secret",
            "token": "fork-token",
            "expiry_time": expiry.isoformat(),
        }

    soon = datetime.now(timezone.utc) + timedelta(minutes=1)  # in botocore's mandatory window
    metadata = {
        "access_key": "AKIDFORK0",
        "secret_key": "s",
        "token": "t",
        "expiry_time": soon.isoformat(),
    }
    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        metadata, refresh, "custom-process"
    )
    assert_a_forked_child_loads_for_itself(resolve_provider(credentials), started, release)


@NEEDS_FORK
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_of_plain_botocore_credentials_warns_nothing():
    """Plain (never refreshing) botocore credentials have no refresh lock to free in a child:
    forking warns nothing (no false "please report this").
    """
    provider = resolve_provider(botocore.credentials.Credentials("AKIDPLAIN", SECRET))
    assert provider.get().access_key == "AKIDPLAIN"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = in_a_forked_child(lambda: provider.get().access_key == "AKIDPLAIN" and not caught)
    assert outcome == HELD  # FAILED: the child was warned


@pytest.mark.parametrize("call", ["aget", "get"])
def test_an_async_provider_cancelled_from_inside_fails_once_as_itself(call):
    """A function whose own await is cancelled (an inner task someone cancelled) fails, once,
    saying so: not a load abandoned by its stopping loop and tried twice more.
    """
    calls = []

    async def fetch() -> Credentials:
        calls.append(1)
        inner = asyncio.ensure_future(asyncio.Event().wait())
        inner.cancel()
        await inner  # raises CancelledError in fetch: its own, its loop runs on
        raise AssertionError  # not reached

    provider = CallableProvider(fetch)
    if call == "aget" and sys.version_info < (3, 11):
        # No Task.cancelling() to tell the two apart: taken for a load its stopping loop
        # abandoned, as the code says 3.10 does, and tried as often as such a load is.
        with pytest.raises(CredentialsRefreshError, match="abandoned 3 times"):
            asyncio.run(provider.aget())
        assert calls == [1, 1, 1]
        return
    with pytest.raises(
        CredentialsRefreshError, match=r"fetch\) was cancelled by something"
    ) as failed:
        asyncio.run(provider.aget()) if call == "aget" else provider.get()
    assert isinstance(failed.value.__cause__, asyncio.CancelledError)
    assert calls == [1]


# --- secrets never leak -----------------------------------------------------------------------


def test_no_secret_or_token_in_messages_reprs_or_logs(aws_env, monkeypatch, caplog, capsys):
    """Everything captured across providers, refreshes and failures is free of secrets."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    secrets = ["env-secret-LEAKCHECK", "env-token-LEAKCHECK", "fn-secret-LEAKCHECK"]
    clock = FakeClock()
    with running(clock=clock) as server:
        creds = container_credentials(server, monkeypatch, clock)
        container_auth = ApiGwIamAuth(region="us-east-1", credentials=creds, clock=clock)
        container_auth.signer.sign("GET", URL)
        clock.advance(timedelta(hours=2))
        container_auth.signer.sign("GET", URL)
        secrets += list(server.secrets.values()) + list(server.tokens.values())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLEAK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secrets[0])
    monkeypatch.setenv("AWS_SESSION_TOKEN", secrets[1])
    env_signer = SigV4Signer(region="us-east-1")
    env_signer.sign("GET", URL)
    fn_provider = resolve_provider(lambda: ("AKIDFN", secrets[2], secrets[1]))
    fn_provider.get()
    process_profile(aws_env, "fail")
    with pytest.raises(CredentialsRefreshError) as failed:
        SigV4Signer(region="us-east-1", profile="proc").sign("GET", URL)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", FULL_URI):
        monkeypatch.delenv(name)
    with pytest.raises(NoCredentialsError) as nothing:
        resolve_provider([lambda: None, None]).get()
    for item in (env_signer, container_auth, creds, fn_provider, fn_provider.get(), failed.value):
        texts += [repr(item), str(item)]
    texts += [str(nothing.value), repr(nothing.value), repr(container_auth.signer)]
    texts += [
        repr(env_signer._credentials),
        repr(container_auth.signer._credentials),
    ]
    captured = capsys.readouterr()
    everything = "\n".join([*texts, caplog.text, captured.out, captured.err])
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("apigw_iam_auth")]
    assert any("method='container-role'" in message for message in ours)  # logging did run
    for secret in secrets:
        assert secret not in everything


class FlakyFetch:
    """A credentials function that hands out numbered keys, or fails while told to."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.failing = False
        self.calls = 0

    def keys(self) -> Credentials:
        self.calls += 1
        if self.failing:
            raise ConnectionError("vault unreachable")
        number = self.calls
        return Credentials(f"AKIDFLAKY{number}", f"flaky-{number}", None, self.clock() + HOUR)

    async def akeys(self) -> Credentials:
        return self.keys()


HOUR = timedelta(hours=1)
FLAKY_SECRETS = {f"AKIDFLAKY{number}": f"flaky-{number}" for number in range(1, 10)}


@pytest.mark.parametrize("native", [False, True], ids=["function", "async-def"])
@pytest.mark.anyio
async def test_a_failed_refresh_keeps_the_cached_keys_for_half_the_window(caplog, native):
    """As botocore's advisory window: a refresh that fails early on is retried, not raised.

    Keys of one hour, window 5 minutes: the refresh is due at 55 minutes. Failing at 55 and at
    57:29 (more than half the window left) the cached keys sign, with a warning, and the
    function is not called again for 10 seconds; at 57:31 the failure is raised; once the
    function answers again its new keys sign.
    """
    clock = FakeClock()
    fetch = FlakyFetch(clock)
    provider = CallableProvider(fetch.akeys if native else fetch.keys, clock=clock)
    auth = ApiGwIamAuth(region="us-east-1", credentials=provider)
    assert await async_signed_key(auth, FLAKY_SECRETS) == "AKIDFLAKY1"
    fetch.failing = True
    # 55:00, then 57:29 (2:19 after the second try, at 55:10).
    for offset in (timedelta(minutes=55), timedelta(minutes=2, seconds=19)):
        clock.advance(offset)
        with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
            caplog.clear()
            assert await async_signed_key(auth, FLAKY_SECRETS) == "AKIDFLAKY1"
            assert signed_key(auth.signer, FLAKY_SECRETS) == "AKIDFLAKY1"
        warned = [record.getMessage() for record in caplog.records]
        assert len(warned) == 1  # one try, then a pause: the second signature did not call it
        assert "ConnectionError" in warned[0]
        assert "keeping the keys" in warned[0]
        if offset == timedelta(minutes=55):
            calls = fetch.calls
            clock.advance(timedelta(seconds=9))
            assert signed_key(auth.signer, FLAKY_SECRETS) == "AKIDFLAKY1"
            assert fetch.calls == calls
            clock.advance(timedelta(seconds=1))
            assert signed_key(auth.signer, FLAKY_SECRETS) == "AKIDFLAKY1"
            assert fetch.calls == calls + 1  # tried again after the pause
    clock.advance(timedelta(seconds=2))
    with pytest.raises(CredentialsRefreshError, match=r"FlakyFetch.*ConnectionError"):
        provider.get()
    with pytest.raises(CredentialsRefreshError, match=r"FlakyFetch.*ConnectionError"):
        await provider.aget()
    fetch.failing = False
    calls = fetch.calls
    assert await async_signed_key(auth, FLAKY_SECRETS) == f"AKIDFLAKY{calls + 1}"
    assert signed_key(auth.signer, FLAKY_SECRETS) == f"AKIDFLAKY{calls + 1}"


def test_in_the_first_half_of_the_window_only_the_refreshing_caller_waits():
    """While a slow refresh runs, others sign with the cached keys; past half the window, wait.

    The function holds its second call until released. Meanwhile a thread and a task find the
    refresh in flight at 55:00 and go on with the cached keys; at 57:31 a caller waits for it,
    and gets the new keys.
    """
    clock = FakeClock()
    started, release = threading.Event(), threading.Event()
    calls = []

    def fetch() -> Credentials:
        calls.append(1)
        if len(calls) > 1:
            started.set()
            assert release.wait(30)
        number = len(calls)
        return Credentials(f"AKIDSLOW{number}", f"slow-{number}", None, clock() + HOUR)

    provider = CallableProvider(fetch, clock=clock)
    assert provider.get().access_key == "AKIDSLOW1"
    clock.advance(timedelta(minutes=55))
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        refreshing = pool.submit(provider.get)
        assert started.wait(30)
        assert pool.submit(provider.get).result(timeout=30).access_key == "AKIDSLOW1"
        meanwhile = pool.submit(asyncio.run, provider.aget())
        assert meanwhile.result(timeout=30).access_key == "AKIDSLOW1"
        clock.advance(timedelta(minutes=2, seconds=31))
        waiting = pool.submit(provider.get)
        release.set()
        assert refreshing.result(timeout=30).access_key == "AKIDSLOW2"
        assert waiting.result(timeout=30).access_key == "AKIDSLOW2"
    assert len(calls) == 2


@pytest.mark.parametrize("then", ["closed", "stopped"])
def test_a_refresh_stranded_on_a_stopped_loop_is_started_again_in_the_window(then):
    """A refresh left pending on a loop stopped by hand is not taken for one in flight.

    In the first half of the window callers that find a refresh running go on with the cached
    keys; one whose loop will never run it again is dropped, and the next caller refreshes.
    """
    clock = FakeClock()
    started, calls = threading.Event(), []

    async def fetch() -> Credentials:
        calls.append(1)
        if len(calls) == 2:
            started.set()
            await asyncio.Event().wait()  # a refresh that only its loop could end
        number = len(calls)
        return Credentials(f"AKIDSTRAND{number}", f"strand-{number}", None, clock() + HOUR)

    provider = CallableProvider(fetch, clock=clock)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(provider.aget()).access_key == "AKIDSTRAND1"
    clock.advance(timedelta(minutes=55))
    with load_left_pending(provider, loop, started, then):
        assert get_in_a_thread(provider).access_key == "AKIDSTRAND3"
        assert asyncio.run(provider.aget()).access_key == "AKIDSTRAND3"
        assert len(calls) == 3


def test_a_refresh_returning_expired_keys_keeps_the_cached_ones_in_the_window(caplog):
    """Expired keys handed back by a refresh are a failed refresh: kept as any other failure."""
    clock = FakeClock()
    calls = []

    def fetch() -> Credentials:
        calls.append(1)
        expiry = clock() + (HOUR if len(calls) == 1 else -timedelta(seconds=1))
        return Credentials("AKIDEXPIRY", "expiry-secret", None, expiry)

    provider = CallableProvider(fetch, clock=clock)
    provider.get()
    clock.advance(timedelta(minutes=55))
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        assert provider.get().expiry > clock()
    assert "returned credentials that expired" in caplog.text
    clock.advance(timedelta(minutes=3))
    with pytest.raises(CredentialsRefreshError, match="returned credentials that expired"):
        provider.get()


def _BUILT_BAD() -> Credentials:  # noqa: N802 - a case id, as the values beside it
    """The function builds the snapshot itself from what its vault handed over: a bad secret."""
    return Credentials("AKIDBAD", "vault-secret\n", None)


def _SAID_NOTHING() -> Credentials:  # noqa: N802
    raise NoCredentialsError("the vault had nothing for this role")


@pytest.mark.parametrize("native", [False, True], ids=["function", "async-def"])
@pytest.mark.parametrize(
    "returned",
    [("AKIDBAD", ""), {"error": "vault sealed"}, None, _BUILT_BAD, _SAID_NOTHING],
    ids=["empty", "dict", "none", "built-refused", "raised-nothing-found"],
)
def test_a_refresh_returning_what_cannot_sign_keeps_the_cached_keys_in_the_window(
    caplog, native, returned
):
    """A refresh result that cannot sign is a failed refresh, as a raised error is: the cached
    keys sign with a WARNING, the function is tried again 10 seconds later (not per call), and
    past half the window the result's own error is raised.
    """
    clock = FakeClock()
    calls = []

    def fetch() -> object:
        calls.append(1)
        if calls == [1]:
            return Credentials("AKIDGOOD", "good-secret", None, clock() + HOUR)
        return returned() if callable(returned) else returned

    async def afetch() -> object:
        return fetch()

    provider = CallableProvider(afetch if native else fetch, clock=clock)

    def get() -> Credentials:
        return asyncio.run(provider.aget()) if native else provider.get()

    get()
    clock.advance(timedelta(minutes=55))
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        assert get().access_key == "AKIDGOOD"
        assert get().access_key == "AKIDGOOD"
    assert len(calls) == 2  # one try, then a pause
    assert "CallableProvider" in caplog.text
    assert "keeping the keys" in caplog.text
    clock.advance(timedelta(seconds=10))
    assert get().access_key == "AKIDGOOD"
    assert len(calls) == 3  # tried again after the pause
    clock.advance(timedelta(minutes=3))
    raised_by_the_function = callable(returned)
    with pytest.raises(
        (InvalidConfigError, NoCredentialsError),
        match="vault|secret key" if raised_by_the_function else "CallableProvider",
    ):
        get()
    assert "good-secret" not in caplog.text


def test_a_secret_chained_behind_a_failure_reaches_no_log_or_traceback(caplog):
    """``raise ... from KeyError(body)``: the cause quotes the credentials, so it is not chained."""
    clock = FakeClock()
    failing = []
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS documentation example

    def fetch() -> Credentials:
        if failing:
            body = f'{{"AccessKeyId": "AKIDCHAIN", "SecretAccessKey": "{secret}", "Exp'
            raise RuntimeError("the vault answered garbage") from KeyError(body)
        return Credentials("AKIDCHAIN", "chain-secret", None, clock() + HOUR)

    provider = CallableProvider(fetch, clock=clock)
    provider.get()
    failing.append(1)
    clock.advance(timedelta(minutes=55))
    with caplog.at_level(logging.DEBUG, logger="apigw_iam_auth"):
        assert provider.get().access_key == "AKIDCHAIN"  # kept, with a warning
    clock.advance(timedelta(minutes=3))
    with pytest.raises(CredentialsRefreshError, match="not chained") as raised:
        provider.get()
    printed = "".join(traceback.format_exception(raised.value)) + caplog.text
    assert "RuntimeError" in printed
    assert secret not in printed


@pytest.mark.parametrize("where", ["group-member", "note"])
def test_a_secret_in_an_exception_group_or_a_note_reaches_no_log_or_traceback(caplog, where):
    """A failed task of a TaskGroup or a note quoting the vault's answer: the error is not chained.

    Python 3.10 has neither in the language; the ``exceptiongroup`` backport (pytest's own
    dependency there) gives the group, and teaches tracebacks to print groups and notes.
    """
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"  # AWS documentation example
    body = f'{{"AccessKeyId": "AKIDGROUP", "SecretAccessKey": "{secret}", "Expiration": "x"}}'
    group_type = (
        ExceptionGroup  # noqa: F821 - a builtin from 3.11 on
        if sys.version_info >= (3, 11)
        else importlib.import_module("exceptiongroup").ExceptionGroup
    )

    async def in_a_task_group() -> Credentials:  # what asyncio.TaskGroup raises for a failed task
        raise group_type("unhandled errors", [ValueError(f"could not parse: {body}")])

    def noted() -> Credentials:
        error = RuntimeError("could not parse the vault's answer")
        error.__notes__ = [body]  # what add_note() (3.11+) does
        raise error

    provider = CallableProvider(in_a_task_group if where == "group-member" else noted)
    with pytest.raises(CredentialsRefreshError, match="not chained") as raised:
        asyncio.run(provider.aget())
    logging.getLogger("app").error("signing failed", exc_info=raised.value)
    printed = "".join(traceback.format_exception(raised.value)) + caplog.text
    assert "CallableProvider" in printed
    assert secret not in printed


def test_a_load_aget_starts_does_not_queue_behind_the_threads_waiting_for_it():
    """aget() starts the load; every thread of the loop's default executor then waits for it
    in get(). The load must not need one of those threads, or nobody is ever answered.
    """
    calls: list[int] = []
    keys = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

    def fetch() -> tuple[str, str]:
        calls.append(1)
        return keys

    provider = CallableProvider(fetch)

    async def scenario() -> list[Credentials]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        started, go = asyncio.Event(), threading.Event()
        waiting = [0]

        def sync_caller() -> Credentials:
            waiting[0] += 1
            if waiting[0] == 2:  # both executor threads are taken
                loop.call_soon_threadsafe(started.set)
            go.wait()
            return provider.get()

        threads = [loop.run_in_executor(None, sync_caller) for _ in range(2)]
        await started.wait()
        first = asyncio.ensure_future(provider.aget())
        await asyncio.sleep(0)  # one step of that task: it claims the load and starts it
        go.set()
        try:
            return await asyncio.wait_for(asyncio.gather(first, *threads), timeout=30)
        except asyncio.TimeoutError:
            flight = provider._flight  # release the stuck threads, then fail
            flight._finish(flight._future, None, RuntimeError("stuck"))
            pytest.fail("the load waited for an executor thread held by its own waiters")

    results = asyncio.run(scenario())
    assert calls == [1]
    assert {result.access_key for result in results} == {keys[0]}


class LockedVault:
    """A user's credential source holding a lock (which cannot be copied), counting fetches."""

    def __init__(self) -> None:
        self.lock, self.fetches = threading.Lock(), 0

    def credentials(self) -> tuple[str, str]:
        with self.lock:
            self.fetches += 1
        return ("AKIDVAULT", "vault-secret")


class VaultProvider(CredentialsProvider):
    def __init__(self, vault: LockedVault) -> None:
        self.vault = vault

    def get(self) -> Credentials:
        return Credentials(*self.vault.credentials())


@pytest.mark.parametrize("wrap", [lambda vault: vault.credentials, VaultProvider])
def test_a_deep_copy_shares_the_users_credential_source(wrap):
    """copy.deepcopy of an auth built on a function or a provider of the user's shares it."""
    vault = LockedVault()
    auth = ApiGwIamAuth(region="us-east-1", credentials=wrap(vault))
    clone = copy.deepcopy(auth)
    request = next(clone.sync_auth_flow(httpx.Request("GET", "https://h.example/p")))
    assert "Credential=AKIDVAULT/" in request.headers["Authorization"]
    assert vault.fetches == 1


def test_a_provider_returning_botocores_credentials_is_told_which_credentials_it_returned():
    """Both classes are called Credentials: the message names each by its module."""

    class Mine(CredentialsProvider):
        def get(self) -> Credentials:
            return botocore.credentials.Credentials("AKIDEXAMPLE", "secret")  # type: ignore[return-value]

    auth = ApiGwIamAuth(region="us-east-1", credentials=Mine())
    with pytest.raises(InvalidConfigError) as caught:
        next(auth.sync_auth_flow(httpx.Request("GET", "https://h.example/p")))
    message = str(caught.value)
    assert "returned botocore.credentials.Credentials;" in message
    assert "returns apigw_iam_auth.Credentials(" in message
    assert "get_frozen_credentials()" in message


def test_a_kept_refresh_failure_of_our_own_type_logs_no_secret_it_chains(caplog):
    """A provider function may raise our CredentialsRefreshError from its vault's raw answer:
    in the keep window, the WARNING that keeps the old keys carries neither that answer nor
    its traceback, while a chain that quotes nothing is still logged whole.
    """
    clock = FakeClock()
    answers = []
    body = f'{{"AccessKeyId": "AKIDVAULT", "SecretAccessKey": "{SECRET}"}}'

    def fetch() -> Credentials:
        answers.append(1)
        if len(answers) == 1:
            return Credentials("AKIDVAULT", SECRET, None, clock() + HOUR)
        quoted = body if len(answers) == 2 else "status 503"
        cause = ValueError(f"unexpected vault answer: {quoted}")
        raise CredentialsRefreshError("vault is sealed") from cause

    provider = CallableProvider(fetch, clock=clock)
    provider.get()
    clock.advance(timedelta(minutes=55))
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        assert provider.get().access_key == "AKIDVAULT"
    assert "vault is sealed; keeping the keys" in caplog.text
    assert SECRET not in caplog.text
    assert "unexpected vault answer" not in caplog.text
    caplog.clear()
    clock.advance(timedelta(seconds=10))
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        assert provider.get().access_key == "AKIDVAULT"
    assert "unexpected vault answer: status 503" in caplog.text  # the cause, logged as before


@pytest.mark.usefixtures("aws_env")  # nothing configured: botocore finds nothing
def test_a_chain_within_a_chain_lists_its_providers_indented_under_its_line():
    """No credentials anywhere: each provider's reason on its own numbered line, a nested
    chain's list indented beneath it, then what to configure (no stray '.' line)."""

    def vault() -> None:
        return None

    def backup() -> None:
        return None

    with pytest.raises(NoCredentialsError) as caught:
        resolve_provider([vault, [backup, None]]).get()
    lines = str(caught.value).splitlines()
    assert lines[0] == "no AWS credentials: tried 2 providers in order:"
    assert re.fullmatch(r"  1\. CallableProvider\(.*vault\): .* returned None", lines[1])
    assert re.fullmatch(r"  2\. ChainProvider\(.*\): tried 2 providers in order:", lines[2])
    assert re.fullmatch(r"     1\. CallableProvider\(.*backup\): .* returned None", lines[3])
    assert lines[4].startswith("     2. BotocoreProvider(profile=None): botocore's default chain")
    assert lines[5].startswith("Configure credentials: set AWS_ACCESS_KEY_ID")
    assert len(lines) == 6
