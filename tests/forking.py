"""Tests that fork: run a check in a child process, which never returns to pytest."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

# os.fork is POSIX-only: skipped on Windows alone; every CI cell runs on Linux, so these run there.
NEEDS_FORK = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
HANG_GUARD = 30  # seconds: only ends a test that would otherwise hang for good

# A forked child's exit codes: the check held, failed, hung past HANG_GUARD, or raised.
HELD, FAILED, HUNG, RAISED = 0, 1, 2, 3


def in_a_forked_child(check: Callable[[], bool]) -> int:
    """Fork, run ``check`` in the child, and return the child's exit code (see above)."""
    pid = os.fork()
    if pid == 0:  # the child: its exit status is the outcome
        status = RAISED
        try:
            threading.Timer(HANG_GUARD, os._exit, (HUNG,)).start()  # hung: fail, not hang pytest
            status = HELD if check() else FAILED
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
