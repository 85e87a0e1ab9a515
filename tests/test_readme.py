"""The README's promises: its examples run, and its Quick start is what CI runs.

Two kinds of example, told apart by the fence's info string:

* ```` ```python ```` blocks run in order, in one namespace, against the local server the first
  block starts;
* ```` ```py ```` blocks are pytest test modules (the pytest plugin's examples): each is written
  to a file and run by pytest in a child process, and must pass.

Every other fence (``sh``, ``text``, ``ini``, ``json``) is shown, never run.
"""

import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Two fenced blocks with nothing but blank lines before and between them.
TWO_BLOCKS = re.compile(r"\s*```\w*\n(.*?)^```\s*```\w*\n(.*?)^```", re.MULTILINE | re.DOTALL)
KEY, SECRET = "AKIDREADMEEXAMPLE", "readme-secret-key"
# The test extra installs httpx2 on Python 3.11+ (on 3.10 it comes with the httpx2 extra; see
# integration_cases.NEEDS_HTTPX2): on 3.10 without it, and only there, its block is left out.
HTTPX2_MISSING = sys.version_info < (3, 11) and find_spec("httpx2") is None


def _blocks(lang: str) -> list[str]:
    return [code for tag, code in FENCE.findall(README) if tag == lang]


@pytest.fixture
def isolated_aws_env(monkeypatch, tmp_path):
    """Credentials for the examples come from the environment, never from the developer's ~/.aws."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("NO_PROXY", "*")
    # presign_url shares one default-chain provider per process: start from this environment.
    from apigw_iam_auth.credentials import reset_shared_providers  # noqa: PLC0415

    reset_shared_providers()
    yield
    reset_shared_providers()


@pytest.mark.usefixtures("isolated_aws_env")
@pytest.mark.parametrize("token", [None, "readme-session-token"])
def test_python_examples_run_in_order(monkeypatch, token):
    """Every python block of the README runs, in order, against the local server it starts.

    Also with temporary keys (AWS_SESSION_TOKEN set, as SSO and assume-role leave it), which
    the server then expects with every signature.
    """
    if token is not None:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    blocks = _blocks("python")
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        for index, code in enumerate(blocks):
            if HTTPX2_MISSING and re.search(r"^import httpx2$", code, re.MULTILINE):
                continue
            exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)  # noqa: S102
    finally:
        server = namespace.get("server")
        if server is not None:
            server.stop()  # type: ignore[attr-defined]


@pytest.mark.usefixtures("isolated_aws_env")
def test_pytest_examples_pass(tmp_path, monkeypatch):
    """Every py block of the README is a test module that passes under pytest with the plugin."""
    # The plugin is loaded with -p and entry points are not, as in test_pytest_plugin.py: the
    # result must not depend on the pytest11 entry point (which that module tests) being current.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    blocks = _blocks("py")
    assert blocks, "the README shows no pytest example"
    for index, code in enumerate(blocks):
        module = tmp_path / f"test_readme_example_{index + 1}.py"
        module.write_text(code, encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - this interpreter, our own files
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "apigw_iam_auth.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            "-W",
            "error",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ passed in\b", result.stdout), result.stdout  # all passed, none skipped


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    """Quick start opens the README with two commands; .ci/run runs the test one verbatim."""
    quick_start = README.split("## Quick start", 1)[1]
    opening = TWO_BLOCKS.match(quick_start)
    assert opening, "Quick start must open with its two command blocks, nothing before them"
    first, second = opening.group(1).strip(), opening.group(2).strip()
    assert "demo" in first
    assert "pytest" in second
    assert second in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert README.lstrip().splitlines()[0].startswith("# ")
    assert README.index("## Quick start") < README.index("## Install")
