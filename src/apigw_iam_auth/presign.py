"""``presign_url``: turn a URL into a shareable, time-limited signed link."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from apigw_iam_auth.credentials import BotocoreProvider, shared_provider
from apigw_iam_auth.signer import Body, CredentialsSource, HeadersLike, SigV4Signer

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["presign_url"]

# Signers presign_url keeps for the default chain, per (region, service, profile): a signer is
# stateless but for its per-origin cache (host, URL prefix, scope), which is worth keeping too.
# The entry holds the shared provider it was built with, so reset_shared_providers() is seen.
_SIGNERS_KEPT = 64  # distinct (region, service, profile) settings; the oldest goes first
_signers: dict[tuple[str | None, str, str | None], tuple[BotocoreProvider, SigV4Signer]] = {}
_signers_lock = threading.Lock()


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

    With ``credentials=None`` (botocore's default chain) every call shares one provider per
    ``profile`` for the whole process, like boto3's default session: the chain is resolved on
    the first call only, so a web handler making a link per request pays it once, and
    temporary credentials refresh as they near expiry. ``AWS_PROFILE`` or ``AWS_*`` variables
    changed after that first call are not seen; call
    :func:`~apigw_iam_auth.credentials.reset_shared_providers` (in tests, between cases) to
    resolve again. Other ``credentials`` are resolved afresh on each call; to make many links
    with them, keep one :class:`SigV4Signer` and call its :meth:`~SigV4Signer.presign`.

    >>> link = presign_url(
    ...     "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/report?id=7",
    ...     credentials=("AKIDEXAMPLE", "secret"),
    ...     expires=3600,
    ... )
    >>> "X-Amz-Expires=3600" in link and "X-Amz-Signature=" in link
    True
    """
    if credentials is None and _plain_settings(region, service, profile):
        signer = _shared_signer(region, service, profile)
    else:  # anything unusual is checked, and refused, by SigV4Signer itself
        signer = SigV4Signer(region, service=service, credentials=credentials, profile=profile)
    return signer.presign(
        method, url, headers=headers, expires=expires, timestamp=timestamp, body=body
    )


def _plain_settings(region: object, service: object, profile: object) -> bool:
    """Settings that can key the cache: exact str (or None) values, hashable and comparable."""
    return (
        (region is None or type(region) is str)
        and type(service) is str
        and (profile is None or type(profile) is str)
    )


def _shared_signer(region: str | None, service: str, profile: str | None) -> SigV4Signer:
    """The kept signer for these settings, over the process's shared default-chain provider."""
    provider = shared_provider(profile)
    key = (region, service, profile)
    kept = _signers.get(key)
    if kept is not None and kept[0] is provider:
        return kept[1]
    signer = SigV4Signer(region, service=service, credentials=provider, profile=profile)
    with _signers_lock:
        if key not in _signers and len(_signers) >= _SIGNERS_KEPT:
            del _signers[next(iter(_signers))]
        _signers[key] = (provider, signer)
    return signer
