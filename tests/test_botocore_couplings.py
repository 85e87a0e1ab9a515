"""Guards for the private botocore attributes the credentials layer reads, and for their loss.

``apigw_iam_auth.credentials`` reads four private attributes of botocore's
``RefreshableCredentials`` (see its module docstring), each at one marked place that names the
tests here. For each:

* a guard test, on real botocore objects, fails when botocore drops the attribute or stops
  behaving as relied on;
* a loss test makes it disappear and proves the provider warns once
  (``BotocoreCompatibilityWarning``, saying what is lost), keeps signing with the right key,
  keeps capping presigned URLs to the credentials' lifetime, and puts no secret anywhere.

Two ways to make an attribute disappear. ``monkeypatch.delattr`` where botocore itself does not
need it (``_refresh_lock`` while no refresh is due), and to show that deleting one botocore does
need fails loudly. And, for a botocore release that renamed one (its own code keeps working,
only our read finds nothing), ``hidden_from_us``: the object answers AttributeError for that
name when, and only when, ``apigw_iam_auth.credentials`` asks.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import warnings
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import botocore.credentials
import botocore.session
import pytest
from aws_isolation import isolate_aws
from credential_servers import running, verify

import apigw_iam_auth.credentials
from apigw_iam_auth import CredentialsRefreshError, SigV4Signer
from apigw_iam_auth.credentials import BotocoreCompatibilityWarning, resolve_provider

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")
URL = "https://abc123.execute-api.us-east-1.amazonaws.com/prod/pets?id=7"
OURS = apigw_iam_auth.credentials.__name__
PRIVATE = ("_refresh_lock", "_frozen_credentials", "_expiry_time")


@pytest.fixture(autouse=True)
def aws_env(tmp_path, monkeypatch):
    """Botocore sees only what the test sets: no AWS_* env, no ~/.aws, no IMDS."""
    isolate_aws(tmp_path, monkeypatch)


class Generations:
    """A refresh function for RefreshableCredentials: each call is a new key, secret, token."""

    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self.secrets: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.lock_free_during_refresh: list[bool] = []
        self.credentials: botocore.credentials.RefreshableCredentials | None = None
        self._numbers = itertools.count(1)

    def issue(self) -> dict[str, Any]:
        number = next(self._numbers)
        key = f"ASIAGEN{number:06d}"
        self.secrets[key] = f"gen{number}-secret-{'s' * 20}"
        self.tokens[key] = f"gen{number}-token-{'t' * 20}"
        expiry = datetime.now(timezone.utc) + self.lifetime
        return {
            "access_key": key,
            "secret_key": self.secrets[key],
            "token": self.tokens[key],
            "expiry_time": expiry.isoformat(),
        }

    def __call__(self) -> dict[str, Any]:
        if self.credentials is not None:
            lock = self.credentials._refresh_lock
            free = lock.acquire(blocking=False)
            if free:
                lock.release()
            self.lock_free_during_refresh.append(free)
        return self.issue()

    def secret_texts(self) -> list[str]:
        return [*self.secrets.values(), *self.tokens.values()]


def refreshable(lifetime: timedelta = timedelta(minutes=20)):
    """Real botocore RefreshableCredentials of ``lifetime`` with a counting refresh function."""
    generations = Generations(lifetime)
    creds = botocore.credentials.RefreshableCredentials.create_from_metadata(
        generations.issue(), generations, "custom-process"
    )
    generations.credentials = creds
    return creds, generations


def hidden_from_us(monkeypatch, creds: object, *names: str) -> None:
    """``creds`` as a botocore that renamed ``names`` would be: gone for our module only."""
    base = type(creds)

    class Renamed(base):  # type: ignore[misc,valid-type]
        def __getattribute__(self, name: str) -> Any:
            if name in names and sys._getframe(1).f_globals.get("__name__") == OURS:
                raise AttributeError(name)
            return super().__getattribute__(name)

    monkeypatch.setattr(creds, "__class__", Renamed)


def presigned_expires(signer: SigV4Signer, expires: int = 3600) -> int:
    link = signer.presign("GET", URL, expires=expires)
    return int(parse_qs(urlsplit(link).query)["X-Amz-Expires"][0])


def signed_key(signer: SigV4Signer, secrets: dict[str, str]) -> str:
    signed = signer.sign("GET", URL)
    key = verify("GET", signed.url, signed.headers, secrets)
    assert signed.headers["X-Amz-Security-Token"].startswith(f"gen{int(key[7:])}-token")
    return key


def warned(run: Callable[[], T]) -> tuple[T, list[str]]:
    """``run()``'s result and the messages of the warnings it raised (all compatibility ones)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    assert all(issubclass(w.category, BotocoreCompatibilityWarning) for w in caught), caught
    return result, [str(w.message) for w in caught]


def assert_no_secrets(texts: list[str], secrets: list[str]) -> None:
    everything = "\n".join(texts)
    for secret in secrets:
        assert secret not in everything


# --- guards: fail when botocore drops or changes what we read ---------------------------------


def test_refresh_lock_guard_botocore_publishes_a_refresh_holding_it():
    """botocore holds _refresh_lock while it refreshes and publishes the triple and expiry."""
    creds, generations = refreshable(timedelta(minutes=5))  # inside the mandatory window
    lock = creds._refresh_lock
    assert callable(lock.acquire)
    assert callable(lock.release)
    frozen = creds.get_frozen_credentials()  # refreshes
    assert generations.lock_free_during_refresh == [False]
    assert frozen.access_key == "ASIAGEN000002"
    assert lock.acquire(blocking=False)  # and released it afterwards
    lock.release()


def test_frozen_credentials_guard_is_what_get_frozen_credentials_returns():
    """_frozen_credentials is the very triple get_frozen_credentials() returns, refresh or not."""
    creds, _ = refreshable()
    assert creds.get_frozen_credentials() is creds._frozen_credentials
    assert creds._frozen_credentials.access_key == "ASIAGEN000001"
    short, _ = refreshable(timedelta(minutes=5))
    refreshed = short.get_frozen_credentials()
    assert refreshed is short._frozen_credentials
    assert refreshed.access_key == "ASIAGEN000002"


def test_expiry_time_guard_is_the_current_triples_aware_expiry():
    """_expiry_time is an aware datetime, and after a refresh it is the new triple's expiry."""
    before = datetime.now(timezone.utc)
    creds, _ = refreshable(timedelta(minutes=5))
    assert isinstance(creds._expiry_time, datetime)
    assert creds._expiry_time.utcoffset() is not None
    first_expiry = creds._expiry_time
    creds.get_frozen_credentials()  # refreshes: a new triple with its own expiry
    assert creds._expiry_time > first_expiry
    assert before + timedelta(minutes=5) <= creds._expiry_time
    assert creds._expiry_time <= datetime.now(timezone.utc) + timedelta(minutes=5)


def test_mandatory_refresh_timeout_guard_is_where_botocore_callers_start_to_wait():
    """Seconds before expiry; short of them (the advisory window) a botocore caller that finds
    a refresh under way goes on with the current triple, as aget() does.
    """
    creds, _ = refreshable(timedelta(minutes=12))  # botocore's advisory window, not mandatory
    seconds = creds._mandatory_refresh_timeout
    assert isinstance(seconds, (int, float))
    assert creds.refresh_needed() is True
    assert creds.refresh_needed(seconds) is False
    with creds._refresh_lock:  # another caller's refresh under way
        assert creds.get_frozen_credentials().access_key == "ASIAGEN000001"
    short, _ = refreshable(timedelta(minutes=5))
    assert short.refresh_needed(short._mandatory_refresh_timeout) is True


def test_public_refresh_needed_answers_for_the_advisory_window_and_for_any_seconds():
    """refresh_needed() is the advisory window; refresh_needed(s): fewer than s seconds left."""
    creds, _ = refreshable(timedelta(minutes=20))
    assert creds.refresh_needed() is False
    assert creds.refresh_needed(25 * 60) is True
    assert creds.refresh_needed(19 * 60) is False
    creds._advisory_refresh_timeout = 21 * 60  # an instance's own window is honoured
    assert creds.refresh_needed() is True


def test_with_every_attribute_present_nothing_warns():
    """Against this botocore, signing, presigning and aget() raise no compatibility warning."""
    creds, generations = refreshable()
    signer = SigV4Signer("us-east-1", credentials=creds)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BotocoreCompatibilityWarning)
        assert signed_key(signer, generations.secrets) == "ASIAGEN000001"
        assert 1190 <= presigned_expires(signer) <= 1200
        asyncio.run(signer._credentials.aget())


def test_advisory_window_is_read_through_public_api_only(monkeypatch):
    """_advisory_refresh_timeout is not read by us: hiding it changes nothing, warns nothing."""
    creds, generations = refreshable()
    hidden_from_us(monkeypatch, creds, "_advisory_refresh_timeout")
    signer = SigV4Signer("us-east-1", credentials=creds)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BotocoreCompatibilityWarning)
        assert signed_key(signer, generations.secrets) == "ASIAGEN000001"
        assert asyncio.run(signer._credentials.aget()).access_key == "ASIAGEN000001"


# --- losses: each attribute gone, a warning, and still safe -----------------------------------


def container_credentials(server, monkeypatch):
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", server.container_url)
    creds = botocore.session.Session().get_credentials()
    assert isinstance(creds, botocore.credentials.RefreshableCredentials)
    return creds


def test_refresh_lock_deleted_warns_once_and_links_stay_capped(monkeypatch, caplog):
    """Without _refresh_lock: one warning naming it; keys verify; links capped to the role."""
    caplog.set_level(logging.DEBUG)
    with running(lifetime=timedelta(minutes=20)) as server:
        creds = container_credentials(server, monkeypatch)
        monkeypatch.delattr(creds, "_refresh_lock")  # nothing due: botocore never needs it
        signer = SigV4Signer("us-east-1", credentials=creds)

        def work():
            keys = {signed_key(signer, server.secrets) for _ in range(5)}
            capped = {presigned_expires(signer) for _ in range(5)}
            return keys, capped, asyncio.run(signer._credentials.aget())

        (keys, capped, snapshot), messages = warned(work)
        secrets = [*server.secrets.values(), *server.tokens.values()]
    assert keys == {"ASIAGEN000001"}
    assert all(1190 <= expires <= 1200 for expires in capped)
    assert snapshot.expiry is not None
    assert len(messages) == 1
    assert "_refresh_lock" in messages[0]
    assert "not cached" in messages[0]
    assert botocore.__version__ in messages[0]
    assert_no_secrets([*messages, caplog.text], secrets)


def test_frozen_credentials_renamed_warns_once_and_sync_and_async_still_sign(monkeypatch, caplog):
    """Without _frozen_credentials: one warning; get() and aget() give the right, capped triple."""
    caplog.set_level(logging.DEBUG)
    creds, generations = refreshable()
    hidden_from_us(monkeypatch, creds, "_frozen_credentials")
    signer = SigV4Signer("us-east-1", credentials=creds)

    def work():
        assert signed_key(signer, generations.secrets) == "ASIAGEN000001"
        assert 1190 <= presigned_expires(signer) <= 1200
        return asyncio.run(_gather_aget(signer, 20))

    snapshots, messages = warned(work)
    assert {snapshot.access_key for snapshot in snapshots} == {"ASIAGEN000001"}
    assert {snapshot.token for snapshot in snapshots} == {generations.tokens["ASIAGEN000001"]}
    assert len(messages) == 1
    assert "_frozen_credentials" in messages[0]
    assert "event loop" in messages[0]
    assert_no_secrets([*messages, caplog.text], generations.secret_texts())


async def _gather_aget(signer: SigV4Signer, count: int):
    provider = signer._credentials
    return await asyncio.gather(*(provider.aget() for _ in range(count)))


def test_expiry_time_renamed_warns_once_and_links_stay_capped_by_the_probe(monkeypatch, caplog):
    """Without _expiry_time: one warning; probing refresh_needed() still caps, never longer."""
    caplog.set_level(logging.INFO, logger="apigw_iam_auth")
    creds, generations = refreshable(timedelta(minutes=20))
    hidden_from_us(monkeypatch, creds, "_expiry_time")
    signer = SigV4Signer("us-east-1", credentials=creds)

    def work():
        capped = [presigned_expires(signer) for _ in range(3)]
        assert signed_key(signer, generations.secrets) == "ASIAGEN000001"
        assert presigned_expires(signer, expires=600) == 600
        return capped

    capped, messages = warned(work)
    true_remaining = (creds._expiry_time - datetime.now(timezone.utc)).total_seconds()
    assert all(1190 <= expires <= true_remaining for expires in capped)
    assert len(messages) == 1
    assert "_expiry_time" in messages[0]
    assert "capped" in messages[0]
    assert_no_secrets([*messages, caplog.text], generations.secret_texts())


def test_expiry_time_renamed_with_long_lived_credentials_does_not_shorten_links(monkeypatch):
    """The probe bounds only what matters: week-long credentials leave a link's expiry alone."""
    creds, _ = refreshable(timedelta(days=30))
    hidden_from_us(monkeypatch, creds, "_expiry_time")
    signer = SigV4Signer("us-east-1", credentials=creds)
    with pytest.warns(BotocoreCompatibilityWarning, match="_expiry_time"):
        assert presigned_expires(signer, expires=604_800) == 604_800


def test_mandatory_refresh_timeout_renamed_warns_once_and_aget_waits_for_the_refresh(
    monkeypatch,
):
    """Without _mandatory_refresh_timeout: one warning; in the advisory window aget() waits for
    botocore's refresh (the behaviour before it was read) and gets the new triple.
    """
    creds, generations = refreshable(timedelta(minutes=12))
    hidden_from_us(monkeypatch, creds, "_mandatory_refresh_timeout")
    provider = resolve_provider(creds)
    snapshot, messages = warned(lambda: asyncio.run(provider.aget()))
    assert snapshot.access_key == "ASIAGEN000002"
    assert len(messages) == 1
    assert "_mandatory_refresh_timeout" in messages[0]
    assert "advisory" in messages[0]
    assert_no_secrets(messages, generations.secret_texts())


def test_all_three_gone_warn_each_once_and_still_sign_safely(monkeypatch, caplog):
    """With every private attribute gone: three warnings, right keys, capped links, no secrets."""
    caplog.set_level(logging.DEBUG)
    creds, generations = refreshable(timedelta(minutes=20))
    hidden_from_us(monkeypatch, creds, *PRIVATE)
    auth_signer = SigV4Signer("us-east-1", credentials=creds)

    def work():
        assert signed_key(auth_signer, generations.secrets) == "ASIAGEN000001"
        assert 1190 <= presigned_expires(auth_signer) <= 1200
        assert asyncio.run(auth_signer._credentials.aget()).expiry is not None
        assert signed_key(auth_signer, generations.secrets) == "ASIAGEN000001"

    _, messages = warned(work)
    named = sorted(name for message in messages for name in PRIVATE if name in message)
    assert named == sorted(PRIVATE)
    assert_no_secrets([*messages, caplog.text], generations.secret_texts())


@pytest.mark.parametrize("name", ["_frozen_credentials", "_expiry_time"])
def test_deleting_what_botocore_itself_needs_fails_loudly_without_secrets(monkeypatch, name):
    """Deleting an attribute botocore's own code reads is a CredentialsRefreshError, no secret."""
    creds, generations = refreshable()
    monkeypatch.delattr(creds, name)
    signer = SigV4Signer("us-east-1", credentials=creds)
    with pytest.raises(CredentialsRefreshError) as caught:
        signer.sign("GET", URL)
    assert isinstance(caught.value.__cause__, AttributeError)
    assert_no_secrets([str(caught.value), repr(caught.value)], generations.secret_texts())


def test_refresh_due_without_the_lock_fails_loudly_not_silently(monkeypatch):
    """A refresh botocore cannot run without its lock surfaces as CredentialsRefreshError."""
    creds, generations = refreshable(timedelta(minutes=5))  # a refresh is due at once
    monkeypatch.delattr(creds, "_refresh_lock")
    provider = resolve_provider(creds)
    with pytest.raises(CredentialsRefreshError) as caught:
        provider.get()
    assert_no_secrets([str(caught.value)], generations.secret_texts())
