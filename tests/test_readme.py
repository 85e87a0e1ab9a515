"""The README's promises: its Python examples run, and its Quick start is what CI runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
KEY, SECRET = "AKIDREADMEEXAMPLE", "readme-secret-key"


@pytest.fixture
def isolated_aws_env(monkeypatch, tmp_path):
    """Credentials for the examples come from the environment, never from the developer's ~/.aws."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.mark.usefixtures("isolated_aws_env")
def test_python_examples_run_in_order():
    """Every python block of the README runs, in order, against the local server it starts."""
    blocks = [code for lang, code in FENCE.findall(README) if lang == "python"]
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        for index, code in enumerate(blocks):
            exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)  # noqa: S102
    finally:
        server = namespace.get("server")
        if server is not None:
            server.stop()  # type: ignore[attr-defined]


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    """Quick start opens the README with two commands; .ci/run runs the test one verbatim."""
    quick_start = README.split("## Quick start", 1)[1]
    first, second = [code.strip() for _, code in FENCE.findall(quick_start)[:2]]
    assert "demo" in first
    assert "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert README.lstrip().splitlines()[0].startswith("# ")
    assert README.index("## Quick start") < README.index("## Install")
