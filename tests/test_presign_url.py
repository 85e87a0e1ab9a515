"""presign_url with botocore's default chain: one shared provider per profile per process.

botocore's real chain, pointed at local things: env vars, profile files in tmp_path, and the
container credentials endpoint on 127.0.0.1 (tests/credential_servers.py). Every link made is
checked with the server-side verifier, with the secret of the key it names.
"""

from __future__ import annotations

import concurrent.futures
import enum
import subprocess
import sys
import textwrap
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import botocore.session
import httpx
import pytest
from aws_isolation import isolate_aws
from credential_servers import running

import apigw_iam_auth.credentials
import apigw_iam_auth.presign
from apigw_iam_auth import (
    ApiGwIamAuthError,
    Credentials,
    InvalidConfigError,
    NoCredentialsError,
    presign_url,
)
from apigw_iam_auth.credentials import (
    ChainProvider,
    StaticProvider,
    reset_shared_providers,
    resolve_provider,
    shared_provider,
)
from apigw_iam_auth.server import IamAuthServer, KnownKey, VerificationError, verify_request

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/report?id=7"
FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"


@pytest.fixture(autouse=True)
def aws_env(tmp_path, monkeypatch):
    """Botocore sees only what the test sets, and no shared provider outlives a test."""
    isolate_aws(tmp_path, monkeypatch)
    reset_shared_providers()
    yield tmp_path
    reset_shared_providers()


def env_keys(monkeypatch, key: str, secret: str) -> dict[str, KnownKey]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    return {key: KnownKey(secret)}


def query_of(link: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}


def verified_key(
    link: str, keys: dict[str, KnownKey], region: str = "us-east-1", service: str = "execute-api"
) -> str:
    """The access key a presigned link was signed with, checked as API Gateway would."""
    parts = urlsplit(link)
    verified = verify_request(
        "GET",
        f"{parts.path}?{parts.query}",
        [("Host", parts.netloc)],
        b"",
        lookup=keys.get,
        region=region,
        service=service,
        now=datetime.now(timezone.utc),
    )
    return verified.access_key


def server_keys(server) -> dict[str, KnownKey]:
    return {key: KnownKey(secret, server.tokens[key]) for key, secret in server.secrets.items()}


def test_default_chain_is_resolved_once_for_many_links(monkeypatch):
    """50 links from the container role cost one endpoint call, and every link verifies."""
    with running() as server:
        monkeypatch.setenv(FULL_URI, server.container_url)
        links = [presign_url(URL, region="us-east-1") for _ in range(50)]
        assert server.calls["container"] == 1
    keys = {verified_key(link, server_keys(server)) for link in links}
    assert keys == {"ASIAGEN000001"}


def test_no_botocore_session_or_signer_is_built_after_the_first_link(monkeypatch):
    """After the first call, presign_url builds neither a botocore Session nor a SigV4Signer."""
    keys = env_keys(monkeypatch, "AKIDONCE", "once-secret")
    presign_url(URL, region="us-east-1")
    built = []
    real_session, real_signer = botocore.session.Session, apigw_iam_auth.presign.SigV4Signer

    class CountingSession(real_session):  # type: ignore[misc,valid-type]
        def __init__(self, *args, **kwargs):
            built.append("session")
            super().__init__(*args, **kwargs)

    class CountingSigner(real_signer):  # type: ignore[misc,valid-type]
        __slots__ = ()

        def __init__(self, *args, **kwargs):
            built.append("signer")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(botocore.session, "Session", CountingSession)
    monkeypatch.setattr(apigw_iam_auth.presign, "SigV4Signer", CountingSigner)
    links = [presign_url(URL, region="us-east-1", expires=60 + n) for n in range(20)]
    assert built == []
    assert {verified_key(link, keys) for link in links} == {"AKIDONCE"}


def test_refreshable_credentials_still_refresh_through_the_shared_provider(monkeypatch):
    """Credentials inside botocore's refresh window are refreshed, and each link is capped."""
    # Five-minute credentials sit inside botocore's mandatory window: every snapshot refreshes.
    with running(lifetime=timedelta(minutes=5)) as server:
        monkeypatch.setenv(FULL_URI, server.container_url)
        links = [presign_url(URL, region="us-east-1", expires=3600) for _ in range(3)]
    keys = [verified_key(link, server_keys(server)) for link in links]
    assert keys == ["ASIAGEN000002", "ASIAGEN000003", "ASIAGEN000004"]
    assert all(240 < int(query_of(link)["X-Amz-Expires"]) <= 300 for link in links)


def test_env_changes_after_first_use_are_seen_only_after_a_reset(monkeypatch):
    """Like boto3's default session the chain is resolved once; a reset resolves it again."""
    first = env_keys(monkeypatch, "AKIDFIRST", "first-secret")
    assert verified_key(presign_url(URL, region="us-east-1"), first) == "AKIDFIRST"
    second = env_keys(monkeypatch, "AKIDSECOND", "second-secret")
    assert verified_key(presign_url(URL, region="us-east-1"), first) == "AKIDFIRST"
    reset_shared_providers()
    assert verified_key(presign_url(URL, region="us-east-1"), second) == "AKIDSECOND"


def test_each_profile_gets_its_own_shared_provider(aws_env):
    """profile= picks its keys (one provider per profile) and its region for custom hosts."""
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n"
        "[ci]\naws_access_key_id = AKIDCI\naws_secret_access_key = ci-secret\n"
    )
    (aws_env / "config").write_text("[profile ci]\nregion = eu-west-1\n")
    keys = {"AKIDDEFAULT": KnownKey("default-secret"), "AKIDCI": KnownKey("ci-secret")}
    assert verified_key(presign_url(URL, region="us-east-1"), keys) == "AKIDDEFAULT"
    assert verified_key(presign_url(URL, region="us-east-1", profile="ci"), keys) == "AKIDCI"
    assert shared_provider("ci") is shared_provider("ci")
    assert shared_provider("ci") is not shared_provider(None)
    custom = presign_url("https://api.example.com/prod/x", profile="ci")
    assert query_of(custom)["X-Amz-Credential"].split("/")[2] == "eu-west-1"
    assert verified_key(custom, keys, region="eu-west-1") == "AKIDCI"


def test_finding_nothing_is_not_remembered(monkeypatch):
    """With no credentials the call raises NoCredentialsError; credentials set later are found."""
    with pytest.raises(NoCredentialsError) as caught:
        presign_url(URL, region="us-east-1")
    assert type(caught.value) is NoCredentialsError  # the public class itself, no private one
    assert "found nothing" in caught.value.reason
    keys = env_keys(monkeypatch, "AKIDLATER", "later-secret")
    assert verified_key(presign_url(URL, region="us-east-1"), keys) == "AKIDLATER"


class Region(str, enum.Enum):
    """A region setting as applications often hold it: a str subclass, not a str."""

    US_EAST_1 = "us-east-1"


@pytest.mark.parametrize(
    "settings",
    [
        lambda: {"region": Region.US_EAST_1},
        lambda: {"region_set": {"us-east-1"}},
        lambda: {"region_set": (name for name in ["us-east-1"])},
    ],
    ids=["str-subclass-region", "set-of-regions", "generator-of-regions"],
)
def test_settings_that_cannot_key_a_kept_signer_still_share_the_chain(monkeypatch, settings):
    """Whatever the settings, the default chain is resolved once for many links."""
    with running() as server:
        monkeypatch.setenv(FULL_URI, server.container_url)
        links = [presign_url(URL, **settings()) for _ in range(5)]
        assert server.calls["container"] == 1
    assert all("X-Amz-Signature=" in link for link in links)


def test_a_region_configured_after_a_refusal_is_found(monkeypatch):
    """A link refused for want of a region, which the error says to set in AWS_REGION: once
    set, the next call makes the link (the refusal left nothing behind).
    """
    keys = env_keys(monkeypatch, "AKIDREGION", "region-secret")
    custom_domain = "https://api.example.com/prod/report"
    with pytest.raises(InvalidConfigError, match="AWS_REGION"):
        presign_url(custom_domain)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    link = presign_url(custom_domain)
    assert "%2Feu-west-1%2Fexecute-api%2F" in link
    assert verified_key(link, keys, region="eu-west-1") == "AKIDREGION"


def test_a_region_set_holding_a_list_is_refused_naming_the_entry(monkeypatch):
    """A region set written one level too deep ([["us-east-1"]]) is refused by the signer
    saying what a region set is, not with a TypeError from presign_url's table of signers."""
    env_keys(monkeypatch, "AKIDNESTED", "nested-secret")
    with pytest.raises(InvalidConfigError, match=r"region_set must be '\*' or a non-empty list"):
        presign_url(URL, region_set=[["us-east-1"]])


def test_kept_signers_are_bounded_and_links_stay_valid(monkeypatch):
    """A process making links for ever more services keeps at most 64 signers; every link
    still verifies with the key of the default chain, the first one made included."""
    keys = env_keys(monkeypatch, "AKIDMANY", "many-secret")
    links = [presign_url(URL, region="us-east-1", service=f"svc{n}") for n in range(70)]
    assert len(apigw_iam_auth.presign._signers) <= 64
    for n in (0, 69):
        assert verified_key(links[n], keys, service=f"svc{n}") == "AKIDMANY"


def test_threads_share_one_slow_first_resolution(monkeypatch):
    """Eight threads making links during a slow first fetch cause one fetch between them."""
    with running(delay=0.3) as server:
        monkeypatch.setenv(FULL_URI, server.container_url)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            links = list(pool.map(lambda _: presign_url(URL, region="us-east-1"), range(8)))
        assert server.calls["container"] == 1
    assert {verified_key(link, server_keys(server)) for link in links} == {"ASIAGEN000001"}


def test_shared_providers_are_bounded():
    """At most 32 profiles are kept: the oldest is dropped (providers are built lazily, no I/O)."""
    first = shared_provider("p0")
    for number in range(1, 32):
        shared_provider(f"p{number}")
    assert shared_provider("p0") is first
    shared_provider("p32")
    assert shared_provider("p0") is not first


def test_explicit_credentials_are_not_shared():
    """Credentials passed explicitly are used as given on every call, never kept process-wide."""
    keys = {"AKIDONE": KnownKey("one-secret"), "AKIDTWO": KnownKey("two-secret")}
    one = presign_url(URL, region="us-east-1", credentials=("AKIDONE", "one-secret"))
    two = presign_url(URL, region="us-east-1", credentials=("AKIDTWO", "two-secret"))
    assert [verified_key(one, keys), verified_key(two, keys)] == ["AKIDONE", "AKIDTWO"]


FORK_SCRIPT = """
import os, sys
from urllib.parse import parse_qs, urlsplit
from apigw_iam_auth import presign_url

def key(link):
    return parse_qs(urlsplit(link).query)["X-Amz-Credential"][0].split("/")[0]

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/x"
parent = key(presign_url(URL, region="us-east-1"))
os.environ["AWS_ACCESS_KEY_ID"] = "AKIDCHILD"
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(writer, key(presign_url(URL, region="us-east-1")).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(parent, os.read(reader, 100).decode(), key(presign_url(URL, region="us-east-1")))
"""


def test_a_forked_child_resolves_its_own_credentials(monkeypatch):
    """A child forked after the first link resolves the chain itself; the parent keeps its own."""
    env_keys(monkeypatch, "AKIDPARENT", "parent-secret")
    assert printed_by(FORK_SCRIPT) == ["AKIDPARENT", "AKIDCHILD", "AKIDPARENT"]


def printed_by(script: str) -> list[str]:
    """The words a script prints, run in a fresh interpreter (it forks: pytest's threads must
    not be forked).
    """
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.split()


HELD_LOCK_SCRIPT = """
import os, threading
from apigw_iam_auth import presign, presign_url

URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/x"
presign._signers_lock.acquire()  # as a parent thread keeping a new signer at fork time
pid = os.fork()
if pid == 0:
    threading.Timer(20, os._exit, (2,)).start()  # hung: exit 2 rather than hang the test
    presign_url(URL, region="eu-west-1")
    os._exit(0)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_forked_child_keeps_signers_although_a_parent_thread_held_the_lock(monkeypatch):
    """The lock guarding the kept signers is new in a child: no parent thread can release it."""
    env_keys(monkeypatch, "AKIDPARENT", "parent-secret")
    assert printed_by(HELD_LOCK_SCRIPT) == ["0"]  # 2: the child waited for the parent's lock


# --- credentials= as presign_url (and every signer) takes it ----------------------------------


def nested(depth: int, innermost: object) -> object:
    value = innermost
    for _ in range(depth):
        value = [value]
    return value


def test_credentials_nested_thousands_deep_are_refused_not_recursed():
    """A list nested 3,000 deep is an InvalidConfigError naming the limit, not a RecursionError."""
    for credentials in (nested(3000, ("AKIDDEEP", "deep-secret")), nested(9, None)):
        with pytest.raises(InvalidConfigError, match="more than 8 levels deep") as caught:
            presign_url(URL, region="us-east-1", credentials=credentials)
        assert "flatten" in str(caught.value)
    looped: list[object] = []
    looped.append(looped)
    with pytest.raises(InvalidConfigError, match="8 levels"):
        resolve_provider(looped)


def test_credentials_nested_up_to_eight_deep_still_work():
    """Eight levels of lists are accepted and sign with the innermost key."""
    keys = {"AKIDDEEP": KnownKey("deep-secret")}
    link = presign_url(URL, region="us-east-1", credentials=nested(8, ("AKIDDEEP", "deep-secret")))
    assert verified_key(link, keys) == "AKIDDEEP"


def test_hand_built_chains_of_chains_are_bounded_too():
    """ChainProvider refuses providers that are chains nested 8 deep already."""
    chain = ChainProvider([StaticProvider(Credentials("AKIDHAND", "hand-secret"))])
    for _ in range(7):
        chain = ChainProvider([chain])
    assert chain.get().access_key == "AKIDHAND"
    with pytest.raises(InvalidConfigError, match="8 levels"):
        ChainProvider([chain])


def test_nothing_found_is_the_public_error_with_a_reason_per_provider():
    """An empty chain raises NoCredentialsError itself; .reason lists each provider tried."""

    def vault():
        return None

    with pytest.raises(NoCredentialsError) as caught:
        resolve_provider([vault, None]).get()
    assert type(caught.value) is NoCredentialsError
    assert caught.value.reason.startswith("tried 2 providers in order:")
    assert "vault) returned None" in caught.value.reason
    assert str(caught.value).startswith(f"no AWS credentials: {caught.value.reason}")
    private_errors = [  # a user can catch every error the module raises by its public name
        name
        for name, value in vars(apigw_iam_auth.credentials).items()
        if name.startswith("_") and isinstance(value, type) and issubclass(value, ApiGwIamAuthError)
    ]
    assert private_errors == []


def test_a_link_to_an_uppercase_host_names_the_host_it_signed(monkeypatch):
    """The link says the lowercase host it signed: urllib (like curl) sends the link's host as
    written, and Host is signed as clients lowercase it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDCASE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "case-secret")
    with IamAuthServer(region="us-east-1", keys={"AKIDCASE": KnownKey("case-secret")}) as server:
        port = urlsplit(server.url).port
        link = presign_url(f"http://LOCALHOST:{port}/prod/pets?q=1#top", region="us-east-1")
        assert link.startswith(f"http://localhost:{port}/prod/pets?q=1&X-Amz-Algorithm=")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(link, timeout=10) as response:  # Host: as the link writes it
            assert response.status == 200


# --- WebSocket APIs ---------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["abc123.execute-api.us-east-1.amazonaws.com", "a.example:8443"])
def test_websocket_links_are_presigned_as_their_https_form(monkeypatch, host):
    """wss:// (an API Gateway WebSocket API with IAM on $connect, where a browser cannot set
    headers): the link is the https one with the scheme swapped, and it verifies.
    """
    keys = env_keys(monkeypatch, "AKIDSOCKET", "socket-secret")
    when = datetime.now(timezone.utc).replace(microsecond=0)
    wss = presign_url(f"wss://{host}/prod?room=7", region="us-east-1", timestamp=when)
    https = presign_url(f"https://{host}/prod?room=7", region="us-east-1", timestamp=when)
    assert wss == "wss" + https.removeprefix("https")
    assert verified_key(wss, keys) == "AKIDSOCKET"


def test_a_ws_link_opens_the_handshake_on_the_local_server(monkeypatch):
    """The WebSocket opening handshake of a ws:// link (an HTTP GET) passes IAM auth."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSOCKET")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "socket-secret")
    with IamAuthServer(region="us-east-1") as server:
        link = presign_url(server.url.replace("http", "ws", 1) + "/prod?room=7", region="us-east-1")
        handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
        response = httpx.get("http" + link.removeprefix("ws"), headers=handshake)
    assert response.status_code == 200, response.text
    assert server.requests[-1].access_key == "AKIDSOCKET"


def test_a_bad_expires_is_refused_before_any_credentials_are_looked_for():
    """expires=0 names expires, not the credential chain that was never needed."""
    with pytest.raises(InvalidConfigError, match="expires must be"):
        presign_url(URL, region="us-east-1", expires=0)


@pytest.mark.parametrize("region_set", [["us-east-1", "eu-west-1"], "us-east-1,eu-west-1"])
def test_region_set_makes_a_sigv4a_link_for_each_region(monkeypatch, region_set):
    """presign_url(region_set=...) links verify in every region of the set, and in no other."""
    keys = env_keys(monkeypatch, "AKIDMULTI", "multi-region-secret")
    links = [presign_url(URL, region_set=region_set, expires=60 + n) for n in range(3)]
    for link in links:
        query = query_of(link)
        assert query["X-Amz-Algorithm"] == "AWS4-ECDSA-P256-SHA256"
        assert query["X-Amz-Region-Set"] == "us-east-1,eu-west-1"
        assert verified_key(link, keys, "us-east-1") == "AKIDMULTI"
        assert verified_key(link, keys, "eu-west-1") == "AKIDMULTI"
        with pytest.raises(VerificationError):
            verified_key(link, keys, "ap-south-1")
    plain = query_of(presign_url(URL, region="us-east-1"))  # the same settings less the set
    assert plain["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"


def test_a_region_set_link_opens_on_the_local_server():
    """A SigV4a link made with explicit keys is accepted over HTTP by the shipped server."""
    token = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN/+="
    keys = {"ASIAMULTI": KnownKey("multi-region-secret", token=token)}
    with IamAuthServer(region="eu-west-1", keys=keys) as server:
        link = presign_url(
            f"{server.url}/prod/report?id=7",
            region_set=("us-east-1", "eu-west-1"),
            credentials=("ASIAMULTI", "multi-region-secret", token),
        )
        response = httpx.get(link)
    assert response.status_code == 200, response.text
    assert server.requests[-1].access_key == "ASIAMULTI"


@pytest.mark.parametrize(
    ("given", "kept"),
    [("page=3", "page=3"), ("a b", "a%20b"), ("\u00e9t\u00e9", "%C3%A9t%C3%A9"), ("", "")],
)
def test_a_link_keeps_its_fragment_and_opens_on_the_local_server(monkeypatch, given, kept):
    """A fragment stays at the end of the link, outside the signature (no client sends it),
    as Ruby's aws-sigv4 presign_url keeps it: a browser opening the link still finds it.
    What a fragment cannot hold (a space, non-ASCII text) is percent-encoded, as a browser's
    address bar writes it.
    """
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFRAGMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fragment-secret")
    when = datetime.now(timezone.utc).replace(microsecond=0)
    with IamAuthServer(region="us-east-1") as server:
        plain = presign_url(f"{server.url}/prod/guide?lang=en", region="us-east-1", timestamp=when)
        link = presign_url(
            f"{server.url}/prod/guide?lang=en#{given}", region="us-east-1", timestamp=when
        )
        response = httpx.get(link)  # httpx sends the path and query only
    assert link == f"{plain}#{kept}"
    assert response.status_code == 200, response.text
    assert server.requests[-1].access_key == "AKIDFRAGMENT"


@pytest.mark.parametrize(
    "settings",
    [
        {"region_set": ["us-east-1", "eu-west-1"]},
        {"region_set": ("us-east-1",)},
        {"region": "us-east-1", "profile": "dev"},
    ],
    ids=["region-set-list", "region-set-tuple", "profile"],
)
def test_plain_settings_keep_one_signer_for_every_link(aws_env, monkeypatch, settings):
    """A list or tuple of str region names and a str profile are plain settings: after the
    first link no SigV4Signer is built (the cache of presign's module docstring)."""
    (aws_env / "credentials").write_text(
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n"
        "[dev]\naws_access_key_id = AKIDDEV\naws_secret_access_key = s2\n"
    )
    presign_url(URL, **settings)
    built = []
    real = apigw_iam_auth.presign.SigV4Signer

    class CountingSigner(real):
        __slots__ = ()

        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(apigw_iam_auth.presign, "SigV4Signer", CountingSigner)
    for n in range(3):
        presign_url(URL, expires=60 + n, **settings)
    assert built == []
