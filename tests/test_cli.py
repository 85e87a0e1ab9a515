"""The ``apigw-iam-auth`` console script, run for real in subprocesses against ``serve``.

Every command runs as a child process with an isolated environment (no AWS settings from the
machine, no proxies, instance metadata off) and only loopback traffic. The server is the real
``serve`` command on an ephemeral port; its URL is read off its "listening on" line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import string
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.error import HTTPError

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

REGION = "us-east-1"
MODULE = (sys.executable, "-m", "apigw_iam_auth")
# The console script installed next to the interpreter running the tests (the venv's bin dir).
SCRIPT = (str(Path(sys.executable).with_name("apigw-iam-auth")),)
START_TIMEOUT = 20  # seconds for serve to print its URL
RUN_TIMEOUT = 30  # seconds for one command


def _generated_key() -> tuple[str, str]:
    alphabet = string.ascii_uppercase + string.digits
    return "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)), secrets.token_urlsafe(30)


ACCESS_KEY, SECRET_KEY = _generated_key()
WRONG_SECRET = secrets.token_urlsafe(30)
FILE_ACCOUNT = "111122223333"
_PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def assert_no_secret(*texts: str) -> None:
    """No secret key the test handed out may appear in anything a process printed."""
    leaked = [n for n, text in enumerate(texts) if SECRET_KEY in text or WRONG_SECRET in text]
    assert not leaked, "a secret key was printed"  # the text itself is not shown: it leaks


def isolated_env(sandbox: Path, *, secret: str | None = SECRET_KEY) -> dict[str, str]:
    """os.environ without AWS or proxy settings; the test's key unless ``secret`` is None."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name.lower() not in _PROXY_VARIABLES
    }
    env.update(
        AWS_CONFIG_FILE=str(sandbox / "absent-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(sandbox / "absent-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    if secret is not None:
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=secret)
    return env


def run_cli(
    *args: str, env: Mapping[str, str], command: tuple[str, ...] = MODULE
) -> subprocess.CompletedProcess[str]:
    """Run the command line to completion and check that it leaked no secret."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and console script
        [*command, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert_no_secret(done.stdout, done.stderr)
    return done


@contextlib.contextmanager
def serving(sandbox: Path, env: Mapping[str, str], *options: str) -> Iterator[str]:
    """Run ``serve --port 0`` until the block ends; yields its ``http://127.0.0.1:port`` URL."""
    stderr_file = sandbox / f"serve-{secrets.token_hex(4)}.stderr"
    with stderr_file.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [*MODULE, "serve", "--host", "127.0.0.1", "--port", "0", "--region", REGION, *options],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in stdout:
            lines.append(line)
            if line.startswith("listening on "):
                ready.set()
        ready.set()  # end of output: serve exited before (or after) listening

    reader = threading.Thread(target=read, name="serve stdout", daemon=True)
    reader.start()
    try:
        assert ready.wait(START_TIMEOUT), "serve printed no 'listening on' line in time"
        found = [line for line in lines if line.startswith("listening on ")]
        assert found, f"serve exited {process.poll()}: {lines} {stderr_file.read_text('utf-8')}"
        url = found[0].removeprefix("listening on ").strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        stdout.close()
    assert_no_secret("".join(lines), stderr_file.read_text("utf-8"))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def env(sandbox):
    """A client environment holding the test's generated key."""
    return isolated_env(sandbox)


@pytest.fixture(scope="module")
def api(sandbox, env):
    """``serve`` knowing the test's key from its environment; yields the stage URL."""
    with serving(sandbox, env) as url:
        yield f"{url}/prod"


@pytest.fixture(autouse=True)
def _direct_urllib(monkeypatch):
    """urllib in this process goes straight to loopback, whatever proxies the machine sets."""
    for name in os.environ:
        if name.lower() in _PROXY_VARIABLES:
            monkeypatch.delenv(name)


def echo(stdout: str) -> dict:
    """The server's JSON echo printed by ``call`` (after -i's header block, if any)."""
    return json.loads(stdout[stdout.index("{") :])


def open_link(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict]:
    """Status and JSON body of a plain urllib GET (no signing of any kind)."""
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        finally:
            error.close()


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [(), ("presign",), ("call",), ("serve",), ("demo",)])
def test_help_exits_0_and_shows_usage(command, env):
    """--help on the top level and on every command exits 0 and prints its usage."""
    done = run_cli(*command, "--help", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: apigw-iam-auth {' '.join(command)}".rstrip())
    assert done.stderr == ""
    if not command:
        for name in ("presign", "call", "serve", "demo"):
            assert name in done.stdout


def test_console_script_help_exits_0(env):
    """The installed apigw-iam-auth script in the venv's bin dir runs and prints usage."""
    done = run_cli("--help", env=env, command=SCRIPT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: apigw-iam-auth")


# --- presign ---------------------------------------------------------------------------------


def test_presigned_url_opens_with_plain_urllib(api, env):
    """presign prints one URL that plain urllib.request.urlopen opens against serve (200, echo)."""
    done = run_cli(
        "presign", f"{api}/pets?type=dog", "--region", REGION, "--expires", "60", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    link = done.stdout.strip()
    assert "\n" not in link
    assert "X-Amz-Expires=60" in link
    assert f"X-Amz-Credential={ACCESS_KEY}%2F" in link
    status, body = open_link(link)
    assert status == 200, body
    assert body["method"] == "GET"
    assert body["path"] == "/prod/pets"
    assert ["type", "dog"] in body["query"]
    assert body["caller"]["access_key"] == ACCESS_KEY
    assert body["caller"]["signature_location"] == "query"


def test_presigned_header_must_be_sent(api, env):
    """A link presigned with -H 'X-Custom: 1' opens only when that exact header is sent."""
    done = run_cli("presign", f"{api}/report", "--region", REGION, "-H", "X-Custom: 1", env=env)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    status, body = open_link(link, {"X-Custom": "1"})
    assert status == 200, body
    assert "x-custom" in body["caller"]["signed_headers"]
    for headers in ({}, {"X-Custom": "2"}):
        status, body = open_link(link, headers)
        assert status == 403, (headers, body)
        assert "signature" in body["message"].lower()


def test_presign_expires_0_exits_2(api, env):
    """presign --expires 0 exits 2 with a message on stderr and prints no URL."""
    done = run_cli("presign", f"{api}/pets", "--region", REGION, "--expires", "0", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "apigw-iam-auth: error:" in done.stderr
    assert "expires" in done.stderr
    assert "Traceback" not in done.stderr


# --- call ------------------------------------------------------------------------------------


def test_call_get_prints_echo_with_console_script(api, env):
    """The installed apigw-iam-auth script's call GET prints the server's echo and exits 0."""
    done = run_cli(
        "call", "GET", f"{api}/pets?type=dog", "--region", REGION, env=env, command=SCRIPT
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    body = echo(done.stdout)
    assert body["method"] == "GET"
    assert body["path"] == "/prod/pets"
    assert body["query"] == [["type", "dog"]]
    assert body["caller"]["access_key"] == ACCESS_KEY
    assert body["caller"]["signature_location"] == "headers"


@pytest.mark.parametrize("from_file", [False, True], ids=["inline", "at-file"])
def test_call_post_body_arrives(api, env, sandbox, from_file):
    """call POST -d DATA and -d @FILE send exactly those bytes (echoed length and sha256)."""
    if from_file:
        payload = b'{"a": [1, 2]}\n' + bytes(range(256))  # not UTF-8: the file is sent as bytes
        path = sandbox / "body.bin"
        path.write_bytes(payload)
        data = f"@{path}"
    else:
        payload = b'{"a":1}'
        data = payload.decode()
    done = run_cli("call", "POST", f"{api}/pets", "--region", REGION, "-d", data, env=env)
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout)
    assert body["method"] == "POST"
    assert body["body"] == {
        "length": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }


def test_call_presign_signs_in_the_url(api, env):
    """call --presign is accepted by serve with the signature in the query string."""
    done = run_cli("call", "GET", f"{api}/pets", "--region", REGION, "--presign", env=env)
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout)
    assert body["caller"]["signature_location"] == "query"
    assert not any(name.lower() == "authorization" for name, _ in body["headers"])


def test_call_include_prints_status_and_headers(api, env):
    """call -i prints the status line, the response headers, a blank line, then the body."""
    done = run_cli("call", "GET", f"{api}/pets", "--region", REGION, "-i", env=env)
    assert done.returncode == 0, done.stderr
    head, sep, rest = done.stdout.partition("\n\n")
    assert sep
    lines = head.splitlines()
    assert lines[0] == "HTTP/1.1 200 OK"
    fields = {name.lower(): value for name, _, value in (h.partition(": ") for h in lines[1:])}
    assert fields["content-type"] == "application/json"
    assert "x-amzn-requestid" in fields
    assert json.loads(rest)["method"] == "GET"


def test_call_with_wrong_secret_exits_1_with_403_message(api, sandbox):
    """A call signed with the wrong secret exits 1 and prints serve's signature-mismatch 403."""
    done = run_cli(
        "call",
        "GET",
        f"{api}/pets",
        "--region",
        REGION,
        env=isolated_env(sandbox, secret=WRONG_SECRET),
    )
    assert done.returncode == 1
    message = json.loads(done.stdout)["message"]
    assert message.startswith("The request signature we calculated does not match")
    assert "HTTP 403" in done.stderr


def test_call_without_region_on_loopback_exits_2(api, env):
    """call to a loopback URL without --region exits 2 with the region= hint on stderr."""
    done = run_cli("call", "GET", f"{api}/pets", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "region=" in done.stderr
    assert "127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["presign", "call"])
def test_no_credentials_exits_2_naming_how_to_configure(api, sandbox, command):
    """With no credentials anywhere, presign and call exit 2 and say how to configure them."""
    empty = {
        "AWS_CONFIG_FILE": str(sandbox / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(sandbox / "absent-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    args = ("presign", f"{api}/pets") if command == "presign" else ("call", "GET", f"{api}/pets")
    done = run_cli(*args, "--region", REGION, env=empty)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "apigw-iam-auth: error: no AWS credentials" in done.stderr
    assert "AWS_ACCESS_KEY_ID" in done.stderr
    assert "aws configure" in done.stderr
    assert "Traceback" not in done.stderr


# --- serve -----------------------------------------------------------------------------------


def _credentials_file(sandbox: Path, kind: str) -> Path:
    fields = {
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_account_id": FILE_ACCOUNT,
    }
    path = sandbox / f"known-keys.{kind}"
    if kind == "json":
        path.write_text(json.dumps({"default": fields}), encoding="utf-8")
    else:
        lines = ["[sso-profile]", "sso_session = corp", "", "[default]"]
        lines += [f"{name} = {value}" for name, value in fields.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("source", ["ini", "json"])
def test_serve_reads_keys_from_credentials_file(sandbox, env, source):
    """serve --credentials FILE (INI or JSON) accepts the key it lists, with no keys in its env."""
    credentials = _credentials_file(sandbox, source)
    with serving(
        sandbox, isolated_env(sandbox, secret=None), "--credentials", str(credentials)
    ) as url:
        done = run_cli("call", "GET", f"{url}/prod/pets", "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    caller = echo(done.stdout)["caller"]
    assert caller["access_key"] == ACCESS_KEY
    assert caller["account_id"] == FILE_ACCOUNT  # read from the file, not the default


def test_serve_without_known_keys_exits_2(sandbox):
    """serve with neither --credentials nor AWS keys in its environment exits 2, saying why."""
    done = run_cli("serve", "--port", "0", env=isolated_env(sandbox, secret=None))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "AWS_ACCESS_KEY_ID" in done.stderr


def test_serve_policy_denies_delete_allows_get(sandbox, env):
    """serve --policy denying DELETE answers 403 AccessDeniedException to it; GET passes."""
    policy = sandbox / "policy.json"
    policy.write_text(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": "execute-api:Invoke",
                        "Resource": "arn:aws:execute-api:*:*:*/*/DELETE/*",
                    },
                ],
            }
        ),
        encoding="utf-8",
    )
    with serving(sandbox, env, "--policy", str(policy)) as url:
        denied = run_cli("call", "DELETE", f"{url}/prod/pets/1", "--region", REGION, "-i", env=env)
        allowed = run_cli("call", "GET", f"{url}/prod/pets/1", "--region", REGION, env=env)
    assert denied.returncode == 1
    head, _, body = denied.stdout.partition("\n\n")
    assert head.startswith("HTTP/1.1 403 Forbidden")
    assert "x-amzn-errortype: accessdeniedexception" in head.lower()
    message = json.loads(body)["Message"]
    assert "is not authorized to perform: execute-api:Invoke" in message
    assert "/prod/DELETE/pets/1 with an explicit deny" in message
    assert allowed.returncode == 0, allowed.stderr
    assert echo(allowed.stdout)["path"] == "/prod/pets/1"


# --- demo ------------------------------------------------------------------------------------


def test_demo_exits_0_with_short_output(sandbox):
    """demo needs no credentials, exits 0, and prints at most 20 lines ending in 'Demo passed'."""
    done = run_cli("demo", env=isolated_env(sandbox, secret=None))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) <= 20
    assert "Demo passed" in lines[-1]
    assert "FAIL" not in done.stdout
    assert done.stderr == ""
