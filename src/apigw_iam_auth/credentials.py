"""Credential providers: where a signature's key, secret and token come from.

botocore owns the real credential chain (env, profiles, SSO, assume-role, process, container,
IMDS, refresh); this module only adapts and composes providers, and hands the signer one frozen
snapshot per signature.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

from apigw_iam_auth._models import Credentials
from apigw_iam_auth.errors import CredentialsRefreshError, InvalidConfigError, NoCredentialsError

__all__ = [
    "BotocoreProvider",
    "CredentialsProvider",
    "StaticProvider",
    "resolve_provider",
]


class CredentialsProvider(ABC):
    """Something that yields one consistent :class:`Credentials` snapshot per call."""

    @abstractmethod
    def get(self) -> Credentials:
        """Return current credentials; may block on I/O when a refresh is due."""

    async def aget(self) -> Credentials:
        """Return current credentials without blocking the running event loop."""
        return await asyncio.to_thread(self.get)


class StaticProvider(CredentialsProvider):
    """Fixed credentials, for tests, scripts and keys handed over by a secrets manager."""

    def __init__(self, credentials: Credentials) -> None:
        """Wrap an already validated snapshot."""
        self._credentials = credentials

    def __repr__(self) -> str:
        """Name the key id only."""
        return f"StaticProvider(access_key={self._credentials.access_key!r})"

    def get(self) -> Credentials:
        """Return the fixed snapshot."""
        return self._credentials

    async def aget(self) -> Credentials:
        """Return the fixed snapshot; no I/O, so no thread."""
        return self._credentials


class BotocoreProvider(CredentialsProvider):
    """botocore's default chain for a profile, resolved lazily on first use."""

    def __init__(self, profile: str | None = None) -> None:
        """Remember the profile; no I/O happens until credentials are needed."""
        self._profile = profile
        self._botocore_credentials: Any = None

    def __repr__(self) -> str:
        """Name the profile only."""
        return f"BotocoreProvider(profile={self._profile!r})"

    def get(self) -> Credentials:
        """Resolve (once) through botocore and snapshot with ``get_frozen_credentials``."""
        import botocore.exceptions  # noqa: PLC0415 - keep import cost off the package import
        import botocore.session  # noqa: PLC0415

        try:
            if self._botocore_credentials is None:
                session = botocore.session.Session(profile=self._profile)
                self._botocore_credentials = session.get_credentials()
            if self._botocore_credentials is None:
                raise NoCredentialsError(
                    "botocore's credential chain found no credentials; set AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY, run `aws configure` or `aws sso login`, or pass "
                    "credentials=(key, secret)"
                )
            frozen = self._botocore_credentials.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            raise CredentialsRefreshError(f"botocore could not load credentials: {exc}") from exc
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


def resolve_provider(credentials: object, profile: str | None = None) -> CredentialsProvider:
    """Turn what a user passed as ``credentials=`` into a provider."""
    if credentials is None:
        return BotocoreProvider(profile)
    if isinstance(credentials, CredentialsProvider):
        return credentials
    if isinstance(credentials, Credentials):
        return StaticProvider(credentials)
    if isinstance(credentials, tuple) and len(credentials) in {2, 3}:
        return StaticProvider(Credentials(*credentials))
    raise InvalidConfigError(
        "credentials must be (key, secret), (key, secret, token), a Credentials object, "
        f"a CredentialsProvider or None, got {type(credentials).__name__}"
    )
