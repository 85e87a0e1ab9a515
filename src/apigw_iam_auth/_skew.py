"""Reading the server's clock out of API Gateway's "signature expired" refusals.

API Gateway accepts a header-signed request only within 5 minutes of its own clock and says so
in its 403: ``Signature expired: <X-Amz-Date> is now earlier than <t> (<now> - 5 min.)`` or
``Signature not yet current: <X-Amz-Date> is still later than <t> (<now> + 5 min.)``.
From that, and the response's ``Date``, a client whose clock is wrong can correct itself and
sign again.
"""

from __future__ import annotations

import logging
import re
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from apigw_iam_auth._sigv4 import SIGNATURE_WINDOW, parse_amz_date
from apigw_iam_auth.diagnostics import FORBIDDEN, MAX_REFUSAL_BYTES, log_signature_mismatch

if TYPE_CHECKING:
    from datetime import datetime

    from apigw_iam_auth._models import SigningResult
    from apigw_iam_auth.signer import SigV4Signer

__all__ = ["corrected_after_refusal", "server_time_from_refusal"]

_log = logging.getLogger("apigw_iam_auth")

_SKEW_REFUSAL = re.compile(
    r"Signature (?:expired: \d{8}T\d{6}Z is now earlier than"
    r"|not yet current: \d{8}T\d{6}Z is still later than)"
    r" \d{8}T\d{6}Z \((?P<now>\d{8}T\d{6}Z) [-+] \d+ min\.\)"
)


def server_time_from_refusal(
    body: str | bytes | None,
    date_header: str | None,
    signing: SigningResult | None = None,
) -> datetime | None:
    """The server's time if this 403 refused a signature for clock skew, else None.

    ``body`` is None where it was left unread (no small ``Content-Length``: a stream, or larger
    than API Gateway's refusals): it says nothing. The ``Date`` header is preferred (the
    issue's contract, and set by every API Gateway response); the time quoted in the message is
    the fallback when ``Date`` is missing or bad. The refusal of a HEAD (``signing``'s method)
    has no body to quote: it counts as one for the clock when its ``Date`` is further than API
    Gateway's 5 minutes from the time signed. Any other refusal without the message is not
    taken for the clock (an HTTP API's ``Forbidden`` says nothing of it either): a backend's
    own 403 answered more than 5 minutes after signing (a long Lambda function URL call) must
    neither move the clock nor send a POST twice.
    """
    if signing is not None and signing.canonical_request.startswith("HEAD\n"):
        server_time = _parsed_date(date_header)
        if server_time is None:
            return None
        signed_at = parse_amz_date(signing.string_to_sign.split("\n", 2)[1])  # its X-Amz-Date
        return server_time if abs(server_time - signed_at) > SIGNATURE_WINDOW else None
    if not body or len(body) > MAX_REFUSAL_BYTES:  # API Gateway's refusals are tiny
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else body
    found = _SKEW_REFUSAL.search(text)
    if found is None:
        return None
    return _parsed_date(date_header) or parse_amz_date(found["now"])


def _parsed_date(date_header: str | None) -> datetime | None:
    """An HTTP ``Date`` as an aware datetime; None when missing or unreadable."""
    if not date_header:
        return None
    try:
        parsed = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.utcoffset() is not None else None


def corrected_after_refusal(
    signer: SigV4Signer,
    body: str | bytes | None,
    date_header: str | None,
    signing: SigningResult,
    *,
    correct: bool,
    resend: bool,
) -> bool:
    """After a 403 to a request we signed: True when it is to be signed and sent once more.

    A clock-skew refusal corrects the signer's clock when ``correct`` (the auth's
    ``correct_clock_skew``, and no retry made for the clock yet), also when the request itself
    cannot be sent again (``resend`` False: a body streamed from a file or generator): the
    refusal is then returned, and the next request is signed at the server's time. A refusal
    that is not about the clock is explained at DEBUG instead; ``body`` None: left unread.
    """
    server_time = server_time_from_refusal(body, date_header, signing)
    if server_time is None:
        if body is not None:  # a refusal left unread is not explained either
            log_signature_mismatch(FORBIDDEN, body, signing)
        return False
    if not correct:
        return False
    signer.correct_clock(server_time)
    if not resend:
        _log.info("the refused request cannot be sent again; the next one uses the corrected clock")
    return resend
