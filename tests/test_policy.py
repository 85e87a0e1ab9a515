"""IAM policy evaluation for execute-api:Invoke: wildcards, NotAction/NotResource, Deny wins."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apigw_iam_auth.errors import InvalidConfigError
from apigw_iam_auth.server import FailureKind
from apigw_iam_auth.server._policy import (
    Decision,
    _matches,
    api_arn,
    denial,
    invoke_arn,
    parse_policy,
)

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/AKIDEXAMPLE"
API = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:abc123"
PETS = f"{API}/prod/GET/pets"


def decide(document, resource=PETS, principal=USER, account=ACCOUNT) -> Decision:
    return parse_policy(document).decide(
        resource=resource, principal_arn=principal, account_id=account
    )


def allow(resource="*", action="execute-api:Invoke", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(resource="*", action="execute-api:Invoke", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_allow_exact_resource():
    """An Allow naming the exact method and path allows it."""
    assert decide({"Statement": [allow(PETS)]}) is Decision.ALLOW


def test_single_statement_object_is_accepted():
    """Statement may be one object instead of a list, as in IAM."""
    assert decide({"Version": "2012-10-17", "Statement": allow(PETS)}) is Decision.ALLOW


def test_no_matching_statement_is_an_implicit_deny():
    """Nothing allows the request: denied by default."""
    assert decide({"Statement": [allow(f"{API}/prod/POST/pets")]}) is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_allow():
    """A matching Deny beats any Allow, whatever the statement order."""
    document = {"Statement": [allow("*"), deny(f"{API}/prod/*/pets")]}
    assert decide(document) is Decision.EXPLICIT_DENY
    assert decide({"Statement": [deny(PETS), allow("*")]}) is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (f"{API}/*", PETS, Decision.ALLOW),
        (f"{API}/prod/*/pets", PETS, Decision.ALLOW),
        (f"{API}/*/GET/*", f"{API}/dev/GET/a/b/c", Decision.ALLOW),
        (f"{API}/prod/GET/pet?", f"{API}/prod/GET/pets", Decision.ALLOW),
        (f"{API}/prod/GET/pet?", f"{API}/prod/GET/pet", Decision.IMPLICIT_DENY),
        ("arn:aws:execute-api:*:*:abc123/*", PETS, Decision.ALLOW),
        (f"{API}/prod/GET/Pets", PETS, Decision.IMPLICIT_DENY),
        (f"{API}/prod/GET/pets.json", f"{API}/prod/GET/petsXjson", Decision.IMPLICIT_DENY),
    ],
)
def test_resource_wildcards(pattern, resource, expected):
    """'*' spans any characters (slashes too), '?' exactly one; ARNs are case-sensitive."""
    assert decide({"Statement": [allow(pattern)]}, resource=resource) is expected


def _as_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards read as a regex: the plain reading, which backtracks on long values."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@given(
    pattern=st.text(alphabet="ab/*?", max_size=12),
    value=st.text(alphabet="abAB/", max_size=16),
    ignore_case=st.booleans(),
)
def test_wildcards_match_as_their_regex_reading_does(pattern, value, ignore_case):
    """The linear matcher agrees with ``*`` read as ``.*`` and ``?`` as ``.``, case rules too."""
    expected = _as_regex(pattern, ignore_case=ignore_case).fullmatch(value) is not None
    assert _matches((pattern,), value, ignore_case=ignore_case) is expected


def test_wildcards_on_a_long_path_are_matched_in_one_pass():
    """A 60 KB path a client chose, against several stars, is answered (a regex backtracks)."""
    path = f"{API}/prod/GET/" + "a/" * 30_000
    document = {"Statement": [allow(f"{API}/*/GET/*/*/*/*/public")]}
    assert decide(document, resource=path) is Decision.IMPLICIT_DENY
    assert decide(document, resource=path + "public") is Decision.ALLOW


@pytest.mark.parametrize(
    "action",
    ["execute-api:Invoke", "execute-api:*", "*", "execute-api:invoke", ["s3:GetObject", "*"]],
)
def test_action_forms_that_cover_invoke(action):
    """Invoke is covered by its name (any case), execute-api:*, * and lists holding them."""
    assert decide({"Statement": [allow(action=action)]}) is Decision.ALLOW


@pytest.mark.parametrize("action", ["execute-api:ManageConnections", "s3:*", ["lambda:*"]])
def test_other_actions_do_not_cover_invoke(action):
    """Statements about other actions do not apply to Invoke."""
    assert decide({"Statement": [allow(action=action)]}) is Decision.IMPLICIT_DENY


def test_not_action_allows_everything_else():
    """Allow with NotAction applies to every action not listed, Invoke included."""
    statement = {"Effect": "Allow", "NotAction": "execute-api:ManageConnections", "Resource": "*"}
    assert decide({"Statement": [statement]}) is Decision.ALLOW
    statement["NotAction"] = "execute-api:*"
    assert decide({"Statement": [statement]}) is Decision.IMPLICIT_DENY


def test_not_resource_deny_protects_all_but_the_listed_paths():
    """Deny with NotResource denies every resource except the listed ones."""
    statement = {"Effect": "Deny", "Action": "*", "NotResource": f"{API}/prod/GET/public/*"}
    document = {"Statement": [allow("*"), statement]}
    assert decide(document) is Decision.EXPLICIT_DENY
    assert decide(document, resource=f"{API}/prod/GET/public/x") is Decision.ALLOW


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        ("*", Decision.ALLOW),
        ({"AWS": "*"}, Decision.ALLOW),
        ({"AWS": ACCOUNT}, Decision.ALLOW),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Decision.ALLOW),
        ({"AWS": [USER]}, Decision.ALLOW),
        ({"AWS": "999988887777"}, Decision.IMPLICIT_DENY),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:user/someone-else"}, Decision.IMPLICIT_DENY),
    ],
)
def test_resource_policy_principals(principal, expected):
    """A resource policy's Principal matches '*', the caller's account, its root or its ARN."""
    assert decide({"Statement": [allow(Principal=principal)]}) is expected


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ([], "JSON object"),
        ({"Version": "2012-10-17"}, '"Statement"'),
        ({"Statement": []}, "non-empty list"),
        ({"Statement": ["Allow"]}, "statement 1 must be a JSON object"),
        ({"Statement": [allow(), {**allow(), "Effect": "allow"}]}, "statement 2 Effect"),
        ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "Action or NotAction"),
        (
            {"Statement": [{**allow(), "NotAction": "s3:*"}]},
            "exactly one of Action or NotAction",
        ),
        ({"Statement": [{"Effect": "Allow", "Action": "*"}]}, "Resource or NotResource"),
        ({"Statement": [allow(resource=[])]}, "Resource must be a string or a non-empty list"),
        ({"Statement": [allow(resource=[1])]}, "Resource must be a string"),
        ({"Statement": [allow(Condition={"IpAddress": {}})]}, "Condition"),
        ({"Statement": [allow(NotPrincipal={"AWS": "*"})]}, "NotPrincipal"),
        ({"Statement": [allow(Principal={"Service": "x"})]}, "Principal must be"),
        (
            {"Statement": [allow("arn:aws:execute-api:*:${aws:PrincipalAccount}:*/*")]},
            "statement 1 Resource uses the policy variable ${aws:PrincipalAccount}",
        ),
        (
            {"Statement": [{"Effect": "Deny", "Action": "*", "NotResource": "arn:*:${*}"}]},
            "NotResource uses the policy variable ${*}",
        ),
        ({"Statment": [], "Statement": [allow()]}, "policy uses Statment, which is not"),
        ({"Version": "bogus", "Statement": [allow()]}, "Version must be '2012-10-17' or"),
        ({"Version": 2012, "Statement": [allow()]}, "got 2012"),
        ({"Id": 7, "Statement": [allow()]}, "policy Id must be a string, got int"),
        ({"Statement": [allow(Sid=1)]}, "statement 1 Sid must be a string, got int"),
        ({"Statement": [allow(Sid="A"), deny(Sid="A")]}, "statements share the Sid 'A'"),
    ],
)
def test_invalid_or_unsupported_documents_are_refused_when_parsed(document, complaint):
    """Malformed policies and elements the server cannot evaluate fail at load, naming the spot."""
    with pytest.raises(InvalidConfigError, match="policy") as info:
        parse_policy(document)
    assert complaint in str(info.value)


def test_the_elements_iam_takes_around_statements_are_accepted():
    """Version (either of IAM's two), Id and Sid, as IAM's own policies spell them."""
    for version in ("2012-10-17", "2008-10-17"):
        document = {"Version": version, "Id": "local", "Statement": [allow(Sid="Everyone")]}
        assert decide(document) is Decision.ALLOW


@pytest.mark.parametrize(
    ("shorthand", "expected"),
    [
        ("execute-api:/*", Decision.ALLOW),
        ("execute-api:/prod/GET/pets", Decision.ALLOW),
        ("execute-api:/*/GET/*", Decision.ALLOW),
        ("execute-api:/dev/*", Decision.IMPLICIT_DENY),
    ],
)
def test_shorthand_resource_stands_for_the_given_api(shorthand, expected):
    """execute-api:/... is read as the ARN of the API passed, as API Gateway saves it."""
    policy = parse_policy(
        {"Statement": [allow(shorthand)]}, api=api_arn("us-east-1", ACCOUNT, "abc123")
    )
    assert policy.decide(resource=PETS, principal_arn=USER, account_id=ACCOUNT) is expected
    other_api = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:other/prod/GET/pets"
    assert (
        policy.decide(resource=other_api, principal_arn=USER, account_id=ACCOUNT)
        is not Decision.ALLOW
    )


@pytest.mark.parametrize("element", ["Resource", "NotResource"])
def test_shorthand_without_an_api_is_refused_saying_what_to_pass(element):
    """Without the API it stands for, the shorthand is an error naming api= rather than a no-op."""
    statement = {"Effect": "Deny", "Action": "*", element: ["*", "execute-api:/prod/DELETE/*"]}
    with pytest.raises(InvalidConfigError) as info:
        parse_policy({"Statement": [allow(), statement]})
    message = str(info.value)
    assert f"policy statement 2 {element} 'execute-api:/prod/DELETE/*'" in message
    assert "pass api=api_arn(region, account_id, api_id) to parse_policy" in message


@pytest.mark.parametrize(
    ("path", "arn"),
    [
        ("/prod/pets/1", f"{API}/prod/GET/pets/1"),
        ("/prod", f"{API}/prod/GET/"),
        ("/prod/", f"{API}/prod/GET/"),
        ("/Prod/test//", f"{API}/Prod/GET/test/"),
        ("/prod/a%20b", f"{API}/prod/GET/a%20b"),
        ("/prod/a%2fb", f"{API}/prod/GET/a%2Fb"),
        ("/prod//admin", f"{API}/prod/GET/admin"),
        ("/prod/x/../admin", f"{API}/prod/GET/admin"),
        ("/prod/./admin", f"{API}/prod/GET/admin"),
        ("/prod/%61dmin", f"{API}/prod/GET/admin"),
        ("/prod/%2E%2E/prod/admin", f"{API}/prod/GET/admin"),
    ],
)
def test_invoke_arn_uses_the_first_segment_as_stage(path, arn):
    """The ARN is {api}/{stage}/{METHOD}/{path}, the path normalised as the signature covers it."""
    assert invoke_arn("us-east-1", ACCOUNT, "abc123", "GET", path) == arn


def test_explicit_denial_message_masks_the_account():
    """The AccessDenied body masks the account and says the Deny was explicit, capital M."""
    error = denial(USER, PETS, Decision.EXPLICIT_DENY)
    assert error.kind is FailureKind.ACCESS_DENIED
    assert error.error_type == "AccessDeniedException"
    assert json.loads(error.to_json()) == {
        "Message": f"User: {USER} is not authorized to perform: execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-east-1:********3333:abc123/prod/GET/pets with an explicit deny"
    }


def test_implicit_denial_message_has_no_explicit_suffix():
    """Without a matching Allow the message just says the user is not authorized."""
    message = denial(USER, PETS, Decision.IMPLICIT_DENY).message
    assert message.endswith("********3333:abc123/prod/GET/pets")


@pytest.mark.parametrize(
    ("decision", "cause"),
    [
        (
            Decision.EXPLICIT_DENY,
            f"a Deny statement of the policy matches execute-api:Invoke on {PETS}",
        ),
        (
            Decision.IMPLICIT_DENY,
            f"no Allow statement of the policy matches execute-api:Invoke on {PETS}",
        ),
    ],
)
def test_denial_names_its_likely_cause_for_the_log(decision, cause):
    """A denial's log-side cause says whether a Deny matched or no Allow did, on which ARN."""
    assert denial(USER, PETS, decision).likely_cause == cause
