"""Blocking work (a credential load, a config file, a large body's hash) run off the event loop.

httpx's and httpx2's async clients run on asyncio and on trio; aiohttp on asyncio only. On
asyncio the work goes to ``asyncio.to_thread`` (or the loop's default executor) and the tasks
waiting for a shared credential load await its future on the loop. On trio the same is done
with trio's own worker threads and a trio event, so that a waiting task holds no thread (trio
lends 40 at a time, and its DNS lookups need them too) and can be cancelled, as on asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from functools import partial
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

__all__ = [
    "asyncio_loop",
    "in_worker_thread",
    "on_trio",
    "running_loop",
    "start_in_trio_thread",
    "wait_on_trio",
]

_T = TypeVar("_T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop; None in sync code, and under trio."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def on_trio() -> bool:
    """Whether the calling task runs on trio, also as a guest on an asyncio loop.

    sniffio tells, as httpx and anyio ask it; trio imports it, so without it no trio runs.
    """
    sniffio = sys.modules.get("sniffio")
    if sniffio is None:
        return False
    try:
        return bool(sniffio.current_async_library() == "trio")
    except sniffio.AsyncLibraryNotFoundError:
        return False


def asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running the calling task; None on trio, whose guest sees its host's."""
    return None if on_trio() else asyncio.get_running_loop()


async def in_worker_thread(function: Callable[..., _T], /, *args: object) -> _T:
    """``function(*args)`` in a worker thread, awaited without blocking the running loop.

    A task cancelled meanwhile lets go at once, on trio as on asyncio; the work runs on.
    """
    if on_trio():
        import trio  # noqa: PLC0415 - running, so imported already

        return await trio.to_thread.run_sync(partial(function, *args), abandon_on_cancel=True)
    return await asyncio.to_thread(function, *args)


def start_in_trio_thread(function: Callable[[], object]) -> None:
    """Start ``function()`` in a trio worker thread owned by the run, not the calling task.

    As with a job on asyncio's default executor, no task's cancellation stops it, and the run
    waits for it before it ends.
    """
    import trio  # noqa: PLC0415 - running, so imported already

    trio.lowlevel.spawn_system_task(trio.to_thread.run_sync, function)


async def wait_on_trio(future: concurrent.futures.Future[_T], timeout: float) -> None:
    """Wait on trio, holding no thread, until ``future`` is done or ``timeout`` seconds pass."""
    import trio  # noqa: PLC0415 - running, so imported already

    token, done = trio.lowlevel.current_trio_token(), trio.Event()

    def wake(_: object) -> None:  # in the thread that settles the future
        with contextlib.suppress(trio.RunFinishedError):  # ended meanwhile: nobody waits
            token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    with trio.move_on_after(timeout):
        await done.wait()
