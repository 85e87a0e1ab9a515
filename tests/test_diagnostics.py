"""explain_signature_mismatch: a redacted line diff of API Gateway's 403 against what we signed."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import sys
import traceback
from datetime import datetime, timezone
from urllib.parse import parse_qs, quote

import httpx
import pytest
import requests
from aws_isolation import isolate_aws
from botocore.credentials import ReadOnlyCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from apigw_iam_auth import ApiGwIamAuth, RedactingFilter, _sigv4, diagnostics
from apigw_iam_auth._models import SignableRequest, SignedRequest
from apigw_iam_auth.diagnostics import (
    ExpectedSigning,
    explain_signature_mismatch,
    log_signature_mismatch,
    parse_signature_mismatch,
    redact,
)
from apigw_iam_auth.errors import CredentialsRefreshError, InvalidConfigError
from apigw_iam_auth.server import IamAuthServer, KnownKey, VerificationError, verify_request
from apigw_iam_auth.signer import SigV4Signer

T = datetime(2020, 2, 11, 20, 55, 29, tzinfo=timezone.utc)
KEY, SECRET, TOKEN = "ASIAEXAMPLE", "secret", "IQoJb3JpZ2luX2VjEXAMPLE//token+=="
HOST = "abc123.execute-api.us-east-1.amazonaws.com"
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKID/20200211/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, "
)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


def sign(
    method="POST",
    path="/prod/pets",
    query=(),
    headers=(),
    body=b"{}",
    secret=SECRET,
    payload=None,
    **options,
):
    """Our SigningResult plus the request as it goes on the wire (``payload``: the hash signed;
    ``options``: the signer's)."""
    request = SignableRequest(
        method,
        path,
        tuple(query),
        (("Host", HOST), ("Content-Type", "application/json"), *headers),
        _sigv4.payload_hash(body) if payload is None else payload,
    )
    signer = SigV4Signer("us-east-1", credentials=(KEY, secret, TOKEN), **options)
    result = signer.sign_request(request, timestamp=T)
    target = path + (f"?{result.query}" if result.query else "")
    return result, (method, target, [*request.headers, *result.headers], body)


def api_gateway(method, target, headers, body) -> str:
    """The 403 body a verifying API Gateway (our verifier) sends for this request."""
    keys = {KEY: KnownKey(SECRET, token=TOKEN)}
    with pytest.raises(VerificationError) as info:
        verify_request(method, target, headers, body, lookup=keys.get, region="us-east-1", now=T)
    return info.value.to_json()


def aws_body(canonical: str, to_sign: str | None = None) -> str:
    """A 403 body in API Gateway's exact shape (mhart/aws4#33)."""
    if to_sign is None:
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        scope = "20200211/us-east-1/execute-api/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n20200211T205529Z\n{scope}\n{digest}"
    message = (
        f"{MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'"
        f"\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
    )
    return json.dumps({"message": message})


def test_realistic_aws_body_is_parsed():
    """The canonical string and string to sign are read out of API Gateway's JSON message."""
    result, _ = sign()
    expected = parse_signature_mismatch(aws_body(result.canonical_request, result.string_to_sign))
    assert expected is not None
    assert expected.canonical_request == result.canonical_request
    assert expected.string_to_sign == result.string_to_sign


def test_body_hash_difference_is_explained_and_the_token_redacted():
    """A body re-encoded after signing shows as a payload-hash diff; the token never appears."""
    sent, signed = _sigv4.payload_hash(b'{"a": 1}'), _sigv4.payload_hash(b'{"a":1}')
    result, _ = sign(body=b'{"a":1}')
    theirs = result.canonical_request.rsplit("\n", 1)[0] + "\n" + sent
    text = explain_signature_mismatch(aws_body(theirs), result)
    assert text is not None
    assert f"  - {sent}\n  + {signed}" in text
    assert "    x-amz-security-token:<redacted>" in text
    assert TOKEN not in text
    assert text.endswith(
        "likely cause: the body hash differs: the body sent is not the body signed "
        "(re-encoded JSON, compression, a consumed stream, a proxy)"
    )


def test_unsigned_payload_refused_is_explained_as_such():
    """UNSIGNED-PAYLOAD signed for execute-api (with its header, as for another service) is
    named as the cause, not a changed body."""
    body = b'{"a": 1}'
    result, request = sign(
        body=body, payload=_sigv4.UNSIGNED_PAYLOAD, add_content_sha256_header=True
    )
    text = explain_signature_mismatch(api_gateway(*request), result)
    assert text is not None
    assert f"  - {_sigv4.payload_hash(body)}\n  + UNSIGNED-PAYLOAD" in text
    assert text.endswith(
        "likely cause: UNSIGNED-PAYLOAD was signed but the service hashed the body instead: "
        "API Gateway (execute-api) never accepts an unsigned payload; sign the body's SHA-256 "
        "(execute-api's default)"
    )


def test_path_decoded_by_a_proxy_is_explained():
    """A proxy that decodes %2F in the path shows up as a path diff with the encoding hint."""
    result, (method, target, headers, body) = sign(path="/prod/a%2Fb")
    text = explain_signature_mismatch(
        api_gateway(method, target.replace("%2F", "/"), headers, body), result
    )
    assert text is not None
    assert "  - /prod/a/b\n  + /prod/a%252Fb" in text
    assert "likely cause: the path differs" in text


def test_plus_sent_for_a_literal_plus_is_explained():
    """A literal '+' sent raw is read as a space by API Gateway: the query line differs."""
    result, (method, target, headers, body) = sign(query=(("q", "a+b"),))
    sent = target.replace("a%2Bb", "a+b")
    text = explain_signature_mismatch(api_gateway(method, sent, headers, body), result)
    assert text is not None
    assert "  - q=a%20b\n  + q=a%2Bb" in text
    assert "likely cause: the query string differs" in text


def test_header_changed_in_transit_is_named():
    """A signed header rewritten after signing is named in the explanation."""
    result, request = sign(headers=(("X-Tenant", "blue"),))
    method, target, headers, body = request
    changed = [(n, "green" if n == "X-Tenant" else v) for n, v in headers]
    text = explain_signature_mismatch(api_gateway(method, target, changed, body), result)
    assert text is not None
    assert "  - x-tenant:green\n  + x-tenant:blue" in text
    assert "likely cause: header 'x-tenant' differs" in text


def test_method_change_is_named():
    """A request sent with another method than the one signed is explained as such."""
    result, (_, target, headers, body) = sign()
    text = explain_signature_mismatch(api_gateway("PUT", target, headers, body), result)
    assert text is not None
    assert "likely cause: the HTTP method differs" in text


def test_identical_strings_mean_a_wrong_secret():
    """When API Gateway computed exactly our strings, the secret key is the culprit."""
    result, request = sign(secret="not-the-secret")
    text = explain_signature_mismatch(api_gateway(*request), result)
    assert text is not None
    assert "likely cause: API Gateway computed the same strings, so the secret key is wrong" in text
    assert "  - " not in text
    assert "  + " not in text


def test_string_to_sign_only_difference_points_at_the_scope():
    """Same canonical request, different string to sign: date, region or service of the scope."""
    result, _ = sign()
    other_scope = result.string_to_sign.replace("us-east-1", "us-west-2")
    text = explain_signature_mismatch(aws_body(result.canonical_request, other_scope), result)
    assert text is not None
    assert "  - 20200211/us-west-2/execute-api/aws4_request" in text
    assert "likely cause: the canonical requests agree but the string to sign differs" in text


def test_bodies_that_are_not_a_signature_mismatch_give_none():
    """Other 403s (missing token, access denied) and success bodies are not explained."""
    result, _ = sign()
    assert explain_signature_mismatch('{"message":"Missing Authentication Token"}', result) is None
    assert explain_signature_mismatch(b'{"Message":"User: x is not authorized"}', result) is None
    assert parse_signature_mismatch("<html>Forbidden</html>") is None


def test_short_mismatch_body_shows_what_we_signed():
    """A mismatch body without the quoted strings still shows our (redacted) canonical request."""
    result, _ = sign()
    text = explain_signature_mismatch(json.dumps({"Message": MISMATCH}).encode(), result)
    assert text is not None
    assert text.startswith("API Gateway says the signature does not match but did not quote")
    assert "    x-amz-security-token:<redacted>" in text
    assert TOKEN not in text


def test_plain_text_body_is_read_too():
    """A non-JSON body carrying the message (a proxy re-wrapping it) is still understood."""
    result, _ = sign()
    message = json.loads(aws_body(result.canonical_request))["message"]
    expected = parse_signature_mismatch(message.encode())
    assert expected is not None
    assert expected.canonical_request == result.canonical_request


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"{AUTHORIZATION}Signature=0123abcd", f"{AUTHORIZATION}Signature=<redacted>"),
        (
            "GET /p?X-Amz-Security-Token=abc%2F%3D&X-Amz-Signature=ff00&q=1 HTTP/1.1",
            "GET /p?X-Amz-Security-Token=<redacted>&X-Amz-Signature=<redacted>&q=1 HTTP/1.1",
        ),
        ("X-Amz-Security-Token: abc/def==\nHost: h", "X-Amz-Security-Token: <redacted>\nHost: h"),
        ("host:h\nx-amz-security-token:abc\n", "host:h\nx-amz-security-token:<redacted>\n"),
        (
            "cookie:session=abc\nhost:h\nx-api-key:k3y\nProxy-Authorization: Basic dXNlcg==",
            "cookie:<redacted>\nhost:h\nx-api-key:<redacted>\nProxy-Authorization: <redacted>",
        ),
        (
            "[('X-Api-Key', 'k3y'), ('Cookie', 'a=b')]",
            "[('X-Api-Key', '<redacted>'), ('Cookie', '<redacted>')]",
        ),
    ],
)
def test_redact_masks_tokens_and_signatures_everywhere(text, shown):
    """Header, query, request-line and canonical forms of secrets are all masked."""
    assert redact(text) == shown


LEAKED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
LEAKED_SIGNATURE = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
STS_CREDENTIALS = (
    f"<Credentials><AccessKeyId>{KEY}</AccessKeyId>"
    f"<SecretAccessKey>{LEAKED_SECRET}</SecretAccessKey><SessionToken>{TOKEN}</SessionToken>"
    "<Expiration>2020-02-11T21:55:29Z</Expiration></Credentials>"
)
PRESIGNED = (
    f"https://{HOST}/prod/p?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    f"&X-Amz-Credential={KEY}%2F20200211%2Fus-east-1%2Fexecute-api%2Faws4_request"
    f"&X-Amz-Date=20200211T205529Z&X-Amz-Security-Token={quote(TOKEN, safe='')}"
    f"&X-Amz-SignedHeaders=host&X-Amz-Signature={LEAKED_SIGNATURE}"
)
TWICE_ENCODED = quote(quote(PRESIGNED, safe=""), safe="")


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        pytest.param(
            f'AWS_SECRET_ACCESS_KEY="{LEAKED_SECRET}"', ["AWS_SECRET_ACCESS_KEY="], id="dotenv"
        ),
        pytest.param(
            f'export AWS_SECRET_ACCESS_KEY="{LEAKED_SECRET}" AWS_SESSION_TOKEN="{TOKEN}"',
            ['export AWS_SECRET_ACCESS_KEY="', '" AWS_SESSION_TOKEN="'],
            id="export-double-quoted",
        ),
        pytest.param(
            f"export AWS_SESSION_TOKEN='{TOKEN}'",
            ["export AWS_SESSION_TOKEN='"],
            id="export-single-quoted",
        ),
        pytest.param(
            f'$Env:AWS_ACCESS_KEY_ID="{KEY}"\n$Env:AWS_SECRET_ACCESS_KEY="{LEAKED_SECRET}"\n'
            f'$Env:AWS_SESSION_TOKEN="{TOKEN}"',
            [
                f'$Env:AWS_ACCESS_KEY_ID="{KEY}"',
                "$Env:AWS_SECRET_ACCESS_KEY=",
                "$Env:AWS_SESSION_TOKEN=",
            ],
            id="powershell-export-credentials",
        ),
        pytest.param(
            f'env: {{AWS_ACCESS_KEY_ID: {KEY}, AWS_SECRET_ACCESS_KEY: "{LEAKED_SECRET}"}}',
            [f"AWS_ACCESS_KEY_ID: {KEY}, AWS_SECRET_ACCESS_KEY: "],
            id="yaml-inline",
        ),
        pytest.param(
            f'    client = boto3.client("s3", aws_access_key_id="{KEY}", '
            f'aws_secret_access_key="{LEAKED_SECRET}", aws_session_token="{TOKEN}")',
            [f'aws_access_key_id="{KEY}", aws_secret_access_key=', "aws_session_token="],
            id="python-kwargs-in-traceback",
        ),
        pytest.param(
            repr(ReadOnlyCredentials(KEY, LEAKED_SECRET, TOKEN)),
            [f"ReadOnlyCredentials(access_key='{KEY}', secret_key=", "token="],
            id="botocore-ReadOnlyCredentials-repr",
        ),
        pytest.param(
            STS_CREDENTIALS,
            [f"<AccessKeyId>{KEY}</AccessKeyId>", "<Expiration>2020-02-11T21:55:29Z</Expiration>"],
            id="sts-xml",
        ),
        pytest.param(
            "Response body:\n"
            + repr(f"<AssumeRoleResult>{STS_CREDENTIALS}</AssumeRoleResult>".encode()),
            ["Response body:\nb'<AssumeRoleResult>", f"<AccessKeyId>{KEY}</AccessKeyId>"],
            id="botocore-parsers-debug-of-sts-body",
        ),
        pytest.param(
            f"[(b'host', b'{HOST}'), (b'x-amz-security-token', b'{TOKEN}')]",
            [f"(b'host', b'{HOST}')", "(b'x-amz-security-token', b'"],
            id="bytes-header-pairs",
        ),
        pytest.param(
            f"{{'X-Amz-Date': b'20200211T205529Z', 'X-Amz-Security-Token': b'{TOKEN}'}}",
            ["'X-Amz-Date': b'20200211T205529Z'", "'X-Amz-Security-Token': b'"],
            id="dict-of-bytes-headers",
        ),
        pytest.param(
            f"https://idp.example/login?next={TWICE_ENCODED}",
            [f"X-Amz-Credential%253D{KEY}%25252F20200211", "X-Amz-Date%253D20200211T205529Z"],
            id="presigned-url-encoded-twice-in-another-url",
        ),
        pytest.param(
            f"2020-02-11 20:55:29 DEBUG botocore.auth Signature:\n{LEAKED_SIGNATURE}",
            ["DEBUG botocore.auth Signature:\n"],
            id="botocore-auth-signature-debug-line",
        ),
        pytest.param(
            json.dumps(
                {
                    "startUrl": "https://example.awsapps.com/start",
                    "accessToken": TOKEN,
                    "clientId": "client-id-1",
                    "clientSecret": LEAKED_SECRET,
                    "refreshToken": LEAKED_SIGNATURE,
                }
            ),
            ['"startUrl": "https://example.awsapps.com/start"', '"clientId": "client-id-1"'],
            id="sso-cache-json",
        ),
        pytest.param(
            f"<RoleArn>arn:aws:iam::123456789012:role/ci</RoleArn><WebIdentityToken>{TOKEN}"
            f"</WebIdentityToken><SAMLAssertion>{LEAKED_SECRET}</SAMLAssertion>",
            ["<RoleArn>arn:aws:iam::123456789012:role/ci</RoleArn>"],
            id="sts-web-identity-and-saml",
        ),
        pytest.param(
            json.dumps({"WebIdentityToken": TOKEN, "SAMLAssertion": LEAKED_SECRET, "Role": "ci"}),
            ['"Role": "ci"'],
            id="web-identity-and-saml-json",
        ),
        pytest.param(
            f"Action=AssumeRoleWithWebIdentity&WebIdentityToken={TOKEN}&RoleArn=role-ci",
            ["Action=AssumeRoleWithWebIdentity&", "&RoleArn=role-ci"],
            id="sts-form-body",
        ),
        pytest.param(
            "Credentials:\n  AccessKeyId: AKIDEXAMPLE\n"
            f"  SecretAccessKey: {LEAKED_SECRET}\n  SessionToken: {TOKEN}\n",
            ["  AccessKeyId: AKIDEXAMPLE\n", "  SecretAccessKey: <redacted>\n"],
            id="aws-cli-yaml-output",
        ),
        pytest.param(
            f"SecretAccessKey={LEAKED_SECRET} SessionToken={TOKEN} AccessKeyId=AKIDEXAMPLE",
            ["AccessKeyId=AKIDEXAMPLE"],
            id="name-equals-value-log-line",
        ),
        pytest.param(
            f"vault login --client-secret={LEAKED_SECRET} --session_token={TOKEN} --ttl=1h",
            ["vault login --client-secret=", "--ttl=1h"],
            id="option-equals-value",
        ),
        pytest.param(
            f"+ aws-vault exec ci -- tool --session-token {TOKEN} --aws-secret-access-key "
            f"{LEAKED_SECRET} --security-token --region eu-west-1",
            ["tool --session-token <redacted> ", "--security-token --region eu-west-1"],
            id="option-space-value",
        ),
        pytest.param(
            f'os.environ["AWS_SESSION_TOKEN"] = "{TOKEN}"\n'
            f"os.environ['AWS_SECRET_ACCESS_KEY']='{LEAKED_SECRET}'\n"
            'os.environ["AWS_REGION"] = "eu-west-1"',
            ['os.environ["AWS_SESSION_TOKEN"] = "<redacted>"', '"AWS_REGION"] = "eu-west-1"'],
            id="environ-subscript-assignment",
        ),
        pytest.param(
            f"AccessKeyId: AKIDEXAMPLE\nToken: {TOKEN}\nExpiration: 2030-01-01T00:00:00Z",
            ["AccessKeyId: AKIDEXAMPLE\n", "\nExpiration: 2030-01-01T00:00:00Z"],
            id="container-credentials-as-yaml",
        ),
        pytest.param(
            f"secret_access_key: {LEAKED_SECRET}\nsession-token: {TOKEN}\nregion: eu-west-1",
            ["region: eu-west-1"],
            id="snake-and-kebab-case-fields",
        ),
        pytest.param(
            f"Credentials(aws_session_token=b'{TOKEN}', X-Amz-Security-Token=b'{TOKEN}')",
            ["Credentials(aws_session_token=b'"],
            id="bytes-keyword-arguments",
        ),
        pytest.param(
            json.dumps(
                {
                    "message": "The request signature we calculated does not match the "
                    "signature you provided.\n\nThe Canonical String for this request should "
                    "have been\n'GET\n/prod/pets\n\nhost:h\nx-amz-date:20240101T000000Z\n"
                    f"x-amz-security-token:{TOKEN}\n\nhost;x-amz-date;x-amz-security-token\n"
                    f"e3b0'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n'"
                }
            ),
            ["\\nhost;x-amz-date;x-amz-security-token\\ne3b0'", "x-amz-date:20240101T000000Z"],
            id="api-gateway-403-body-as-text",
        ),
        pytest.param(
            repr(
                parse_qs(
                    f"X-Amz-Security-Token={quote(TOKEN, safe='')}&X-Amz-Signature="
                    f"{LEAKED_SIGNATURE}&X-Amz-Credential=AKID%2F20240101"
                )
            ),
            ["'X-Amz-Credential': ['AKID/20240101']"],
            id="parse-qs-of-a-presigned-query",
        ),
        pytest.param(
            json.dumps(
                {
                    "Credentials": {
                        "AccessKeyId": "ASIAEXAMPLE",
                        "SecretKey": LEAKED_SECRET,
                        "SessionToken": TOKEN,
                        "Expiration": 1.7e9,
                    },
                    "IdentityId": "eu-west-1:0000",
                }
            ),
            ['"AccessKeyId": "ASIAEXAMPLE"', '"SecretKey": "<redacted>"', '"Expiration": 1'],
            id="cognito-identity-credentials-json",
        ),
        pytest.param(
            f"Credentials:\n  AccessKeyId: ASIAEXAMPLE\n  SecretKey: {LEAKED_SECRET}\n"
            f"<SecretKey>{LEAKED_SECRET}</SecretKey> secret_key={LEAKED_SECRET}",
            ["  AccessKeyId: ASIAEXAMPLE\n", "  SecretKey: <redacted>\n", "<SecretKey><"],
            id="cognito-identity-credentials-yaml-and-xml",
        ),
        pytest.param(
            json.dumps({"access_key": KEY, "secret_key": LEAKED_SECRET, "expiry_time": "x"})
            + str({"secret_access_key": LEAKED_SECRET, "secret": LEAKED_SECRET}),
            [f'"access_key": "{KEY}"', '"secret_key": "<redacted>"', "'secret': '<redacted>'"],
            id="botocore-refresh-metadata-and-a-vault-answer",
        ),
        pytest.param(
            f'{{\n  "SessionToken":\n    "{TOKEN}",\n'
            f'  "SecretAccessKey" :\n\t"{LEAKED_SECRET}"\n}}',
            ['"SessionToken":\n    "<redacted>",', '"SecretAccessKey" :\n\t"<redacted>"'],
            id="json-value-on-the-next-line",
        ),
    ],
)
def test_redact_masks_quoted_botocore_and_sso_forms(text, kept):
    """Quoted, repr, XML, bytes, twice-encoded and SSO-cache secrets go; key ids and names stay."""
    shown = redact(text)
    for secret in (LEAKED_SECRET, TOKEN, LEAKED_SIGNATURE, quote(TOKEN, safe="")):
        for encoded in (secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")):
            assert encoded not in shown
    assert "<redacted>" in shown
    for context in kept:
        assert context in shown
    assert redact(shown) == shown


def test_redact_masks_the_whole_value_where_json_escapes_its_slashes():
    """Some JSON writers put \\/ for every "/": the value runs on through them to its end."""
    text = json.dumps(
        {
            "env": f"aws_secret_access_key={LEAKED_SECRET}",
            "line": f"X-Amz-Security-Token: {TOKEN}/x",
        }
    ).replace("/", "\\/")
    assert (
        redact(text)
        == '{"env": "aws_secret_access_key=<redacted>", "line": "X-Amz-Security-Token: <redacted>"}'
    )


def test_credential_process_quoting_exported_secrets_is_redacted(tmp_path, monkeypatch):
    """A credential_process echoing quoted exports on stderr: no secret in error or traceback."""
    isolate_aws(tmp_path, monkeypatch)
    script = tmp_path / "creds.py"
    script.write_text(
        "import sys\n"
        "sys.stderr.write('vault sealed; last env: "
        f'export AWS_SECRET_ACCESS_KEY="{LEAKED_SECRET}" AWS_SESSION_TOKEN="{TOKEN}"\')\n'
        "sys.exit(1)\n"
    )
    (tmp_path / "config").write_text(
        f'[profile broken]\ncredential_process = "{sys.executable}" "{script}"\n'
    )
    signer = SigV4Signer("us-east-1", profile="broken")
    with pytest.raises(CredentialsRefreshError, match="vault sealed") as caught:
        signer.sign("GET", f"https://{HOST}/prod")
    printed = "".join(traceback.format_exception(caught.value))
    assert 'AWS_SECRET_ACCESS_KEY="<redacted>" AWS_SESSION_TOKEN="<redacted>"' in str(caught.value)
    assert LEAKED_SECRET not in printed
    assert TOKEN not in printed


def test_log_signature_mismatch_logs_the_diff_at_debug(caplog):
    """Adapters get the explanation in the DEBUG log for a 403 mismatch, redacted."""
    result, request = sign()
    body = api_gateway("PUT", *request[1:])
    with caplog.at_level(logging.DEBUG, logger="apigw_iam_auth"):
        log_signature_mismatch(403, body, result)
    assert len(caplog.records) == 1
    assert caplog.records[0].levelno == logging.DEBUG
    assert "likely cause: the HTTP method differs" in caplog.text
    assert TOKEN not in caplog.text


def test_log_signature_mismatch_is_silent_unless_debug_and_403(caplog):
    """Nothing is parsed or logged at INFO, or for a status other than 403."""
    result, request = sign()
    body = api_gateway("PUT", *request[1:])
    with caplog.at_level(logging.INFO, logger="apigw_iam_auth"):
        log_signature_mismatch(403, body, result)
    with caplog.at_level(logging.DEBUG, logger="apigw_iam_auth"):
        log_signature_mismatch(200, body, result)
        log_signature_mismatch(403, '{"message":"Missing Authentication Token"}', result)
    assert caplog.records == []


def test_expected_signing_repr_hides_the_quoted_strings():
    """The parsed strings may hold the session token, so repr leaves them out."""
    result, _ = sign()
    expected = parse_signature_mismatch(aws_body(result.canonical_request))
    assert TOKEN not in repr(expected)


# --- hostile bodies and arguments (tests/test_hostile.py findings) ---------------------------

CANONICAL_INTRO = "The Canonical String for this request should have been\n'"
TO_SIGN_INTRO = "'\n\nThe String-to-Sign should have been\n'"
# The regex the reader used before: right, but quadratic on bodies repeating CANONICAL_INTRO.
FORMER_REGEX = re.compile(
    r"The Canonical String for this request should have been\n'(?P<canonical>.*)'\n\n"
    r"The String-to-Sign should have been\n'(?P<to_sign>.*)'\s*\Z",
    re.DOTALL,
)
PIECES = st.sampled_from(
    [CANONICAL_INTRO, TO_SIGN_INTRO, "'", "\n", "\n\n", " ", "\x1c", "\u2028", "a", "x\ny"]
)


@settings(max_examples=500)
@given(text=st.lists(PIECES | st.text(max_size=3), max_size=10).map("".join))
def test_quoted_strings_are_read_exactly_as_the_former_regex_read_them(text):
    """The linear reader finds the same canonical request and string to sign as the old regex."""
    message = f"{MISMATCH}\n\n{text}"
    found = FORMER_REGEX.search(message)
    expected = parse_signature_mismatch(message)
    assert expected is not None
    if found is None:
        assert expected == ExpectedSigning(message)
    else:
        assert expected.canonical_request == found.group("canonical")
        assert expected.string_to_sign == found.group("to_sign")


def test_body_repeating_the_intro_is_read_as_quoting_nothing():
    """A 64 KiB body of repeated 'should have been' lines quotes no strings (its cost per size,
    linear, is measured in bench/bench_linear.py).
    """
    result, _ = sign()
    body = MISMATCH + CANONICAL_INTRO * ((64 * 1024 - len(MISMATCH)) // len(CANONICAL_INTRO))
    text = explain_signature_mismatch(body, result)
    assert text is not None
    assert text.startswith("API Gateway says the signature does not match but did not quote")


@pytest.mark.parametrize(
    "body",
    [
        MISMATCH + CANONICAL_INTRO * (2 * 1024 * 1024 // len(CANONICAL_INTRO)),
        (MISMATCH + " " * (64 * 1024)).encode(),
        memoryview((MISMATCH + " " * (64 * 1024)).encode()),
    ],
    ids=["2-MiB-str", "64-KiB-bytes", "64-KiB-memoryview"],
)
def test_bodies_over_64_kib_are_not_read(body):
    """Bodies far larger than any API Gateway answer are not a mismatch answer: None."""
    result, _ = sign()
    assert parse_signature_mismatch(body) is None
    assert explain_signature_mismatch(body, result) is None


@pytest.mark.parametrize("body", ["[" * 60_000, '{"a":' * 10_000, b"[" * 60_000])
def test_deeply_nested_json_is_not_a_mismatch(body):
    """JSON nested past the recursion limit is read as plain text: None, not RecursionError."""
    result, _ = sign()
    assert explain_signature_mismatch(body, result) is None


def test_nested_json_holding_the_mismatch_text_is_read_as_text():
    """A body json cannot parse (too deep) is still searched for the mismatch sentences."""
    result, _ = sign()
    message = json.loads(aws_body(result.canonical_request))["message"]
    expected = parse_signature_mismatch("[" * 10_000 + message)
    assert expected is not None
    assert expected.canonical_request == result.canonical_request


def test_bytearray_and_memoryview_bodies_are_read_like_bytes():
    """Any bytes-like body is decoded and read like the same bytes."""
    result, _ = sign()
    body = aws_body(result.canonical_request).encode()
    for view in (bytearray(body), memoryview(body)):
        expected = parse_signature_mismatch(view)
        assert expected is not None
        assert expected.canonical_request == result.canonical_request


@pytest.mark.parametrize("body", [None, 403, {"message": MISMATCH}, [MISMATCH], 1.5])
def test_body_that_is_not_str_or_bytes_is_the_callers_error(body):
    """A body of another type raises InvalidConfigError, not TypeError or AttributeError."""
    result, _ = sign()
    with pytest.raises(InvalidConfigError, match="response body must be str or bytes"):
        explain_signature_mismatch(body, result)
    with pytest.raises(InvalidConfigError, match="response body must be str or bytes"):
        parse_signature_mismatch(body)


@pytest.mark.parametrize(
    "signed", [None, "GET\n/\n", object(), SignedRequest("GET", "https://h/", {})]
)
def test_signed_that_holds_no_signing_result_is_the_callers_error(signed):
    """Anything but a SigningResult, or a SignedRequest built by hand without one, is refused."""
    result, _ = sign()
    with pytest.raises(InvalidConfigError, match="signed must be the SignedRequest that Sig") as e:
        explain_signature_mismatch(aws_body(result.canonical_request), signed)
    built_by_hand = isinstance(signed, SignedRequest)
    assert str(e.value).endswith(
        "got a SignedRequest without signing (built by hand?)"
        if built_by_hand
        else f"got {type(signed).__name__}"
    )


def test_the_signed_request_explains_as_its_signing_result_does():
    """What SigV4Signer.sign returned is taken as it is: no need to reach for .signing."""
    signer = SigV4Signer(region="us-east-1", credentials=("AKIDEXAMPLE", "secret"))
    signed = signer.sign("GET", "https://abc.execute-api.us-east-1.amazonaws.com/prod/pets/1")
    assert signed.signing is not None
    theirs = signed.signing.canonical_request.replace("/prod/pets/1", "/prod/pets/2")
    text = explain_signature_mismatch(aws_body(theirs), signed)
    assert text is not None
    assert text == explain_signature_mismatch(aws_body(theirs), signed.signing)
    assert text.splitlines()[-1].startswith("likely cause: the path differs")


def test_log_signature_mismatch_never_raises_on_an_odd_body(caplog):
    """An adapter's response body of None is skipped by the DEBUG logger, not raised on."""
    result, _ = sign()
    with caplog.at_level(logging.DEBUG, logger="apigw_iam_auth"):
        log_signature_mismatch(403, None, result)
    assert caplog.records == []


@pytest.mark.parametrize("filler", ["\n", " \n", "\r\n"])
def test_redact_masks_a_token_before_many_blank_lines(filler):
    """A token line before 20k blank lines is masked and the blank lines kept (each line is
    scanned once, not all after it: bench/bench_linear.py measures the cost per size).
    """
    text = "X-Amz-Security-Token: secret\n" + filler * 20_000
    shown = redact(text)
    assert shown == "X-Amz-Security-Token: <redacted>\n" + filler * 20_000


@pytest.mark.parametrize(
    ("opening", "value"),
    [('"token":', "'ab'"), ("['x-amz-signature',", "'ab'"), ("Signature:", "ab" * 40)],
)
def test_redact_reads_a_long_run_of_blanks_after_a_key_once(opening, value):
    """A key, 64 KiB of blanks and no value: nothing masked, the text kept whole (the run is
    read one way only; bench/bench_linear.py measures the cost per size). A value after blanks
    and one line break is still masked."""
    text = opening + " " * (64 * 1024) + "x"
    assert redact(text) == text
    assert "ab" not in redact(f"{opening}  \n  {value}")


def test_no_redact_pattern_lets_a_run_of_blanks_split_two_ways():
    """The guard the test above cannot be (it checks output, not time, and no test is timed):
    a run of blanks read as "[^\\S\\n]*\\n?[^\\S\\n]*" splits n ways, each tried when the match
    fails, quadratic (4 s for 20,000 blanks); a line break opens its own group instead."""
    ambiguous = r"[^\S\n]*\n?[^\S\n]*"
    for pattern in diagnostics._SECRETS:
        assert ambiguous not in pattern.pattern


# --- RedactingFilter: other libraries' log lines ---------------------------------------------


@pytest.mark.parametrize("package", ["httpx", "requests"])
def test_redacting_filter_masks_presigned_urls_in_client_logs_and_tracebacks(package):
    """httpx logs each URL at INFO, urllib3 at DEBUG, and both quote it in their exceptions:
    with presign=True and temporary keys, a handler with the filter writes neither the
    signature nor the token."""
    token = "FQoGZXIvYXdzEJr//session+token=="
    keys = {"ASIAREDACTFILTER": KnownKey("filter-secret", token=token)}
    auth = ApiGwIamAuth(
        region="us-east-1",
        credentials=("ASIAREDACTFILTER", "not-the-secret", token),  # a 403, to raise on
        presign=True,
    )
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        with IamAuthServer(keys=keys) as server:
            url = f"{server.url}/prod/pets"
            try:
                if package == "httpx":
                    with httpx.Client(auth=auth, trust_env=False) as client:
                        client.get(url).raise_for_status()
                else:
                    with requests.Session() as session:
                        session.trust_env = False
                        session.get(url, auth=auth).raise_for_status()
            except (httpx.HTTPStatusError, requests.HTTPError):
                logging.getLogger("my_app").exception("the report service refused us")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = written.getvalue()
    assert "X-Amz-Signature=<redacted>" in text  # the client's own line, masked
    assert "the report service refused us" in text
    assert "Traceback" in text
    assert quote(token, safe="") not in text
    assert token not in text
    assert not re.search(r"X-Amz-Signature=[0-9a-f]{64}", text)


class _JsonishFormatter(logging.Formatter):
    """Formats the exception itself from exc_info, as JSON log formatters do."""

    def format(self, record: logging.LogRecord) -> str:
        trace = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        return f"{record.getMessage()} | {trace} | {record.stack_info}"


def test_redacting_filter_leaves_bad_formats_to_logging_and_masks_every_traceback(capsys):
    """A bad format still reaches logging's own error report (no exception from the call);
    stack_info and a formatter reading exc_info itself are masked too."""
    secret = "X-Amz-Signature=" + "ab" * 32
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(_JsonishFormatter())
    log = logging.getLogger("test_redacting_filter")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("value %d", "not a number")  # logging prints "--- Logging error ---"
        try:
            int(f"https://h/p?{secret}")
        except ValueError:
            log.exception("failed at %s", f"https://h/p?{secret}", stack_info=True)
    finally:
        log.removeHandler(handler)
    assert "--- Logging error ---" in capsys.readouterr().err
    text = written.getvalue()
    assert "failed at https://h/p?X-Amz-Signature=<redacted>" in text
    assert (
        "ValueError: invalid literal for int() with base 10: 'https://h/p?X-Amz-Signature=<redacted>'"
        in text
    )
    assert "Stack (most recent call last)" in text
    assert secret not in text
