"""Credential providers: where a signature's key, secret and token come from.

botocore owns the real credential chain (env, profiles, SSO, assume-role, process, container,
IMDS) and the refresh windows of its temporary credentials; this module only adapts and composes
providers, and hands the signer one frozen snapshot per signature.

Two rules shape everything here:

* A snapshot is one :class:`Credentials` value: key, secret, token and expiry from the same
  refresh, never read field by field from an object that may refresh in between.
* When a load is due (first resolution, refresh), one caller does it and every other thread or
  task that needs it waits for that one (single flight). Async callers never block their event
  loop: the load runs in a worker thread, or natively for ``async def`` providers. When nothing is
  due, ``aget()`` returns the cached snapshot directly, with no thread hop.

Providers pickle and deep-copy (so an auth object can go to a worker process): they carry their
settings, never a lock, a load in flight, a botocore session or a cached snapshot, and resolve
again on first use. Each class says what it carries.

Private couplings to botocore
-----------------------------
botocore has no public way to read a credentials object's expiry, or its key triple and expiry
as one pair, or when every caller must wait for a refresh. This module reads four private
attributes of ``RefreshableCredentials`` for that, each at exactly one marked place and each
guarded by a test in ``tests/test_botocore_couplings.py`` that fails when botocore drops or
changes it:

==============================  ================================  ============================
private attribute               what it gives                     if botocore drops it
==============================  ================================  ============================
``_refresh_lock``               triple and expiry read as one     they are read until two
                                pair (botocore publishes under    reads agree; not cached;
                                it); replaced in a forked child   a child forked mid-refresh
                                where a parent thread held it     hangs at its next refresh
``_frozen_credentials``         the current triple without a      ``aget()`` calls
                                clock read: ``aget()``'s inline   ``get_frozen_credentials``
                                fast path                         on the loop; not cached
``_expiry_time``                the snapshot's expiry, which      the expiry is probed with
                                caps presigned URLs               the public
                                                                  ``refresh_needed(seconds)``
                                                                  (a bound, never later)
``_mandatory_refresh_timeout``  botocore's mandatory window;      ``aget()`` waits for every
                                before it (the advisory one)      refresh due, advisory ones
                                ``aget()`` starts the refresh     too
                                aside and goes on
==============================  ================================  ============================

A missing one never fails silently: the provider warns once (:class:`BotocoreCompatibilityWarning`,
naming what is lost) and carries on with the public API. Everything else is public botocore
API: ``get_frozen_credentials()``, ``refresh_needed()``, ``Session.get_credentials()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import os
import threading
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Protocol, TypeAlias, TypeVar, Union

from apigw_iam_auth._botocore import missing_profile, profile_origin
from apigw_iam_auth._models import Credentials, binary_kind
from apigw_iam_auth._threads import (
    asyncio_loop,
    in_worker_thread,
    running_loop,
    start_in_trio_thread,
    wait_on_trio,
)
from apigw_iam_auth.diagnostics import redact
from apigw_iam_auth.errors import (
    SEE_CAUSE,
    CredentialsError,
    CredentialsRefreshError,
    InvalidConfigError,
    NoCredentialsError,
)

__all__ = [
    "BotocoreCompatibilityWarning",
    "BotocoreProvider",
    "CallableProvider",
    "ChainProvider",
    "CredentialsProvider",
    "CredentialsSource",
    "KeyTuple",
    "SessionLike",
    "StaticProvider",
    "reset_shared_providers",
    "resolve_provider",
    "shared_provider",
]

_log = logging.getLogger("apigw_iam_auth.credentials")

_HOW_TO_CONFIGURE = (
    "Configure credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile "
    "with profile= or AWS_PROFILE (`aws configure`, `aws sso login`), run with an instance, task "
    "or pod role, or pass credentials=(key, secret[, token]) or a provider function"
)

# A chain of chains deeper than this is refused: nesting adds nothing a flat list does not,
# and an unbounded depth is a RecursionError waiting for hostile input.
_MAX_CHAIN_DEPTH = 8
# Longest lifetime the expiry probe resolves (seconds): a presigned URL's maximum, 7 days,
# and a minute, so the time the probe and the signing take never shortens a week-long link.
_PROBE_HORIZON = 7 * 24 * 60 * 60 + 60
# The lengths of a key tuple: (key, secret) and (key, secret, token).
_KEY_TUPLE_LENGTHS = (2, 3)
# Reads of a triple and its expiry without botocore's lock, before giving up: each retry means
# a refresh was published in between, and refreshes take a network round trip each.
_UNLOCKED_READS = 3

# Background tasks of native async loads: the event loop keeps only weak references to tasks.
_TASKS: set[asyncio.Task[Credentials]] = set()
# Every single-flight guard, and every wrapped botocore object, for a forked child to reset.
_FLIGHTS: weakref.WeakSet[_Flight] = weakref.WeakSet()
_BOTOCORE_OBJECTS: weakref.WeakSet[_BotocoreCredentialsProvider] = weakref.WeakSet()


class SessionLike(Protocol):
    """A botocore or boto3 ``Session``: anything with ``get_credentials()``."""

    def get_credentials(self) -> Any:  # noqa: ANN401 - botocore's or boto3's credentials
        """Return the session's credentials object (botocore resolves its chain here)."""


KeyTuple: TypeAlias = tuple[str, str] | tuple[str, str, str | None]
"""``(access_key, secret_key)`` or ``(access_key, secret_key, session_token)``."""


class _ReadOnlyCredentials(Protocol):
    """botocore's ``ReadOnlyCredentials``, the named tuple ``get_frozen_credentials`` returns.

    A protocol rather than botocore's class: without botocore's stubs installed, the class
    would be ``Any`` to a type checker, and so would every union that names it. ``_fields``
    keeps it to named tuples, as :func:`snapshot_of` does at run time: a live botocore
    ``Credentials`` has the three attributes too, but not as one snapshot.
    """

    @property
    def _fields(self) -> tuple[str, ...]: ...
    # Optional as botocore's stubs type them; a key or secret that is None is refused.
    @property
    def access_key(self) -> str | None: ...
    @property
    def secret_key(self) -> str | None: ...
    @property
    def token(self) -> str | None: ...


class _BotocoreCredentials(Protocol):
    """A botocore ``Credentials`` object, refreshable or not: read as one frozen snapshot."""

    def get_frozen_credentials(self) -> _ReadOnlyCredentials: ...


FixedKeys: TypeAlias = Credentials | KeyTuple | _ReadOnlyCredentials
"""Keys as given: :class:`Credentials`, a key tuple, or botocore's ``ReadOnlyCredentials``."""

_Single: TypeAlias = Union[
    FixedKeys,
    "CredentialsProvider",
    _BotocoreCredentials,
    SessionLike,
    Callable[[], Any],
]
CredentialsSource: TypeAlias = _Single | Sequence[_Single | None] | None
"""What ``credentials=`` accepts (see :func:`resolve_provider`): None for botocore's default
chain, a key tuple, :class:`Credentials`, a provider, a botocore credentials object, a botocore
or boto3 session, a function (sync or async) returning credentials, or a list of these tried in
order."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class CredentialsProvider(ABC):
    """Something that yields one consistent :class:`Credentials` snapshot per call."""

    @abstractmethod
    def get(self) -> Credentials:
        """Return current credentials; may block on I/O when a refresh is due."""

    async def aget(self) -> Credentials:
        """Return current credentials without blocking the running event loop.

        This default runs :meth:`get` in a worker thread every time; providers that can tell
        when no I/O is due override it with a direct fast path.
        """
        return await in_worker_thread(self.get)


class BotocoreCompatibilityWarning(RuntimeWarning):
    """botocore lacks a private attribute this library reads; the message says what is lost.

    Signing carries on through botocore's public API (see the module docstring's table). Please
    report it with your botocore version.
    """


def not_a_snapshot(subject: str, value: object) -> InvalidConfigError:
    """``value`` is no snapshot of keys: named by its type, never shown (it may hold a secret)."""
    # A frozen snapshot has no expiry: said, as a presigned URL is capped to the expiry only
    # where a provider (SigV4Signer(credentials=...)) reads the live object.
    fix = (
        "; call its get_frozen_credentials() for one (without its expiry: to cap presigned "
        "URLs to it, give the object itself as SigV4Signer(credentials=...))"
        if hasattr(value, "get_frozen_credentials")
        else ""
    )
    return InvalidConfigError(
        f"{subject} Credentials, a (key, secret[, token]) tuple or botocore's "
        f"ReadOnlyCredentials, got {type(value).__name__}{fix}"
    )


def _a_class(subject: str, value: type) -> InvalidConfigError:
    return InvalidConfigError(
        f"{subject} is the class {value.__name__}, not an instance of it: call it "
        f"({value.__name__}(...))"
    )


def _nothing_found(reason: str) -> NoCredentialsError:
    """A provider had nothing to offer; ``reason`` (an attribute) says why, for a chain."""
    said = f"{reason}\n" if "\n" in reason else f"{reason}. "  # a chain's list ends its lines
    return NoCredentialsError(f"no AWS credentials: {said}{_HOW_TO_CONFIGURE}", reason=reason)


def _reason(exc: NoCredentialsError) -> str:
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else str(exc)


def _failure(what: str, exc: BaseException, fix: str = "") -> CredentialsRefreshError:
    """``what`` failed because of ``exc``: the error to raise, with ``exc`` chained as its cause.

    ``fix``, a sentence, says what to do where botocore's text does not
    (:func:`_env_refresh_fix`, :func:`_env_load_fix`).

    botocore's own messages say what to fix (an expired SSO login, a missing profile, an HTTP
    status, refreshed credentials still expired), so they are kept, also when botocore raised
    a builtin type, but some quote text from outside (a ``credential_process``'s stderr, a
    credential endpoint's body) and pass through ``redact``. Anything else is named by type
    only. ``exc`` is not chained when its message holds something ``redact`` masks: a
    traceback or ``logging.exception`` prints the cause in full, secret and all; nor when
    anything else such a traceback prints does: an exception chained behind it (``raise ...
    from KeyError(body)``), a member of an exception group (an ``asyncio.TaskGroup``'s failed
    task), a note (``add_note(body)``).
    """
    text = str(exc)
    fix = fix or _known_fix(exc)
    quotes_secret = _quotes_secret(exc)
    if type(exc).__module__.startswith("botocore") or _raised_in_botocore(exc):
        detail = redact(f"{type(exc).__name__}: {text}")
    elif quotes_secret:
        detail = f"{type(exc).__name__} (not chained: what its traceback prints quotes a secret)"
    else:
        detail = f"{type(exc).__name__} {SEE_CAUSE}"
    if fix:
        detail = f"{detail} {fix}" if detail.endswith(".") else f"{detail}. {fix}"
    error = CredentialsRefreshError(f"{what}: {detail}")
    if quotes_secret:
        error.__suppress_context__ = True  # as `raise ... from None` does
    else:
        error.__cause__ = exc
    return error


def _known_fix(exc: BaseException) -> str:
    """What to do where botocore lets an error of a library it calls through, unexplained.

    A ``credential_process`` or credential endpoint answering something else than its JSON
    document, or an expiry without a time zone or unreadable (json, datetime, dateutil).
    """
    if isinstance(exc, json.JSONDecodeError):  # its text says where, never quotes the document
        return (
            "The credential source's answer is not JSON: a credential_process must print its "
            "JSON document alone on stdout"
        )
    if isinstance(exc, TypeError) and "offset-naive" in str(exc):
        return (
            "The expiry the credential source gave has no time zone: it must give one, as in "
            "2030-01-01T00:00:00Z"
        )
    if type(exc).__name__ == "ParserError":  # dateutil's, through botocore's parse of Expiration
        return "The expiry the credential source gave is not a time: give ISO 8601"
    return ""


def _env_refresh_fix(exc: BaseException) -> str:
    """What to do when botocore cannot refresh keys exported with ``AWS_CREDENTIAL_EXPIRATION``.

    botocore refreshes them by reading the environment again, and says only that they are
    "still expired", or fails comparing a time without a zone with its own aware clock.
    """
    if isinstance(exc, TypeError):  # "can't subtract offset-naive and offset-aware datetimes"
        return "AWS_CREDENTIAL_EXPIRATION has no time zone: add one, as in 2030-01-01T00:00:00Z"
    if isinstance(exc, RuntimeError) and "still expired" in str(exc):
        return (
            "The credentials in the environment expired at AWS_CREDENTIAL_EXPIRATION: export "
            "fresh AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and "
            "AWS_CREDENTIAL_EXPIRATION, or unset AWS_CREDENTIAL_EXPIRATION"
        )
    return ""


def _env_load_fix(exc: BaseException, session: Any) -> str:  # noqa: ANN401 - botocore's Session
    """What to do when botocore's chain fails on an unreadable ``AWS_CREDENTIAL_EXPIRATION``.

    botocore quotes dateutil ("Unknown string format: ...") without naming the variable. It is
    named only where it is to blame: the keys are in the environment, the session names no
    profile of its own (one removes botocore's environment provider), and the error quotes the
    variable's value; a date another provider returned is not its.
    """
    expiration = (os.environ.get("AWS_CREDENTIAL_EXPIRATION") or "").strip()
    if (
        not isinstance(exc, ValueError)
        or not expiration
        or expiration not in str(exc)
        or not os.environ.get("AWS_ACCESS_KEY_ID")
        or session.instance_variables().get("profile") is not None
    ):
        return ""
    return (
        "AWS_CREDENTIAL_EXPIRATION is not a time botocore can read: give an ISO 8601 time such "
        "as 2030-01-01T00:00:00Z, or unset it"
    )


def _raised_in_botocore(exc: BaseException) -> bool:
    """``exc``'s innermost frame is botocore's: botocore raised it, not a function it called."""
    frame = exc.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__")
    return isinstance(module, str) and module.partition(".")[0] == "botocore"


def _quotes_secret(exc: BaseException) -> bool:
    """Whether anything a traceback of ``exc`` prints holds what ``redact`` masks."""
    return any(redact(printed) != printed for printed in _printed(exc))


def _printed(exc: BaseException) -> Iterator[str]:
    """The texts a traceback of ``exc`` prints besides its frames' source lines.

    Each exception's message and notes, for ``exc``, every exception chained behind it (causes,
    and contexts not suppressed) and every member of an exception group, nested or chained.
    """
    seen: set[int] = set()  # ids of exceptions the traversal holds: alive, so never reused
    pending = [exc]
    while pending:
        link = pending.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield str(link)
        notes = getattr(link, "__notes__", None)
        if isinstance(notes, (list, tuple)):
            yield from (note if isinstance(note, str) else repr(note) for note in notes)
        members = getattr(link, "exceptions", None)  # BaseExceptionGroup, or its 3.10 backport
        if isinstance(members, tuple):
            pending += [member for member in members if isinstance(member, BaseException)]
        behind = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
        if behind is not None:
            pending.append(behind)


def _checked_clock(clock: Callable[[], datetime]) -> Callable[[], datetime]:
    """``clock``, read once now: compared with aware expiries, a naive time fails each load."""
    now = clock() if callable(clock) else None
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidConfigError(
            "clock must be a function returning an aware datetime, such as "
            f"lambda: datetime.now(timezone.utc); it returned {type(now).__name__}"
            + (" without a time zone" if isinstance(now, datetime) else "")
        )
    return clock


_Load = Callable[[], Credentials]
_AsyncLoad = Callable[[], Coroutine[Any, Any, Credentials]]


class _Abandoned(Exception):  # noqa: N818 - not an error: a signal to the waiters of a load
    """A native load's event loop stopped (or closed) before the load ended: start another."""


# Loads a caller starts or joins before giving up, when each one's event loop stops under it.
_ATTEMPTS = 3
# How often a waiter checks that the loop running a native load still runs (a loop stopped or
# closed by hand leaves the load pending for good).
_STRANDED_CHECK_SECONDS = 0.25
# How long a provider function's cached keys stand in after a failed refresh before the next try.
_RETRY_PAUSE = timedelta(seconds=10)


class _Flight:
    """At most one load in progress; every thread and task that needs it waits for that one.

    The shared result is a ``concurrent.futures.Future``: threads block on it and tasks on any
    event loop await it through ``asyncio.wrap_future``, so nothing is bound to one loop. It is
    marked running at once, so a waiter that gets cancelled cannot cancel it for the others.
    Loads store their result in the provider's cache before the flight ends, and re-check that
    cache first (double-checked), so a caller arriving just after a load never repeats it.

    A native async load is a task of the loop of the caller that started it, and that loop may
    stop first: ``asyncio.run`` ending cancels the task (even before its first step), a loop
    stopped or closed by hand leaves it pending. Either way the load is *abandoned*, not
    failed: its waiters (who check the loop now and then) and the next caller start a load of
    their own.

    A load started from a loop is queued on that loop's default executor, whose threads may
    all be waiting for it in :meth:`run` (sync signing in ``asyncio.to_thread``): a thread that
    comes to wait for a load still queued takes it and runs it itself, so the load never waits
    for a thread held by its own waiters. The queued job then finds nothing to do.

    A forked child has none of its parent's threads, so a load one of them ran at fork time
    would never end there: the child forgets every flight, and loads again when it must.
    """

    __slots__ = ("__weakref__", "_future", "_lock", "_native_loop", "_queued")

    def __init__(self) -> None:
        self._forget()
        _FLIGHTS.add(self)

    def _forget(self) -> None:
        """No load in flight, and a new lock (also in a forked child: see _reset_after_fork)."""
        self._lock = threading.Lock()
        self._future: concurrent.futures.Future[Credentials] | None = None
        # The loop running a native async load, if that is what is in flight.
        self._native_loop: asyncio.AbstractEventLoop | None = None
        # The load in flight while it waits for an executor thread (see the class docstring).
        self._queued: _Load | None = None

    def _claim(
        self, native_loop: asyncio.AbstractEventLoop | None = None
    ) -> tuple[concurrent.futures.Future[Credentials], bool]:
        with self._lock:
            current = self._future
            if current is not None:
                if not self._stranded_locked():
                    return current, False
                self._abandon_locked(current)
            future: concurrent.futures.Future[Credentials] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self._future, self._native_loop = future, native_loop
            return future, True

    def busy(self) -> bool:
        """A load is in flight that may still end (not one whose loop has stopped)."""
        if self._future is None:  # the common case, read without the lock
            return False
        with self._lock:
            return self._future is not None and not self._stranded_locked()

    def _stranded_locked(self) -> bool:
        """The load in flight is a task of a loop that is not running: it may never end."""
        loop = self._native_loop
        return loop is not None and (loop.is_closed() or not loop.is_running())

    def _abandon_if_stranded(self, future: concurrent.futures.Future[Credentials]) -> None:
        with self._lock:
            if self._future is future and self._stranded_locked():
                self._abandon_locked(future)

    def _abandon_locked(self, future: concurrent.futures.Future[Credentials]) -> None:
        """Give up on the stranded load; tasks of closed loops, which never end, are let go."""
        self._settle_locked(future, None, _Abandoned())
        _TASKS.difference_update([task for task in _TASKS if task.get_loop().is_closed()])

    def _finish(
        self,
        future: concurrent.futures.Future[Credentials],
        result: Credentials | None,
        error: BaseException | None,
    ) -> None:
        with self._lock:
            self._settle_locked(future, result, error)

    def _settle_locked(
        self,
        future: concurrent.futures.Future[Credentials],
        result: Credentials | None,
        error: BaseException | None,
    ) -> None:
        """End ``future``'s flight with this outcome, unless it has one already."""
        if self._future is future:
            self._future, self._native_loop, self._queued = None, None, None
        if future.done():
            return
        if error is None:
            future.set_result(result)  # type: ignore[arg-type]
        else:
            future.set_exception(error)

    def _settle(self, future: concurrent.futures.Future[Credentials], load: _Load) -> None:
        try:
            result = load()
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, raised there
            self._finish(future, None, exc)
        else:
            self._finish(future, result, None)

    def _task_done(
        self, future: concurrent.futures.Future[Credentials], task: asyncio.Task[Credentials]
    ) -> None:
        """A native load's task ended: its outcome for every waiter.

        Cancelled (its loop shutting down, perhaps before its first step), it is abandoned. A
        load cancelled from inside is not cancelled here: it raised a failure of its own.
        """
        _TASKS.discard(task)
        if task.cancelled():
            self._finish(future, None, _Abandoned())
        elif (error := task.exception()) is not None:
            self._finish(future, None, error)
        else:
            self._finish(future, task.result(), None)

    def start(self, load: _Load) -> None:
        """Start ``load`` in a worker thread for everyone, unless one is in flight; no waiting."""
        future, owner = self._claim()
        if owner:
            self._in_thread(asyncio_loop(), future, load)

    def _in_thread(
        self,
        loop: asyncio.AbstractEventLoop | None,
        future: concurrent.futures.Future[Credentials],
        load: _Load,
    ) -> None:
        """Queue ``load`` on ``loop``'s default executor, or on trio (``loop`` None) a thread.

        The job settles the shared future, unless a waiting thread took the load first; its
        own asyncio future is unused.
        """
        with self._lock:
            if self._future is future:
                self._queued = load
        try:
            if loop is None:
                start_in_trio_thread(partial(self._run_queued, future))
            else:
                loop.run_in_executor(None, self._run_queued, future)
        except BaseException as exc:  # executor shut down: do not strand the waiters
            self._finish(future, None, exc)
            raise

    def _run_queued(self, future: concurrent.futures.Future[Credentials]) -> None:
        """Run ``future``'s load if it is still queued (nobody took it meanwhile)."""
        load = self._take_queued(future)
        if load is not None:
            self._settle(future, load)

    def _take_queued(self, future: concurrent.futures.Future[Credentials]) -> _Load | None:
        with self._lock:
            if self._future is not future:
                return None
            load, self._queued = self._queued, None
            return load

    def run(self, load: _Load) -> Credentials:
        """Join the load in flight, or run ``load`` in this thread for everyone."""
        for _ in range(_ATTEMPTS):
            with self._lock:
                own_loop = self._native_loop is not None and self._native_loop is running_loop()
            if own_loop:
                # That load is a task of the loop this thread is running: waiting for it here
                # would block the very loop it needs. Load separately instead.
                return load()
            future, owner = self._claim()
            if owner:
                self._settle(future, load)
            else:
                self._run_queued(future)  # perhaps queued behind this very thread
            try:
                return self._wait(future)
            except _Abandoned:
                continue
        raise _kept_stopping()

    def _wait(self, future: concurrent.futures.Future[Credentials]) -> Credentials:
        """``future``'s result; checked now and then for a native load whose loop stopped."""
        while True:
            done, _ = concurrent.futures.wait((future,), timeout=_STRANDED_CHECK_SECONDS)
            if done:
                return future.result()
            self._abandon_if_stranded(future)

    async def arun(self, load: _Load, aload: _AsyncLoad | None = None) -> Credentials:
        """Join the load in flight, or start one off the loop (thread, or native task).

        On trio the load runs in a trio worker thread, and an async function's load as it runs
        for sync callers (on an asyncio loop of its own): a native task would be asyncio's.
        """
        loop = asyncio_loop()
        for _ in range(_ATTEMPTS):
            future, owner = self._claim(loop if aload is not None else None)
            if owner:
                if aload is None or loop is None:
                    self._in_thread(loop, future, load)
                else:
                    task = loop.create_task(aload())
                    _TASKS.add(task)
                    task.add_done_callback(partial(self._task_done, future))
            try:
                return await (self._await(future) if loop else self._await_on_trio(future))
            except _Abandoned:
                continue
        raise _kept_stopping()

    async def _await_on_trio(self, future: concurrent.futures.Future[Credentials]) -> Credentials:
        """As :meth:`_await`, on trio."""
        while not future.done():
            await wait_on_trio(future, _STRANDED_CHECK_SECONDS)
            self._abandon_if_stranded(future)
        return future.result()

    async def _await(self, future: concurrent.futures.Future[Credentials]) -> Credentials:
        """As :meth:`_wait`, without blocking the running loop."""
        waiting = asyncio.wrap_future(future)
        try:
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=_STRANDED_CHECK_SECONDS)
                if done:
                    return waiting.result()
                self._abandon_if_stranded(future)
        finally:
            waiting.cancel()  # cancelled while waiting: this task's view only, not the load


def _kept_stopping() -> CredentialsRefreshError:
    return CredentialsRefreshError(
        f"credential load abandoned {_ATTEMPTS} times: the event loop running each one "
        "stopped before it ended"
    )


class StaticProvider(CredentialsProvider):
    """Fixed credentials, for tests, scripts and keys handed over by a secrets manager.

    Pickling or copying carries the credentials themselves, secret and token included: they
    are all there is to carry. A pickle of this provider, or of an auth object or session
    holding it, is therefore a secret. To send an auth object to another process without its
    keys, use ``credentials=None`` (or ``profile=``) and let that process resolve its own.
    """

    def __init__(self, credentials: FixedKeys) -> None:
        """Wrap a snapshot, checked now rather than at the first signature.

        :class:`Credentials`, a ``(key, secret[, token])`` tuple or botocore's
        ``ReadOnlyCredentials``: what ``credentials=`` takes as fixed keys.
        """
        snapshot = snapshot_of(credentials)
        if snapshot is None:
            raise not_a_snapshot("StaticProvider takes", credentials)
        self._credentials = snapshot

    def __repr__(self) -> str:
        """Name the key id only."""
        return f"StaticProvider(access_key={self._credentials.access_key!r})"

    def get(self) -> Credentials:
        """Return the fixed snapshot."""
        return self._credentials

    async def aget(self) -> Credentials:
        """Return the fixed snapshot; no I/O, so no thread."""
        return self._credentials


_LOST: Any = object()  # what a private botocore attribute reads as once botocore drops it

# What each private attribute gives, and what a botocore without it costs (warned once).
_LOSSES = {
    "_refresh_lock": (
        "the key, secret, token and expiry are no longer read as one pair under botocore's "
        "refresh lock; they are read until two reads agree, and not cached (a little slower)"
    ),
    "_frozen_credentials": (
        "aget() now calls get_frozen_credentials() on the event loop when no refresh is due "
        "(a refresh falling due in that very instant would block the loop), and snapshots are "
        "not cached"
    ),
    "_mandatory_refresh_timeout": (
        "aget() waits for every refresh botocore has due, also in its advisory window, where "
        "botocore's own callers go on with the current credentials"
    ),
    "_expiry_time": (
        "the credentials' expiry is now probed through the public refresh_needed() on every "
        "signature: presigned URLs stay capped, to a bound never later than the real expiry"
    ),
}


class _BotocoreCredentialsProvider(CredentialsProvider):
    """A botocore ``Credentials`` / ``RefreshableCredentials`` / ``DeferredRefreshable...`` object.

    botocore keeps its own refresh windows (advisory 15 min: one thread refreshes, the others go
    on; mandatory 10 min: everyone waits) and its own lock; ``get()`` calls
    ``get_frozen_credentials()`` once and pairs the triple with its expiry. ``aget()`` asks the
    public ``refresh_needed()`` first and hops to a worker thread only when botocore is about to
    do I/O; otherwise it reads the current triple without entering botocore's refresh at all,
    so no refresh can start on the event loop. The private attributes read here, and what
    happens without them, are in the module docstring's table.

    Pickling carries a plain botocore ``Credentials`` object, key and secret included (the
    pickle is then a secret); refreshable ones are refused, since their lock and refresh
    function belong to this process. A copy shares the botocore object, with fresh caches.
    """

    def __init__(self, credentials: Any) -> None:  # noqa: ANN401 - duck-typed botocore object
        """Wrap the object; no I/O."""
        if inspect.iscoroutinefunction(getattr(credentials, "get_frozen_credentials", None)):
            raise InvalidConfigError(
                "async (aiobotocore) credentials are not supported directly; pass an async def "
                "provider that returns Credentials(key, secret, token, expiry) instead"
            )
        self._credentials = credentials
        # Public API: botocore's refreshable credentials, and only they, have refresh_needed().
        self._refreshable = callable(getattr(credentials, "refresh_needed", None))
        # (botocore's triple, our snapshot of it), swapped as one reference; set only for a
        # pair read under botocore's lock, so a cached expiry is always the triple's own.
        self._memo: tuple[object, Credentials] | None = None
        self._flight = _Flight()
        self._lost: set[str] = set()  # private attributes found missing, each warned once
        _BOTOCORE_OBJECTS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: free botocore's refresh lock if a parent thread held it.

        The thread refreshing at fork time does not exist in the child, so it would never
        release the lock, and the child's next refresh would wait for good.
        """
        if not self._refreshable:  # plain credentials never refresh: no lock to free
            return
        # private coupling: RefreshableCredentials._refresh_lock (see _read_lock); read
        # plainly, as a missing one is warned about where it is needed, not in every child
        locked = getattr(getattr(self._credentials, "_refresh_lock", None), "locked", None)
        if callable(locked) and locked():
            self._credentials._refresh_lock = threading.Lock()  # noqa: SLF001

    def __repr__(self) -> str:
        """Name botocore's method ('env', 'container-role', 'assume-role'...), never values."""
        method = getattr(self._credentials, "method", None)
        return f"BotocoreCredentials(method={method!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Carry a plain credentials object; refuse refreshable ones (see the class docstring)."""
        if self._refreshable:
            raise TypeError(
                f"{self!r} cannot be pickled: botocore's refreshable credentials hold a lock "
                "and a refresh function bound to this process. Use credentials=None (or "
                "profile=), so the unpickled copy resolves its own, or a provider function "
                "that pickle can import"
            )
        return (_rebuild, (type(self), (self._credentials,), {}))

    def __copy__(self) -> _BotocoreCredentialsProvider:
        return type(self)(self._credentials)

    def __deepcopy__(self, memo: dict[int, object]) -> _BotocoreCredentialsProvider:
        return type(self)(self._credentials)  # botocore's object is made to be shared

    def get(self) -> Credentials:
        """One ``get_frozen_credentials()`` call (botocore refreshes inside it if due)."""
        try:
            frozen = self._credentials.get_frozen_credentials()
            memo = self._memo
            if memo is not None and (
                memo[0] is frozen or (not self._refreshable and memo[0] == frozen)
            ):
                return memo[1]
            return self._snapshot(frozen)
        except (NoCredentialsError, InvalidConfigError, BotocoreCompatibilityWarning):
            raise  # the warning only when warnings are errors: as asked, unwrapped
        except Exception as exc:  # noqa: BLE001 - raised as CredentialsRefreshError
            raise self._failed(exc)  # noqa: B904 - _failure chains exc

    async def aget(self) -> Credentials:
        """The snapshot, read inline unless botocore must refresh first (then in a thread).

        In botocore's advisory window one refresh starts in a worker thread and every caller
        goes on with the current credentials, still valid, as botocore's own threads do; in
        its mandatory window every caller waits for that refresh.
        """
        if not self._refreshable:
            return self.get()  # plain credentials never refresh, so never do I/O
        try:
            due = self._credentials.refresh_needed()  # public: botocore's own advisory window
            if not due or not self._mandatory_refresh_due():
                # Read the current triple directly: get_frozen_credentials() would read the
                # clock again and, had the advisory window opened since, refresh on the loop.
                frozen = self._read_frozen()
                if frozen is not _LOST:
                    if due:
                        self._flight.start(self.get)
                    memo = self._memo
                    return memo[1] if memo is not None and memo[0] is frozen else self._pair()
        except (NoCredentialsError, InvalidConfigError, BotocoreCompatibilityWarning):
            raise
        except Exception as exc:  # noqa: BLE001 - raised as CredentialsRefreshError
            raise self._failed(exc)  # noqa: B904 - _failure chains exc
        if due:
            return await self._flight.arun(self.get)
        return self.get()  # degraded (warned): botocore lost _frozen_credentials

    def _failed(self, exc: Exception) -> CredentialsRefreshError:
        from_env = getattr(self._credentials, "method", None) == "env"
        fix = _env_refresh_fix(exc) if from_env else ""
        return _failure(f"{self!r} could not be refreshed", exc, fix)

    def _snapshot(self, frozen: Any) -> Credentials:  # noqa: ANN401 - botocore ReadOnlyCredentials
        """The snapshot of ``frozen`` (just returned by ``get_frozen_credentials``)."""
        if not self._refreshable:
            snapshot = self._as_credentials(frozen, None)
            self._memo = (frozen, snapshot)
            return snapshot
        return self._pair()

    def _pair(self) -> Credentials:
        """The current triple with its own expiry.

        botocore publishes a refresh (the triple, then the expiry) holding its refresh lock:
        holding it for our two reads gives a matching pair, cached for as long as that triple
        is botocore's. If a refresh holds the lock right now, the pair is read without it.
        """
        lock = self._read_lock()
        if lock is not _LOST and lock.acquire(blocking=False):
            try:
                frozen, expiry = self._read_frozen(), self._read_expiry()
            finally:
                lock.release()
            if frozen is not _LOST and expiry is not _LOST:
                snapshot = self._as_credentials(frozen, expiry)
                self._memo = (frozen, snapshot)
                _log.debug("credentials from %r expire at %s", self, snapshot.expiry)
                return snapshot
        return self._unlocked_pair()

    def _unlocked_pair(self) -> Credentials:
        """Pair a triple with its expiry without botocore's lock: read until two reads agree.

        Triple, expiry, triple again: if the triple did not change, the expiry read between
        is its own or, caught between botocore's two writes of a refresh, the previous
        triple's (earlier: a presigned URL is capped shorter, never longer). A triple cached
        from a locked read comes with its exact expiry. Not cached: the expiry may be the
        earlier one. (botocore before 1.38 wrote the expiry first; a triple not yet cached,
        read during a refresh, could then get the next one's expiry: a one-in-a-refresh race.)
        """
        for _ in range(_UNLOCKED_READS):
            first = self._current_triple()
            memo = self._memo
            if memo is not None and memo[0] is first:
                return memo[1]
            expiry = self._read_expiry()
            if expiry is _LOST:
                expiry = self._probe_expiry()
            if self._current_triple() == first:
                return self._as_credentials(first, expiry)
        raise CredentialsRefreshError(
            f"{self!r} changed {_UNLOCKED_READS} times while being read; try again"
        )

    def _as_credentials(self, frozen: Any, expiry: datetime | None) -> Credentials:  # noqa: ANN401
        """The triple and its expiry as one snapshot; refused keys are named with their source.

        botocore passes on what its providers read (a stray newline in AWS_SECRET_ACCESS_KEY,
        in a profile file); the method in this provider's name says which one that was.
        """
        try:
            return Credentials(frozen.access_key, frozen.secret_key, frozen.token, _utc(expiry))
        except InvalidConfigError as exc:  # Credentials' checks name the field, never its value
            raise InvalidConfigError(f"{self!r} holds keys that cannot sign: {exc}") from None

    def _current_triple(self) -> Any:  # noqa: ANN401 - botocore ReadOnlyCredentials
        frozen = self._read_frozen()
        return self._credentials.get_frozen_credentials() if frozen is _LOST else frozen

    def _probe_expiry(self) -> datetime:
        """A lower bound of the expiry, from the public ``refresh_needed(seconds)``.

        ``refresh_needed(s)`` is True exactly when fewer than ``s`` seconds remain, so a binary
        search finds the whole seconds left (up to a presigned URL's maximum, beyond which the
        bound does not matter), counted from before the first question.
        """
        needed = self._credentials.refresh_needed
        start = _utc_now()
        if not needed(_PROBE_HORIZON):
            return start + timedelta(seconds=_PROBE_HORIZON)
        if needed(0):
            return start  # expired
        low, high = 0, _PROBE_HORIZON  # invariant: not needed(low), needed(high)
        while high - low > 1:
            middle = (low + high) // 2
            if needed(middle):
                high = middle
            else:
                low = middle
        return start + timedelta(seconds=low)

    def _mandatory_refresh_due(self) -> bool:
        """True inside botocore's mandatory window, where its own callers wait for a refresh."""
        seconds = self._read_mandatory_timeout()
        return seconds is _LOST or bool(self._credentials.refresh_needed(seconds))

    # The private attributes: each read at exactly one place, below.

    def _read_lock(self) -> Any:  # noqa: ANN401 - a threading.Lock
        # private coupling: RefreshableCredentials._refresh_lock, held while botocore publishes
        # a refresh; guarded by tests/test_botocore_couplings.py::test_refresh_lock_*
        lock = getattr(self._credentials, "_refresh_lock", _LOST)
        usable = callable(getattr(lock, "acquire", None)) and callable(
            getattr(lock, "release", None)
        )
        return self._checked("_refresh_lock", lock, usable=usable)

    def _read_frozen(self) -> Any:  # noqa: ANN401 - botocore ReadOnlyCredentials
        # private coupling: RefreshableCredentials._frozen_credentials, the current triple, the
        # very object get_frozen_credentials() returns; guarded by
        # tests/test_botocore_couplings.py::test_frozen_credentials_*
        frozen = getattr(self._credentials, "_frozen_credentials", _LOST)
        return self._checked("_frozen_credentials", frozen, _is_read_only_credentials(frozen))

    def _read_expiry(self) -> Any:  # noqa: ANN401 - an aware datetime or None
        # private coupling: RefreshableCredentials._expiry_time, the current triple's expiry;
        # guarded by tests/test_botocore_couplings.py::test_expiry_time_*
        expiry = getattr(self._credentials, "_expiry_time", _LOST)
        return self._checked("_expiry_time", expiry, expiry is None or isinstance(expiry, datetime))

    def _read_mandatory_timeout(self) -> Any:  # noqa: ANN401 - seconds, an int or float
        # private coupling: RefreshableCredentials._mandatory_refresh_timeout, the seconds before
        # expiry from which every botocore caller waits for a refresh; guarded by
        # tests/test_botocore_couplings.py::test_mandatory_refresh_timeout_*
        seconds = getattr(self._credentials, "_mandatory_refresh_timeout", _LOST)
        usable = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
        return self._checked("_mandatory_refresh_timeout", seconds, usable=usable)

    def _checked(self, name: str, value: object, usable: bool) -> Any:  # noqa: ANN401
        """``value``, or _LOST when botocore lacks or changed ``name`` (warned once)."""
        if value is not _LOST and usable:
            return value
        if name not in self._lost:
            self._lost.add(name)
            warnings.warn(
                f"apigw_iam_auth: {type(self._credentials).__name__} of {_botocore_version()} "
                f"has no usable {name} (a private attribute read here); {_LOSSES[name]}. "
                "Please report this with your botocore version",
                BotocoreCompatibilityWarning,
                stacklevel=2,
            )
        return _LOST


def _botocore_version() -> str:
    try:
        import botocore  # noqa: PLC0415 - only on this rare path
    except ImportError:  # pragma: no cover - botocore is a dependency
        return "botocore (not importable)"
    return f"botocore {getattr(botocore, '__version__', '(unknown version)')}"


_T = TypeVar("_T")


def _rebuild(cls: Callable[..., _T], args: tuple[object, ...], kwargs: dict[str, Any]) -> _T:
    """Unpickle a provider: call its class with the settings it carried, nothing else."""
    return cls(*args, **kwargs)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.utcoffset() is None:  # botocore parses ISO 8601 with its zone; naive means UTC
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class BotocoreProvider(CredentialsProvider):
    """botocore's default chain for a profile (or a given session), resolved on first use.

    Constructing does no I/O. The first ``get()``/``aget()`` runs ``session.get_credentials()``
    (config files, and whichever provider of the chain answers first); the result is kept and
    snapshotted per call, refreshing as botocore's windows say. ``session`` may be a
    ``botocore.session.Session`` or a ``boto3.Session``. If the chain finds nothing, the next
    call tries again with a fresh session, so credentials configured later are picked up.

    Once resolved, the chain is not consulted again: a change of ``AWS_PROFILE`` or of the
    ``AWS_*`` variables afterwards is not seen (botocore's refreshable credentials still
    refresh). :func:`shared_provider` keeps one per profile for the whole process.

    Pickling or copying carries the profile only: the copy resolves the chain again on first
    use, in its own process. A provider over a given ``session`` copies as one sharing that
    session, and refuses to pickle (a session holds locks and clients of this process).
    """

    def __init__(self, profile: str | None = None, *, session: object = None) -> None:
        """Remember where to look; no I/O happens until credentials are needed."""
        if profile is not None and session is not None:
            raise InvalidConfigError("pass profile= or session=, not both: a session has one")
        if isinstance(session, type):
            raise _a_class("session", session)
        if session is not None and not callable(getattr(session, "get_credentials", None)):
            raise InvalidConfigError("session must be a botocore or boto3 Session")
        if inspect.iscoroutinefunction(getattr(session, "get_credentials", None)):
            raise InvalidConfigError(
                "an async (aiobotocore) session is not supported directly; pass an async def "
                "provider that awaits its get_credentials() and returns Credentials(key, "
                "secret, token, expiry)"
            )
        self._profile = profile
        self._session = session
        self._resolved: _BotocoreCredentialsProvider | None = None
        self._flight = _Flight()

    @property
    def session(self) -> object:
        """The botocore or boto3 Session given, or None for botocore's default chain.

        A signer over it reads the session's region, as the session's own clients would.
        """
        return self._session

    @property
    def profile(self) -> str | None:
        """The profile whose chain this is (None: ``AWS_PROFILE`` or ``default``, or a session).

        A signer over it reads that profile's region, as it signs with that profile's keys.
        """
        return self._profile

    def __repr__(self) -> str:
        """Name the profile (or session) only."""
        if self._session is not None:
            return f"BotocoreProvider(session={type(self._session).__name__})"
        return f"BotocoreProvider(profile={self._profile!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Carry the profile only (see the class docstring)."""
        if self._session is not None:
            raise TypeError(
                f"{self!r} cannot be pickled: a botocore or boto3 Session holds locks and "
                "clients of this process. Use profile= (or credentials=None), so the "
                "unpickled copy resolves its own credentials"
            )
        return (_rebuild, (type(self), (self._profile,), {}))

    def __copy__(self) -> BotocoreProvider:
        return type(self)(self._profile, session=self._session)

    def __deepcopy__(self, memo: dict[int, object]) -> BotocoreProvider:
        return type(self)(self._profile, session=self._session)  # a session is shared, not copied

    def get(self) -> Credentials:
        """Resolve once through botocore's chain, then snapshot with ``get_frozen_credentials``."""
        resolved = self._resolved
        if resolved is not None:
            return resolved.get()
        return self._flight.run(self._first)

    async def aget(self) -> Credentials:
        """As :meth:`get`; the first resolution runs in a worker thread, shared by all callers."""
        resolved = self._resolved
        if resolved is not None:
            return await resolved.aget()
        return await self._flight.arun(self._first)

    def _first(self) -> Credentials:
        resolved = self._resolved
        if resolved is None:
            resolved = _BotocoreCredentialsProvider(self._load())
            snapshot = resolved.get()  # Deferred credentials (assume-role, SSO) fetch here
            self._resolved = resolved
            _log.debug("%r resolved to %r", self, resolved)
            return snapshot
        return resolved.get()

    def _load(self) -> Any:  # noqa: ANN401 - a botocore Credentials object
        import botocore.exceptions  # noqa: PLC0415 - keep botocore's import cost off ours
        import botocore.session  # noqa: PLC0415

        session: Any = self._session
        if session is None:
            session = botocore.session.Session(profile=self._profile)
        try:
            found = session.get_credentials()
        except botocore.exceptions.ProfileNotFound as exc:
            # Not "nothing found": a chain would go on to another identity past a typo.
            origin = "session=" if self._session is not None else profile_origin(self._profile)
            raise InvalidConfigError(
                f"no AWS credentials: {missing_profile(session, origin, exc)}. Fix the profile name"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - raised as CredentialsRefreshError
            failed = f"{self!r}: botocore's credential chain failed"
            raise _failure(failed, exc, _env_load_fix(exc, session))  # noqa: B904
        if found is None:
            raise _nothing_found(self._nothing_reason(session))
        return found

    def _nothing_reason(self, session: Any) -> str:  # noqa: ANN401 - botocore or boto3 session
        # Public botocore API only: Session.get_component, CredentialResolver.providers and
        # each provider's METHOD. A boto3 Session hides its botocore session in a private
        # attribute, so for one (or anything else) the providers are not listed.
        try:
            resolver = session.get_component("credential_provider")
            methods = ", ".join(str(provider.METHOD) for provider in resolver.providers)
        except Exception:  # noqa: BLE001 - only decorates the message
            methods = "its providers"
        profile = getattr(session, "profile", None) or getattr(session, "profile_name", None)
        return (
            f"botocore's default chain for profile {profile or 'default'!r} found nothing "
            f"(tried {methods})"
        )


_SHARED_PROFILES = 32  # distinct profiles kept by shared_provider(); the oldest goes first
_shared: dict[str | None, BotocoreProvider] = {}
_shared_lock = threading.Lock()


def shared_provider(profile: str | None = None) -> BotocoreProvider:
    """The process-wide :class:`BotocoreProvider` for ``profile`` (None: the default profile).

    Created on first use, like boto3's default session, so code that signs now and then (one
    presigned link per web request, see :func:`~apigw_iam_auth.presign_url`) resolves the
    chain once per process rather than per call: on EC2 or ECS that is a metadata-endpoint
    round trip saved each time. Refreshable credentials still refresh when botocore's windows
    say. The chain itself is resolved once: ``AWS_PROFILE`` or ``AWS_*`` variables changed
    after the first use are not seen until :func:`reset_shared_providers`. At most 32 profiles
    are kept; a forked child starts with none (it resolves its own).
    """
    if profile is not None and not isinstance(profile, str):
        raise InvalidConfigError(f"profile must be a str or None, got {type(profile).__name__}")
    provider = _shared.get(profile)
    if provider is None:
        with _shared_lock:
            provider = _shared.get(profile)
            if provider is None:
                if len(_shared) >= _SHARED_PROFILES:
                    del _shared[next(iter(_shared))]
                provider = _shared[profile] = BotocoreProvider(profile)
    return provider


def reset_shared_providers() -> None:
    """Forget the providers :func:`shared_provider` made; the next use resolves the chain again.

    For tests that change ``AWS_*`` variables or profile files between cases, and for long
    processes whose configuration changed. Providers already handed out keep working.
    """
    with _shared_lock:
        _shared.clear()


def _reset_after_fork() -> None:
    """In a forked child: no shared providers, no loads in flight, locks no thread is holding.

    botocore's own refresh locks included (:meth:`_BotocoreCredentialsProvider._after_fork`).

    A load in flight at fork time ran in a parent thread the child does not have: waiting for
    it would hang the child for good. Its future is left alone (a parent thread may have held
    its lock too); the child's callers start loads of their own.
    """
    global _shared_lock  # noqa: PLW0603 - the parent's lock may have been held at fork time
    _shared_lock = threading.Lock()
    _shared.clear()
    for flight in list(_FLIGHTS):
        flight._forget()  # noqa: SLF001 - this module's own class
    for wrapped in list(_BOTOCORE_OBJECTS):
        wrapped._after_fork()  # noqa: SLF001 - this module's own class


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_reset_after_fork)


class CallableProvider(CredentialsProvider):
    """A function (plain or ``async def``) that returns credentials, cached until near expiry.

    The function may return a ``(key, secret[, token])`` tuple, a :class:`Credentials`, a
    botocore credentials object or session, or None for "nothing here" (which lets a chain move
    on). Its result is cached until ``expiry - window``, where the window is ``refresh_window``
    (default 5 minutes) but at most half the lifetime left when the result arrived, so even
    short-lived credentials are reused for a while rather than fetched per signature. Results
    without an expiry are cached for good: return an expiry for anything that rotates.

    In the first half of the window the cached keys, still valid for at least half the window,
    stand in for the refresh: callers that find it in flight go on with them instead of waiting
    (the caller that started it waits), and a refresh that fails (raises, or returns what cannot
    sign: keys ``Credentials`` refuses, expired ones, None) keeps them and logs a WARNING; the
    first call 10 seconds later tries again (not every call: a function that fails slowly would
    hold up each request). This is botocore's advisory window, for the same reasons: a
    slow vault holds up one request, not all, and one down for a minute costs none. In the
    second half everyone waits, and a failure is raised.

    ``async def`` functions run on the event loop of the ``aget()`` caller that starts a load
    (should that loop stop or close first, the callers waiting for it load again); a
    synchronous ``get()`` runs them with ``asyncio.run`` (in a helper thread if this thread is
    already running a loop). Plain functions run in a worker thread for ``aget()``; should one
    return an awaitable (a lambda around a coroutine function), it is run there to completion
    on a loop of its own, so it must not use objects bound to the caller's loop (an
    ``aiohttp.ClientSession``): declare such a function ``async def``.

    Pickling carries the function (by reference: a module-level function pickles, a lambda or
    a local function does not), ``refresh_window`` and ``clock``; never the cached result.
    """

    def __init__(
        self,
        func: Callable[[], object],
        *,
        refresh_window: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Wrap ``func``; it is not called until credentials are needed."""
        if not callable(func):
            raise InvalidConfigError("the credentials provider must be callable")
        if not isinstance(refresh_window, timedelta) or refresh_window < timedelta(0):
            raise InvalidConfigError("refresh_window must be a non-negative timedelta")
        self._func = func
        self._is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - an instance with async __call__
        )
        self._window = refresh_window
        self._clock = _checked_clock(clock)
        self._name = getattr(func, "__qualname__", type(func).__name__)
        # (snapshot, refresh at, kept until if refreshes fail) or None; swapped as one reference
        self._state: tuple[Credentials, datetime | None, datetime | None] | None = None
        self._flight = _Flight()

    def __repr__(self) -> str:
        """Name the function only."""
        return f"CallableProvider({self._name})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Carry the function and settings; the cached result and any load stay behind."""
        kwargs = {"refresh_window": self._window, "clock": self._clock}
        return (_rebuild, (type(self), (self._func,), kwargs))

    def __copy__(self) -> CallableProvider:
        return type(self)(self._func, refresh_window=self._window, clock=self._clock)

    def __deepcopy__(self, memo: dict[int, object]) -> CallableProvider:
        # The function is shared, not copied: a bound method's object (a vault client, its
        # cache, a lock) is the user's, as a botocore session is.
        return self.__copy__()

    def get(self) -> Credentials:
        """The cached snapshot, or one call of the function shared by all waiting threads."""
        return self._fresh() or self._meanwhile() or self._flight.run(self._load)

    async def aget(self) -> Credentials:
        """The cached snapshot, or one off-loop call shared by all waiting tasks and threads."""
        fresh = self._fresh() or self._meanwhile()
        if fresh is not None:
            return fresh
        if self._is_async:
            return await self._flight.arun(self._load, self._aload)
        return await self._flight.arun(self._load)

    def _fresh(self) -> Credentials | None:
        state = self._state
        if state is None:
            return None
        snapshot, refresh_at, _ = state
        if refresh_at is None or self._clock() < refresh_at:
            return snapshot
        return None

    def _keepable(self) -> tuple[Credentials, datetime] | None:
        """The cached snapshot and until when, while it may stand in for a refresh."""
        snapshot, _, kept_until = self._state or (None, None, None)
        if snapshot is None or kept_until is None or self._clock() >= kept_until:
            return None
        return snapshot, kept_until

    def _meanwhile(self) -> Credentials | None:
        """The cached snapshot for a caller that finds a refresh in flight it need not wait for."""
        if not self._flight.busy():
            return None
        keepable = self._keepable()
        return None if keepable is None else keepable[0]

    def _load(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            value = self._func()
            if inspect.isawaitable(value):
                value = _run_blocking(value)
        except Exception as exc:  # noqa: BLE001 - raised as a failure of this provider
            return self._kept(self._raised(exc))
        except asyncio.CancelledError as exc:  # no one cancels sync code: it is the function's
            return self._kept(self._cancelled(exc))
        try:
            return self._store(_to_credentials(value, repr(self)))
        except _UNUSABLE as error:
            return self._kept(error)

    async def _aload(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            value = await self._func()  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - raised as a failure of this provider
            return self._kept(self._raised(exc))
        except asyncio.CancelledError as exc:
            if _cancelled_from_outside():
                raise  # its loop shutting down, or someone's cancel(): the load is abandoned
            return self._kept(self._cancelled(exc))
        try:
            if _converts_with_io(value):
                return self._store(await asyncio.to_thread(_to_credentials, value, repr(self)))
            return self._store(_to_credentials(value, repr(self)))
        except _UNUSABLE as error:
            return self._kept(error)

    def _raised(self, exc: Exception) -> CredentialsError | InvalidConfigError:
        """The failure the function's exception is: one of ours as it is, any other named.

        Ours: ``Credentials`` refusing the keys the function built from a vault's answer, or
        its own ``NoCredentialsError``.
        """
        return exc if isinstance(exc, _UNUSABLE) else _failure(f"{self!r} failed", exc)

    def _cancelled(self, exc: asyncio.CancelledError) -> CredentialsRefreshError:
        """The function was cancelled from inside: a failure, not its loop stopping."""
        return _failure(
            f"{self!r} was cancelled by something it awaited (its event loop ran on)", exc
        )

    def _kept(self, error: CredentialsError | InvalidConfigError) -> Credentials:
        """The cached snapshot while a failed refresh may keep it, else ``error`` raised.

        A refresh fails by raising, or by returning what cannot sign (see ``_UNUSABLE``): a
        vault's passing glitch either way, while the keys it gave last are still good.
        """
        keepable = self._keepable()
        if keepable is None:
            raise error
        snapshot, kept_until = keepable
        retry_at = min(self._clock() + _RETRY_PAUSE, kept_until)
        self._state = (snapshot, retry_at, kept_until)  # cached again until the next try
        # The function's own error may chain what its vault answered: logged whole only when
        # nothing its traceback prints quotes a secret.
        secret = _quotes_secret(error)
        _log.warning(
            "%s; keeping the keys %r has until %s (tried again from %s)",
            redact(str(error)) if secret else error,
            self,
            kept_until.isoformat(),
            retry_at.isoformat(),
            exc_info=None if secret else error,
        )
        return snapshot

    def _store(self, snapshot: Credentials) -> Credentials:
        refresh_at = kept_until = None
        if snapshot.expiry is not None:
            remaining = snapshot.expiry - self._clock()
            if remaining <= timedelta(0):
                raise CredentialsRefreshError(
                    f"{self!r} returned credentials that expired at "
                    f"{snapshot.expiry.isoformat()}; it must return fresh ones"
                )
            window = min(self._window, remaining / 2)
            refresh_at, kept_until = snapshot.expiry - window, snapshot.expiry - window / 2
        self._state = (snapshot, refresh_at, kept_until)
        _log.debug("credentials from %r cached until %s", self, refresh_at or "replaced")
        return snapshot


# What a provider function's result raises when it cannot sign: keys refused by Credentials,
# an expiry already past, None ("nothing here"), a type not taken, a returned session whose
# chain fails; or what the function raised of ours itself (it built Credentials from what a
# vault handed over). The first load raises it; a refresh in the keep window keeps the cached
# keys.
_UNUSABLE = (CredentialsError, InvalidConfigError)


def _cancelled_from_outside() -> bool:
    """The running task was cancelled by a ``cancel()`` call, not only by what it awaited.

    From outside: ``asyncio.run`` ending, a server shutting down, a caller. From inside: a
    CancelledError that came up from something it awaited (an inner task someone cancelled).
    Python 3.10 has no ``Task.cancelling()`` to tell them apart: there every cancellation
    counts as from outside.
    """
    cancelling = getattr(asyncio.current_task(), "cancelling", None)
    return cancelling is None or cancelling() > 0


def _run_blocking(awaitable: Awaitable[object]) -> object:
    """Run an awaitable to completion from synchronous code."""

    async def wait() -> object:
        return await awaitable

    if running_loop() is None:
        return _run_on_a_new_loop(wait())
    # This thread already runs a loop, which cannot be re-entered: use a helper thread's loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_run_on_a_new_loop, wait()).result()


def _run_on_a_new_loop(coroutine: Coroutine[object, None, object]) -> object:
    """``asyncio.run``, but leaving the thread's event loop as it was (``run`` unsets it)."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            left = asyncio.all_tasks(loop)  # started by the function and left: cancelled
            if left:  # as asyncio.run does (gather() of nothing would look for a loop)
                for task in left:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _converts_with_io(value: object) -> bool:
    return hasattr(value, "get_frozen_credentials") or hasattr(value, "get_credentials")


def snapshot_of(value: object) -> Credentials | None:
    """``value`` as a snapshot if it already is one, without I/O; None for anything else.

    A :class:`Credentials`, botocore's ``ReadOnlyCredentials`` or a ``(key, secret[, token])``
    tuple; each goes through :class:`Credentials`' checks.
    """
    if isinstance(value, Credentials):
        return value
    if _is_read_only_credentials(value):
        return Credentials(value.access_key, value.secret_key, value.token)  # type: ignore[attr-defined]
    if _is_key_tuple(value):
        return Credentials(*value)  # type: ignore[misc]
    if isinstance(value, (tuple, list)):
        _refuse_binary_keys(value)
    return None


def _to_credentials(value: object, origin: str) -> Credentials:
    """Turn what a provider function returned into one snapshot (may do botocore I/O)."""
    if value is None:
        raise _nothing_found(f"{origin} returned None")
    try:
        snapshot = snapshot_of(value)
    except InvalidConfigError as exc:  # Credentials' checks name the field, never its value
        raise InvalidConfigError(f"{origin} returned keys that cannot sign: {exc}") from None
    if snapshot is not None:
        return snapshot
    if isinstance(value, (list, tuple)):  # (key, None) from an unset variable, as given keys
        try:
            _refuse_broken_key_tuple(value)
        except InvalidConfigError as exc:
            raise InvalidConfigError(f"{origin} returned keys that cannot sign: {exc}") from None
    if hasattr(value, "get_frozen_credentials"):
        return _BotocoreCredentialsProvider(value).get()
    if hasattr(value, "get_credentials"):
        return BotocoreProvider(session=value).get()
    raise InvalidConfigError(
        f"{origin} returned {_type_name(value)}; return (key, secret[, token]), "
        "Credentials, a botocore credentials object or session, or None"
    )


class ChainProvider(CredentialsProvider):
    """Providers tried in order; the first that yields credentials wins and is kept.

    A provider "yields nothing" by raising :class:`NoCredentialsError` (botocore's chain found
    nothing, a function returned None); the chain then tries the next. A provider that *fails*
    (:class:`CredentialsRefreshError`) stops the chain: silently switching to another identity
    would hide a broken setup. Once one provider has answered, the chain sticks to it, as
    botocore's own chain does, so later calls do no probing.
    """

    def __init__(self, providers: Sequence[CredentialsProvider]) -> None:
        """Keep the providers in order; nothing is tried yet.

        Custom providers are checked as ``credentials=[...]`` checks them (see
        :func:`_own_or_checked`); anything else is refused here, named by its place.
        """
        given = tuple(providers)
        for place, provider in enumerate(given, 1):
            if not isinstance(provider, CredentialsProvider):
                raise InvalidConfigError(
                    f"ChainProvider takes CredentialsProvider objects, but item {place} is a "
                    f"{type(provider).__name__}; pass credentials=[...] to chain any form "
                    "credentials= takes"
                )
        self._providers = tuple(map(_own_or_checked, given))
        if not self._providers:
            raise InvalidConfigError("a credentials chain needs at least one provider")
        self._depth: int = 1 + max(
            (p._depth for p in self._providers if isinstance(p, ChainProvider)),  # noqa: SLF001
            default=0,
        )
        if self._depth > _MAX_CHAIN_DEPTH:
            raise _too_deep()
        self._winner: CredentialsProvider | None = None

    def __repr__(self) -> str:
        """The providers in order, as they name themselves."""
        return f"ChainProvider([{', '.join(map(repr, self._providers))}])"

    def __reduce__(self) -> tuple[Any, ...]:
        """Carry the providers (each as it pickles); which one answered is found again."""
        return (_rebuild, (type(self), (self._providers,), {}))

    def get(self) -> Credentials:
        """Credentials from the provider that answered, or from the first one that does."""
        winner = self._winner
        if winner is not None:
            return winner.get()
        reasons: list[str] = []
        for provider in self._providers:
            try:
                snapshot = provider.get()
            except NoCredentialsError as exc:
                reasons.append(f"{provider!r}: {_reason(exc)}")
                continue
            self._won(provider)
            return snapshot
        raise _nothing_found(_tried(reasons))

    async def aget(self) -> Credentials:
        """As :meth:`get`, through each provider's non-blocking ``aget``."""
        winner = self._winner
        if winner is not None:
            return await winner.aget()
        reasons: list[str] = []
        for provider in self._providers:
            try:
                snapshot = await provider.aget()
            except NoCredentialsError as exc:
                reasons.append(f"{provider!r}: {_reason(exc)}")
                continue
            self._won(provider)
            return snapshot
        raise _nothing_found(_tried(reasons))

    def _won(self, provider: CredentialsProvider) -> None:
        if self._winner is None:
            self._winner = provider
            _log.debug("credentials chain: %r supplies the credentials", provider)


class _CheckedProvider(CredentialsProvider):
    """A user's own :class:`CredentialsProvider`, whose results are checked before signing.

    The signer reads a snapshot's fields unchecked, so a ``get()`` returning a key tuple would
    be an AttributeError deep in signing. What ``credentials=`` takes as fixed keys (a
    ``(key, secret[, token])`` tuple, botocore's ``ReadOnlyCredentials``) is taken here too;
    anything else is refused naming the provider's class, never showing the value. As for a
    provider function, a failure is raised as :class:`CredentialsRefreshError` with the
    original chained. Only providers from outside this module are wrapped: the library's own
    cost nothing more.
    Pickling carries the wrapped provider; a copy, deep or not, shares it.
    """

    def __init__(self, provider: CredentialsProvider) -> None:
        """Wrap ``provider``; nothing is called yet."""
        self._provider = provider

    def __repr__(self) -> str:
        """The wrapped provider's class, never its own repr (a dataclass's shows the keys)."""
        return f"{type(self._provider).__qualname__}(...)"

    def __reduce__(self) -> tuple[Any, ...]:
        """Carry the wrapped provider (as it pickles)."""
        return (_rebuild, (type(self), (self._provider,), {}))

    def __copy__(self) -> _CheckedProvider:
        return type(self)(self._provider)

    def __deepcopy__(self, memo: dict[int, object]) -> _CheckedProvider:
        return self.__copy__()  # the user's provider is shared, not copied

    def get(self) -> Credentials:
        """The wrapped provider's ``get()``, checked."""
        try:
            value = self._provider.get()
        except (CredentialsError, InvalidConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - raised as CredentialsRefreshError
            raise _failure(f"{self!r} failed", exc)  # noqa: B904 - _failure chains exc
        return self._checked(value, "get")

    async def aget(self) -> Credentials:
        """The wrapped provider's ``aget()``, checked."""
        try:
            value = await self._provider.aget()
        except (CredentialsError, InvalidConfigError):
            raise
        except Exception as exc:  # noqa: BLE001 - raised as CredentialsRefreshError
            raise _failure(f"{self!r} failed", exc)  # noqa: B904 - _failure chains exc
        return self._checked(value, "aget")

    def _checked(self, value: object, method: str) -> Credentials:
        if isinstance(value, Credentials):  # its expiry is the signer's to judge, by its clock
            return value
        origin = f"{type(self._provider).__qualname__}.{method}()"
        try:
            snapshot = snapshot_of(value)
        except InvalidConfigError as exc:  # Credentials' checks name the field, never its value
            raise InvalidConfigError(f"{origin} returned keys that cannot sign: {exc}") from None
        if snapshot is None:
            raise InvalidConfigError(
                f"{origin} returned {_type_name(value)}; a CredentialsProvider returns "
                "apigw_iam_auth.Credentials(key, secret, token, expiry)"
                + (
                    " (for botocore's, return get_frozen_credentials(), or pass it as "
                    "credentials= itself)"
                    if hasattr(value, "get_frozen_credentials")
                    else ""
                )
            )
        return snapshot


def _type_name(value: object) -> str:
    """A type as a message names it: a builtin by its name, any other with its module."""
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _own_or_checked(provider: CredentialsProvider) -> CredentialsProvider:
    """The library's own providers as they are (their results are sound), others checked."""
    return provider if type(provider).__module__ == __name__ else _CheckedProvider(provider)


def _tried(reasons: list[str]) -> str:
    """One numbered line per provider; a nested chain's own list indented under its line."""
    lines = "".join(
        f"\n  {number}. {reason.replace(chr(10), chr(10) + '   ')}"
        for number, reason in enumerate(reasons, 1)
    )
    return f"tried {len(reasons)} providers in order:{lines}"


def _is_read_only_credentials(value: object) -> bool:
    """Match botocore's ``ReadOnlyCredentials``, what ``get_frozen_credentials`` returns."""
    return isinstance(value, tuple) and all(
        hasattr(value, name) for name in ("access_key", "secret_key", "token")
    )


def _is_key_tuple(value: object) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) in _KEY_TUPLE_LENGTHS
        and isinstance(value[0], str)
        and isinstance(value[1], str)
    )


def _refuse_binary_keys(items: Sequence[object]) -> None:
    """Refuse keys given as bytes (read from a file or a KMS call, not decoded), never shown.

    Bytes are never a provider, so a list holding them is keys, whatever else it holds.
    """
    binary = [(number, kind) for number, item in enumerate(items, 1) if (kind := binary_kind(item))]
    if binary:
        number, kind = binary[0]
        raise InvalidConfigError(
            f"credentials holds {kind} as item {number} of {len(items)}: keys are str; decode "
            "them (key.decode('ascii'))"
        )


def _refuse_broken_key_tuple(items: Sequence[object]) -> None:
    """Refuse a list that is a key tuple gone wrong, before it is read as a list of providers.

    ``credentials=(os.getenv("KEY"), os.getenv("SECRET"))`` with a variable unset holds None,
    and None in a list is botocore's default chain: read as a chain, that tuple would sign with
    whatever identity the chain finds (an instance role, a developer's profile), not fail. A
    str is never a provider, so a list holding one is a key tuple too, of the wrong length (a
    key alone, an expiry added). Items are named by position, never shown.
    """
    if len(items) in _KEY_TUPLE_LENGTHS and all(
        item is None or isinstance(item, str) for item in items
    ):
        parts = zip(("access key", "secret key"), items[:2], strict=True)
        missing = [name for name, item in parts if item is None]
        shape = ", ".join(("key", "secret", "token")[: len(items)])
        raise InvalidConfigError(
            f"the {' and '.join(missing)} in credentials=({shape}) "
            + (
                "is None; is its environment variable set?"
                if len(missing) == 1
                else "are None; are their environment variables set?"
            )
        )
    strings = [number for number, item in enumerate(items, 1) if isinstance(item, str)]
    if strings:
        raise InvalidConfigError(
            f"credentials holds a str as item {strings[0]} of {len(items)}, and a str is not a "
            "provider: keys go in a (key, secret) or (key, secret, token) tuple, "
            "and with an expiry in Credentials(key, secret, token, expiry)"
        )


def resolve_provider(
    credentials: CredentialsSource | object, profile: str | None = None
) -> CredentialsProvider:
    """Turn what a user passed as ``credentials=`` into a provider; does no I/O.

    Accepted: None (botocore's default chain for ``profile`` or AWS_PROFILE); a
    ``(key, secret[, token])`` tuple; :class:`Credentials`; a :class:`CredentialsProvider`; a
    botocore credentials object; a botocore or boto3 session; a function (plain or
    ``async def``) returning any of those; or a list/tuple of any of these, tried in order.
    ``profile`` applies only to botocore's default chain (None, alone or inside a chain), or
    accompanies a :class:`BotocoreProvider` of that same profile (as :func:`shared_provider`
    makes), whose settings the caller may read too (a signer: the profile's region).
    A :class:`CredentialsProvider` of your own comes back wrapped, its results checked before
    they are signed with (see ``_CheckedProvider``); the library's own come back as they are.
    """
    if profile is not None and not isinstance(profile, str):
        raise InvalidConfigError(f"profile must be a str or None, got {type(profile).__name__}")
    if (
        profile is not None
        and credentials is not None
        and not _has_default_chain(credentials, profile)
    ):
        raise InvalidConfigError(
            "profile= selects a profile of botocore's default chain, so it needs "
            "credentials=None (or None inside a credentials list); drop one of them"
        )
    return _resolve(credentials, profile)


def _has_default_chain(credentials: object, profile: str) -> bool:
    if isinstance(credentials, BotocoreProvider):  # that very chain, made beforehand
        return credentials._session is None and credentials._profile == profile  # noqa: SLF001
    return (
        isinstance(credentials, (list, tuple))
        and not _is_key_tuple(credentials)
        and any(item is None for item in credentials)
    )


def _too_deep() -> InvalidConfigError:
    return InvalidConfigError(
        f"credentials lists nest more than {_MAX_CHAIN_DEPTH} levels deep; a chain of chains "
        "adds nothing a flat list does not: flatten the list"
    )


def _resolve(  # noqa: PLR0911
    credentials: object, profile: str | None, depth: int = 1
) -> CredentialsProvider:
    if credentials is None:
        return BotocoreProvider(profile)
    if isinstance(credentials, type):  # credentials=Session: the parentheses forgotten
        raise _a_class("credentials", credentials)
    if isinstance(credentials, CredentialsProvider):
        return _own_or_checked(credentials)
    snapshot = snapshot_of(credentials)  # Credentials, ReadOnlyCredentials, a key tuple
    if snapshot is not None:
        return StaticProvider(snapshot)
    if hasattr(credentials, "get_frozen_credentials"):
        return _BotocoreCredentialsProvider(credentials)
    if callable(getattr(credentials, "get_credentials", None)):
        return BotocoreProvider(session=credentials)
    if isinstance(credentials, (list, tuple)):
        if depth > _MAX_CHAIN_DEPTH:  # checked before descending: no RecursionError
            raise _too_deep()
        _refuse_broken_key_tuple(credentials)
        return ChainProvider([_resolve(item, profile, depth + 1) for item in credentials])
    if callable(credentials) and not isinstance(credentials, type):
        return CallableProvider(credentials)
    raise InvalidConfigError(
        "credentials must be None (botocore's default chain), (key, secret[, token]), "
        "Credentials, a CredentialsProvider, a botocore credentials object or session, a "
        f"function returning credentials, or a list of these; got {type(credentials).__name__}"
    )
