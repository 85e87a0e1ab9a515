"""The ``apigw-iam-auth`` console script, run for real in subprocesses against ``serve``.

Every command runs as a child process with an isolated environment (no AWS settings from the
machine, no proxies, instance metadata off) and only loopback traffic. The server is the real
``serve`` command on an ephemeral port; its URL is read off its "listening on" line. Every run
is checked for leaked secret keys and for tracebacks: the command line never shows one.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import ssl
import string
import subprocess
import sys
import textwrap
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple
from urllib.error import HTTPError

import pytest
import trustme
import urllib3
from aws_isolation import PROXY_VARIABLES, direct_to_loopback

from apigw_iam_auth.diagnostics import redact
from apigw_iam_auth.server import (
    IamAuthServer,
    KnownKey,
    VerificationError,
    load_keys,
    verify_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

REGION = "us-east-1"
MODULE = (sys.executable, "-m", "apigw_iam_auth")
# The console script installed next to the interpreter running the tests (the venv's bin dir).
SCRIPT = (str(Path(sys.executable).with_name("apigw-iam-auth")),)
# The command line as it runs where requests is not installed: it sends with httpx instead.
MODULE_MAIN = "from apigw_iam_auth.cli import main; sys.exit(main())"
WITHOUT_REQUESTS = (
    sys.executable,
    "-c",
    f"import sys; sys.modules['requests'] = None; {MODULE_MAIN}",
)
# Each test so marked runs with both backends: requests, and httpx where requests is missing.
BACKENDS = pytest.mark.parametrize("command", [MODULE, WITHOUT_REQUESTS], ids=["requests", "httpx"])
START_TIMEOUT = 20  # seconds for serve to print its URL
RUN_TIMEOUT = 30  # seconds for one command
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE: what a shell reports for a writer `head` closed on
# Python-API spellings that must never reach a command-line user.
PYTHON_ARGUMENTS = ("region=", "profile=", "credentials=", "expires=", "ApiGwIamAuth(")


def _generated_key() -> tuple[str, str]:
    """An access key id and secret shaped as AWS issues them (the secret: 40 base64 characters)."""
    alphabet = string.ascii_uppercase + string.digits
    secret_alphabet = string.ascii_letters + string.digits + "+/"
    return (
        "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        "".join(secrets.choice(secret_alphabet) for _ in range(40)),
    )


ACCESS_KEY, SECRET_KEY = _generated_key()
WRONG_SECRET = _generated_key()[1]
SESSION_TOKEN = "IQoJb3JpZ2luX2Vj" + secrets.token_urlsafe(60)
FILE_ACCOUNT = "111122223333"


def assert_no_secret(*texts: str) -> None:
    """No secret key the test handed out may appear in anything a process printed."""
    leaked = [n for n, text in enumerate(texts) if SECRET_KEY in text or WRONG_SECRET in text]
    assert not leaked, "a secret key was printed"  # the text itself is not shown: it leaks


def isolated_env(
    sandbox: Path, *, secret: str | None = SECRET_KEY, token: str | None = None
) -> dict[str, str]:
    """os.environ without AWS or proxy settings; the test's key unless ``secret`` is None."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name.lower() not in PROXY_VARIABLES
    }
    env.update(
        AWS_CONFIG_FILE=str(sandbox / "absent-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(sandbox / "absent-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    if secret is not None:
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=secret)
    if token is not None:
        env.update(AWS_SESSION_TOKEN=token)
    return env


class Done(NamedTuple):
    """A finished command: exit status, and its output as text and as bytes."""

    returncode: int
    stdout: str
    stderr: str
    raw_stdout: bytes


def run_cli(
    *args: str,
    env: Mapping[str, str],
    command: tuple[str, ...] = MODULE,
    stdin: bytes | None = None,
) -> Done:
    """Run the command line to completion; it leaked no secret and printed no traceback."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and console script
        [*command, *args],
        env=dict(env),
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    assert_no_secret(stdout, stderr)
    assert "Traceback" not in stderr, stderr
    return Done(done.returncode, stdout, stderr, done.stdout)


@contextlib.contextmanager
def serving(
    sandbox: Path, env: Mapping[str, str], *options: str, log: list[str] | None = None
) -> Iterator[str]:
    """Run ``serve --port 0`` until the block ends; yields its ``http://127.0.0.1:port`` URL.

    ``log`` receives what serve wrote to stderr, once it has stopped.
    """
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
    logged = stderr_file.read_text("utf-8")
    assert_no_secret("".join(lines), logged)
    assert "Traceback" not in logged, logged
    if log is not None:
        log.append(logged)


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A loopback server that reads each request's head, then lets ``answer`` write the reply.

    For replies serve never gives (a compressed body, a body that stalls); yields its URL.
    """
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # shut down: the block has ended
                return
            with connection:
                head = b""
                while b"\r\n\r\n" not in head and (data := connection.recv(65536)):
                    head += data
                answer(connection)

    thread = threading.Thread(target=serve, name="raw server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        listener.close()
        thread.join(timeout=RUN_TIMEOUT)


def reply(body: bytes, *headers: str) -> Callable[[socket.socket], None]:
    """An answer of status 200 with these header lines and body, then the connection closes."""
    head = ["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", "Connection: close", *headers]
    wire = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
    return lambda connection: connection.sendall(wire)


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
    with serving(sandbox, env, "--quiet") as url:
        yield f"{url}/prod"


@pytest.fixture(autouse=True)
def _direct_urllib(monkeypatch):
    """urllib in this process goes straight to loopback, whatever proxies the machine sets."""
    direct_to_loopback(monkeypatch)


def echo(stdout: str) -> dict:
    """The server's JSON echo printed by ``call`` (after -i's header block, if any)."""
    return json.loads(stdout[stdout.index("{") :])


def open_link(
    url: str,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "GET",
    data: bytes | None = None,
) -> tuple[int, dict]:
    """Status and JSON body of a plain urllib request (no signing of any kind)."""
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=data, headers=dict(headers or {}), method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except HTTPError as error:
        try:
            return error.code, json.loads(error.read())
        finally:
            error.close()


def body_of(payload: bytes) -> dict:
    """How serve echoes a body it received."""
    return {"length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


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


def test_version_names_the_package_version(env):
    """--version exits 0 and prints the installed version, with Python's and botocore's."""
    done = run_cli("--version", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"apigw-iam-auth {version('apigw-iam-auth')} (Python ")
    assert "botocore" in done.stdout
    assert done.stderr == ""


def test_serve_help_documents_the_key_file_format(env):
    """serve --help shows the --credentials file format (INI and JSON fields) and --quiet."""
    done = run_cli("serve", "--help", env=env)
    assert done.returncode == 0, done.stderr
    for text in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "JSON"):
        assert text in done.stdout
    assert "--quiet" in done.stdout


def test_serve_help_key_file_example_loads_as_shown(env, tmp_path):
    """The INI example of serve --help, copied as shown, is a key file serve accepts."""
    help_text = run_cli("serve", "--help", env=env).stdout
    example = help_text.split("~/.aws/credentials:\n", 1)[1].split("\nor JSON", 1)[0]
    path = tmp_path / "credentials"
    path.write_text(textwrap.dedent(example), encoding="utf-8")
    [(key, known)] = load_keys(path).items()
    assert (key, known.account_id) == ("AKIDEXAMPLE", "123456789012")
    assert known.token == "..."


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


def test_presigned_url_keeps_the_fragment_given(api, env):
    """A fragment typed after the URL ends the link printed, and the link still opens."""
    done = run_cli("presign", f"{api}/pets?type=dog#top", "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.endswith("#top")
    assert link.index("X-Amz-Signature=") < link.index("#top")
    status, body = open_link(link)
    assert status == 200, body


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


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("900", 900), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("7d", 604800), ("90s", 90)],
)
def test_presign_expires_takes_durations(api, env, duration, seconds):
    """--expires reads 900, 15m, 1h, 1h30m, 7d and 90s, and the link opens (200)."""
    done = run_cli("presign", f"{api}/pets", "--region", REGION, "--expires", duration, env=env)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert f"X-Amz-Expires={seconds}&" in link
    assert open_link(link)[0] == 200


@pytest.mark.parametrize("duration", ["0", "8d", "1x", "1.5s", "-5", "inf", "1e999", "nan"])
def test_presign_bad_expires_exits_2_naming_the_flag(api, env, duration):
    """An --expires of 0, over 7 days or unreadable exits 2 naming --expires, printing no URL."""
    done = run_cli("presign", f"{api}/pets", "--region", REGION, f"--expires={duration}", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--expires" in done.stderr
    assert "expires=" not in done.stderr.replace("--expires=", "")


@pytest.mark.parametrize("duration", ["0", "8d", "604801", "-5", "7d1s"])
def test_presign_expires_out_of_range_is_told_as_a_duration(api, env, duration):
    """--expires 8d is refused in the units the option takes, never as a converted number."""
    done = run_cli("presign", f"{api}/pets", "--region", REGION, "--expires", duration, env=env)
    assert done.returncode == 2
    assert "argument --expires: must be from 1s to 7d (900, 15m, 1h, 7d)" in done.stderr
    assert "691200" not in done.stderr


def test_presigned_post_link_accepts_exactly_its_body(api, env):
    """presign -d DATA -H makes a POST link that opens with that body and refuses another."""
    payload = b'{"order": 7, "note": "caf\xc3\xa9"}'
    done = run_cli(
        "presign",
        f"{api}/orders",
        "--region",
        REGION,
        "-d",
        payload.decode(),
        "-H",
        "Content-Type: application/json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    headers = {"Content-Type": "application/json"}
    status, body = open_link(link, headers, method="POST", data=payload)
    assert status == 200, body
    assert body["method"] == "POST"
    assert body["body"] == body_of(payload)
    assert "content-type" in body["caller"]["signed_headers"]
    status, body = open_link(link, headers, method="POST", data=payload.replace(b"7", b"8"))
    assert status == 403, body


def test_presign_verbose_shows_the_signing_strings(api, env):
    """presign -v prints the canonical request and string to sign on stderr, the URL on stdout."""
    done = run_cli("presign", f"{api}/pets", "--region", REGION, "-v", env=env)
    assert done.returncode == 0, done.stderr
    assert "* canonical request:\n*   GET\n*   /prod/pets\n*   X-Amz-Algorithm=" in done.stderr
    assert "* string to sign:\n*   AWS4-HMAC-SHA256" in done.stderr
    assert open_link(done.stdout.strip())[0] == 200


def test_presign_verbose_shows_the_host_given_with_h(api, env):
    """presign -v -H 'Host: NAME' shows the strings signed with that Host, and only that one."""
    done = run_cli(
        "presign", f"{api}/pets", "--region", REGION, "-v", "-H", "Host: example.com", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "&X-Amz-SignedHeaders=host\n*   host:example.com\n*\n*   host\n" in done.stderr


def test_presign_verbose_shows_the_strings_of_the_link_printed(env):
    """A custom domain sent as Host to a VPC endpoint takes the endpoint's region; -v shows the
    very strings the printed link was signed from (its scope, its signature)."""
    endpoint = "https://vpce-0123456789abcdef0-abcdefgh.execute-api.eu-west-3.vpce.amazonaws.com"
    done = run_cli("presign", f"{endpoint}/prod/pets", "-v", "-H", "Host: api.example.com", env=env)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert "%2Feu-west-3%2Fexecute-api%2Faws4_request" in link
    shown = done.stderr.split("* string to sign:\n", 1)[1].splitlines()[:4]
    to_sign = [line.removeprefix("*   ") for line in shown]
    day, region, service, terminator = to_sign[2].split("/")
    assert (region, service) == ("eu-west-3", "execute-api")
    key = ("AWS4" + env["AWS_SECRET_ACCESS_KEY"]).encode()
    for part in (day, region, service, terminator):  # SigV4's key derivation, by hand
        key = hmac.new(key, part.encode(), "sha256").digest()
    signature = hmac.new(key, "\n".join(to_sign).encode(), "sha256").hexdigest()
    assert link.endswith(f"&X-Amz-Signature={signature}")


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


@BACKENDS
def test_a_proxy_bypassed_is_not_blamed(env, command, refused_port):
    """NO_PROXY=127.0.0.0/8: requests goes straight to the API (it reads CIDR blocks), so a
    refused connection is the API's; httpx reads no CIDR block and went to the proxy."""
    with socket.socket() as unlistened:
        unlistened.bind(("127.0.0.1", 0))
        api_port = unlistened.getsockname()[1]
        proxied = {
            **env,
            "HTTP_PROXY": f"http://127.0.0.1:{refused_port}",
            "NO_PROXY": "127.0.0.0/8",
        }
        done = run_cli(
            "call",
            f"http://127.0.0.1:{api_port}/prod/pets",
            "--region",
            REGION,
            env=proxied,
            command=command,
        )
    assert done.returncode == 1
    blamed = f"127.0.0.1:{refused_port}" if command is WITHOUT_REQUESTS else f"127.0.0.1:{api_port}"
    assert blamed in done.stderr
    assert ("the proxy" in done.stderr) is (command is WITHOUT_REQUESTS)


@pytest.mark.parametrize(
    "words",
    [
        ("POST", "-d", "{url}", "--region", "{region}"),
        ("POST", "--region", "{region}", "-d", "{url}"),
        ("-d", "POST", "{url}", "--region", "{region}"),
    ],
    ids=["method-option-url", "method-options-url", "options-method-url"],
)
def test_method_and_url_may_have_options_between_them(api, env, words):
    """call POST -d DATA URL is call POST URL -d DATA, as curl reads options anywhere."""
    filled = [word.format(url=f"{api}/pets", region=REGION) for word in words]
    data_at = filled.index("-d") + 1
    filled.insert(data_at, '{"a":1}')
    done = run_cli("call", *filled, env=env)
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout)
    assert (body["method"], body["path"]) == ("POST", "/prod/pets")
    assert body["body"] == body_of(b'{"a":1}')


def test_a_second_url_after_options_is_still_refused(api, env):
    """Words gathered across options are checked as one METHOD URL: two URLs are refused."""
    done = run_cli("call", f"{api}/pets", "-d", "x", f"{api}/other", "--region", REGION, env=env)
    assert done.returncode == 2
    assert "a URL stands where the METHOD goes" in done.stderr
    assert api not in done.stderr


def test_repeated_data_pieces_are_joined_with_ampersands(api, env, sandbox):
    """-d, -d @FILE and --data-binary @- given together send their pieces joined by '&', as curl."""
    path = sandbox / "piece.txt"
    path.write_bytes(b"type=dog")
    pieces = ("-d", "name=Rex", "-d", f"@{path}", "--data-binary", "@-")
    done = run_cli("call", f"{api}/pets", "--region", REGION, *pieces, env=env, stdin=b"age=3")
    assert done.returncode == 0, done.stderr
    assert echo(done.stdout)["body"] == body_of(b"name=Rex&type=dog&age=3")
    dry = run_cli(
        "call", f"{api}/pets", "--region", REGION, *pieces, "--dry-run", env=env, stdin=b"age=3"
    )
    assert dry.returncode == 0, dry.stderr
    method, url, headers, data = _replayable(dry.stdout)
    assert data == b"name=Rex&type=dog&age=3"
    assert open_link(url, headers, method=method, data=data)[0] == 200


def test_call_presign_signs_in_the_url(api, env):
    """call --presign is accepted by serve with the signature in the query string."""
    done = run_cli("call", "GET", f"{api}/pets", "--region", REGION, "--presign", env=env)
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout)
    assert body["caller"]["signature_location"] == "query"
    assert not any(name.lower() == "authorization" for name, _ in body["headers"])


@BACKENDS
@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
def test_one_name_given_twice_in_two_cases_goes_as_one_header(api, env, command, presign):
    """-H 'X-Tag: 1' -H 'x-tag: 2' is one header, '1,2', sent as signed, in either mode."""
    extra = ("--presign",) if presign else ()
    tags = ("-H", "X-Tag: 1", "-H", "x-tag: 2")
    done = run_cli(
        "call", f"{api}/pets", "--region", REGION, *tags, *extra, env=env, command=command
    )
    assert done.returncode == 0, done.stderr
    sent = [value for name, value in echo(done.stdout)["headers"] if name.lower() == "x-tag"]
    assert sent == ["1,2"]


@BACKENDS
def test_call_include_prints_status_and_headers(api, env, command):
    """call -i prints the status line and headers as curl -i does, then the body.

    As they came: CRLF line ends and each name spelled as the server wrote it
    (``x-amzn-RequestId``), whichever client sends.
    """
    done = run_cli("call", "GET", f"{api}/pets", "--region", REGION, "-i", env=env, command=command)
    assert done.returncode == 0, done.stderr
    raw = done.raw_stdout
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep
    lines = head.decode("latin-1").split("\r\n")
    assert not any("\n" in line for line in lines)
    assert lines[0] == "HTTP/1.1 200 OK"
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert fields["Content-Type"] == "application/json"
    assert fields["x-amzn-RequestId"]
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


def test_call_url_alone_sends_a_get(api, env):
    """call URL with no method sends a GET, as curl does."""
    done = run_cli("call", f"{api}/pets", "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    assert echo(done.stdout)["method"] == "GET"


@pytest.mark.parametrize(
    ("options", "method"),
    [(("-d", "x"), "POST"), (("-X", "PUT", "-d", "x"), "PUT"), (("--request", "delete"), "DELETE")],
)
def test_call_method_follows_curl(api, env, options, method):
    """-d alone means POST, -X/--request picks the method (upper-cased), as with curl."""
    done = run_cli("call", f"{api}/pets", "--region", REGION, *options, env=env)
    assert done.returncode == 0, done.stderr
    assert echo(done.stdout)["method"] == method


def test_call_body_from_stdin_arrives_byte_for_byte(api, env):
    """-d @- sends standard input exactly, bytes that are not UTF-8 included."""
    payload = b'{"a": "\xff\x00"}\n' + bytes(range(256))
    done = run_cli("call", f"{api}/pets", "--region", REGION, "-d", "@-", env=env, stdin=payload)
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout)
    assert body["method"] == "POST"
    assert body["body"] == body_of(payload)


def test_call_output_file_gets_the_body(api, env, sandbox):
    """-o FILE replaces FILE's content with the response body and writes nothing to stdout."""
    target = sandbox / "response.json"
    target.write_bytes(b"x" * 100_000)  # longer than the body: nothing of it may remain
    done = run_cli("call", f"{api}/pets", "--region", REGION, "-o", str(target), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert json.loads(target.read_bytes())["path"] == "/prod/pets"


def test_unwritable_output_is_refused_before_sending(env, sandbox):
    """-o naming a directory exits 2 naming -o, and the POST is never sent."""
    with IamAuthServer(region=REGION, keys={ACCESS_KEY: KnownKey(SECRET_KEY)}) as server:
        done = run_cli(
            "call",
            f"{server.url}/prod/orders",
            "--region",
            REGION,
            "-d",
            '{"id": 7}',
            "-o",
            str(sandbox),
            env=env,
        )
        sent = server.requests
    assert done.returncode == 2
    assert f"cannot write -o {sandbox}" in done.stderr
    assert sent == ()


# /dev/full (every write fails: No space left on device) is Linux's and the BSDs'; every CI cell
# runs on Linux, so these cases run in each of them.
NEEDS_DEV_FULL = pytest.mark.skipif(
    not Path("/dev/full").exists(), reason="no /dev/full (Linux, BSDs)"
)


@NEEDS_DEV_FULL
def test_output_file_that_is_full_is_one_line_exit_2(api, env):
    """-o onto a full device (/dev/full) exits 2 naming it, as stdout redirected there does."""
    done = run_cli("call", f"{api}/pets", "--region", REGION, "-o", "/dev/full", env=env)
    error = usage_error(done)
    assert error == "apigw-iam-auth: error: cannot write to /dev/full: No space left on device\n"


def _full(args: tuple[str, ...], said: str, case: str) -> Any:
    return pytest.param("> /dev/full", args, said, id=case, marks=NEEDS_DEV_FULL)


@pytest.mark.parametrize(
    ("redirect", "args", "said"),
    [
        pytest.param(
            ">&-",
            ("call", "{api}/pets", "--region", REGION),
            "it is closed; give -o FILE",
            id="call-closed",
        ),
        pytest.param(
            ">&-",
            ("presign", "{api}/pets", "--region", REGION),
            "it is closed",
            id="presign-closed",
        ),
        pytest.param(">&-", ("--version",), "it is closed", id="version-closed"),
        _full(("--version",), "No space left on device", "version-full"),
        pytest.param(">&-", ("demo",), "it is closed", id="demo-closed"),
        _full(("demo",), "No space left on device", "demo-full"),
        pytest.param(">&-", ("--help",), "it is closed", id="help-closed"),
        _full(("--help",), "No space left on device", "help-full"),
        _full(("call", "--help"), "No space left on device", "call-help-full"),
    ],
)
def test_stdout_closed_or_full_is_one_line_exit_2(api, env, redirect, args, said):
    """Started without stdout (>&-) or with it on a full device, a command exits 2 saying so."""
    shell = shutil.which("sh")
    assert shell is not None
    redirected = (shell, "-c", f'exec "$@" {redirect}', "sh", *MODULE)
    done = run_cli(*(arg.format(api=api) for arg in args), env=env, command=redirected)
    assert usage_error(done) == f"apigw-iam-auth: error: cannot write to stdout: {said}\n"


def test_output_file_needs_no_stdout(api, env, sandbox):
    """Started without stdout (>&-), call -o FILE writes the body to FILE and exits 0."""
    target = sandbox / "no-stdout.json"
    shell = shutil.which("sh")
    assert shell is not None
    redirected = (shell, "-c", 'exec "$@" >&-', "sh", *MODULE)
    args = ("call", f"{api}/pets", "--region", REGION, "-o", str(target))
    done = run_cli(*args, env=env, command=redirected)
    assert done.returncode == 0, done.stderr
    assert json.loads(target.read_bytes())["path"] == "/prod/pets"


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test.

    Bound but never listening: connecting is refused, and no other process (another CI cell
    running beside this one) can take the port meanwhile, as it could a port closed again.
    """
    with socket.socket() as unlistened:
        unlistened.bind(("127.0.0.1", 0))
        yield unlistened.getsockname()[1]


@pytest.mark.parametrize(
    "args", [("call", "{refused}", "--region", REGION), ("call", "{refused}", "--bad-flag")]
)
def test_errors_with_stderr_closed_never_reach_stdout(env, refused_port, args):
    """With stderr closed (2>&-), errors are not told at all: stdout carries only bodies."""
    shell = shutil.which("sh")
    assert shell is not None
    redirected = (shell, "-c", 'exec "$@" 2>&-', "sh", *MODULE)
    refused = f"http://127.0.0.1:{refused_port}/prod"
    done = run_cli(*(arg.format(refused=refused) for arg in args), env=env, command=redirected)
    assert done.returncode in {1, 2}
    assert done.stdout == ""


@pytest.mark.parametrize("before", [b"earlier answer\n", None], ids=["existing", "new"])
def test_output_file_is_as_before_after_a_failed_request(env, sandbox, refused_port, before):
    """When no answer comes (connection refused), -o FILE keeps what it held and -o NEWFILE
    creates no file, as with curl.
    """
    target = sandbox / ("kept.json" if before is not None else "never-answered.json")
    if before is not None:
        target.write_bytes(before)
    done = run_cli(
        "call",
        f"http://127.0.0.1:{refused_port}/prod",
        "--region",
        REGION,
        "-o",
        str(target),
        env=env,
    )
    assert done.returncode == 1
    assert (target.read_bytes() if target.exists() else None) == before


def test_call_without_requests_sends_with_httpx(api, env):
    """Where requests is not installed, call sends with httpx: same echo, same -i status line."""
    done = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        "-d",
        "hi",
        "-i",
        env=env,
        command=WITHOUT_REQUESTS,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 200 OK\r\n")
    body = echo(done.stdout)
    assert body["method"] == "POST"
    assert body["body"] == body_of(b"hi")


@BACKENDS
def test_call_asks_for_the_body_uncompressed_unless_told(api, env, command):
    """call sends Accept-Encoding: identity; an Accept-Encoding given with -H replaces it."""
    plain = run_cli("call", f"{api}/pets", "--region", REGION, env=env, command=command)
    told = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        "-H",
        "Accept-Encoding: br",
        env=env,
        command=command,
    )
    for done, expected in ((plain, ["identity"]), (told, ["br"])):
        assert done.returncode == 0, done.stderr
        headers = echo(done.stdout)["headers"]
        assert [value for name, value in headers if name.lower() == "accept-encoding"] == expected


@BACKENDS
def test_header_with_nothing_after_the_colon_is_left_out(api, env, command):
    """-H 'Accept:' leaves out a header the client sends by default, as curl does; -H 'X;' sends
    X empty (and signed).
    """
    done = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        *("-H", "Accept:", "-H", "User-Agent:", "-H", "Accept-Encoding:", "-H", "X-Empty;"),
        env=env,
        command=command,
    )
    assert done.returncode == 0, done.stderr
    sent = {name.lower(): value for name, value in echo(done.stdout)["headers"]}
    assert "accept" not in sent
    assert "user-agent" not in sent
    assert "accept-encoding" not in sent
    assert sent["x-empty"] == ""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("call", "{api}/pets", "-H", "Host:"), "'Host:' cannot leave Host out"),
        (("call", "{api}/pets", "-H", "Authorization:"), "-H 'Authorization:' leaves out a"),
        (("call", "{api}/pets", "-H", "X-A: 1", "-H", "x-a:"), "-H 'x-a:' leaves out a header"),
        (("presign", "{api}/pets", "-H", "Accept:"), "presign sends none"),
    ],
    ids=["host", "signature-header", "given-too", "presign"],
)
def test_header_that_cannot_be_left_out_is_a_usage_error(api, env, args, said):
    """-H 'Name:' for Host, a header the signature adds or one given a value too exits 2."""
    error = usage_error(
        run_cli(*(arg.format(api=api) for arg in args), "--region", REGION, env=env)
    )
    assert said in error


@pytest.mark.parametrize(
    "header", ["Transfer-Encoding: chunked", "Content-Length: 3", "content-length;"]
)
def test_framing_headers_given_with_h_are_refused(api, env, header):
    """-H Transfer-Encoding or Content-Length exits 2 naming it (sent beside the client's own
    framing, the request hung until --timeout).
    """
    done = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        "-H",
        header,
        "-d",
        "abc",
        "--timeout",
        "5",
        env=env,
    )
    name = re.split("[:;]", header)[0]
    assert f"argument -H/--header: {name} is worked out from -d" in usage_error(done)


def test_every_header_the_signer_writes_has_its_refusal():
    """-H refuses exactly the signer's own headers, each with where it comes from."""
    from apigw_iam_auth import _sigv4, cli  # noqa: PLC0415 - the two lists compared

    assert set(cli._SIGNING_HEADER_SOURCES) == _sigv4.SIGNING_HEADER_NAMES


@pytest.mark.parametrize(
    ("header", "advice"),
    [
        ("Authorization: Bearer not-shown-1", "the signature this command writes"),
        ("X-Amz-Content-Sha256: UNSIGNED-PAYLOAD", "--payload unsigned"),
        ("x-amz-date: 20200101T000000Z", "the time of signing"),
        ("X-Amz-Security-Token: not-shown-2", "AWS_SESSION_TOKEN"),
        ("X-Amz-Region-Set: us-east-1", "--region-set"),
    ],
)
def test_signing_headers_given_with_h_are_refused(env, header, advice):
    """-H for a header the signer writes exits 2 saying where it comes from (it was dropped
    without a word), never showing the value.
    """
    done = run_cli("call", "https://api.example.com/x", "--dry-run", "-H", header, env=env)
    error = usage_error(done)
    name = header.partition(":")[0]
    assert f"argument -H/--header: {name} is written by the signer" in error
    assert advice in error
    assert "not-shown" not in error


def test_cookies_in_two_h_are_refused_with_the_one_header_to_give(api, env):
    """Repeated -H go out as one header joined with ',' (as signed): two Cookie lines would
    reach the server as one cookie, so the one header a browser sends is asked for.
    """
    cookies = ("-H", "Cookie: a=1", "-H", "cookie: b=2")
    error = usage_error(run_cli("call", f"{api}/pets", "--region", REGION, *cookies, env=env))
    assert "one -H 'Cookie: a=1; b=2'" in error
    done = run_cli("call", f"{api}/pets", "--region", REGION, "-H", "Cookie: a=1; b=2", env=env)
    assert done.returncode == 0, done.stderr


def test_dry_run_leaves_out_what_h_leaves_out(api, env):
    """--dry-run's curl command leaves out a header -H 'Name:' leaves out (curl's own Accept)."""
    done = run_cli("call", f"{api}/pets", "--region", REGION, "-H", "Accept:", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("-H Accept:")


@BACKENDS
@pytest.mark.parametrize(
    "body",
    [gzip.compress(b'{"a": 1}\n'), b"\x89PNG\r\n\x1a\n not gzip"],
    ids=["gzip", "mislabelled"],
)
def test_a_content_encoded_body_is_written_as_sent(env, sandbox, command, body):
    """A body labelled Content-Encoding: gzip reaches stdout and -o as sent, not decoded."""
    target = sandbox / "encoded.bin"
    answer = reply(body, "Content-Type: application/json", "Content-Encoding: gzip")
    with raw_server(answer) as url:
        piped = run_cli("call", f"{url}/prod", "--region", REGION, env=env, command=command)
        saved = run_cli(
            "call", f"{url}/prod", "--region", REGION, "-o", str(target), env=env, command=command
        )
    assert piped.returncode == 0, piped.stderr
    assert piped.raw_stdout == body
    assert saved.returncode == 0, saved.stderr
    assert target.read_bytes() == body


@BACKENDS
def test_a_body_that_stalls_names_the_timeout(env, command):
    """A body cut short by --timeout exits 1 naming --timeout (requests wrapped it otherwise)."""
    stalled = threading.Event()

    def half_then_stall(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
        stalled.wait(RUN_TIMEOUT)  # until the client has given up

    with raw_server(half_then_stall) as url:
        done = run_cli(
            "call", f"{url}/prod", "--region", REGION, "--timeout", "0.5", env=env, command=command
        )
        stalled.set()
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "within 0.5s (--timeout)" in done.stderr


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# A body in two pieces, framed three ways: (the head's framing line, piece 1, piece 2).
_FRAMINGS = {
    "chunked": (
        b"Transfer-Encoding: chunked\r\n",
        _chunk(b"event 1\n"),
        _chunk(b"event 2\n") + b"0\r\n\r\n",
    ),
    "content-length": (b"Content-Length: 16\r\n", b"event 1\n", b"event 2\n"),
    "close": (b"Connection: close\r\n", b"event 1\n", b"event 2\n"),  # ends as it closes
}


# urllib3 2.3 and later read what has arrived (read1); before, only a chunked body streams
# through requests, and one framed otherwise arrives whole at its end.
URLLIB3_READS_WHAT_ARRIVED = hasattr(urllib3.response.HTTPResponse, "read1")


@BACKENDS
@pytest.mark.parametrize("framing", list(_FRAMINGS))
@pytest.mark.parametrize("status", [b"200 OK", b"403 Forbidden"])
def test_a_streamed_body_is_written_as_it_arrives(env, command, framing, status):
    """A body chunked, Content-Length or close framed reaches stdout piece by piece as it comes
    (through requests with an older urllib3: a chunked one; the others whole, at their end).

    A refusal too: only one whose Content-Length says it is small is read whole first (to be
    explained, or to find the server's clock); one without may never end.
    """
    refused = status.startswith(b"403")
    streams = (command is not MODULE or framing == "chunked" or URLLIB3_READS_WHAT_ARRIVED) and (
        not refused or framing != "content-length"
    )
    release = threading.Event()
    framed, first_piece, second_piece = _FRAMINGS[framing]

    def stream(connection: socket.socket) -> None:
        head = b"HTTP/1.1 " + status + b"\r\nContent-Type: text/event-stream\r\n" + framed + b"\r\n"
        connection.sendall(head + first_piece)
        release.wait(RUN_TIMEOUT)  # the next event only once the first one was shown
        connection.sendall(second_piece)

    buffered = {name: value for name, value in env.items() if name != "PYTHONUNBUFFERED"}
    with raw_server(stream) as url:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter
            [*command, "call", f"{url}/prod", "--region", REGION],
            env=buffered,  # stdout as users have it: a pipe is block-buffered
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None
        first: list[bytes] = []
        shown = threading.Event()
        reader = threading.Thread(
            target=lambda: (first.append(process.stdout.readline()), shown.set()), daemon=True
        )
        reader.start()
        try:
            arrived = shown.wait(10 if streams else 0)
        finally:
            release.set()
            reader.join(timeout=RUN_TIMEOUT)
            with process:  # closes the pipes
                rest = process.stdout.read()  # through the reader's buffer: it may hold it all
                stderr = process.stderr.read()
            process.wait(timeout=RUN_TIMEOUT)
    assert arrived or not streams, "the first event was held back until the stream ended"
    assert process.returncode == (1 if refused else 0), stderr
    assert first == [b"event 1\n"]
    assert rest == b"event 2\n"


def test_closed_pipe_ends_quietly(api, env):
    """A reader that stops early (| head -c 10) ends call with status 141 and nothing on stderr."""
    query = "&".join(f"q{n}=1" for n in range(6000))  # an echo of ~230 KB: more than a pipe holds
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [*MODULE, "call", f"{api}/pets?{query}", "--region", REGION],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    first = process.stdout.read(10)
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=RUN_TIMEOUT) == EXIT_OUTPUT_CLOSED
    assert first.startswith(b"{")
    assert stderr == b""


def on_terminal(*args: str, env: Mapping[str, str]) -> str:
    """What the command line shows on a terminal (a pseudo-terminal as its stdout); exit 0."""
    returncode, shown, stderr = run_on_terminal(*args, env=env)
    assert returncode == 0, stderr
    return shown.decode("utf-8").replace("\r\n", "\n")


def run_on_terminal(*args: str, env: Mapping[str, str]) -> tuple[int, bytes, str]:
    """Exit status, what the terminal was sent (bytes, as the pty gave them) and stderr."""
    # pty is POSIX-only (it needs termios): skipped on Windows alone; every CI cell is Linux.
    pty = pytest.importorskip("pty")
    terminal, child = pty.openpty()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [*MODULE, *args],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=subprocess.PIPE,
    )
    os.close(child)
    shown = bytearray()
    with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
        while chunk := os.read(terminal, 65536):
            shown += chunk
    os.close(terminal)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT)
    text = stderr.decode("utf-8", "replace")
    assert_no_secret(text)
    assert "Traceback" not in text, text
    return process.returncode, bytes(shown), text


def test_json_is_pretty_on_a_terminal_and_raw_in_a_pipe(api, env):
    """On a terminal JSON is re-indented with non-ASCII shown; in a pipe the bytes are as sent."""
    url = f"{api}/pets?name=%C3%A9t%C3%A9"
    piped = run_cli("call", url, "--region", REGION, env=env)
    assert piped.returncode == 0, piped.stderr
    assert '"\\u00e9t\\u00e9"' in piped.stdout  # serve's own escaping, untouched
    text = on_terminal("call", url, "--region", REGION, env=env)
    assert '"été"' in text
    assert json.loads(text)["path"] == "/prod/pets"
    assert text.endswith("}\n")


@pytest.mark.parametrize(
    "body",
    [
        '{"amount": 12345678901234567890.5}',
        '{"rate": 0.1000000000000000055511151231257827}',
        '{"max": 1e400}',
        '{"ratio": NaN}',
        '{"tag": "a", "tag": "b"}',
        '{"a": "\\ud800"}',
        '{"views": 1e5}',
        '{"price": 1.10}',
        '{"delta": -0}',
    ],
    ids=[
        "rounded",
        "long-decimal",
        "overflow",
        "nan",
        "repeated-key",
        "lone-surrogate",
        "exponent",
        "trailing-zero",
        "minus-zero",
    ],
)
def test_json_a_terminal_would_misread_is_shown_as_sent(env, body):
    """JSON whose values Python would change (rounded, Infinity, a key twice), write another
    way (1e5 as 100000.0, 1.10 as 1.1, -0 as 0) or could not write (a lone surrogate escape)
    is shown as sent.
    """
    with raw_server(reply(body.encode(), "Content-Type: application/json")) as url:
        text = on_terminal("call", f"{url}/prod", "--region", REGION, env=env)
    assert text == body + "\n"


def test_json_with_exact_numbers_is_still_pretty_on_a_terminal(env):
    """Numbers a float keeps exactly (0.1, 2.25, -0.0, big integers) are re-indented as before."""
    body = b'{"a": 0.1, "b": [1, 2.25, -0.0, 123456789012345678901234567890]}'
    with raw_server(reply(body, "Content-Type: application/json")) as url:
        text = on_terminal("call", f"{url}/prod", "--region", REGION, env=env)
    assert text.startswith('{\n  "a": 0.1,\n')
    assert json.loads(text) == json.loads(body)


BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x1b[31m\x1b]0;title\x07"


def test_a_binary_body_is_kept_off_a_terminal(env):
    """A body holding NUL bytes is not written to a terminal: exit 2, one line naming -o."""
    with raw_server(reply(BINARY, "Content-Type: image/png")) as url:
        returncode, shown, stderr = run_on_terminal(
            "call", f"{url}/prod", "--region", REGION, env=env
        )
    assert returncode == 2
    assert b"\x1b" not in shown
    assert stderr.count("\n") == 1
    assert stderr.startswith("apigw-iam-auth: error: the body is binary")
    assert "-o FILE" in stderr
    assert "-o -" in stderr


def test_a_binary_body_reaches_a_terminal_with_dash_o_dash(env):
    """-o - writes a binary body to the terminal all the same, byte for byte, as curl's does."""
    with raw_server(reply(BINARY, "Content-Type: image/png")) as url:
        returncode, shown, stderr = run_on_terminal(
            "call", f"{url}/prod", "--region", REGION, "-o", "-", env=env
        )
    assert returncode == 0, stderr
    assert BINARY.replace(b"\n", b"\r\n") in shown  # the terminal's line discipline adds \r


def _replayable(stdout: str) -> tuple[str, str, dict[str, str], bytes | None]:
    """Method, URL, headers and body of the curl command --dry-run printed."""
    words = shlex.split(stdout.replace("\\\n", " "))
    assert words[0] == "curl"
    method, url, headers, data = None, None, {}, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, sep, value = next(rest).partition(":")
            if sep and value.strip():  # 'Name:' only stops curl sending one of its own
                headers[name] = value.strip()
        elif word == "--data-raw":
            data = next(rest).encode("utf-8")
        elif word == "--data-binary":
            data = Path(next(rest).removeprefix("@")).read_bytes()
        else:
            assert word == "--globoff" or not word.startswith("-"), word
            url = url or (word if word != "--globoff" else None)
    assert url is not None
    return method or ("POST" if data is not None else "GET"), url, headers, data


@pytest.mark.parametrize("body_from", ["none", "inline", "file", "pipe"])
def test_dry_run_prints_a_request_urllib_replays(api, env, sandbox, body_from):
    """--dry-run sends nothing and prints a curl command that urllib replays to a 200.

    A body read from a pipe (``-d @/dev/stdin``, a shell's ``-d @<(cmd)``) cannot be read
    again by the command printed: it is written inline, not as ``@/dev/stdin``.
    """
    payload = b'{"name": "Rex", "tags": ["a b", "\xc3\xa9"]}'
    data: tuple[str, ...] = ()
    if body_from == "inline":
        data = ("-d", payload.decode())
    elif body_from == "file":
        path = sandbox / "dry-run-body.json"
        path.write_bytes(payload)
        data = ("-d", f"@{path}")
    elif body_from == "pipe":
        data = ("-d", "@/dev/stdin")
    done = run_cli(
        "call",
        f"{api}/pets/7?q=a b&x=%2F",
        "--region",
        REGION,
        "-X",
        "PATCH",
        "-H",
        "X-Trace: 1",
        *data,
        "--dry-run",
        env=env,
        stdin=payload if body_from == "pipe" else None,
    )
    assert done.returncode == 0, done.stderr
    assert "/dev/stdin" not in done.stdout
    method, url, headers, sent = _replayable(done.stdout)
    assert method == "PATCH"
    status, body = open_link(url, headers, method=method, data=sent)
    assert status == 200, body
    assert body["path"] == "/prod/pets/7"
    assert ["q", "a b"] in body["query"]
    assert "x-trace" in body["caller"]["signed_headers"]
    assert body["body"] == body_of(payload if data else b"")


def replay_in_curl(command: str, env: Mapping[str, str]) -> bytes:
    """What sh running a curl command --dry-run printed gets as the response body."""
    curl = shutil.which("curl")
    assert curl is not None, "this test replays the printed command with curl: install curl"
    replayed = subprocess.run(  # noqa: S603 - sh runs the command our CLI printed
        ["/bin/sh", "-c", command.strip() + " --silent --show-error"],
        env={**env, "PATH": str(Path(curl).parent)},
        capture_output=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert replayed.returncode == 0, replayed.stderr
    return replayed.stdout


def test_dry_run_names_the_file_behind_dev_stdin(api, env, sandbox):
    """-d @/dev/stdin with stdin redirected from a file: the printed command reads that file,
    not its own stdin, and replays to a 200."""
    path = sandbox / "stdin-body.json"
    path.write_bytes(b'{"name": "Rex"}')
    with path.open("rb") as stdin:
        done = subprocess.run(  # noqa: S603 - our own interpreter
            [*MODULE, "call", f"{api}/pets", "--region", REGION, "-d", "@/dev/stdin", "--dry-run"],
            env=dict(env),
            stdin=stdin,
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert f"--data-binary @{path.resolve()}" in done.stdout.decode()
    assert "/dev/stdin" not in done.stdout.decode()
    body = json.loads(replay_in_curl(done.stdout.decode(), env))
    assert body["body"] == body_of(b'{"name": "Rex"}')


def test_dry_run_command_runs_in_curl(api, env):
    """The printed command, run by sh with the real curl, gets 200 and the echo of its body."""
    payload = b'it\'s "quoted" $HOME `x` \\ done'  # shell metacharacters must survive
    done = run_cli(
        "call", f"{api}/pets?a=1", "--region", REGION, "-d", payload.decode(), "--dry-run", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("curl ")
    replayed = replay_in_curl(done.stdout, env)
    body = json.loads(replayed)
    assert body["method"] == "POST"
    assert body["body"] == body_of(payload)
    assert body["caller"]["access_key"] == ACCESS_KEY


def test_call_presign_with_expires_duration(api, env):
    """call --presign --expires 1h signs in the URL for 3600 seconds and is accepted."""
    done = run_cli(
        "call", f"{api}/pets", "--region", REGION, "--presign", "--expires", "1h", env=env
    )
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout)
    assert ["X-Amz-Expires", "3600"] in body["query"]


@pytest.fixture(scope="module")
def token_api(sandbox):
    """serve knowing a temporary key: requests must carry its session token."""
    with serving(sandbox, isolated_env(sandbox, token=SESSION_TOKEN), "--quiet") as url:
        yield f"{url}/prod"


@BACKENDS
@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
def test_verbose_shows_signing_and_exchange_redacted(token_api, sandbox, presign, command):
    """-v prints canonical request, string to sign, request and response (each header name as
    sent, with either client); no token, no signature.
    """
    env = isolated_env(sandbox, token=SESSION_TOKEN)
    extra = ("--presign",) if presign else ()
    done = run_cli(
        "call", f"{token_api}/pets", "--region", REGION, "-v", *extra, env=env, command=command
    )
    assert done.returncode == 0, done.stderr
    assert echo(done.stdout)["caller"]["access_key"] == ACCESS_KEY
    err = done.stderr
    assert "* canonical request:\n*   GET\n*   /prod/pets\n" in err
    assert "* string to sign:\n*   AWS4-HMAC-SHA256\n" in err
    assert "\n> GET /prod/pets" in err
    assert "\n< HTTP/1.1 200 OK\n" in err
    assert SESSION_TOKEN not in err
    assert SESSION_TOKEN[:20] not in err
    assert not re.search(r"Signature=[0-9a-f]{64}", err)
    if presign:
        assert "X-Amz-Security-Token=<redacted>" in err
        assert "X-Amz-Signature=<redacted>" in err
    else:
        assert "x-amz-security-token:<redacted>" in err
        assert "> X-Amz-Security-Token: <redacted>" in err
        assert "Signature=<redacted>" in err


def test_verbose_explains_a_signature_mismatch(api, sandbox):
    """-v after a signature-mismatch 403 prints the diff and names the likely cause."""
    done = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        "-v",
        env=isolated_env(sandbox, secret=WRONG_SECRET),
    )
    assert done.returncode == 1
    assert "HTTP 403 Forbidden (InvalidSignatureException)" in done.stderr
    assert "likely cause: API Gateway computed the same strings, so the secret key is wrong" in (
        done.stderr
    )


def test_verbose_names_an_unsigned_payload_as_the_cause(api, env):
    """-v after execute-api refused --payload unsigned names UNSIGNED-PAYLOAD as the cause."""
    done = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        "-d",
        "abc",
        "--payload",
        "unsigned",
        "-v",
        env=env,
    )
    assert done.returncode == 1
    assert (
        "likely cause: UNSIGNED-PAYLOAD was signed but the service hashed the body" in done.stderr
    )
    assert "the body hash differs" not in done.stderr


def server_ahead() -> IamAuthServer:
    """The shipped server, its clock 20 minutes ahead: the first signature is refused as old."""
    return IamAuthServer(
        host="127.0.0.1",
        port=0,
        region=REGION,
        keys={ACCESS_KEY: KnownKey(SECRET_KEY)},
        clock=lambda: datetime.now(timezone.utc) + timedelta(minutes=20),
    )


def test_clock_skew_refusal_is_corrected_and_sent_again(env):
    """A server 20 minutes ahead refuses the first signature; call corrects its clock, gets 200."""
    with server_ahead() as server:
        done = run_cli("call", f"{server.url}/prod/pets", "--region", REGION, "-v", env=env)
    assert done.returncode == 0, done.stderr
    assert "refused for clock skew: signed again" in done.stderr
    assert echo(done.stdout)["path"] == "/prod/pets"


def test_a_head_refused_for_clock_skew_is_corrected_too(env):
    """A HEAD's 403 has no body to say "Signature expired": its Date tells the skew instead."""
    with server_ahead() as server:
        url = f"{server.url}/prod/pets"
        done = run_cli("call", "-X", "HEAD", url, "--region", REGION, "-i", "-v", env=env)
        statuses = [record.status for record in server.requests]
    assert done.returncode == 0, done.stderr
    assert statuses == [403, 200]
    assert done.stdout.startswith("HTTP/1.1 200 OK\r\n")


class _AheadForHeads(http.server.BaseHTTPRequestHandler):
    """Refuses the first HEAD as API Gateway would for the clock, but chunked (no length, so
    not read), with a Date 20 minutes ahead; answers any later request 200."""

    protocol_version = "HTTP/1.1"
    heads: ClassVar[list[int]] = []

    def do_HEAD(self) -> None:
        refuse = not self.heads
        self.heads.append(403 if refuse else 200)
        self.send_response(403 if refuse else 200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def date_time_string(self, timestamp: float | None = None) -> str:  # noqa: ARG002
        ahead = datetime.now(timezone.utc) + timedelta(minutes=20)
        return ahead.strftime("%a, %d %b %Y %H:%M:%S GMT")

    def log_message(self, *_: object) -> None:
        pass


def test_a_head_refused_without_a_length_is_corrected_as_the_adapters_do(env):
    """A HEAD's chunked 403 is not read, yet its Date tells the skew, as in every adapter."""
    _AheadForHeads.heads.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AheadForHeads)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/prod/pets"
        done = run_cli("call", "-X", "HEAD", url, "--region", REGION, "-i", env=env)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert done.returncode == 0, done.stderr
    assert _AheadForHeads.heads == [403, 200]


# --- errors ----------------------------------------------------------------------------------


def usage_error(done: Done) -> str:
    """The one stderr line of a usage error (exit 2, nothing on stdout)."""
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("apigw-iam-auth: error: ")
    assert done.stderr.count("\n") == 1
    return done.stderr


def test_non_ascii_header_is_a_usage_error_naming_h(api, env):
    """A non-ASCII -H value exits 2 with a message about -H, not a UnicodeEncodeError."""
    done = run_cli("call", f"{api}/pets", "--region", REGION, "-H", "X-Name: café", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "-H" in done.stderr
    assert "not ASCII" in done.stderr
    assert "UnicodeEncodeError" not in done.stderr


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("call", "GET", "{api}/pets"), "--region"),
        (("call", "{api}/pets", "--region", "Not A Region"), "--region"),
        (("presign", "{api}/pets", "--region", REGION, "--expires", "0"), "--expires"),
        (("call", "{api}/pets", "--region", REGION, "--profile", "missing"), "--profile"),
        (("call", "{api}/pets", "--region", REGION, "--expires", "1h"), "--presign"),
        (("call", "GET", "{api}/pets", "--region", REGION, "-X", "PUT"), "-X"),
        (("call", "{api}/pets", "--region", REGION, "-d", "@/no/such/file"), "-d @/no/such/file"),
        (("call", "{ws}/chat", "--region", REGION), "apigw-iam-auth presign"),
    ],
    ids=[
        "no-region",
        "bad-region",
        "expires",
        "profile",
        "expires-without-presign",
        "two-methods",
        "missing-file",
        "websocket",
    ],
)
def test_errors_speak_in_flags(api, env, args, flag):
    """Each usage error is one stderr line naming the flag to fix, never a Python argument."""
    ws = api.replace("http", "ws", 1)
    error = usage_error(run_cli(*(arg.format(api=api, ws=ws) for arg in args), env=env))
    assert flag in error
    for spelling in PYTHON_ARGUMENTS:
        assert spelling not in error


def test_where_the_keys_came_from_is_not_taken_for_a_flag(env):
    """botocore's name for the source of the keys (``method='env'``) is not -X, the HTTP method."""
    bad = {**env, "AWS_SECRET_ACCESS_KEY": "s\u00e9cret"}
    error = usage_error(
        run_cli("call", "https://api.example.com/x", "--region", REGION, "--dry-run", env=bad)
    )
    assert "botocore's 'env' provider" in error
    assert "-X" not in error


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            (
                "call",
                "--access_key",
                ACCESS_KEY,
                "--secret_key",
                SECRET_KEY,
                "--security_token",
                SESSION_TOKEN,
                "{api}/pets",
            ),
            "--access_key, --secret_key, --security_token: keys never go on the command line",
        ),
        (
            ("call", "{api}/login", "--data-raw", "password=hunter2"),
            "unknown option --data-raw (see",
        ),
        (("call", "{api}/login", "--data-raw=password=hunter2"), "unknown option --data-raw (see"),
        (("presign", "{api}/x", "-uadmin:hunter2"), "unknown option -u (see"),
        (("presign", "{api}/x", "{link}"), "1 unexpected argument (not shown"),
        (("call", "{api}/x", "--verbose=hunter2"), "argument -v/--verbose takes no value"),
        (("call", "{api}/x", "--payload", "hunter2"), "must be one of 'signed', 'unsigned'"),
        (("hunter2", "{api}/x"), "argument COMMAND: must be one of 'call'"),
        (("call", "{api}/x", "--timeout", "hunter2"), "argument --timeout: not a duration"),
        (("call", "{api}/x", "--timeout", "-12"), "argument --timeout: must be more than 0"),
        (("call", "{api}/x", "--timeout", "1e10"), "argument --timeout: must be more than 0"),
        (("call", "{api}/x", "--timeout", "1d1s"), "and at most 1d"),
        (
            ("call", "{api}/x", "--region-set", "us-east-1,hunter2"),
            "argument --region-set: name 2 of 2 is not an AWS region",
        ),
        (("presign", "{api}/x", "--expires", "hunter2"), "argument --expires: not a duration"),
        (("presign", "{api}/x", "--expires=12.5"), "argument --expires: must be a whole number"),
        (("serve", "--port", "hunter2"), "argument --port: must be a port number"),
        (("serve", "--port", "123456"), "argument --port: must be a port number"),
        (("call", "hunter 2", "{api}/x"), "the word before the URL is not an HTTP method"),
        (("call", "{api}/x", "-X", "hunter 2"), "-X takes an HTTP method"),
        (("call", "{api}/x", "-X", "hunter2"), "-X takes an HTTP method"),
        (
            ("call", "wJalrXUtnFEMIK7MDENGbPxRfiCYhunter2", "{api}/x"),
            "the word before the URL is not an HTTP method",
        ),
        (("call", "GET", "{api}/x", "-X", "hunter2"), "two methods given"),
        (
            ("call", "{api}/x", "--secret_key", "-Hhunter2"),
            "--secret_key: keys never go on the command line",
        ),
        (("call", "{api}/x", "-H", "hunter2"), "argument -H/--header: expected 'Name: value'"),
        (("call", "{api}/x", "-H", "hunter2/x"), "argument -H/--header: expected 'Name: value'"),
        (
            ("call", "{api}/x", "-H", "wJalrXUtnFEMIK7MDENGbPxRfiCYhunter2 x"),
            "argument -H/--header: expected 'Name: value' (value not shown)",
        ),
    ],
    ids=[
        "awscurl-keys",
        "data-raw",
        "data-raw=",
        "short-option",
        "stray-link",
        "flag",
        "choice",
        "command",
        "timeout",
        "timeout-range",
        "timeout-overflow",
        "timeout-over-a-day",
        "region-set",
        "expires",
        "expires-fraction",
        "port",
        "port-range",
        "method-word",
        "method-option",
        "method-option-with-digits",
        "method-word-with-digits",
        "two-methods",
        "awscurl-key-like-an-option",
        "header-without-name",
        "header-base64",
        "header-key-and-space",
    ],
)
def test_usage_errors_name_options_never_values(token_api, sandbox, args, named):
    """A usage error is one line naming the options at fault, never a value typed after them."""
    env = isolated_env(sandbox, token=SESSION_TOKEN)
    link = run_cli("presign", f"{token_api}/x", "--region", REGION, env=env).stdout.strip()
    signature = link.rpartition("X-Amz-Signature=")[2]
    assert len(signature) == 64
    error = usage_error(run_cli(*(arg.format(api=token_api, link=link) for arg in args), env=env))
    assert named in error
    for value in (SESSION_TOKEN[:20], signature, "hunter", ACCESS_KEY, "-12", "12.5", "123456"):
        assert value not in error


def test_a_link_given_as_the_method_is_not_echoed(token_api, sandbox):
    """call LINK GET exits 2 without printing the link's session token or signature."""
    env = isolated_env(sandbox, token=SESSION_TOKEN)
    link = run_cli("presign", f"{token_api}/pets", "--region", REGION, env=env).stdout.strip()
    assert f"X-Amz-Security-Token={SESSION_TOKEN[:20]}" in link  # the link does hold them
    done = run_cli("call", link, "GET", env=env)
    assert done.returncode == 2
    assert "METHOD" in done.stderr
    assert SESSION_TOKEN[:20] not in done.stderr
    assert "X-Amz-Signature=" not in done.stderr


def test_a_malformed_header_is_named_not_echoed(api, env):
    """-H without a colon exits 2 naming the header, without what followed its name."""
    done = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        "-H",
        f"X-Amz-Security-Token {SESSION_TOKEN}",
        env=env,
    )
    assert done.returncode == 2
    assert "'X-Amz-Security-Token'" in done.stderr
    assert SESSION_TOKEN[:20] not in done.stderr


def test_call_without_region_on_loopback_names_the_host(api, env):
    """call to a loopback URL without --region exits 2, naming the host and --region."""
    done = run_cli("call", f"{api}/pets", env=env)
    assert done.returncode == 2
    assert "127.0.0.1" in done.stderr
    assert "Pass --region <the API's region> (and --service <its service>:" in done.stderr


@pytest.mark.parametrize("command", ["presign", "call"])
def test_no_credentials_exits_2_naming_how_to_configure(api, sandbox, command):
    """With no credentials anywhere, presign and call exit 2 and say how, in env vars and flags."""
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
    assert "--profile" in done.stderr
    for spelling in PYTHON_ARGUMENTS:
        assert spelling not in done.stderr


@BACKENDS
@pytest.mark.parametrize("presign", [False, True], ids=["header", "presigned"])
def test_refused_connection_is_one_line_without_the_url(env, presign, command, refused_port):
    """A port nobody listens on: exit 1, one line naming the origin, no signature, no traceback."""
    extra = ("--presign",) if presign else ()
    done = run_cli(
        "call",
        f"http://127.0.0.1:{refused_port}/prod/pets",
        "--region",
        REGION,
        *extra,
        env=env,
        command=command,
    )
    assert done.returncode == 1
    assert done.stderr == (
        f"apigw-iam-auth: error: cannot reach http://127.0.0.1:{refused_port}: Connection refused\n"
    )


@BACKENDS
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_a_dead_proxy_is_named_as_what_cannot_be_reached(env, api, variable, command, refused_port):
    """With a proxy set that refuses connections, the proxy is blamed, not the API.

    The API itself is up: only the proxy (named by the variable that sets it, its password
    left out) cannot be reached; NO_PROXY naming the API's host sends the call straight there.
    """
    proxied = {**env, variable: f"http://user:proxy-password@127.0.0.1:{refused_port}"}
    done = run_cli("call", f"{api}/pets", "--region", REGION, env=proxied, command=command)
    assert done.returncode == 1
    assert done.stderr == (
        f"apigw-iam-auth: error: cannot reach the proxy http://127.0.0.1:{refused_port} that "
        f"{variable} sets for http:// URLs: Connection refused (NO_PROXY=127.0.0.1 would "
        "bypass it for this host)\n"
    )
    bypassed = run_cli(
        "call",
        f"{api}/pets",
        "--region",
        REGION,
        env={**proxied, "NO_PROXY": "127.0.0.1"},
        command=command,
    )
    assert bypassed.returncode == 0, bypassed.stderr
    assert echo(bypassed.stdout)["path"] == "/prod/pets"


@pytest.mark.parametrize("package", ["requests", "httpx"])
def test_a_socks_proxy_without_socks_support_names_the_variable_and_the_fix(env, api, package):
    """A SOCKS proxy in the environment, and the client's SOCKS extra missing: exit 2, saying
    which variable sets the proxy, what to install, and how to bypass it (not a bug report)."""
    # Neither SOCKS package importable (httpx[socks]: socksio; requests[socks]: PySocks).
    hidden = ["socksio", "socks"] + (["requests"] if package == "httpx" else [])
    command = (
        sys.executable,
        "-c",
        "import sys; "
        + "".join(f"sys.modules[{name!r}] = None; " for name in hidden)
        + "from apigw_iam_auth.cli import main; sys.exit(main())",
    )
    proxied = {**env, "ALL_PROXY": "socks5://user:proxy-password@127.0.0.1:1080"}
    done = run_cli("call", f"{api}/pets", "--region", REGION, env=proxied, command=command)
    assert done.returncode == 2
    assert done.stderr == (
        "apigw-iam-auth: error: cannot use the SOCKS proxy socks5://127.0.0.1:1080 that ALL_PROXY "
        f"sets for http:// URLs: SOCKS support is not installed (pip install '{package}[socks]'; "
        "NO_PROXY=127.0.0.1 would bypass the proxy for this host)\n"
    )


@BACKENDS
@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("abc123..execute-api.us-east-1.amazonaws.com", "an empty label"),
        (".example.com", "an empty label"),
        (f"{'a' * 70}.execute-api.us-east-1.amazonaws.com", "a label longer than 63 characters"),
    ],
    ids=["two-dots", "leading-dot", "long-label"],
)
def test_a_host_no_client_can_look_up_is_a_usage_error(env, command, host, why):
    """A host name with an empty or over-long label exits 2 saying so (both clients refuse it)."""
    error = usage_error(
        run_cli("call", f"https://{host}/prod/x", "--region", REGION, env=env, command=command)
    )
    assert f"the URL cannot be sent: its host {host} has {why}" in error


@BACKENDS
def test_server_hanging_up_is_one_line(env, command):
    """A server that closes the connection unanswered: exit 1, one line saying so."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def hang_up() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)

        thread = threading.Thread(target=hang_up, name="hang up", daemon=True)
        thread.start()
        done = run_cli(
            "call", f"http://127.0.0.1:{port}/prod", "--region", REGION, env=env, command=command
        )
        thread.join(timeout=RUN_TIMEOUT)
    assert done.returncode == 1
    assert done.stderr.startswith(f"apigw-iam-auth: error: the request to http://127.0.0.1:{port} ")
    assert done.stderr.count("\n") == 1


def test_timeout_gives_up_and_names_the_flag(env):
    """A server that never answers: --timeout 0.5 gives up, exits 1 and names --timeout."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts into its backlog, never reads
        port = silent.getsockname()[1]
        done = run_cli(
            "call", f"http://127.0.0.1:{port}/prod", "--region", REGION, "--timeout", "0.5", env=env
        )
    assert done.returncode == 1
    assert "within 0.5s (--timeout)" in done.stderr


def test_redact_masks_what_the_cli_might_print():
    """The shared redact() masks signatures and tokens in URLs, headers, JSON and nested URLs."""
    token, signature = "IQoJtoken/+==", "ab" * 32
    texts = [
        f"https://h/p?X-Amz-Security-Token={token}&X-Amz-Signature={signature}&a=1",
        f"> X-Amz-Security-Token: {token}",
        f"Authorization: AWS4-HMAC-SHA256 Credential=A/x, SignedHeaders=h, Signature={signature}",
        f'{{"SessionToken": "{token}", "SecretAccessKey": "{token}"}}',
        f"https://a/?next=https%3A%2F%2Fh%2F%3FX-Amz-Signature%3D{signature}%26b%3D1",
        f"export AWS_SESSION_TOKEN={token}",
    ]
    for text in texts:
        shown = redact(text)
        assert token not in shown, shown
        assert signature not in shown, shown
        assert "<redacted>" in shown
        assert redact(shown) == shown
    assert redact("X-Amz-Credential=AKID%2F20240101&a=1") == "X-Amz-Credential=AKID%2F20240101&a=1"


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


def test_serve_with_a_malformed_credentials_file_names_the_line_not_the_secret(sandbox):
    """A key line without '=' in --credentials FILE: exit 2, one line naming the line number."""
    credentials = sandbox / "malformed-keys.ini"
    credentials.write_text(
        f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key {SECRET_KEY}\n",
        encoding="utf-8",
    )
    done = run_cli(
        "serve", "--port", "0", "--credentials", str(credentials), env=isolated_env(sandbox)
    )
    error = usage_error(done)  # run_cli has checked that the secret key is not in it
    assert f"credentials file {credentials} is not valid INI: line 3 is not" in error


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
    head, _, body = denied.stdout.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 403 Forbidden")
    assert "x-amzn-errortype: accessdeniedexception" in head.lower()
    message = json.loads(body)["Message"]
    assert "is not authorized to perform: execute-api:Invoke" in message
    assert "/prod/DELETE/pets/1 with an explicit deny" in message
    assert allowed.returncode == 0, allowed.stderr
    assert echo(allowed.stdout)["path"] == "/prod/pets/1"


def test_serve_policy_matches_the_arns_of_the_api_and_account_given(sandbox, env):
    """--api-id and --account-id name the API a policy copied from AWS speaks of: its full
    ARNs then match, and an invalid account id exits 2 naming the flag.
    """
    api = "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5"
    policy = sandbox / "real-api-policy.json"
    statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{api}/prod/GET/*"}
    policy.write_text(json.dumps({"Statement": [statement]}), encoding="utf-8")
    named = ("--policy", str(policy), "--api-id", "a1b2c3d4e5", "--account-id", "111122223333")
    log: list[str] = []
    with serving(sandbox, env, *named, log=log) as url:
        allowed = run_cli("call", f"{url}/prod/pets", "--region", REGION, env=env)
        denied = run_cli("call", "DELETE", f"{url}/prod/pets", "--region", REGION, env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert denied.returncode == 1
    assert "for API a1b2c3d4e5 of account 111122223333" in log[0]
    with serving(sandbox, env, "--policy", str(policy)) as url:  # the default API: local
        other = run_cli("call", f"{url}/prod/pets", "--region", REGION, env=env)
    assert other.returncode == 1
    bad = run_cli("serve", "--port", "0", "--account-id", "1111", env=env)
    assert usage_error(bad).startswith("apigw-iam-auth: error: --account-id must be 12 digits")


def test_serve_logs_one_line_per_request(sandbox, env):
    """serve logs each request on stderr: method, path and status, signatures redacted."""
    log: list[str] = []
    with serving(sandbox, env, log=log) as url:
        accepted = run_cli("call", f"{url}/prod/pets?kind=cat", "--region", REGION, env=env)
        refused = run_cli(
            "call",
            f"{url}/prod/secret",
            "--region",
            REGION,
            "--presign",
            env=isolated_env(sandbox, secret=WRONG_SECRET),
        )
    assert accepted.returncode == 0, accepted.stderr
    assert refused.returncode == 1
    lines = [line for line in log[0].splitlines() if "/prod/" in line]
    assert len(lines) == 2, log[0]
    assert re.search(r"\bGET /prod/pets\b.*\b200\b", lines[0]), lines[0]
    assert re.search(r"\bGET /prod/secret\b.*\b403\b", lines[1]), lines[1]
    assert not re.search(r"X-Amz-Signature=[0-9a-f]", log[0])


def test_serve_quiet_logs_nothing_per_request(sandbox, env):
    """serve --quiet writes nothing on stderr while it answers requests."""
    log: list[str] = []
    with serving(sandbox, env, "--quiet", log=log) as url:
        done = run_cli("call", f"{url}/prod/pets", "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    assert log == [""]


def test_an_unreadable_expiry_in_the_environment_is_told_whole(sandbox):
    """AWS_CREDENTIAL_EXPIRATION unreadable: dateutil's words said in place, then the fix."""
    environment = {
        **isolated_env(sandbox, token="env-token"),
        "AWS_CREDENTIAL_EXPIRATION": "next tuesday-ish",
    }
    done = run_cli(
        "presign", "https://abc123.execute-api.us-east-1.amazonaws.com/prod/x", env=environment
    )
    assert done.returncode == 2
    assert "ParserError: Unknown string format: next tuesday-ish" in done.stderr
    assert "(see the chained exception)" not in done.stderr
    assert done.stderr.rstrip().endswith(
        "AWS_CREDENTIAL_EXPIRATION is not a time botocore can read: give an ISO 8601 time "
        "such as 2030-01-01T00:00:00Z, or unset it"
    )


def test_a_link_capped_by_its_credentials_says_so(api, sandbox):
    """presign --expires 1h with credentials expiring sooner: the shorter life is told."""
    expiry = datetime.now(timezone.utc) + timedelta(minutes=20)
    environment = {
        **isolated_env(sandbox, token="env-token"),
        "AWS_CREDENTIAL_EXPIRATION": expiry.isoformat(),
    }
    done = run_cli("presign", f"{api}/pets", "--region", REGION, "--expires", "1h", env=environment)
    assert done.returncode == 0, done.stderr
    granted = int(re.search(r"X-Amz-Expires=([0-9]+)&", done.stdout)[1])
    assert 1100 < granted <= 1200
    assert done.stderr == (
        f"apigw-iam-auth: the link holds for {granted}s, not the 3600s asked: the session "
        "credentials signing it expire then\n"
    )
    uncapped = run_cli(
        "presign", f"{api}/pets", "--region", REGION, "--expires", "5m", env=environment
    )
    assert (uncapped.returncode, uncapped.stderr) == (0, "")


def test_serve_for_a_region_no_client_signs_for_exits_2_with_the_region_meant(env):
    """serve --region us-east-1a (a zone) exits 2 at once, as call --region us-east-1a does."""
    done = run_cli("serve", "--port", "0", "--region", "us-east-1a", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "'us-east-1a' is not an AWS region; did you mean 'us-east-1'?" in done.stderr
    assert done.stderr.count("\n") == 1


def test_serve_on_a_taken_port_exits_2_naming_it(env):
    """serve on a port already listened on exits 2 with one line naming the port and --port."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("apigw-iam-auth: error: ")
    assert done.stderr.count("\n") == 1
    assert f"127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr


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


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (
            "sys.modules['requests'] = sys.modules['aiohttp'] = None",
            [
                "requests is not installed: pip install '.[requests]' in a checkout",
                "aiohttp is not installed: pip install '.[aiohttp]' in a checkout",
            ],
        ),
        (  # brought by another package: no middlewares= before 3.12
            "import aiohttp; aiohttp.__version__ = '3.11.18'",
            [
                (
                    "aiohttp 3.11.18 predates the 3.12.14 we need: "
                    "pip install '.[aiohttp]' in a checkout"
                )
            ],
        ),
    ],
    ids=["missing", "too-old"],
)
def test_demo_says_which_client_steps_it_skips_and_why(sandbox, setup, said):
    """A client missing (or too old) is a line saying which extra to install, not a crash or
    a silently shorter tour; the steps that ran still pass."""
    command = (sys.executable, "-c", f"import sys; {setup}; {MODULE_MAIN}")
    done = run_cli("demo", env=isolated_env(sandbox, secret=None), command=command)
    assert done.returncode == 0, done.stdout + done.stderr
    skipped = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("skip")]
    assert [line.split(None, 3)[3] for line in skipped] == said
    assert "Demo passed" in done.stdout.splitlines()[-1]


def test_region_set_signs_with_sigv4a_and_serve_verifies_it(api, env):
    """call --region-set signs with SigV4a; serve (us-east-1 in the set) accepts it."""
    done = run_cli("call", f"{api}/pets", "--region-set", f"{REGION},eu-west-1", "-v", env=env)
    assert done.returncode == 0, done.stderr
    assert "AWS4-ECDSA-P256-SHA256" in done.stderr
    assert echo(done.stdout)["caller"]["access_key"] == ACCESS_KEY


def test_region_set_without_the_servers_region_is_refused(api, env):
    """A SigV4a region set that leaves out the server's region gets the 403, exit 1."""
    done = run_cli("call", f"{api}/pets", "--region-set", "eu-west-1", env=env)
    assert done.returncode == 1
    assert "Region-Set" in done.stdout + done.stderr


def test_region_set_takes_spaces_after_commas(api, env):
    """--region-set 'us-east-1, eu-west-1' (a space after the comma) signs with SigV4a."""
    done = run_cli("call", f"{api}/pets", "--region-set", f"{REGION}, eu-west-1", "-v", env=env)
    assert done.returncode == 0, done.stderr
    assert f"x-amz-region-set:{REGION},eu-west-1" in done.stderr


def test_a_wrong_region_set_name_is_blamed_on_region_set(api, env):
    """A misspelt name in --region-set exits 2 naming --region-set, not --region."""
    done = run_cli("call", f"{api}/pets", "--region-set", "us-east1,eu-west-1", env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "argument --region-set: name 1 of 2 is not an AWS region" in done.stderr
    assert "did you mean 'us-east-1'?" in done.stderr
    assert "--region " not in done.stderr


@pytest.mark.parametrize("option", ["--head", "-I"])
def test_curls_head_option_is_not_taken_for_header(api, env, option):
    """curl's --head (or -I) is an unknown option pointing at -X HEAD, not an abbreviated -H."""
    done = run_cli("call", option, f"{api}/pets", "--region", REGION, env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"apigw-iam-auth: error: unknown option {option} (use -X HEAD)")


@BACKENDS
def test_redirect_is_printed_whole_and_not_followed(env, command):
    """A 3xx answer is shown as the server sent it, its body too, and not followed (as curl)."""
    body = b'{"moved": "/new"}'
    head = ["HTTP/1.1 302 Found", "Location: /new", f"Content-Length: {len(body)}"]
    wire = ("\r\n".join([*head, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + body
    with raw_server(lambda connection: connection.sendall(wire)) as url:
        done = run_cli("call", f"{url}/old", "--region", REGION, "-i", env=env, command=command)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 302 Found\r\n")
    assert "location: /new\r\n" in done.stdout.lower()
    assert done.stdout.endswith(body.decode())
    assert f"not following it to {url}/new (" in done.stderr  # a URL to call as it is


def test_library_advice_keeps_its_command_line_half(env, sandbox):
    """Where the library names both spellings, the command line keeps its own, not neither."""
    no_keys = isolated_env(sandbox, secret=None)
    keys_error = usage_error(run_cli("serve", "--port", "0", env=no_keys))
    assert "give it keys (--credentials FILE)" in keys_error
    unsigned = run_cli(
        "presign", "https://api.example.com/x", "--region", REGION, "--payload", "unsigned", env=env
    )
    assert "sign with headers instead (call without --presign)" in usage_error(unsigned)
    for error in (keys_error, unsigned.stderr):
        for spelling in (*PYTHON_ARGUMENTS, "presign=", "keys="):
            assert spelling not in error


def test_a_default_chain_failure_names_no_profile_none(sandbox):
    """Only AWS_ACCESS_KEY_ID set, no --profile: botocore's reason, not '--profile None:'."""
    partial = {**isolated_env(sandbox, secret=None), "AWS_ACCESS_KEY_ID": ACCESS_KEY}
    error = usage_error(
        run_cli("call", "https://api.example.com/x", "--region", REGION, "--dry-run", env=partial)
    )
    assert "PartialCredentialsError" in error
    assert "None" not in error


def test_library_warnings_speak_in_flags(env):
    """A warning of the library (a --region contradicting the host) names flags too."""
    done = run_cli(
        "call",
        "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
        "--region",
        REGION,
        "--dry-run",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "--region us-east-1 contradicts host" in done.stderr
    assert "drop --region to use the host's" in done.stderr
    for spelling in PYTHON_ARGUMENTS:
        assert spelling not in done.stderr


def test_a_region_set_leaving_out_the_hosts_region_is_warned_in_flags(env):
    """--region-set without the host's region: warned before the 403, in flags. --region
    beside it plays no part in SigV4a, so it contradicts nothing.
    """
    host = "abc123.execute-api.eu-west-1.amazonaws.com"
    done = run_cli(
        "call",
        f"https://{host}/prod",
        "--region-set",
        REGION,
        "--region",
        REGION,
        "--dry-run",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"apigw-iam-auth: --region-set {REGION} leaves out 'eu-west-1', the region of host "
        f"'{host}': AWS refuses the signature there, so expect a 403; add 'eu-west-1' to "
        "--region-set (or pass --region-set '*')\n"
    )


def test_a_failing_credential_process_says_what_failed(sandbox):
    """The chained exception the library points to is not shown on the command line: its type
    and message are, in its place.
    """
    process = sandbox / "not-json.sh"
    process.write_text('#!/bin/sh\necho "{not json"\n')
    process.chmod(0o755)
    config = sandbox / "process-config"
    config.write_text(f"[profile broken]\ncredential_process = {process}\n")
    env = {**isolated_env(sandbox, secret=None), "AWS_CONFIG_FILE": str(config)}
    error = usage_error(
        run_cli(
            "call",
            "https://api.example.com/x",
            "--region",
            REGION,
            "--profile",
            "broken",
            "--dry-run",
            env=env,
        )
    )
    assert "see the chained exception" not in error
    assert "failed: JSONDecodeError: Expecting property name" in error


@pytest.mark.parametrize(("cluster", "unknown"), [("-vs", "-s"), ("-iL", "-L"), ("-vkL", "-L")])
def test_a_flag_cluster_blames_its_unknown_letter(env, cluster, unknown):
    """curl's -vs: the unknown -s is named, not -v (which argparse says takes no value)."""
    error = usage_error(run_cli("call", cluster, "https://api.example.com/x", env=env))
    assert f"error: unknown option {unknown} (see" in error


# --- TLS: the AWS CLI's CA bundle, and -k ----------------------------------------------------


@pytest.fixture(scope="module")
def tls_api(sandbox):
    """An HTTPS API on 127.0.0.1 whose certificate a test CA signed: it answers 200 with the
    access key of a request whose signature the library's verifier accepts, else 403.

    Yields the stage URL and the test CA's PEM file, which no trust store holds.
    """
    ca = trustme.CA()
    ca_file = sandbox / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    keys = {ACCESS_KEY: KnownKey(SECRET_KEY)}

    class Verifying(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                verified = verify_request(
                    "GET",
                    self.path,
                    self.headers.items(),
                    b"",
                    lookup=keys.get,
                    region=REGION,
                    now=datetime.now(timezone.utc),
                )
            except VerificationError as refused:
                status, body = 403, {"message": refused.message}
            else:
                status, body = 200, {"access_key": verified.access_key}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Verifying)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/prod", ca_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@BACKENDS
def test_a_private_ca_is_trusted_as_the_aws_cli_trusts_it(tls_api, sandbox, command):
    """AWS_CA_BUNDLE, else the profile's ca_bundle: what botocore trusts for AWS endpoints (a
    corporate proxy's CA) is trusted for the call; without it the error says how to trust one.
    """
    url, ca_file = tls_api
    env = isolated_env(sandbox)
    untrusted = run_cli("call", f"{url}/pets", "--region", REGION, env=env, command=command)
    assert untrusted.returncode == 1, untrusted.stderr
    assert "AWS_CA_BUNDLE or the profile's ca_bundle" in untrusted.stderr
    assert "-k skips the check" in untrusted.stderr
    by_variable = run_cli(
        "call",
        f"{url}/pets",
        "--region",
        REGION,
        env={**env, "AWS_CA_BUNDLE": str(ca_file)},
        command=command,
    )
    assert by_variable.returncode == 0, by_variable.stderr
    assert json.loads(by_variable.stdout) == {"access_key": ACCESS_KEY}
    config = sandbox / f"tls-config-{len(command)}"
    config.write_text(
        f"[profile corp]\nca_bundle = {ca_file}\naws_access_key_id = {ACCESS_KEY}\n"
        f"aws_secret_access_key = {SECRET_KEY}\n",
        encoding="utf-8",
    )
    by_profile = run_cli(
        "call",
        f"{url}/pets",
        "--region",
        REGION,
        "--profile",
        "corp",
        env={**env, "AWS_CONFIG_FILE": str(config)},
        command=command,
    )
    assert by_profile.returncode == 0, by_profile.stderr


@BACKENDS
def test_insecure_skips_the_certificate_check_and_still_signs(tls_api, sandbox, command):
    """-k, as curl's: the call goes through, signed, and nothing is said of it on stderr."""
    url, _ = tls_api
    done = run_cli(
        "call", "-k", f"{url}/pets", "--region", REGION, env=isolated_env(sandbox), command=command
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == {"access_key": ACCESS_KEY}


@BACKENDS
@pytest.mark.parametrize(
    ("bundle", "said"),
    [
        ("no-such-ca.pem", "no-such-ca.pem (AWS_CA_BUNDLE) does not exist"),
        ("empty-ca.pem", "empty-ca.pem (AWS_CA_BUNDLE) holds no certificate to trust"),
    ],
)
def test_a_ca_bundle_that_cannot_be_used_is_refused_before_sending(
    tls_api, sandbox, command, bundle, said
):
    """Missing or holding no certificate: exit 2 naming the bundle and its source, alike with
    either client, before anything is sent."""
    url, _ = tls_api
    (sandbox / "empty-ca.pem").write_text("not a certificate\n", encoding="utf-8")
    env = {**isolated_env(sandbox), "AWS_CA_BUNDLE": str(sandbox / bundle)}
    done = run_cli("call", f"{url}/pets", "--region", REGION, env=env, command=command)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr


@BACKENDS
def test_a_ca_directory_is_taken_as_urllib3_takes_it(tls_api, sandbox, command):
    """A directory (hashed certificates, as OpenSSL's capath) is not refused as a bundle: one
    that does not hold the server's CA fails the TLS check, saying how to trust one."""
    url, _ = tls_api
    directory = sandbox / "ca-directory"
    directory.mkdir(exist_ok=True)
    env = {**isolated_env(sandbox), "AWS_CA_BUNDLE": str(directory)}
    done = run_cli("call", f"{url}/pets", "--region", REGION, env=env, command=command)
    assert done.returncode == 1, done.stderr
    assert "AWS_CA_BUNDLE or the profile's ca_bundle" in done.stderr


@pytest.mark.parametrize(("option", "curl_option"), [("-k", "--insecure"), (None, "--cacert")])
def test_dry_run_trusts_as_the_call_would(tls_api, sandbox, option, curl_option):
    """The printed curl command checks the certificate as the call would have: -k becomes
    --insecure, a CA bundle --cacert; run by sh with the real curl, it is answered 200."""
    url, ca_file = tls_api
    env = {**isolated_env(sandbox), "AWS_CA_BUNDLE": str(ca_file)}
    options = (option,) if option else ()
    done = run_cli("call", "--dry-run", *options, f"{url}/pets", "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout.replace("\\\n", " "))  # one line, as a shell reads it
    assert curl_option in words
    if curl_option == "--cacert":
        assert words[words.index("--cacert") + 1] == str(ca_file)
    replayed = replay_in_curl(done.stdout, env)
    assert json.loads(replayed) == {"access_key": ACCESS_KEY}


# --- awscurl's habits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (("--region", REGION, "call", "https://api.example.com/x"), "options go after the command"),
        (("https://api.example.com/x",), "name the command first: apigw-iam-auth call URL"),
        (("-X", "POST", "https://api.example.com/x"), "name the command first"),
        (
            ("call", "-d", "@body.json", "--data-binary", "https://api.example.com/x"),
            "--data-binary takes the body, as curl's does",
        ),
    ],
)
def test_awscurls_command_lines_are_told_where_the_command_goes(env, words, said):
    """awscurl has no commands: its options first, or a URL alone, say what to type instead."""
    error = usage_error(run_cli(*words, env=env))
    assert said in error
    assert "api.example.com" not in error


@pytest.mark.parametrize(
    "body", ['{"callback": "https://example.com/hook"}', "https://example.com/hook"]
)
def test_a_body_holding_a_url_goes_with_data_binary(api, env, body):
    """--data-binary followed by a body that holds (or is) a URL sends it: only a URL left
    with none after it is awscurl's flag."""
    done = run_cli("call", f"{api}/hooks", "--data-binary", body, "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    assert echo(done.stdout)["body"] == body_of(body.encode())


@pytest.mark.parametrize("command", ["call", "presign"])
def test_a_space_pasted_after_the_url_is_not_sent(api, env, command):
    """A URL pasted with a space after it is read without it, as one before it already was."""
    done = run_cli(command, f"  {api}/pets?type=dog ", "--region", REGION, env=env)
    assert done.returncode == 0, done.stderr
    body = echo(done.stdout) if command == "call" else open_link(done.stdout.strip())[1]
    assert body["path"] == "/prod/pets"
    assert ["type", "dog"] in body["query"]


def test_presign_help_says_what_its_headers_do(env):
    """presign's -H signs a header the link's user must send; 'NAME:' (call's) is not offered."""
    text = " ".join(run_cli("presign", "--help", env=env).stdout.split())
    assert "a header to sign, which whoever opens the link must send" in text
    assert "'NAME:'" not in text
