"""``presign_url``: turn a URL into a shareable, time-limited signed link."""

from __future__ import annotations

from typing import TYPE_CHECKING

from apigw_iam_auth.signer import Body, CredentialsSource, HeadersLike, SigV4Signer

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["presign_url"]


def presign_url(
    url: str,
    *,
    method: str = "GET",
    expires: int = 900,
    region: str | None = None,
    service: str = "execute-api",
    credentials: CredentialsSource = None,
    headers: HeadersLike = None,
    profile: str | None = None,
    body: Body = None,
    timestamp: datetime | None = None,
) -> str:
    """Return ``url`` presigned for ``method``, valid ``expires`` seconds (1 to 604800).

    Anyone holding the link can make that call until it expires: treat it as a credential.
    With temporary credentials the link dies with the session, so ``expires`` is capped to the
    credentials' remaining lifetime. ``headers`` are signed and must be sent by the link's user;
    ``body`` is hashed into the signature (a presigned POST only accepts exactly that body).
    Each call resolves ``credentials`` afresh; to make many links, keep one
    :class:`SigV4Signer` and call its :meth:`~SigV4Signer.presign`.

    >>> link = presign_url(
    ...     "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/report?id=7",
    ...     credentials=("AKIDEXAMPLE", "secret"),
    ...     expires=3600,
    ... )
    >>> "X-Amz-Expires=3600" in link and "X-Amz-Signature=" in link
    True
    """
    signer = SigV4Signer(region, service=service, credentials=credentials, profile=profile)
    return signer.presign(
        method, url, headers=headers, expires=expires, timestamp=timestamp, body=body
    )
