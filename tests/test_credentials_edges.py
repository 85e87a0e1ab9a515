"""Credential providers: rules mutation testing of credentials.py found no test pinning.

Each test here failed against a mutant of ``src/apigw_iam_auth/credentials.py`` that the rest
of the suite let live; its docstring says which rule it pins. As in tests/test_credentials.py:
real providers, no sleeps (events and fake clocks), hangs bounded by ``HANG_GUARD``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
import traceback
from datetime import datetime, timedelta, timezone

import botocore.credentials
import pytest
from aws_isolation import isolate_aws
from credential_servers import FakeClock
from forking import HANG_GUARD

import apigw_iam_auth.credentials
from apigw_iam_auth import Credentials, CredentialsRefreshError
from apigw_iam_auth.credentials import (
    BotocoreProvider,
    CallableProvider,
    ChainProvider,
    StaticProvider,
    resolve_provider,
)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def test_a_finished_native_load_leaves_no_task_behind():
    """A native load's task is dropped once it ends, while its loop lives on: no leak.

    ``_TASKS`` holds load tasks only while they run (the loop keeps weak references); a done
    one kept there would pin its result, and the loop, for the life of the process.
    """

    async def fetch() -> tuple[str, str]:
        return ("AKIDDONE", "secret")

    provider = CallableProvider(fetch)
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(provider.aget()).access_key == "AKIDDONE"
        left = [task for task in apigw_iam_auth.credentials._TASKS if task.get_loop() is loop]
        assert left == []
    finally:
        loop.close()


def test_a_native_load_cancelled_while_its_loop_runs_on_is_started_again():
    """A load task cancelled from outside (a shutdown cancelling every task) is abandoned.

    Its loop keeps running, so no waiter can tell it is stranded: the cancellation itself
    must end the flight, and the caller waiting for it loads again instead of hanging.
    """
    calls: list[int] = []
    started = asyncio.Event()

    async def fetch() -> tuple[str, str]:
        calls.append(1)
        if len(calls) == 1:
            started.set()
            await asyncio.Event().wait()  # only a cancel() ends this one
        return (f"AKIDAGAIN{len(calls)}", "secret")

    async def cancel_the_load() -> Credentials:
        provider = CallableProvider(fetch)
        waiter = asyncio.ensure_future(provider.aget())
        await started.wait()
        (load,) = asyncio.all_tasks() - {asyncio.current_task(), waiter}
        load.cancel()
        return await asyncio.wait_for(waiter, HANG_GUARD)

    assert asyncio.run(cancel_the_load()).access_key == "AKIDAGAIN2"
    assert calls == [1, 1]


HOUR = timedelta(hours=1)
VAULT_SECRET = "vaultSecretKeyEXAMPLE/K7MDENG+bPxRfiCY"


def test_a_provider_function_returning_keys_that_expire_this_very_instant_is_refused():
    """Keys whose expiry is now are expired: no time left is not a lifetime to cache.

    A zero remaining time must fail as an expiry in the past does, not be cached with a zero
    refresh window and signed with.
    """
    clock = FakeClock()
    provider = CallableProvider(
        lambda: Credentials("AKIDNOW", "now-secret", None, clock()), clock=clock
    )
    with pytest.raises(CredentialsRefreshError, match="expired at"):
        provider.get()


def test_a_kept_refresh_failure_quoting_a_secret_in_its_own_message_is_logged_redacted(caplog):
    """The WARNING that keeps the old keys masks a secret the failure's own message quotes.

    A provider function may raise our error with its vault's raw answer in the message itself
    (not only in a chained cause): the log line carries that message redacted.
    """
    clock = FakeClock()
    answers: list[int] = []

    def fetch() -> Credentials:
        answers.append(1)
        if len(answers) == 1:
            return Credentials("AKIDVAULT", VAULT_SECRET, None, clock() + HOUR)
        raise CredentialsRefreshError(f'vault answered {{"SecretAccessKey": "{VAULT_SECRET}"}}')

    provider = CallableProvider(fetch, clock=clock)
    provider.get()
    clock.advance(timedelta(minutes=55))
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        assert provider.get().access_key == "AKIDVAULT"
    assert "vault answered" in caplog.text
    assert "keeping the keys" in caplog.text
    assert VAULT_SECRET not in caplog.text


@pytest.mark.anyio
async def test_an_async_provider_returning_botocore_credentials_has_them_fetched_off_the_loop():
    """An ``async def`` function may return botocore credentials that fetch on first read:
    that read (network I/O in botocore) runs in a worker thread, never on the event loop.
    """
    loop_thread = threading.current_thread()
    fetched_in: list[threading.Thread] = []

    def refresh() -> dict[str, str]:
        fetched_in.append(threading.current_thread())
        expiry = botocore.credentials._local_now() + HOUR
        return {
            "access_key": "ASIAASYNCDEFERRED",
            "secret_key": "deferred-secret",
            "token": "deferred-token",
            "expiry_time": expiry.isoformat(),
        }

    async def fetch() -> botocore.credentials.DeferredRefreshableCredentials:
        return botocore.credentials.DeferredRefreshableCredentials(refresh, "custom-deferred")

    snapshot = await CallableProvider(fetch).aget()
    assert snapshot.access_key == "ASIAASYNCDEFERRED"
    assert len(fetched_in) == 1
    assert fetched_in[0] is not loop_thread


@pytest.mark.parametrize("native", [False, True], ids=["function", "async-def"])
def test_a_caller_whose_load_starts_just_after_another_ended_uses_that_result(native):
    """Double-checked loading: a caller that found no keys, then won the flight just after
    another caller's load ended, returns that load's keys without calling the function again.

    The other caller's whole load is run at the one point in between (the check for a load
    in flight), which is where a thread switch would put it.
    """
    calls: list[int] = []

    def keys() -> tuple[str, str]:
        calls.append(1)
        return (f"AKIDCHECK{len(calls)}", "secret")

    async def akeys() -> tuple[str, str]:
        return keys()

    provider = CallableProvider(akeys if native else keys)

    def another_caller_loads_meanwhile() -> None:
        del provider._meanwhile  # once: the other caller takes the plain path
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            assert pool.submit(provider.get).result(HANG_GUARD).access_key == "AKIDCHECK1"

    provider._meanwhile = another_caller_loads_meanwhile
    snapshot = asyncio.run(provider.aget()) if native else provider.get()
    assert snapshot.access_key == "AKIDCHECK1"
    assert calls == [1]


@pytest.mark.anyio
async def test_aget_of_plain_botocore_credentials_returns_their_snapshot():
    """Plain (never refreshing) botocore credentials answer ``aget()`` inline with their keys."""
    plain = botocore.credentials.Credentials("AKIDPLAINASYNC", "plain-secret", "plain-token")
    snapshot = await resolve_provider(plain).aget()
    assert (snapshot.access_key, snapshot.secret_key, snapshot.token) == (
        "AKIDPLAINASYNC",
        "plain-secret",
        "plain-token",
    )
    assert snapshot.expiry is None


def test_plain_botocore_credentials_changed_in_place_sign_with_their_new_keys():
    """A plain botocore ``Credentials`` is a mutable object: keys set on it later are used.

    The snapshot is reused only while the object's values are those it was made from.
    """
    plain = botocore.credentials.Credentials("AKIDBEFORE", "before-secret")
    provider = resolve_provider(plain)
    assert provider.get().access_key == "AKIDBEFORE"
    plain.access_key, plain.secret_key = "AKIDAFTER", "after-secret"
    snapshot = provider.get()
    assert (snapshot.access_key, snapshot.secret_key) == ("AKIDAFTER", "after-secret")


@pytest.mark.anyio
async def test_a_refresh_handing_back_the_same_keys_with_a_later_expiry_updates_the_expiry():
    """Refreshable credentials may be reissued with the same key, secret and token and a new
    expiry (a credential_process serving its cache): the snapshot carries the new expiry, as
    presigned URLs are capped to it. The cached snapshot is reused only for the very triple
    object botocore holds, never for an equal one.
    """
    clock = FakeClock()

    def refresh() -> dict[str, str]:
        return {
            "access_key": "ASIASAMEKEYS",
            "secret_key": "asiasamekeys-secret",
            "token": "asiasamekeys-token",
            "expiry_time": (clock() + timedelta(hours=6)).isoformat(),
        }

    refreshable = _refreshable(clock, refresh, "ASIASAMEKEYS", minutes=20)
    provider = resolve_provider(refreshable)
    first = provider.get()
    clock.advance(timedelta(minutes=11))  # botocore's mandatory window (10 min left at most)
    second = provider.get()
    assert (second.access_key, second.secret_key, second.token) == (
        first.access_key,
        first.secret_key,
        first.token,
    )
    assert first.expiry is not None
    assert second.expiry is not None
    assert second.expiry - first.expiry == timedelta(hours=5, minutes=51)
    assert (await provider.aget()).expiry == second.expiry


@pytest.mark.anyio
async def test_in_botocores_advisory_window_aget_goes_on_with_the_current_keys():
    """Between botocore's advisory (15 min) and mandatory (10 min) windows, ``aget()`` starts
    the refresh in a worker thread and returns the current, still valid keys without waiting
    for it, as botocore's own threads do. Past the mandatory mark, callers get the new keys.
    """
    clock = FakeClock()
    started, release = threading.Event(), threading.Event()

    def refresh() -> dict[str, str]:
        started.set()
        assert release.wait(HANG_GUARD)
        return {
            "access_key": "ASIAREFRESHED",
            "secret_key": "new-secret",
            "token": "new-token",
            "expiry_time": (clock() + HOUR).isoformat(),
        }

    refreshable = _refreshable(clock, refresh, "ASIACURRENT", minutes=20)
    provider = resolve_provider(refreshable)
    assert (await provider.aget()).access_key == "ASIACURRENT"
    clock.advance(timedelta(minutes=8))  # 12 minutes left: advisory, not yet mandatory
    try:
        current = await asyncio.wait_for(provider.aget(), HANG_GUARD)
        assert current.access_key == "ASIACURRENT"
        assert await asyncio.to_thread(started.wait, HANG_GUARD)
    finally:
        release.set()
    clock.advance(timedelta(minutes=3))  # 9 minutes left of the old keys: everyone waits
    assert (await asyncio.to_thread(provider.get)).access_key == "ASIAREFRESHED"


def _refreshable(clock: FakeClock, refresh, key: str = "ASIAFIRST", minutes: int = 30):
    """botocore's RefreshableCredentials on the test's clock, expiring in ``minutes``."""
    return botocore.credentials.RefreshableCredentials(
        key,
        f"{key.lower()}-secret",
        f"{key.lower()}-token",
        clock() + timedelta(minutes=minutes),
        refresh,
        "custom-process",
        time_fetcher=clock,
    )


def _generations(clock: FakeClock, threads: list[threading.Thread] | None = None):
    """A refresh function handing out ASIAGEN1, ASIAGEN2... each valid for an hour."""
    count: list[int] = []

    def refresh() -> dict[str, str]:
        count.append(1)
        if threads is not None:
            threads.append(threading.current_thread())
        key = f"ASIAGEN{len(count)}"
        return {
            "access_key": key,
            "secret_key": f"{key.lower()}-secret",
            "token": f"{key.lower()}-token",
            "expiry_time": (clock() + HOUR).isoformat(),
        }

    return refresh


@pytest.mark.anyio
async def test_aget_with_no_refresh_due_returns_the_same_full_snapshot_again():
    """A second ``aget()`` with nothing due returns the cached snapshot: our Credentials,
    expiry included, never botocore's bare triple."""
    clock = FakeClock()
    provider = resolve_provider(_refreshable(clock, _generations(clock)))
    first = await provider.aget()
    second = await provider.aget()
    assert isinstance(second, Credentials)
    assert second == first
    assert second.expiry is not None


@pytest.mark.anyio
async def test_aget_sees_a_refresh_made_by_another_user_of_the_same_botocore_credentials():
    """A boto3 client sharing the botocore credentials may refresh them: ``aget()`` then
    returns the new keys, not the snapshot it cached of the old ones."""
    clock = FakeClock()
    refreshable = _refreshable(clock, _generations(clock))
    provider = resolve_provider(refreshable)
    assert (await provider.aget()).access_key == "ASIAFIRST"
    clock.advance(timedelta(minutes=25))  # 5 minutes left: botocore's mandatory window
    assert refreshable.get_frozen_credentials().access_key == "ASIAGEN1"  # the other user
    assert (await provider.aget()).access_key == "ASIAGEN1"


@pytest.mark.anyio
async def test_a_mandatory_refresh_from_aget_runs_in_a_worker_thread_and_is_waited_for():
    """In botocore's mandatory window ``aget()`` waits for the refresh, run off the loop, and
    returns its keys (not the current ones, as in the advisory window). The refresh is held
    until the caller is waiting, so a caller that did not wait would be seen."""
    clock = FakeClock()
    threads: list[threading.Thread] = []
    started, release, hold = threading.Event(), threading.Event(), threading.Event()
    next_generation = _generations(clock, threads)

    def refresh() -> dict[str, str]:
        if hold.is_set():
            started.set()
            assert release.wait(HANG_GUARD)
        return next_generation()

    provider = resolve_provider(_refreshable(clock, refresh))
    assert (await provider.aget()).access_key == "ASIAFIRST"
    clock.advance(timedelta(minutes=25))
    hold.set()
    waiting = asyncio.ensure_future(provider.aget())
    try:
        assert await asyncio.to_thread(started.wait, HANG_GUARD)
    finally:
        release.set()
    assert (await waiting).access_key == "ASIAGEN1"
    assert len(threads) == 1
    assert threads[0] is not threading.current_thread()


@contextlib.contextmanager
def botocore_refreshing(refreshable, started: threading.Event, release: threading.Event):
    """Another user of ``refreshable`` inside botocore's refresh, holding its refresh lock.

    The refresh function given to ``refreshable`` must set ``started`` and wait for
    ``release``; on exit it is released and the other user's call joined.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        other = pool.submit(refreshable.get_frozen_credentials)
        try:
            assert started.wait(HANG_GUARD)
            yield
        finally:
            release.set()
            other.result(HANG_GUARD)


def test_while_botocore_refreshes_a_snapshot_is_read_without_its_lock_and_never_stale():
    """A refresh in progress holds botocore's lock: a snapshot is then read without waiting
    for it (an event loop must not block on another thread's network call), and is the
    current triple's with its own expiry, never the snapshot cached for an earlier triple.
    """
    clock = FakeClock()
    started, release, hold = threading.Event(), threading.Event(), threading.Event()
    next_generation = _generations(clock)

    def refresh() -> dict[str, str]:
        if hold.is_set():
            started.set()
            assert release.wait(HANG_GUARD)
        return next_generation()

    refreshable = _refreshable(clock, refresh)
    provider = resolve_provider(refreshable)
    assert provider.get().access_key == "ASIAFIRST"  # cached: ASIAFIRST
    clock.advance(timedelta(minutes=25))  # mandatory: another user refreshes to ASIAGEN1
    assert refreshable.get_frozen_credentials().access_key == "ASIAGEN1"
    clock.advance(timedelta(minutes=47))  # 13 minutes left: the next refresh is advisory
    hold.set()
    with (
        botocore_refreshing(refreshable, started, release),
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):
        current = pool.submit(provider.get).result(HANG_GUARD)
        assert current.access_key == "ASIAGEN1"
        assert current.expiry == refreshable._expiry_time
        assert pool.submit(provider.get).result(HANG_GUARD) == current


def test_refreshable_botocore_credentials_without_an_expiry_sign_without_a_warning():
    """botocore lets ``RefreshableCredentials`` carry no expiry (never refreshed): that is a
    usable value of ``_expiry_time``, not a changed botocore, so nothing warns and the
    snapshot has no expiry. (Warnings are errors in this suite.)"""
    never_called: list[int] = []
    refreshable = botocore.credentials.RefreshableCredentials(
        "ASIANOEXPIRY",
        "no-expiry-secret",
        "no-expiry-token",
        None,
        lambda: never_called.append(1),
        "custom-process",
    )
    snapshot = resolve_provider(refreshable).get()
    assert (snapshot.access_key, snapshot.expiry) == ("ASIANOEXPIRY", None)
    assert never_called == []


@pytest.mark.anyio
async def test_a_chain_answers_aget_from_its_first_provider_and_then_from_the_winner():
    """``aget()`` through a chain returns the first answering provider's keys, the first
    time (trying in order) and every later time (from the provider that answered)."""
    chain = resolve_provider([CallableProvider(lambda: None), ("AKIDSECOND", "second-secret")])
    assert isinstance(chain, ChainProvider)
    for _ in range(2):
        snapshot = await chain.aget()
        assert (snapshot.access_key, snapshot.secret_key) == ("AKIDSECOND", "second-secret")


@pytest.mark.anyio
async def test_botocores_default_chain_answers_aget_again_once_resolved(monkeypatch, tmp_path):
    """After its first resolution a ``BotocoreProvider`` answers ``aget()`` from the botocore
    credentials it resolved, as it does the first time."""
    isolate_aws(tmp_path, monkeypatch)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    provider = BotocoreProvider()
    for _ in range(2):
        snapshot = await provider.aget()
        assert (snapshot.access_key, snapshot.secret_key) == ("AKIDFROMENV", "env-secret")


@pytest.mark.anyio
async def test_a_static_providers_aget_returns_its_keys():
    """``StaticProvider.aget()`` answers with the very keys it was given."""
    given = Credentials("AKIDSTATIC", "static-secret", "static-token")
    assert await StaticProvider(given).aget() is given


def test_a_failure_whose_exception_chain_loops_is_reported_not_hung_on():
    """A provider function's exception may chain back to itself (``a.__cause__ = b``,
    ``b.__cause__ = a``): looking through the chain for secrets visits each exception once."""
    first, second = ConnectionError("vault down"), ValueError("retry failed")
    first.__cause__, second.__cause__ = second, first

    def fetch() -> Credentials:
        raise first

    provider = CallableProvider(fetch)
    outcome: concurrent.futures.Future[Credentials] = concurrent.futures.Future()

    def get() -> None:  # in a daemon thread: a hang fails the test instead of stopping pytest
        try:
            outcome.set_result(provider.get())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.set_exception(exc)

    threading.Thread(target=get, daemon=True).start()
    with pytest.raises(CredentialsRefreshError, match="ConnectionError"):
        outcome.result(HANG_GUARD)


def test_a_failure_with_a_note_that_is_not_text_is_reported():
    """Notes are meant to be str, but ``__notes__`` is a plain list: anything else in it is
    read as its repr when looking for secrets, not passed to the redaction as it is."""
    error = ConnectionError("vault down")
    error.__notes__ = [503]

    def fetch() -> Credentials:
        raise error

    with pytest.raises(CredentialsRefreshError, match="ConnectionError") as info:
        CallableProvider(fetch).get()
    assert info.value.__cause__ is error


def test_a_secret_in_an_implicitly_chained_exception_is_not_chained_or_logged(caplog):
    """A provider function that fails while handling its vault's answer chains that answer
    implicitly (``__context__``): a traceback prints it as it prints a ``from`` cause, so a
    secret there keeps the error from being chained, and out of the log."""
    clock = FakeClock()
    answers: list[int] = []

    def fetch() -> Credentials:
        answers.append(1)
        if len(answers) == 1:
            return Credentials("AKIDIMPLICIT", VAULT_SECRET, None, clock() + HOUR)
        try:
            json.loads(f'vault answered {{"SecretAccessKey": "{VAULT_SECRET}"}}')
        except ValueError as exc:
            exc.args = (exc.doc,)  # the error now quotes the vault's answer, as some parsers do
            raise ConnectionError("vault went away")  # noqa: B904 - chained implicitly: the case

    provider = CallableProvider(fetch, clock=clock)
    provider.get()
    clock.advance(timedelta(minutes=55))
    with caplog.at_level(logging.WARNING, logger="apigw_iam_auth"):
        assert provider.get().access_key == "AKIDIMPLICIT"
    assert "keeping the keys" in caplog.text
    assert VAULT_SECRET not in caplog.text
    clock.advance(timedelta(minutes=3))  # past half the window: the failure is raised
    with pytest.raises(CredentialsRefreshError, match="ConnectionError") as info:
        provider.get()
    assert VAULT_SECRET not in "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize(
    ("expiry", "naive_clock"),
    [
        (datetime(2030, 1, 1, 12, 0), True),  # noqa: DTZ001 - a naive expiry: read as UTC
        (datetime(2030, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))), False),
    ],
    ids=["naive", "utc+2"],
)
def test_a_botocore_expiry_becomes_the_same_instant_in_utc(monkeypatch, expiry, naive_clock):
    """The snapshot's expiry is botocore's, in UTC: a naive one is taken as UTC (what
    botocore means by it), whatever the machine's time zone; an aware one is converted."""
    naive_utc_clock = {"time_fetcher": lambda: datetime.now(timezone.utc).replace(tzinfo=None)}
    refreshable = botocore.credentials.RefreshableCredentials(
        "ASIAZONED",
        "zoned-secret",
        "zoned-token",
        expiry,
        lambda: None,  # never due before 2030
        "custom-process",
        **(naive_utc_clock if naive_clock else {}),
    )
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        snapshot = resolve_provider(refreshable).get()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert snapshot.expiry == datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert snapshot.expiry.utcoffset() == timedelta(0)
