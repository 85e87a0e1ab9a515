"""Where the tests find AWS's official SigV4 and SigV4a test vectors.

A copy of aws-c-auth's ``tests/aws-signing-test-suite`` (``v4`` and ``v4a``, Apache-2.0; its
``LICENSE``, ``NOTICE`` and a README naming the commit are beside it) lives in
``tests/vectors/sigv4-test-suite``, so a fresh clone tests against them. ``APIGW_SIGV4_TEST_SUITE``
and ``APIGW_SIGV4A_TEST_SUITE`` may point at other ``v4`` and ``v4a`` folders (a newer copy).
A missing suite fails the tests that read it, saying where it was looked for: a vector test
that silently skips proves nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["V4", "V4A", "require"]

_COPY = Path(__file__).resolve().parent / "vectors" / "sigv4-test-suite"
_SETTINGS = {"v4": "APIGW_SIGV4_TEST_SUITE", "v4a": "APIGW_SIGV4A_TEST_SUITE"}


def _folder(kind: str) -> Path:
    given = os.environ.get(_SETTINGS[kind])
    return Path(given) if given else _COPY / kind


V4 = _folder("v4")
V4A = _folder("v4a")


def require(kind: str) -> None:
    """Fail the calling test when the ``v4`` or ``v4a`` suite is not there, saying where."""
    suite = _folder(kind)
    if not suite.is_dir():
        pytest.fail(
            f"AWS {kind} test suite not found at {suite}: restore tests/vectors/"
            f"sigv4-test-suite/{kind} from the repository, or set {_SETTINGS[kind]} to a copy "
            f"of aws-c-auth's tests/aws-signing-test-suite/{kind}"
        )
