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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, Union

from apigw_iam_auth._models import Credentials
from apigw_iam_auth.errors import CredentialsRefreshError, InvalidConfigError, NoCredentialsError

if TYPE_CHECKING:
    import botocore.credentials

__all__ = [
    "BotocoreProvider",
    "CallableProvider",
    "ChainProvider",
    "CredentialsProvider",
    "CredentialsSource",
    "KeyTuple",
    "SessionLike",
    "StaticProvider",
    "resolve_provider",
]

_log = logging.getLogger("apigw_iam_auth.credentials")

_HOW_TO_CONFIGURE = (
    "Configure credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pick a profile "
    "with profile= or AWS_PROFILE (`aws configure`, `aws sso login`), run with an instance, task "
    "or pod role, or pass credentials=(key, secret[, token]) or a provider function"
)

# botocore's RefreshableCredentials refresh when fewer than this many seconds remain
# (botocore/credentials.py _DEFAULT_ADVISORY_REFRESH_TIMEOUT); used only if an object lacks it.
_BOTOCORE_ADVISORY_SECONDS = 15 * 60
# aget() decides "refresh due" a little before botocore does, so botocore never finds a refresh
# due inside the inline (on-loop) call that follows a "not due" answer.
_ASYNC_MARGIN_SECONDS = 1

# Background tasks of native async loads: the event loop keeps only weak references to tasks.
_TASKS: set[asyncio.Task[None]] = set()


class SessionLike(Protocol):
    """A botocore or boto3 ``Session``: anything with ``get_credentials()``."""

    def get_credentials(self) -> Any:  # noqa: ANN401 - botocore's or boto3's credentials
        """Return the session's credentials object (botocore resolves its chain here)."""


KeyTuple: TypeAlias = tuple[str, str] | tuple[str, str, str | None]
"""``(access_key, secret_key)`` or ``(access_key, secret_key, session_token)``."""

_Single: TypeAlias = Union[
    KeyTuple,
    Credentials,
    "CredentialsProvider",
    "botocore.credentials.Credentials",
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
        return await asyncio.to_thread(self.get)


class _NothingFoundError(NoCredentialsError):
    """A provider had nothing to offer; ``reason`` says why, for the chain's summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"no AWS credentials: {reason}. {_HOW_TO_CONFIGURE}")
        self.reason = reason


def _reason(exc: NoCredentialsError) -> str:
    return exc.reason if isinstance(exc, _NothingFoundError) else str(exc)


def _describe(exc: BaseException) -> str:
    """Name a provider's failure without repeating text that might carry a secret.

    botocore's own messages name the provider and the HTTP status, never a credential, so they
    are kept; anything else is named by type only (the exception itself stays chained).
    """
    if type(exc).__module__.startswith("botocore"):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (see the chained exception)"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


_Load = Callable[[], Credentials]
_AsyncLoad = Callable[[], Awaitable[Credentials]]


class _Flight:
    """At most one load in progress; every thread and task that needs it waits for that one.

    The shared result is a ``concurrent.futures.Future``: threads block on it and tasks on any
    event loop await it through ``asyncio.wrap_future``, so nothing is bound to one loop. It is
    marked running at once, so a waiter that gets cancelled cannot cancel it for the others.
    Loads store their result in the provider's cache before the flight ends, and re-check that
    cache first (double-checked), so a caller arriving just after a load never repeats it.
    """

    __slots__ = ("_future", "_lock", "_native_loop")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._future: concurrent.futures.Future[Credentials] | None = None
        # The loop running a native async load, if that is what is in flight.
        self._native_loop: asyncio.AbstractEventLoop | None = None

    def _claim(
        self, native_loop: asyncio.AbstractEventLoop | None = None
    ) -> tuple[concurrent.futures.Future[Credentials], bool]:
        with self._lock:
            if self._future is not None:
                return self._future, False
            future: concurrent.futures.Future[Credentials] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            self._future, self._native_loop = future, native_loop
            return future, True

    def _finish(
        self,
        future: concurrent.futures.Future[Credentials],
        result: Credentials | None,
        error: BaseException | None,
    ) -> None:
        with self._lock:
            self._future, self._native_loop = None, None
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

    async def _asettle(
        self, future: concurrent.futures.Future[Credentials], aload: _AsyncLoad
    ) -> None:
        try:
            result = await aload()
        except asyncio.CancelledError:  # the loop is shutting down: free the waiters
            self._finish(future, None, CredentialsRefreshError("credential load was cancelled"))
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, raised there
            self._finish(future, None, exc)
        else:
            self._finish(future, result, None)

    def run(self, load: _Load) -> Credentials:
        """Join the load in flight, or run ``load`` in this thread for everyone."""
        with self._lock:
            own_loop = self._native_loop is not None and self._native_loop is _running_loop()
        if own_loop:
            # That load is a task of the loop this thread is running: waiting for it here would
            # block the very loop it needs. Load separately instead.
            return load()
        future, owner = self._claim()
        if owner:
            self._settle(future, load)
        return future.result()

    async def arun(self, load: _Load, aload: _AsyncLoad | None = None) -> Credentials:
        """Join the load in flight, or start one off the loop (thread, or native task)."""
        loop = asyncio.get_running_loop()
        future, owner = self._claim(loop if aload is not None else None)
        if owner:
            if aload is None:
                # The executor job settles the shared future; its own asyncio future is unused.
                try:
                    loop.run_in_executor(None, self._settle, future, load)
                except BaseException as exc:  # executor shut down: do not strand the waiters
                    self._finish(future, None, exc)
                    raise
            else:
                task = loop.create_task(self._asettle(future, aload))
                _TASKS.add(task)
                task.add_done_callback(_TASKS.discard)
        return await asyncio.wrap_future(future)


class StaticProvider(CredentialsProvider):
    """Fixed credentials, for tests, scripts and keys handed over by a secrets manager."""

    def __init__(self, credentials: Credentials) -> None:
        """Wrap an already validated snapshot."""
        self._credentials = credentials

    def __repr__(self) -> str:
        """Name the key id only."""
        return f"StaticProvider(access_key={self._credentials.access_key!r})"

    def get(self) -> Credentials:
        """Return the fixed snapshot."""
        return self._credentials

    async def aget(self) -> Credentials:
        """Return the fixed snapshot; no I/O, so no thread."""
        return self._credentials


class _BotocoreCredentialsProvider(CredentialsProvider):
    """A botocore ``Credentials`` / ``RefreshableCredentials`` / ``DeferredRefreshable...`` object.

    botocore keeps its own refresh windows (advisory 15 min: one thread refreshes, the others go
    on; mandatory 10 min: everyone waits) and its own lock; ``get()`` just calls
    ``get_frozen_credentials()`` once and converts. ``aget()`` asks ``refresh_needed()`` first and
    hops to a worker thread only when botocore is about to do I/O.
    """

    def __init__(self, credentials: Any) -> None:  # noqa: ANN401 - duck-typed botocore object
        """Wrap the object; no I/O."""
        if inspect.iscoroutinefunction(getattr(credentials, "get_frozen_credentials", None)):
            raise InvalidConfigError(
                "async (aiobotocore) credentials are not supported directly; pass an async def "
                "provider that returns Credentials(key, secret, token, expiry) instead"
            )
        self._credentials = credentials
        self._plain = not hasattr(credentials, "_expiry_time")  # botocore Credentials: no refresh
        self._memo: tuple[object, Credentials] | None = None
        self._flight = _Flight()

    def __repr__(self) -> str:
        """Name botocore's method ('env', 'container-role', 'assume-role'...), never values."""
        method = getattr(self._credentials, "method", None)
        return f"BotocoreCredentials(method={method!r})"

    def get(self) -> Credentials:
        """One ``get_frozen_credentials()`` call (botocore refreshes inside it if due)."""
        try:
            frozen = self._credentials.get_frozen_credentials()
            memo = self._memo
            if memo is not None and (memo[0] is frozen or (self._plain and memo[0] == frozen)):
                return memo[1]
            return self._convert(frozen)
        except (NoCredentialsError, InvalidConfigError):
            raise
        except Exception as exc:
            raise CredentialsRefreshError(
                f"{self!r} could not be refreshed: {_describe(exc)}"
            ) from exc

    async def aget(self) -> Credentials:
        """The snapshot, straight from botocore unless a refresh is due (then in a thread)."""
        if self._refresh_due():
            return await self._flight.arun(self.get)
        # Nothing due, so get_frozen_credentials() would only return this very triple; skipping
        # it saves botocore's second (timezone-aware, so slow) clock check.
        memo = self._memo
        if memo is not None and memo[0] is getattr(self._credentials, "_frozen_credentials", None):
            return memo[1]
        return self.get()

    def _refresh_due(self) -> bool:
        needed = getattr(self._credentials, "refresh_needed", None)
        if needed is None:  # plain Credentials never refresh
            return False
        advisory = getattr(
            self._credentials, "_advisory_refresh_timeout", _BOTOCORE_ADVISORY_SECONDS
        )
        return bool(needed(advisory + _ASYNC_MARGIN_SECONDS))

    def _convert(self, frozen: Any) -> Credentials:  # noqa: ANN401 - botocore ReadOnlyCredentials
        creds = self._credentials
        lock = getattr(creds, "_refresh_lock", None)
        if self._plain or lock is None:
            snapshot = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
            self._memo = (frozen, snapshot)
            return snapshot
        # botocore publishes a refresh as two writes (the frozen triple, then the expiry) under
        # its refresh lock. Holding that lock for two reads gives a matching pair; if a refresh
        # holds it right now, read the expiry before the triple, so it is never later than the
        # triple's own (and do not memoise that conservative pair).
        if lock.acquire(blocking=False):
            try:
                frozen, expiry = creds._frozen_credentials, creds._expiry_time  # noqa: SLF001
            finally:
                lock.release()
            memoise = True
        else:
            expiry = creds._expiry_time  # noqa: SLF001
            frozen = creds._frozen_credentials  # noqa: SLF001
            memoise = False
        snapshot = Credentials(frozen.access_key, frozen.secret_key, frozen.token, _utc(expiry))
        if memoise:
            self._memo = (frozen, snapshot)
            _log.debug("credentials from %r expire at %s", self, snapshot.expiry)
        return snapshot


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
    """

    def __init__(self, profile: str | None = None, *, session: object = None) -> None:
        """Remember where to look; no I/O happens until credentials are needed."""
        if profile is not None and session is not None:
            raise InvalidConfigError("pass profile= or session=, not both: a session has one")
        if session is not None and not callable(getattr(session, "get_credentials", None)):
            raise InvalidConfigError("session must be a botocore or boto3 Session")
        self._profile = profile
        self._session = session
        self._resolved: _BotocoreCredentialsProvider | None = None
        self._flight = _Flight()

    def __repr__(self) -> str:
        """Name the profile (or session) only."""
        if self._session is not None:
            return f"BotocoreProvider(session={type(self._session).__name__})"
        return f"BotocoreProvider(profile={self._profile!r})"

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
            raise _NothingFoundError(f"{exc}; check the profile name") from exc
        except Exception as exc:
            raise CredentialsRefreshError(
                f"{self!r}: botocore's credential chain failed: {_describe(exc)}"
            ) from exc
        if found is None:
            raise _NothingFoundError(self._nothing_reason(session))
        return found

    def _nothing_reason(self, session: Any) -> str:  # noqa: ANN401 - botocore or boto3 session
        botocore_session = getattr(session, "_session", session)  # boto3 wraps one
        try:
            resolver = botocore_session.get_component("credential_provider")
            methods = ", ".join(provider.METHOD for provider in resolver.providers)
        except Exception:  # noqa: BLE001 - only decorates the message
            methods = "its providers"
        profile = getattr(botocore_session, "profile", None) or "default"
        return f"botocore's default chain for profile {profile!r} found nothing (tried {methods})"


class CallableProvider(CredentialsProvider):
    """A function (plain or ``async def``) that returns credentials, cached until near expiry.

    The function may return a ``(key, secret[, token])`` tuple, a :class:`Credentials`, a
    botocore credentials object or session, or None for "nothing here" (which lets a chain move
    on). Its result is cached until ``expiry - window``, where the window is ``refresh_window``
    (default 5 minutes) but at most half the lifetime left when the result arrived, so even
    short-lived credentials are reused for a while rather than fetched per signature. Results
    without an expiry are cached for good: return an expiry for anything that rotates.

    ``async def`` functions run on the event loop of the ``aget()`` caller that starts a load;
    a synchronous ``get()`` runs them with ``asyncio.run`` (in a helper thread if this thread is
    already running a loop). Plain functions run in a worker thread for ``aget()``.
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
        self._clock = clock
        self._name = getattr(func, "__qualname__", type(func).__name__)
        # (snapshot, refresh at or None for never), swapped as one reference
        self._state: tuple[Credentials, datetime | None] | None = None
        self._flight = _Flight()

    def __repr__(self) -> str:
        """Name the function only."""
        return f"CallableProvider({self._name})"

    def get(self) -> Credentials:
        """The cached snapshot, or one call of the function shared by all waiting threads."""
        return self._fresh() or self._flight.run(self._load)

    async def aget(self) -> Credentials:
        """The cached snapshot, or one off-loop call shared by all waiting tasks and threads."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        if self._is_async:
            return await self._flight.arun(self._load, self._aload)
        return await self._flight.arun(self._load)

    def _fresh(self) -> Credentials | None:
        state = self._state
        if state is None:
            return None
        snapshot, refresh_at = state
        if refresh_at is None or self._clock() < refresh_at:
            return snapshot
        return None

    def _load(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            value = self._func()
            if inspect.isawaitable(value):
                value = _run_blocking(value)
        except (NoCredentialsError, InvalidConfigError):
            raise
        except Exception as exc:
            raise CredentialsRefreshError(f"{self!r} failed: {_describe(exc)}") from exc
        return self._store(_to_credentials(value, repr(self)))

    async def _aload(self) -> Credentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            value = await self._func()  # type: ignore[misc]
        except (NoCredentialsError, InvalidConfigError):
            raise
        except Exception as exc:
            raise CredentialsRefreshError(f"{self!r} failed: {_describe(exc)}") from exc
        if _converts_with_io(value):
            return self._store(await asyncio.to_thread(_to_credentials, value, repr(self)))
        return self._store(_to_credentials(value, repr(self)))

    def _store(self, snapshot: Credentials) -> Credentials:
        refresh_at = None
        if snapshot.expiry is not None:
            remaining = snapshot.expiry - self._clock()
            if remaining <= timedelta(0):
                raise CredentialsRefreshError(
                    f"{self!r} returned credentials that expired at "
                    f"{snapshot.expiry.isoformat()}; it must return fresh ones"
                )
            refresh_at = snapshot.expiry - min(self._window, remaining / 2)
        self._state = (snapshot, refresh_at)
        _log.debug("credentials from %r cached until %s", self, refresh_at or "replaced")
        return snapshot


def _run_blocking(awaitable: Awaitable[object]) -> object:
    """Run an awaitable to completion from synchronous code."""

    async def wait() -> object:
        return await awaitable

    if _running_loop() is None:
        return asyncio.run(wait())
    # This thread already runs a loop, which cannot be re-entered: use a helper thread's loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, wait()).result()


def _converts_with_io(value: object) -> bool:
    return hasattr(value, "get_frozen_credentials") or hasattr(value, "get_credentials")


def _to_credentials(value: object, origin: str) -> Credentials:
    """Turn what a provider function returned into one snapshot (may do botocore I/O)."""
    if value is None:
        raise _NothingFoundError(f"{origin} returned None")
    if isinstance(value, Credentials):
        return value
    if hasattr(value, "get_frozen_credentials"):
        return _BotocoreCredentialsProvider(value).get()
    if hasattr(value, "get_credentials"):
        return BotocoreProvider(session=value).get()
    if _is_read_only_credentials(value):
        return Credentials(value.access_key, value.secret_key, value.token)  # type: ignore[attr-defined]
    if _is_key_tuple(value):
        return Credentials(*value)  # type: ignore[misc]
    raise InvalidConfigError(
        f"{origin} returned {type(value).__name__}; return (key, secret[, token]), "
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
        """Keep the providers in order; nothing is tried yet."""
        self._providers = tuple(providers)
        if not self._providers:
            raise InvalidConfigError("a credentials chain needs at least one provider")
        self._winner: CredentialsProvider | None = None

    def __repr__(self) -> str:
        """The providers in order, as they name themselves."""
        return f"ChainProvider([{', '.join(map(repr, self._providers))}])"

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
        raise _NothingFoundError(_tried(reasons))

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
        raise _NothingFoundError(_tried(reasons))

    def _won(self, provider: CredentialsProvider) -> None:
        if self._winner is None:
            self._winner = provider
            _log.debug("credentials chain: %r supplies the credentials", provider)


def _tried(reasons: list[str]) -> str:
    lines = "".join(f"\n  {number}. {reason}" for number, reason in enumerate(reasons, 1))
    return f"tried {len(reasons)} providers in order:{lines}\n"


def _is_read_only_credentials(value: object) -> bool:
    """Match botocore's ``ReadOnlyCredentials``, what ``get_frozen_credentials`` returns."""
    return isinstance(value, tuple) and all(
        hasattr(value, name) for name in ("access_key", "secret_key", "token")
    )


def _is_key_tuple(value: object) -> bool:
    return (
        isinstance(value, (tuple, list))
        and len(value) in {2, 3}
        and isinstance(value[0], str)
        and isinstance(value[1], str)
    )


def resolve_provider(
    credentials: CredentialsSource | object, profile: str | None = None
) -> CredentialsProvider:
    """Turn what a user passed as ``credentials=`` into a provider; does no I/O.

    Accepted: None (botocore's default chain for ``profile`` or AWS_PROFILE); a
    ``(key, secret[, token])`` tuple; :class:`Credentials`; a :class:`CredentialsProvider`; a
    botocore credentials object; a botocore or boto3 session; a function (plain or
    ``async def``) returning any of those; or a list/tuple of any of these, tried in order.
    ``profile`` applies only to botocore's default chain (None, alone or inside a chain).
    """
    if profile is not None and credentials is not None and not _has_default_chain(credentials):
        raise InvalidConfigError(
            "profile= selects a profile of botocore's default chain, so it needs "
            "credentials=None (or None inside a credentials list); drop one of them"
        )
    return _resolve(credentials, profile)


def _has_default_chain(credentials: object) -> bool:
    return (
        isinstance(credentials, (list, tuple))
        and not _is_key_tuple(credentials)
        and any(item is None for item in credentials)
    )


def _resolve(credentials: object, profile: str | None) -> CredentialsProvider:  # noqa: PLR0911
    if credentials is None:
        return BotocoreProvider(profile)
    if isinstance(credentials, CredentialsProvider):
        return credentials
    if isinstance(credentials, Credentials):
        return StaticProvider(credentials)
    if hasattr(credentials, "get_frozen_credentials"):
        return _BotocoreCredentialsProvider(credentials)
    if callable(getattr(credentials, "get_credentials", None)):
        return BotocoreProvider(session=credentials)
    if _is_read_only_credentials(credentials) or _is_key_tuple(credentials):
        return StaticProvider(_to_credentials(credentials, "credentials="))
    if isinstance(credentials, (list, tuple)):
        return ChainProvider([_resolve(item, profile) for item in credentials])
    if callable(credentials) and not isinstance(credentials, type):
        return CallableProvider(credentials)
    raise InvalidConfigError(
        "credentials must be None (botocore's default chain), (key, secret[, token]), "
        "Credentials, a CredentialsProvider, a botocore credentials object or session, a "
        f"function returning credentials, or a list of these; got {type(credentials).__name__}"
    )
