"""The pytest plugin: its fixtures serve real signed calls and record what they refused.

Each test runs an inner pytest session with ``pytester`` in a subprocess, loading the plugin
explicitly with ``-p`` and with entry-point autoloading off, so the result does not depend on
whether the package's ``pytest11`` entry point is installed.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "apigw_iam_auth.pytest_plugin"


@pytest.fixture
def run(pytester, monkeypatch):
    """Run the inner test file with only our plugin, warnings as errors; returns the RunResult."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run_inner(source: str, *args: str):
        pytester.makepyfile(test_inner=source)
        # In a subprocess: in-process, pytester drops the modules an inner run imported, and
        # the next run's fresh copies of the package's modules would meet the first run's.
        return pytester.runpytest_subprocess(
            "-p", PLUGIN, "-p", "no:cacheprovider", "-W", "error", *args
        )

    return run_inner


def test_fixture_serves_a_signed_call_and_records_accepted_and_refused(run):
    """iam_server: a real call signed with .auth is accepted; an unsigned one is logged refused."""
    result = run(
        """
        import httpx
        import requests

        def test_client(iam_server):
            with httpx.Client(trust_env=False) as client:
                signed = client.post(
                    f"{iam_server.url}/prod/pets", json={"name": "Rex"}, auth=iam_server.auth
                )
                unsigned = client.get(f"{iam_server.url}/prod/pets")
            with requests.Session() as session:
                session.trust_env = False
                by_requests = session.get(
                    f"{iam_server.url}/prod/pets/1", auth=iam_server.auth, timeout=10
                )
            assert (signed.status_code, unsigned.status_code) == (200, 403)
            assert by_requests.status_code == 200
            assert signed.json()["caller"]["access_key"] == iam_server.access_key
            assert [(r.method, r.path, r.status, r.accepted) for r in iam_server.requests] == [
                ("POST", "/prod/pets", 200, True),
                ("GET", "/prod/pets", 403, False),
                ("GET", "/prod/pets/1", 200, True),
            ]
            assert len(iam_server.accepted) == 2
            [refusal] = iam_server.refused
            assert refusal.reason == "Missing Authentication Token"
            assert refusal.error_type == "MissingAuthenticationTokenException"
            assert refusal.likely_cause.startswith("the request is not signed")
            iam_server.clear()
            assert iam_server.requests == []
        """
    )
    result.assert_outcomes(passed=1)


def test_fixture_values_are_ready_and_the_secret_stays_hidden(run):
    """url, region, service, keys and auth are set; repr shows neither secret nor auth."""
    result = run(
        """
        from apigw_iam_auth import ApiGwIamAuth
        from apigw_iam_auth.pytest_plugin import IamServerFixture

        def test_values(iam_server):
            assert isinstance(iam_server, IamServerFixture)
            assert iam_server.url.startswith("http://127.0.0.1:")
            assert (iam_server.region, iam_server.service) == ("us-east-1", "execute-api")
            assert iam_server.access_key.startswith("AKIA")
            assert iam_server.session_token is None
            assert iam_server.credentials == (iam_server.access_key, iam_server.secret_key)
            assert isinstance(iam_server.auth, ApiGwIamAuth)
            assert iam_server.secret_key not in repr(iam_server)
            assert iam_server.access_key in repr(iam_server)
        """
    )
    result.assert_outcomes(passed=1)


def test_each_test_gets_its_own_server_and_keys(run):
    """The function-scoped fixture starts a fresh server with fresh keys for every test."""
    result = run(
        """
        seen = []

        def test_one(iam_server):
            seen.append((iam_server.url, iam_server.access_key))

        def test_two(iam_server):
            seen.append((iam_server.url, iam_server.access_key))
            assert seen[0][1] != seen[1][1]
            assert iam_server.requests == []
        """
    )
    result.assert_outcomes(passed=2)


def test_each_test_s_keys_reach_presign_url_through_the_default_chain(run):
    """Code under test that links with presign_url() and the default chain (as on AWS), each
    test pointing AWS_* at its server's keys (the session's, its own, the session's again):
    the chain, resolved once per process, is resolved again for each test using a server."""
    result = run(
        """
        import pytest
        import requests
        from apigw_iam_auth import presign_url

        @pytest.fixture(params=["session", "own", "session again"])
        def server(request, iam_server_session):
            if request.param == "own":
                return request.getfixturevalue("iam_server")
            return iam_server_session

        @pytest.fixture(autouse=True)
        def aws_env(server, monkeypatch):
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)
            for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE"):
                monkeypatch.delenv(name, raising=False)

        def test_link_opens(server):
            link = presign_url(f"{server.url}/prod/report", region=server.region)
            assert requests.get(link, timeout=10).status_code == 200
        """
    )
    result.assert_outcomes(passed=3)


def test_marker_configures_region_and_temporary_credentials(run):
    """@pytest.mark.iam_server(region=..., temporary=True) sets the scope and a session token."""
    result = run(
        """
        import httpx
        import pytest

        @pytest.mark.iam_server(region="eu-west-1", temporary=True)
        def test_temporary(iam_server):
            assert iam_server.region == "eu-west-1"
            assert iam_server.access_key.startswith("ASIA")
            assert iam_server.session_token
            assert iam_server.session_token not in repr(iam_server)
            with httpx.Client(trust_env=False) as client:
                response = client.get(f"{iam_server.url}/prod/x", auth=iam_server.auth)
            assert response.status_code == 200
            sent = {name.lower(): value for name, value in response.json()["headers"]}
            assert sent["x-amz-security-token"] == "<redacted>"
        """,
        "--strict-markers",
    )
    result.assert_outcomes(passed=1)


def test_marker_policy_refusal_is_recorded_with_its_reason(run):
    """A policy set by the marker denies a call; the record carries the reason and the cause."""
    result = run(
        """
        import httpx
        import pytest

        POLICY = {"Statement": [
            {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"},
            {"Effect": "Deny", "Action": "execute-api:Invoke", "Resource": "*/DELETE/*"},
        ]}

        @pytest.mark.iam_server(policy=POLICY, api_id="abc123")
        def test_denied(iam_server):
            with httpx.Client(trust_env=False, auth=iam_server.auth) as client:
                assert client.get(f"{iam_server.url}/prod/pets/1").status_code == 200
                assert client.delete(f"{iam_server.url}/prod/pets/1").status_code == 403
            [denied] = iam_server.refused
            assert denied.error_type == "AccessDeniedException"
            assert denied.reason.endswith("/prod/DELETE/pets/1 with an explicit deny")
            assert denied.likely_cause.startswith("a Deny statement of the policy matches")
        """
    )
    result.assert_outcomes(passed=1)


def test_marker_with_an_unknown_option_fails_setup_naming_it(run):
    """A misspelt marker option errors the test's setup and lists the options there are."""
    result = run(
        """
        import pytest

        @pytest.mark.iam_server(regoin="eu-west-1")
        def test_typo(iam_server):
            pass
        """
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*does not know regoin; it takes *region*"])


def test_marker_values_that_cannot_be_used_fail_setup_in_one_line(run):
    """temporary="no" is not taken for true, and a value the server refuses (a misspelt
    region) is said in one line, as an unknown option is, without a traceback.
    """
    result = run(
        """
        import pytest

        @pytest.mark.iam_server(temporary="no")
        def test_string(iam_server):
            pass

        @pytest.mark.iam_server(region="us-east1")
        def test_region(iam_server):
            pass

        @pytest.mark.iam_server(region="mars-1")
        def test_client_region(iam_server):
            pass
        """
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*iam_server(temporary=...) takes True or False, got str*",
            "*@pytest.mark.iam_server: region 'us-east1' is not an AWS region*",
            "*@pytest.mark.iam_server: *'mars-1'*",
        ],
        consecutive=False,
    )
    printed = result.stdout.str()
    assert "pytest_plugin.py" not in printed
    assert "During handling" not in printed


def test_marker_on_a_test_using_only_the_session_server_fails_setup(run):
    """The session server cannot take per-test settings: the marker is refused, not ignored.

    A marker on a class reaches tests that use no server, or iam_server too: those run.
    """
    result = run(
        """
        import pytest

        @pytest.mark.iam_server(region="eu-west-1")
        class TestMarked:
            def test_session_only(self, iam_server_session):
                pass

            def test_both(self, iam_server, iam_server_session):
                assert iam_server.region == "eu-west-1"

            def test_none(self):
                pass
        """
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*configures the iam_server fixture, but this test uses*"])


def test_failed_test_report_shows_the_access_log(run):
    """When a test using the fixture fails, its report includes the server's access log."""
    result = run(
        """
        import httpx

        def test_fails(iam_server):
            with httpx.Client(trust_env=False) as client:
                client.get(f"{iam_server.url}/prod/forgot-auth")
            assert not iam_server.refused
        """
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*iam_server access log*",
            '127.0.0.1 "GET /prod/forgot-auth" 403 * refused MissingAuthenticationTokenException:*',
        ]
    )


def test_access_log_is_shown_for_setup_failures_and_dynamic_use(run):
    """The log is there too when a fixture built on iam_server fails in setup, and when the
    test asked for the server through request.getfixturevalue.
    """
    result = run(
        """
        import httpx
        import pytest

        @pytest.fixture
        def seeded(iam_server):
            with httpx.Client(trust_env=False) as client:
                client.post(f"{iam_server.url}/prod/seed").raise_for_status()  # forgot auth

        def test_setup_failure(seeded):
            pass

        def test_dynamic(request):
            server = request.getfixturevalue("iam_server")
            with httpx.Client(trust_env=False) as client:
                assert client.get(f"{server.url}/prod/dynamic").status_code == 200
        """
    )
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_setup_failure*",
            "*iam_server access log*",
            '127.0.0.1 "POST /prod/seed" 403 * refused MissingAuthenticationTokenException:*',
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_dynamic _*",
            "*iam_server access log*",
            '127.0.0.1 "GET /prod/dynamic" 403 * refused MissingAuthenticationTokenException:*',
        ]
    )


def test_session_fixture_is_one_server_for_all_tests(run):
    """iam_server_session is shared: same URL and keys in every test, one request log."""
    result = run(
        """
        import httpx

        seen = []

        def call(server):
            with httpx.Client(trust_env=False) as client:
                return client.get(f"{server.url}/prod/x", auth=server.auth).status_code

        def test_one(iam_server_session):
            seen.append(iam_server_session.url)
            assert call(iam_server_session) == 200

        def test_two(iam_server_session):
            assert iam_server_session.url == seen[0]
            assert call(iam_server_session) == 200
            assert len(iam_server_session.accepted) == 2
        """
    )
    result.assert_outcomes(passed=2)


def test_session_server_report_shows_the_failing_tests_own_requests(run):
    """The session server shares one log: a failing test's report shows the requests answered
    while it ran, whether it named the fixture or asked for it through getfixturevalue.
    """
    result = run(
        """
        import httpx

        def call(server, path):
            with httpx.Client(trust_env=False) as client:
                return client.get(f"{server.url}{path}", auth=server.auth).status_code

        def test_first(iam_server_session):
            assert call(iam_server_session, "/prod/earlier") == 200

        def test_named(iam_server_session):
            assert call(iam_server_session, "/prod/named") == 404

        def test_dynamic(request):
            server = request.getfixturevalue("iam_server_session")
            assert call(server, "/prod/dynamic") == 404
        """
    )
    result.assert_outcomes(passed=1, failed=2)
    output = result.stdout.str()
    named = output.partition("_ test_named _")[2].partition("_ test_dynamic _")[0]
    # The short summary after the reports quotes each assertion, in full where CI is set.
    dynamic = output.partition("_ test_dynamic _")[2].partition("short test summary info")[0]
    heading = "iam_server_session access log, this test's requests"
    assert heading in named
    assert heading in dynamic
    assert '"GET /prod/named" 200' in named
    assert '"GET /prod/dynamic" 200' in dynamic
    assert "/prod/dynamic" not in named
    assert "/prod/named" not in dynamic
    assert "/prod/earlier" not in output


def test_importing_the_plugin_loads_nothing_heavy():
    """Importing the plugin adds no HTTP library, botocore or server to what the package loads.

    pytest imports every registered plugin in every run, so this is paid by every test session
    of every project that installs the package.
    """
    probe = textwrap.dedent(
        """
        import sys
        import apigw_iam_auth
        before = set(sys.modules)
        import apigw_iam_auth.pytest_plugin
        added = set(sys.modules) - before
        heavy = {"requests", "httpx", "botocore", "aiohttp", "apigw_iam_auth.server", "http"}
        print(sorted(m for m in added if any(m == h or m.startswith(h + ".") for h in heavy)))
        print(sorted(m for m in ("requests", "botocore") if m in sys.modules))
        """
    )
    output = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert output.splitlines() == ["[]", "[]"]


def test_plugin_is_registered_as_a_pytest11_entry_point():
    """The installed package registers the plugin, so pytest loads it without -p."""
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    assert found.get(PLUGIN) == PLUGIN


def test_plugin_named_in_a_conftest_loads_beside_the_entry_point(pytester, monkeypatch):
    """``pytest_plugins = [PLUGIN]`` (kept for runs with autoload off) works with autoload on.

    pytest registers an entry point's module under the entry point's name, and a conftest's
    under the module's: the two names must agree, or pytest refuses the second registration.
    """
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeconftest(f"pytest_plugins = [{PLUGIN!r}]")
    pytester.makepyfile(test_inner="def test_served(iam_server):\n    assert iam_server.url\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=1)
