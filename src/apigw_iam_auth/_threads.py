"""Blocking work (a credential load, a config file, a large body's hash) run off the event loop.

httpx's and httpx2's async clients run on asyncio and on trio. On asyncio the work goes to
``asyncio.to_thread``; trio has no asyncio loop to find, so there it goes through anyio, which
httpx and httpx2 themselves depend on, to trio's worker threads. aiohttp runs on asyncio only.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["in_worker_thread", "running_loop"]

_T = TypeVar("_T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The running asyncio loop; None in sync code, and under trio."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def in_worker_thread(function: Callable[..., _T], /, *args: object) -> _T:
    """``function(*args)`` in a worker thread, awaited without blocking the running loop."""
    if running_loop() is not None:
        return await asyncio.to_thread(function, *args)
    # Not asyncio: trio, under httpx's or httpx2's AsyncClient. anyio is httpx's dependency,
    # and so ours; imported only here, where trio is running.
    import anyio.to_thread  # noqa: PLC0415

    return await anyio.to_thread.run_sync(partial(function, *args))
