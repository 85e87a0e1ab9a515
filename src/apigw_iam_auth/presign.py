"""``presign_url``: turn a URL into a shareable, time-limited signed link.

One cache, for the default credentials chain (other credentials build a signer per call):

============  ============================  ==========  =====================================
cache         key                           bound       why it pays
============  ============================  ==========  =====================================
``_signers``  region, service, profile,     64, oldest  a web handler makes a link per
              region set (each a plain str  dropped     request with the same settings: its
              or None; other values are     first       signer and that signer's per-origin
              not kept)                                 cache (host, prefix, scope) are made
                                                        once; the entry keeps the shared
                                                        provider it was made with, so
                                                        ``reset_shared_providers()`` is seen
============  ============================  ==========  =====================================
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, cast

from apigw_iam_auth.credentials import BotocoreProvider, shared_provider
from apigw_iam_auth.signer import Body, CredentialsSource, HeadersLike, SigV4Signer

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

__all__ = ["presign_url"]

# The cache of the module docstring's table.
_SIGNERS_KEPT = 64  # distinct settings; the oldest goes first
_Settings = tuple[str | None, str, str | None, str | tuple[str, ...] | None]
_signers: dict[_Settings, tuple[BotocoreProvider, SigV4Signer]] = {}
_signers_lock = threading.Lock()


def _reset_after_fork() -> None:
    """In a forked child: a new lock, which no parent thread (absent here) can be holding."""
    global _signers_lock  # noqa: PLW0603 - the parent's lock may have been held at fork time
    _signers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_reset_after_fork)


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
    region_set: str | Iterable[str] | None = None,
) -> str:
    """Return ``url`` presigned for ``method``, valid ``expires`` seconds (1 to 604800).

    Anyone holding the link can make that call until it expires: treat it as a credential.
    With temporary credentials the link dies with the session, so ``expires`` is capped to the
    credentials' remaining lifetime. ``headers`` are signed and must be sent by the link's user;
    ``body`` is hashed into the signature (a presigned POST only accepts exactly that body).
    ``region_set`` (``["us-east-1", "eu-west-1"]``, ``"us-east-1,eu-west-1"`` or ``"*"``) makes
    a SigV4a link, valid in each of those regions (a multi-region API). With aiohttp, open the
    link as ``yarl.URL(link, encoded=True)``: given text, it re-quotes the path.

    With ``credentials=None`` (botocore's default chain) every call shares one provider per
    ``profile`` for the whole process, like boto3's default session: the chain is resolved on
    the first call only, so a web handler making a link per request pays it once, and
    temporary credentials refresh as they near expiry. ``AWS_PROFILE`` or ``AWS_*`` variables
    changed after that first call are not seen (but for a region set after a call refused for
    want of one); call
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
    settings = _plain_settings(region, service, profile, region_set)
    if credentials is None and settings is not None:
        signer = _shared_signer(settings)
    else:  # anything unusual is checked, and refused, by SigV4Signer itself
        signer = SigV4Signer(
            region,
            service=service,
            # The default chain is shared whatever the other settings are (a StrEnum region,
            # a set of regions): resolving it per link is what the sharing is there to avoid.
            credentials=shared_provider(profile) if credentials is None else credentials,
            profile=profile,
            region_set=region_set,
        )
    # A kept signer refused for want of a region has forgotten what it read (SigV4Signer's
    # _unscoped): the caller may set AWS_REGION, as the error says, and call again.
    return signer.presign(
        method, url, headers=headers, expires=expires, timestamp=timestamp, body=body
    )


def _plain_settings(
    region: object, service: object, profile: object, region_set: object
) -> _Settings | None:
    """Settings that can key the cache: exact str (or None) values, hashable and comparable.

    A region set given as a list or tuple of str keys it as a tuple; None: not cacheable.
    """
    names: str | tuple[str, ...] | None
    if region_set is None or type(region_set) is str:  # the common case first
        names = region_set
    elif type(region_set) in (list, tuple):
        names = tuple(cast("Iterable[str]", region_set))
        if not all(type(name) is str for name in names):
            return None
    else:
        return None
    if (
        (region is None or type(region) is str)
        and type(service) is str
        and (profile is None or type(profile) is str)
    ):
        return region, service, profile, names
    return None


def _shared_signer(key: _Settings) -> SigV4Signer:
    """The kept signer for these settings, over the process's shared default-chain provider."""
    region, service, profile, region_set = key
    provider = shared_provider(profile)
    kept = _signers.get(key)
    if kept is not None and kept[0] is provider:
        return kept[1]
    signer = SigV4Signer(
        region, service=service, credentials=provider, profile=profile, region_set=region_set
    )
    with _signers_lock:
        if key not in _signers and len(_signers) >= _SIGNERS_KEPT:
            del _signers[next(iter(_signers))]
        _signers[key] = (provider, signer)
    return signer
