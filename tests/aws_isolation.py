"""One rule for tests that run botocore's credential chain: it sees only what the test sets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def isolate_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWS_* or BOTO_* variable, empty config and credentials files in ``tmp_path``, no IMDS."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "BOTO_")):
            monkeypatch.delenv(name)
    for name in ("config", "credentials"):
        (tmp_path / name).write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("BOTO_CONFIG", str(tmp_path / "boto.cfg"))
    return tmp_path


PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


def direct_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable of the machine's (any case): HTTP in this process goes straight out."""
    for name in list(os.environ):
        if name.lower() in PROXY_VARIABLES:
            monkeypatch.delenv(name)
