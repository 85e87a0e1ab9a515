"""Auth objects and errors pickle and deep-copy (auth objects carrying settings only).

The end-to-end cases unpickle in a fresh Python process with credentials of its own in the
environment and make a real signed request to the local verifying server
(``apigw_iam_auth.server.IamAuthServer``), which only knows the child's key.
"""

from __future__ import annotations

import copy
import os
import pickle
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import botocore.credentials
import botocore.session
import pytest
import requests
from aws_isolation import isolate_aws

from apigw_iam_auth import ApiGwIamAuth, Credentials, SigV4Signer
from apigw_iam_auth.credentials import (
    BotocoreProvider,
    CallableProvider,
    ChainProvider,
    StaticProvider,
    resolve_provider,
)
from apigw_iam_auth.errors import NoCredentialsError
from apigw_iam_auth.server import IamAuthServer, KnownKey, VerificationError, verify_request

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets?id=7"
T = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def aws_env(tmp_path, monkeypatch):
    """Botocore sees only what the test sets: no AWS_* env, no ~/.aws, no IMDS."""
    isolate_aws(tmp_path, monkeypatch)
    return tmp_path


def use_env_keys(monkeypatch, key: str, secret: str) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def round_trip(value: object):
    return pickle.loads(pickle.dumps(value))  # noqa: S301 - bytes this test just made


def key_of(signer: SigV4Signer) -> str:
    authorization = signer.sign("GET", URL).headers["Authorization"]
    return authorization.split("Credential=")[1].split("/")[0]


CHILD = """
import pickle, sys
import httpx, requests

with open(sys.argv[1], "rb") as file:
    loaded = pickle.load(file)
url = sys.argv[2]
if sys.argv[3] == "session":
    response = loaded.get(url)
elif sys.argv[3] == "requests":
    response = requests.get(url, auth=loaded)
else:
    response = httpx.get(url, auth=loaded)
print(response.status_code)
"""


def child_env(tmp_path) -> dict[str, str]:
    """The child's own environment: its own key, no config files, no proxies, no IMDS."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "BOTO_")) and "proxy" not in name.lower()
    }
    env |= {
        "AWS_ACCESS_KEY_ID": "AKIDCHILD",
        "AWS_SECRET_ACCESS_KEY": "child-secret",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "*",
    }
    return env


@pytest.mark.parametrize("client", ["session", "requests", "httpx"])
def test_default_chain_auth_signs_in_a_fresh_process_with_that_process_credentials(
    client, monkeypatch, aws_env
):
    """A used auth, or a Session holding it, pickles keyless; a child signs with its own keys."""
    use_env_keys(monkeypatch, "AKIDPARENT", "parent-secret")
    auth = ApiGwIamAuth("us-east-1")
    assert key_of(auth.signer) == "AKIDPARENT"  # resolved and cached here first
    if client == "session":
        session = requests.Session()
        session.auth = auth
        data = pickle.dumps(session)
    else:
        data = pickle.dumps(auth)
    assert b"parent-secret" not in data
    assert b"AKIDPARENT" not in data
    pickled = aws_env / "auth.pickle"
    pickled.write_bytes(data)
    with IamAuthServer(keys={"AKIDCHILD": KnownKey("child-secret")}) as server:
        done = subprocess.run(  # noqa: S603 - our own script, run with this interpreter
            [
                sys.executable,
                "-c",
                textwrap.dedent(CHILD),
                str(pickled),
                server.url + "/prod/pets",
                client,
            ],
            capture_output=True,
            text=True,
            env=child_env(aws_env),
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["200"]
        assert [record.access_key for record in server.requests] == ["AKIDCHILD"]


def test_deep_copy_resolves_credentials_again_on_first_use(monkeypatch):
    """A deep copy of a used auth carries settings only: it resolves the chain itself."""
    use_env_keys(monkeypatch, "AKIDBEFORE", "before-secret")
    auth = ApiGwIamAuth("us-east-1", presign=True, expires=60)
    assert key_of(auth.signer) == "AKIDBEFORE"
    copied = copy.deepcopy(auth)
    use_env_keys(monkeypatch, "AKIDAFTER", "after-secret")
    assert key_of(copied.signer) == "AKIDAFTER"
    assert key_of(auth.signer) == "AKIDBEFORE"
    assert repr(copied) == repr(auth)


def test_signer_round_trip_keeps_every_setting():
    """An unpickled signer makes the very same signatures as the original."""
    signer = SigV4Signer(
        "eu-west-1",
        service="lambda",
        credentials=("AKIDSETTINGS", "settings-secret", "settings-token"),
        unsigned_headers={"x-trace"},
        add_content_sha256_header=True,
    )
    signer.correct_clock(datetime.now(timezone.utc) + timedelta(minutes=10))
    restored = round_trip(signer)
    headers = {"X-Trace": "1", "X-Custom": "2"}
    original = signer.sign("POST", URL, headers=headers, body=b"{}", timestamp=T)
    again = restored.sign("POST", URL, headers=headers, body=b"{}", timestamp=T)
    assert again.headers == original.headers
    assert restored.clock_offset == signer.clock_offset
    assert restored.presign("GET", URL, timestamp=T) == signer.presign("GET", URL, timestamp=T)


def test_static_credentials_pickle_with_their_secret():
    """Fixed credentials are the whole of a StaticProvider: its pickle holds the secret."""
    provider = StaticProvider(Credentials("AKIDSTATIC", "static-secret", "static-token"))
    data = pickle.dumps(provider)
    assert b"static-secret" in data  # documented: such a pickle is itself a secret
    assert round_trip(provider).get() == provider.get()


CALLS: list[int] = []


def counted_credentials() -> Credentials:
    """A module-level provider function (pickle can import it), counting its calls."""
    CALLS.append(1)
    return Credentials(f"AKIDCALL{len(CALLS)}", "call-secret")


def test_callable_provider_pickles_its_function_not_its_cache():
    """The function and settings travel; the cached result does not, so the copy calls again."""
    CALLS.clear()
    provider = CallableProvider(counted_credentials, refresh_window=timedelta(minutes=1))
    assert provider.get().access_key == "AKIDCALL1"
    restored = round_trip(provider)
    assert restored.get().access_key == "AKIDCALL2"
    assert restored._window == timedelta(minutes=1)
    assert provider.get().access_key == "AKIDCALL1"  # the original keeps its own cache
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(CallableProvider(lambda: ("AKIDLAMBDA", "secret")))


def test_chain_pickles_and_asks_its_providers_again(monkeypatch):
    """A chain travels with its providers, not with which one answered: the copy asks again."""
    CALLS.clear()
    chain = resolve_provider([None, counted_credentials])
    assert isinstance(chain, ChainProvider)
    assert chain.get().access_key == "AKIDCALL1"  # no env keys yet: botocore found nothing
    restored = round_trip(chain)
    use_env_keys(monkeypatch, "AKIDENV", "env-secret")
    assert restored.get().access_key == "AKIDENV"  # botocore's chain, first in line, answers now
    assert chain.get().access_key == "AKIDCALL1"  # the original sticks to its answer
    assert repr(restored) == repr(chain)


def test_refreshable_botocore_credentials_refuse_to_pickle_but_copy():
    """RefreshableCredentials cannot travel (lock, refresh function): TypeError says what to do."""
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)

    def refresh():
        raise AssertionError("nothing is due")

    creds = botocore.credentials.RefreshableCredentials(
        "ASIAREFRESH", "refresh-secret", "refresh-token", expiry, refresh, "custom"
    )
    signer = SigV4Signer("us-east-1", credentials=creds)
    with pytest.raises(TypeError, match="credentials=None") as caught:
        pickle.dumps(signer)
    assert "refresh-secret" not in str(caught.value)
    copied = copy.deepcopy(signer)
    assert key_of(copied) == "ASIAREFRESH"
    assert copied._credentials.get().expiry == expiry
    plain = botocore.credentials.Credentials("AKIDPLAIN", "plain-secret")
    assert key_of(round_trip(SigV4Signer("us-east-1", credentials=plain))) == ("AKIDPLAIN")


def test_session_provider_copies_by_sharing_and_refuses_to_pickle(aws_env):
    """A provider over a given botocore Session copies sharing it; pickling says to use profile=."""
    (aws_env / "credentials").write_text(
        "[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = ci-secret\n"
    )
    session = botocore.session.Session(profile="ci")
    provider = BotocoreProvider(session=session)
    copied = copy.deepcopy(provider)
    assert copied._session is session
    assert copied.get().access_key == "AKIDCI"
    with pytest.raises(TypeError, match="profile="):
        pickle.dumps(provider)
    profile_only = round_trip(BotocoreProvider("ci"))
    assert profile_only.get().access_key == "AKIDCI"


def test_custom_clock_function_is_what_stops_a_pickle():
    """A lambda clock is not picklable (documented); the default clock is."""
    signer = SigV4Signer("us-east-1", credentials=("AKIDCLOCK", "s"), clock=lambda: T)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(signer)
    assert round_trip(SigV4Signer("us-east-1", credentials=("AKIDCLOCK", "s")))


def test_errors_pickle_and_copy_whole():
    """A process pool hands a worker's error back pickled: verify_request's refusal (whose
    log-safe text differs from the body it quotes) and a credentials error keep every field.
    """
    signed = SigV4Signer("us-east-1", credentials=("AKIDPICKLE", "wrong", "session-token")).sign(
        "GET", URL
    )
    refusal = _refusal_of(signed)
    assert str(refusal) != refusal.message  # the body quotes the token; str() does not
    for copied in (round_trip(refusal), copy.deepcopy(refusal), copy.copy(refusal)):
        assert type(copied) is VerificationError
        assert (str(copied), copied.message, copied.status, copied.error_type) == (
            str(refusal),
            refusal.message,
            refusal.status,
            refusal.error_type,
        )
        assert (copied.kind, copied.likely_cause) == (refusal.kind, refusal.likely_cause)
    missing = NoCredentialsError("no credentials", reason="found nothing")
    assert (str(round_trip(missing)), round_trip(missing).reason) == (
        "no credentials",
        "found nothing",
    )


def _refusal_of(signed) -> VerificationError:
    parts = urlsplit(signed.url)
    try:
        verify_request(
            "GET",
            f"{parts.path}?{parts.query}",
            list(signed.headers.items()),
            b"",
            lookup={"AKIDPICKLE": KnownKey("pickle-secret", token="session-token")}.get,
            region="us-east-1",
            now=datetime.now(timezone.utc),
        )
    except VerificationError as refused:
        return refused
    raise AssertionError("a wrong secret was accepted")
