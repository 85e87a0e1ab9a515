"""Adapters explain API Gateway's "signature does not match" 403 at DEBUG, redacted."""

import logging

import httpx
import requests
from aws_server import SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN

from apigw_iam_auth import ApiGwIamAuth
from apigw_iam_auth.server import IamAuthServer, KnownKey

REGION = "us-east-1"


class _TamperingTransport(httpx.HTTPTransport):
    """Changes a signed header after signing, as a misbehaving proxy would."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Content-Type"] = "text/plain"
        return super().handle_request(request)


def _post_through_tampering_proxy(aws_server) -> httpx.Response:
    with httpx.Client(auth=_auth(), transport=_TamperingTransport(), trust_env=False) as client:
        return client.post(
            aws_server.url("/prod/pets"),
            content=b"{}",
            headers={"Content-Type": "application/json"},
        )


def _auth() -> ApiGwIamAuth:
    return ApiGwIamAuth(
        region=REGION, credentials=(SESSION_ACCESS_KEY, SESSION_SECRET_KEY, SESSION_TOKEN)
    )


def _assert_explained_and_redacted(caplog, response, cause: str) -> None:
    assert response.status_code == 403
    text = caplog.text
    assert cause in text
    assert SESSION_TOKEN not in text
    signature = response.request.headers["Authorization"].rsplit("Signature=", 1)[1]
    assert signature not in text


def test_requests_logs_which_line_differs(aws_server, caplog):
    """A header changed after signing (requests) is named in a DEBUG diff without secrets."""
    caplog.set_level(logging.DEBUG, logger="apigw_iam_auth")

    with requests.Session() as session:
        session.trust_env = False
        prepared = session.prepare_request(
            requests.Request(
                "POST",
                aws_server.url("/prod/pets"),
                data=b"{}",
                headers={"Content-Type": "application/json"},
                auth=_auth(),
            )
        )
        prepared.headers["Content-Type"] = "text/plain"  # changed after signing
        response = session.send(prepared, timeout=10)
    _assert_explained_and_redacted(caplog, response, "content-type")


def test_httpx_logs_which_line_differs(aws_server, caplog):
    """A header changed after signing (httpx) is named in a DEBUG diff without secrets."""
    caplog.set_level(logging.DEBUG, logger="apigw_iam_auth")
    response = _post_through_tampering_proxy(aws_server)
    _assert_explained_and_redacted(caplog, response, "content-type")


def test_nothing_is_logged_when_debug_is_off(aws_server, caplog):
    """Without DEBUG the explanation is not even computed, let alone logged."""
    caplog.set_level(logging.INFO, logger="apigw_iam_auth")
    response = _post_through_tampering_proxy(aws_server)
    assert response.status_code == 403
    assert not [r for r in caplog.records if r.name.startswith("apigw_iam_auth")]


def test_requests_body_changed_after_signing_is_named_at_warning(aws_server, caplog):
    """A body replaced on the prepared request after auth ran is refused and named, at WARNING."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth")
    with requests.Session() as session:
        session.trust_env = False
        prepared = session.prepare_request(
            requests.Request("POST", aws_server.url("/prod/pets"), data=b"signed", auth=_auth())
        )
        prepared.body = b"swapped"  # after signing: the signature no longer covers it
        response = session.send(prepared, timeout=10)
    assert response.status_code == 403
    assert "body was changed after it was signed" in caplog.text


def test_requests_unchanged_body_refused_for_another_reason_is_not_blamed(aws_server, caplog):
    """A refusal with the signed body intact does not produce the body warning."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth")
    wrong_secret = ApiGwIamAuth(
        region=REGION, credentials=(SESSION_ACCESS_KEY, "not-the-secret", SESSION_TOKEN)
    )
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(aws_server.url("/prod/pets"), data=b"x", auth=wrong_secret)
    assert response.status_code == 403
    assert "body was changed" not in caplog.text


def test_requests_unsigned_payload_refused_is_not_blamed_on_the_body(caplog):
    """An UNSIGNED-PAYLOAD refusal (execute-api never takes it) signed no body to have changed."""
    caplog.set_level(logging.WARNING, logger="apigw_iam_auth")
    auth = ApiGwIamAuth(region=REGION, credentials=("AKIDEXAMPLE", "secret"), payload="unsigned")
    with IamAuthServer(keys={"AKIDEXAMPLE": KnownKey("secret")}) as server, requests.Session() as s:
        s.trust_env = False
        response = s.post(f"{server.url}/prod/pets", data=b"abc", auth=auth, timeout=10)
        [record] = server.requests
    assert response.status_code == 403
    assert "UNSIGNED-PAYLOAD" in record.likely_cause
    assert "body was changed" not in caplog.text
