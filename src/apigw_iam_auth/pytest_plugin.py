"""pytest plugin: an IAM-protected API on loopback, for testing your own client code offline.

Installed with the package and registered through the ``pytest11`` entry point, so the
fixtures below are there in any test without an import::

    import httpx

    def test_my_client_signs_its_calls(iam_server):
        response = httpx.get(f"{iam_server.url}/prod/pets", auth=iam_server.auth)
        assert response.status_code == 200
        assert [r.path for r in iam_server.requests] == ["/prod/pets"]
        assert not iam_server.refused

``iam_server`` (function scope) starts an :class:`~apigw_iam_auth.server.IamAuthServer` that
knows one freshly generated key, and yields an :class:`IamServerFixture`: the URL, the keys,
a ready :class:`~apigw_iam_auth.ApiGwIamAuth`, and the log of requests received and refused
(each with the reason and likely cause). Configure it per test with a marker::

    @pytest.mark.iam_server(region="eu-west-1", temporary=True, policy={...})

``iam_server_session`` is one server for the whole session with the default settings; its
request log is shared, call :meth:`IamServerFixture.clear` where that matters. When a test
using either fixture fails, its report shows the server's access log (the session server's:
the requests it answered while that test ran).

Importing this module (which pytest does in every run) adds nothing to what importing
:mod:`apigw_iam_auth` loads but pytest and the standard library: the server, the signer's
clients and requests are imported only when a test asks for a fixture.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator, Mapping

    from pluggy import Result

    from apigw_iam_auth.auth import ApiGwIamAuth
    from apigw_iam_auth.server import IamAuthServer, RequestRecord

__all__ = ["IamServerFixture", "iam_server", "iam_server_session"]

# The iam_server a test set up, however it asked (an argument, another fixture, or
# request.getfixturevalue), for its report when setup or the test fails.
_TEST_SERVER = pytest.StashKey["IamServerFixture"]()
# The session's iam_server_session once started (in the config's stash), and the last request
# it had answered when a test's setup began (in the test's): what came after is that test's.
_SESSION_SERVER = pytest.StashKey["IamServerFixture"]()
_SESSION_LOG_BEFORE = pytest.StashKey["RequestRecord | None"]()
_MARKER = "iam_server"
# What the marker may set: the server's settings, and temporary= for a key with a session token.
_OPTIONS = frozenset(
    {"region", "service", "policy", "api_id", "account_id", "clock", "max_skew", "temporary"}
)
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class IamServerFixture:
    """A running local IAM-auth server and everything a test needs to call it.

    ``url`` is ``http://127.0.0.1:<port>`` (any path is served: ``/prod/pets`` echoes the
    request); ``access_key`` / ``secret_key`` (and ``session_token`` with ``temporary=True``)
    are the only credentials it accepts; ``auth`` signs for it with requests or httpx. The
    secret and the token never appear in ``repr``.
    """

    server: IamAuthServer = field(repr=False)
    url: str
    region: str
    service: str
    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    auth: ApiGwIamAuth = field(repr=False)

    @property
    def credentials(self) -> tuple[str, str] | tuple[str, str, str]:
        """``(access_key, secret_key[, session_token])``, as ``SigV4Signer`` and botocore take."""
        if self.session_token is None:
            return self.access_key, self.secret_key
        return self.access_key, self.secret_key, self.session_token

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request the server answered, oldest first (method, path, status, reason...)."""
        return list(self.server.requests)

    @property
    def accepted(self) -> list[RequestRecord]:
        """The requests that were authenticated (and authorized) and answered 200."""
        return [record for record in self.server.requests if record.accepted]

    @property
    def refused(self) -> list[RequestRecord]:
        """The requests that were not: each with ``status``, ``reason`` and ``likely_cause``."""
        return [record for record in self.server.requests if not record.accepted]

    def clear(self) -> None:
        """Forget the requests answered so far."""
        self.server.clear_requests()

    def access_log(self) -> str:
        """The server's access-log lines for the requests recorded, one per request."""
        return _log_lines(self.server.requests)


def _log_lines(records: Iterable[RequestRecord]) -> str:
    return "\n".join(str(record) for record in records)


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (runs with ``--strict-markers`` need it)."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): settings for the iam_server fixture: region, service, policy, "
        "api_id, account_id, clock, max_skew, temporary (a key with a session token)",
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before a test: session log mark, presign_url's chain reset, a marker ignored refused.

    Where the session server's log stands is noted; a test using either server gets
    presign_url's default chain resolved again (its keys may be the server's, in AWS_*); a
    marker on a test that uses only the session server, which keeps its default settings, is
    refused.
    """
    shared = item.config.stash.get(_SESSION_SERVER, None)
    if shared is not None:
        answered = shared.server.requests
        item.stash[_SESSION_LOG_BEFORE] = answered[-1] if answered else None
    fixtures = getattr(item, "fixturenames", ())
    if "iam_server" in fixtures or "iam_server_session" in fixtures:
        # The test may put its server's keys in AWS_* for the code it tests: presign_url's
        # default chain, resolved once per process, is resolved again for each such test.
        from apigw_iam_auth.credentials import reset_shared_providers  # noqa: PLC0415

        reset_shared_providers()
    if (
        item.get_closest_marker(_MARKER) is not None
        and "iam_server_session" in fixtures
        and "iam_server" not in fixtures
    ):
        pytest.fail(
            f"@pytest.mark.{_MARKER} configures the iam_server fixture, but this test uses "
            "iam_server_session, one server with default settings for the whole session: "
            "use iam_server for per-test settings",
            pytrace=False,
        )


# An old-style wrapper: the plugin is loaded in every session of every project that installs
# the package, and new-style ones (wrapper=True) would break the session on pytest 7.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Result[pytest.TestReport], None]:
    """A test that used a server and failed (or errored in setup) gets its access log.

    Of the session server, the requests it answered while the test ran: it shares one log.
    """
    del call
    outcome = yield
    report = outcome.get_result()
    if report.when not in {"setup", "call"} or not report.failed:
        return
    own = item.stash.get(_TEST_SERVER, None)
    if own is not None:
        report.sections.append(("iam_server access log", own.access_log() or "(none)"))
    shared = item.config.stash.get(_SESSION_SERVER, None)
    if shared is not None:
        answered = _answered_since(
            shared.server.requests, item.stash.get(_SESSION_LOG_BEFORE, None)
        )
        if answered or "iam_server_session" in getattr(item, "fixturenames", ()):
            log = _log_lines(answered) or "(none)"
            report.sections.append(("iam_server_session access log, this test's requests", log))


def _answered_since(
    answered: tuple[RequestRecord, ...], before: RequestRecord | None
) -> tuple[RequestRecord, ...]:
    """The records after ``before``; all of them where it is gone (cleared, or rotated out)."""
    for index in range(len(answered) - 1, -1, -1):
        if answered[index] is before:
            return answered[index + 1 :]
    return answered


def _generated_key(*, temporary: bool) -> tuple[str, str, str | None]:
    prefix = "ASIA" if temporary else "AKIA"
    access_key = prefix + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    token = secrets.token_urlsafe(48) if temporary else None
    return access_key, secrets.token_urlsafe(30), token


def _options(node: pytest.Item | None) -> dict[str, Any]:
    marker = node.get_closest_marker(_MARKER) if node is not None else None
    if marker is None:
        return {}
    if marker.args:
        pytest.fail(f"@pytest.mark.{_MARKER} takes keyword arguments only", pytrace=False)
    unknown = sorted(set(marker.kwargs) - _OPTIONS)
    if unknown:
        pytest.fail(
            f"@pytest.mark.{_MARKER} does not know {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(_OPTIONS))}",
            pytrace=False,
        )
    temporary = marker.kwargs.get("temporary", False)
    if not isinstance(temporary, bool):  # temporary="no" would be true
        pytest.fail(
            f"@pytest.mark.{_MARKER}(temporary=...) takes True or False, got "
            f"{type(temporary).__name__}",
            pytrace=False,
        )
    return dict(marker.kwargs)


def _running(options: Mapping[str, Any]) -> Iterator[IamServerFixture]:
    """Start a server with a generated key, yield its fixture value, stop it."""
    from apigw_iam_auth.auth import ApiGwIamAuth  # noqa: PLC0415 - imported only when used
    from apigw_iam_auth.errors import InvalidConfigError  # noqa: PLC0415 - same
    from apigw_iam_auth.server import (  # noqa: PLC0415 - same
        DEFAULT_ACCOUNT_ID,
        IamAuthServer,
        KnownKey,
    )

    settings = dict(options)
    access_key, secret_key, token = _generated_key(temporary=settings.pop("temporary", False))
    account_id = settings.get("account_id", DEFAULT_ACCOUNT_ID)
    credentials = (access_key, secret_key) if token is None else (access_key, secret_key, token)
    # The client reads the server's clock, so an injected time cannot look like clock skew.
    clock = {"clock": settings["clock"]} if "clock" in settings else {}
    refused = None
    try:  # a marker's bad value is said in one line, as its unknown names are
        known = KnownKey(secret_key, token=token, account_id=account_id)
        server = IamAuthServer(keys={access_key: known}, **settings)
        auth = ApiGwIamAuth(
            region=server.region, service=server.service, credentials=credentials, **clock
        )
    except InvalidConfigError as exc:
        refused = str(exc)
    if refused is not None:  # failed outside the handler: no "During handling" chain
        pytest.fail(f"@pytest.mark.{_MARKER}: {refused}", pytrace=False)
    with server:
        yield IamServerFixture(
            server=server,
            url=server.url,
            region=server.region,
            service=server.service,
            access_key=access_key,
            secret_key=secret_key,
            session_token=token,
            auth=auth,
        )


@pytest.fixture
def iam_server(request: pytest.FixtureRequest) -> Iterator[IamServerFixture]:
    """A local IAM-auth server for this test: URL, keys, a ready ``auth`` and the request log.

    Set ``@pytest.mark.iam_server(region=..., service=..., policy=..., temporary=True, ...)``
    to configure it.
    """
    for fixture in _running(_options(request.node)):
        request.node.stash[_TEST_SERVER] = fixture
        yield fixture


@pytest.fixture(scope="session")
def iam_server_session(request: pytest.FixtureRequest) -> Iterator[IamServerFixture]:
    """One local IAM-auth server for the whole session (default settings, shared request log)."""
    for fixture in _running({}):
        request.config.stash[_SESSION_SERVER] = fixture
        yield fixture
        del request.config.stash[_SESSION_SERVER]
