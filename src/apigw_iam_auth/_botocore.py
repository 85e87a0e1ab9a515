"""What the region rules need from botocore: its partitions' region names, and a profile's region.

This is the only module of the region rules that imports botocore, and it does so inside the
functions, so importing the library costs nothing until a region has to be checked or looked up.

* :func:`region_data` reads botocore's own ``endpoints`` data (``botocore/data/endpoints.json``
  through ``botocore.loaders``, honouring ``AWS_DATA_PATH`` as botocore sessions do): each
  partition's id, ``regionRegex`` and the region names it lists. It is loaded once per process (a
  memo of one value, kept off the per-request path: it is read when a signer is built and when a
  host's region is first resolved).
* :func:`profile_region` asks a fresh ``botocore.session.Session(profile=...)`` for
  ``get_config_variable("region")``: ``AWS_DEFAULT_REGION``, then the profile's ``region`` in the
  config file (``AWS_CONFIG_FILE``, default ``~/.aws/config``), exactly as botocore resolves it.
  Nothing is kept, so a changed environment or file is seen on the next call.

A profile that does not exist, or a config or credentials file that cannot be parsed, raises
:class:`~apigw_iam_auth.errors.InvalidConfigError` naming the profile or the file rather than
returning None: the user asked for that profile (``profile=`` or ``AWS_PROFILE``), and quietly
ignoring it would end in a "no region" error that points at the wrong fix. The AWS CLI refuses
such a profile the same way.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from apigw_iam_auth.errors import InvalidConfigError

if TYPE_CHECKING:
    from botocore.exceptions import ProfileNotFound
    from botocore.session import Session

__all__ = ["RegionData", "profile_region", "region_data"]


class RegionData(NamedTuple):
    """Region names of every AWS partition, as botocore's endpoints data states them."""

    partitions: tuple[tuple[str, re.Pattern[str] | None, frozenset[str]], ...]
    """Each partition's id (``aws``, ``aws-cn``...), ``regionRegex`` (ASCII, to be used with
    ``fullmatch``; None where it has none) and listed regions."""
    names: tuple[str, ...]
    """Every region a partition lists, sorted (``us-east-1``, ``cn-north-1``...): the
    candidates a misspelt region's closest match is picked from."""


@functools.cache  # one value per process: botocore's data does not change under us
def region_data() -> RegionData:
    r"""Load botocore's partitions (``regionRegex`` and listed regions), once per process.

    The patterns are compiled ASCII-only: in Python a word character (``\w``) would otherwise
    be any Unicode letter, and a region goes verbatim into the credential scope. Callers use
    ``fullmatch`` because ``$`` (botocore's anchor) also matches before a trailing newline.
    """
    import botocore.loaders  # noqa: PLC0415 - keep botocore's import cost off ours

    loader = botocore.loaders.create_loader(os.environ.get("AWS_DATA_PATH"))
    endpoints: dict[str, Any] = loader.load_data("endpoints")
    partitions: list[dict[str, Any]] = endpoints["partitions"]
    described = tuple(
        (
            str(partition.get("partition", "aws")),
            re.compile(partition["regionRegex"], re.ASCII) if "regionRegex" in partition else None,
            frozenset(partition.get("regions", {})),
        )
        for partition in partitions
    )
    names = sorted({name for _, _, listed in described for name in listed})
    return RegionData(described, tuple(names))


def ca_bundle(profile: str | None) -> str | None:
    """The CA bundle botocore trusts for ``profile``: ``AWS_CA_BUNDLE``, else its ``ca_bundle``.

    As the AWS CLI reads it, for a corporate proxy's or a private CA. None where neither is
    set, or where the profile cannot be read (signing then says why, naming the profile).
    """
    import botocore.exceptions  # noqa: PLC0415 - keep botocore's import cost off ours
    import botocore.session  # noqa: PLC0415

    try:
        found = botocore.session.Session(profile=profile).get_config_variable("ca_bundle")
    except botocore.exceptions.BotoCoreError:
        return None
    return str(Path(found).expanduser()) if found else None


def profile_region(profile: str | None, session: Any = None) -> tuple[str, str] | None:  # noqa: ANN401
    """The region botocore resolves for ``profile``, and where it came from; None if none.

    ``profile`` None means the profile botocore picks itself (``AWS_PROFILE``, else
    ``default``). A ``session`` (botocore's or boto3's, given as credentials) is asked instead:
    the region its own clients use (set on it, ``AWS_DEFAULT_REGION``, its profile's). The
    second item names the source for messages: ``AWS_DEFAULT_REGION``, the session, or the
    profile and its config file. An empty value counts as no region.

    Raises :class:`InvalidConfigError` when the profile does not exist or a config or
    credentials file cannot be parsed (botocore reads both to know which profiles exist).
    """
    import botocore.exceptions  # noqa: PLC0415 - keep botocore's import cost off ours
    import botocore.session  # noqa: PLC0415

    given = session is not None
    if not given:
        session = botocore.session.Session(profile=profile)
    try:
        # boto3's Session has no get_config_variable; its region_name reads its botocore one.
        region = (
            session.get_config_variable("region")
            if hasattr(session, "get_config_variable")
            else session.region_name
        )
    except botocore.exceptions.ProfileNotFound as exc:
        if given:  # its profile is the session's: neither profile= nor the environment named it
            raise InvalidConfigError(
                f"cannot read the region of the {type(session).__name__} given as credentials: "
                f"its profile {exc.kwargs['profile']!r} does not exist. Fix the session, or "
                "pass region="
            ) from exc
        raise InvalidConfigError(
            f"cannot read the region of {missing_profile(session, profile_origin(profile), exc)}."
            " Fix the profile name, or pass region= (or set AWS_REGION)"
        ) from exc
    except botocore.exceptions.ConfigParseError as exc:
        # `from None`: botocore's message (and so its traceback) quotes the offending line of the
        # file, and in a credentials file that line may hold a secret key.
        raise InvalidConfigError(
            f"cannot read the AWS region: {exc.kwargs['path']} is not a valid INI file"
            " (botocore reads the config and the credentials file to find the profile)."
            " Fix the file, or pass region= (or set AWS_REGION)"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise InvalidConfigError(
            f"cannot read the AWS region of profile {profile or 'default'!r}: botocore raised "
            f"{type(exc).__name__}. Pass region= (or set AWS_REGION)"
        ) from exc
    if not region:
        return None
    if os.environ.get("AWS_DEFAULT_REGION") == region:
        return region, "AWS_DEFAULT_REGION"
    if given:
        return region, f"the region of the {type(session).__name__} given as credentials"
    name = session.profile or "default"
    return region, f"the region of profile {name!r} in {_path(session, 'config_file')}"


def missing_profile(session: Session, origin: str, exc: ProfileNotFound) -> str:
    """Name the profile botocore did not find, where it was asked for, and the files read."""
    return (
        f"AWS profile {exc.kwargs['profile']!r} ({origin}): no such profile"
        f" in {_path(session, 'config_file')} or {_path(session, 'credentials_file')}"
    )


def profile_origin(profile: str | None) -> str:
    """Where the profile botocore reads was named: ``profile=`` or the environment."""
    if profile is not None:
        return "profile="
    # botocore reads AWS_DEFAULT_PROFILE before AWS_PROFILE (configprovider.py, "profile").
    if os.environ.get("AWS_DEFAULT_PROFILE"):
        return "from AWS_DEFAULT_PROFILE"
    return "from AWS_PROFILE"


def _path(session: Session, variable: str) -> str:
    return str(Path(str(session.get_config_variable(variable))).expanduser())
