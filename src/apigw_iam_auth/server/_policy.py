"""IAM policy evaluation for ``execute-api:Invoke``, as the local server needs it.

A small, strict subset of IAM: ``Effect``, ``Action`` / ``NotAction``, ``Resource`` /
``NotResource`` and ``Principal`` (``"*"`` or ``{"AWS": ...}``), with ``*`` and ``?`` wildcards.
An explicit Deny wins, then any Allow; anything else is denied (IAM's evaluation logic).
Elements this module cannot evaluate (``Condition``, ``NotPrincipal``, other principal types,
policy variables such as ``${aws:PrincipalAccount}``) are refused when the policy is parsed:
silently ignoring them would allow or deny more than AWS.
Resources in API Gateway's ``execute-api:/{stage}/{METHOD}/{path}`` shorthand are expanded to the
ARN of the API the policy is attached to, as API Gateway does when it saves a resource policy.

One cache:

============  ==========================  ========  ========================================
cache         key                         bound     why it pays
============  ==========================  ========  ========================================
``_pieces``   an Action or Resource       256, LRU  a policy's patterns are a few per
              pattern, and whether case             statement, matched on every request:
              is ignored                            each is split and compiled once
============  ==========================  ========  ========================================
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from apigw_iam_auth._region import partition_of
from apigw_iam_auth._uri import normalize_path, wire_path
from apigw_iam_auth.errors import FailureKind, InvalidConfigError, VerificationError

__all__ = ["INVOKE", "Decision", "Policy", "api_arn", "denial", "invoke_arn", "parse_policy"]

INVOKE = "execute-api:Invoke"
# API Gateway saves a resource policy's "execute-api:/prod/GET/pets" as
# "arn:aws:execute-api:{region}:{account_id}:{api_id}/prod/GET/pets" (API Gateway developer guide,
# "Create and attach an API Gateway resource policy to an API").
_SHORTHAND = "execute-api:/"
_EFFECTS = ("Allow", "Deny")
_KNOWN = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal"})
_DOCUMENT_KEYS = frozenset({"Version", "Id", "Statement"})
_VERSIONS = ("2012-10-17", "2008-10-17")


class Decision(enum.Enum):
    """The outcome of IAM's evaluation logic for one request."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"


# One piece of an IAM wildcard between two ``*``s: a regex matching exactly ``length`` chars.
_Piece = tuple[re.Pattern[str], int]


@lru_cache(maxsize=256)  # the policy's own patterns: a few per statement
def _pieces(text: str, *, ignore_case: bool) -> tuple[_Piece, ...]:
    """An IAM wildcard split at its ``*``s; in each piece ``?`` stands for one character."""
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return tuple(
        (
            re.compile("".join("." if ch == "?" else re.escape(ch) for ch in piece), flags),
            len(piece),
        )
        for piece in text.split("*")
    )


def _matches(patterns: tuple[str, ...], value: str, *, ignore_case: bool) -> bool:
    return any(_wildcard_match(_pieces(p, ignore_case=ignore_case), value) for p in patterns)


def _wildcard_match(pieces: tuple[_Piece, ...], value: str) -> bool:
    """IAM wildcards: ``*`` any run of characters (``/`` and ``:`` included), ``?`` one.

    The pieces between stars are found in order, each leftmost, which is exact because each
    has a fixed length; one regex of ``.*`` runs would backtrack polynomially on a long path
    a client chose (seconds for ``*/*/*/x`` against a 2 KB path).
    """
    (first, first_length), *rest = pieces
    if not rest:
        return first.fullmatch(value) is not None
    *middle, (last, last_length) = rest
    end = len(value) - last_length
    if end < first_length or not (first.match(value) and last.fullmatch(value, end)):
        return False
    position = first_length
    for piece, _ in middle:
        found = piece.search(value, position, end)
        if found is None:
            return False
        position = found.end()
    return True


@dataclass(frozen=True, slots=True)
class _Statement:
    allow: bool
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    principals: tuple[str, ...] | None  # None: no Principal element (an identity policy)

    def applies(self, action: str, resource: str, principal_arn: str, account_id: str) -> bool:
        # Action names are case-insensitive in IAM; resource ARNs are not.
        if _matches(self.actions, action, ignore_case=True) is self.not_action:
            return False
        if _matches(self.resources, resource, ignore_case=False) is self.not_resource:
            return False
        if self.principals is None:
            return True
        partition = principal_arn.split(":")[1]  # the caller's: arn:aws-cn:iam::...
        accepted = {"*", principal_arn, account_id, f"arn:{partition}:iam::{account_id}:root"}
        return any(p in accepted for p in self.principals)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated policy document."""

    statements: tuple[_Statement, ...]

    def decide(
        self, *, resource: str, principal_arn: str, account_id: str, action: str = INVOKE
    ) -> Decision:
        """Explicit Deny wins over Allow; with neither the request is implicitly denied."""
        applicable = [
            s for s in self.statements if s.applies(action, resource, principal_arn, account_id)
        ]
        if any(not s.allow for s in applicable):
            return Decision.EXPLICIT_DENY
        return Decision.ALLOW if applicable else Decision.IMPLICIT_DENY


def _strings(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(item, str) for item in value):
        return tuple(str(item) for item in value)
    raise InvalidConfigError(f"{where} must be a string or a non-empty list of strings")


def _either(statement: Mapping[str, object], name: str, where: str) -> tuple[tuple[str, ...], bool]:
    has, has_not = name in statement, f"Not{name}" in statement
    if has == has_not:
        raise InvalidConfigError(f"{where} needs exactly one of {name} or Not{name}")
    key = name if has else f"Not{name}"
    values = _strings(statement[key], f"{where} {key}")
    variable = next((match for value in values if (match := _VARIABLE.search(value))), None)
    if variable is not None:
        raise InvalidConfigError(
            f"{where} {key} uses the policy variable {variable[0]}, which the local server "
            "does not evaluate (read as text, it would match nothing); write its value instead "
            "for local testing"
        )
    return values, has_not


# An IAM policy variable (${aws:username}, ${*}...): IAM substitutes it per request.
_VARIABLE = re.compile(r"\$\{[^}]*\}?")


def _principals(statement: Mapping[str, object], where: str) -> tuple[str, ...] | None:
    if "Principal" not in statement:
        return None
    value = statement["Principal"]
    if value == "*":
        return ("*",)
    if isinstance(value, Mapping) and set(value) == {"AWS"}:
        return _strings(value["AWS"], f"{where} Principal.AWS")
    raise InvalidConfigError(
        f'{where} Principal must be "*" or {{"AWS": ...}} (ARNs or account ids); '
        "other principal types are not evaluated by the local server"
    )


def _expanded(resource: str, where: str, api: str | None) -> str:
    """The shorthand read literally would match no Invoke ARN, so it needs the API it stands for."""
    if not resource.startswith(_SHORTHAND):
        return resource
    if api is None:
        raise InvalidConfigError(
            f"{where} {resource!r} is API Gateway's shorthand for the API the policy is attached "
            "to: pass api=api_arn(region, account_id, api_id) to parse_policy (IamAuthServer "
            "does), or write the full arn:aws:execute-api:{region}:{account_id}:{api_id}/... ARN"
        )
    return api + resource[len(_SHORTHAND) - 1 :]


def _resources(
    statement: Mapping[str, object], where: str, api: str | None
) -> tuple[tuple[str, ...], bool]:
    resources, not_resource = _either(statement, "Resource", where)
    label = f"{where} {'NotResource' if not_resource else 'Resource'}"
    return tuple(_expanded(resource, label, api) for resource in resources), not_resource


def _check_text(element: Mapping[str, object], name: str, where: str) -> None:
    """An optional label (a statement's Sid, the policy's Id): a string where present."""
    value = element.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidConfigError(f"{where} {name} must be a string, got {type(value).__name__}")


def _statement(raw: object, where: str, api: str | None) -> _Statement:
    if not isinstance(raw, Mapping):
        raise InvalidConfigError(f"{where} must be a JSON object")
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise InvalidConfigError(
            f"{where} uses {', '.join(unknown)}, which the local server does not evaluate; "
            "remove it for local testing (only Effect, Action/NotAction, Resource/NotResource "
            "and Principal are supported)"
        )
    _check_text(raw, "Sid", where)
    effect = raw.get("Effect")
    if effect not in _EFFECTS:
        raise InvalidConfigError(f"{where} Effect must be 'Allow' or 'Deny', got {effect!r}")
    actions, not_action = _either(raw, "Action", where)
    resources, not_resource = _resources(raw, where, api)
    return _Statement(
        allow=effect == "Allow",
        actions=actions,
        not_action=not_action,
        resources=resources,
        not_resource=not_resource,
        principals=_principals(raw, where),
    )


def parse_policy(document: object, *, api: str | None = None) -> Policy:
    """Validate a policy document (a decoded JSON object) now, not at the first request.

    ``api`` is the ARN of the API the policy is attached to (:func:`api_arn`), which
    ``execute-api:/...`` resources stand for. Without it such resources are refused: read
    literally they would match no request, so neither their Allow nor their Deny would apply.
    """
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise InvalidConfigError('policy must be a JSON object with a "Statement" element')
    unknown = sorted(map(str, set(document) - _DOCUMENT_KEYS))
    if unknown:  # a misspelt element, which IAM refuses too (MalformedPolicyDocument)
        raise InvalidConfigError(
            f"policy uses {', '.join(unknown)}, which is not a policy element (Version, Id and "
            "Statement are)"
        )
    if document.get("Version", _VERSIONS[0]) not in _VERSIONS:
        raise InvalidConfigError(
            f"policy Version must be {' or '.join(map(repr, _VERSIONS))}, as IAM accepts, got "
            f"{document['Version']!r}"
        )
    _check_text(document, "Id", "policy")
    raw = document["Statement"]
    items = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(items, list) or not items:
        raise InvalidConfigError("policy Statement must be an object or a non-empty list")
    sids = [item["Sid"] for item in items if isinstance(item, Mapping) and "Sid" in item]
    repeated = sorted({sid for sid in sids if isinstance(sid, str) and sids.count(sid) > 1})
    if repeated:  # IAM: "Sid values must be unique within a policy"
        raise InvalidConfigError(
            f"policy statements share the Sid {repeated[0]!r}: make each unique"
        )
    return Policy(
        tuple(_statement(item, f"policy statement {n}", api) for n, item in enumerate(items, 1))
    )


def api_arn(region: str, account_id: str, api_id: str, partition: str | None = None) -> str:
    """``arn:aws:execute-api:{region}:{account_id}:{api_id}``: what its Invoke ARNs start with.

    The partition is the region's (``arn:aws-cn:...`` in China) unless given.
    """
    partition = partition_of(region) if partition is None else partition
    return f"arn:{partition}:execute-api:{region}:{account_id}:{api_id}"


def invoke_arn(
    region: str,
    account_id: str,
    api_id: str,
    method: str,
    path: str,
    partition: str | None = None,
) -> str:
    """``arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/{resource-path}``.

    The partition is the region's unless given (as :func:`api_arn`).

    The stage is the first path segment; the rest of the path follows the method without its
    leading slash, as in API Gateway's own ARNs (``.../prod/GET/`` for the stage root).

    ``path`` is the wire path, but the ARN is built from the path the signature covers: escapes
    of unreserved characters decoded (``%61`` -> ``a``), then dot and empty segments removed as
    in the canonical URI. ``/prod//admin`` and ``/prod/x/../admin`` verify with the same
    signature as ``/prod/admin``, and ``/prod/%61dmin`` (signed on its own) names the same
    resource to any reader that decodes escapes: a Deny on that resource must match them all.
    """
    stage, _, rest = _resource_path(path).lstrip("/").partition("/")
    return f"{api_arn(region, account_id, api_id, partition)}/{stage}/{method}/{rest}"


def _resource_path(path: str) -> str:
    """The wire path as the resource it names: unreserved escapes decoded, then normalised.

    :func:`wire_path` decodes them first (RFC 3986 section 6.2.2), so ``%2E`` segments are dot
    segments too; other escapes stay, in uppercase hex: API Gateway does not decode ``%2F``.
    """
    return normalize_path(wire_path(path))


def denial(principal_arn: str, resource: str, decision: Decision) -> VerificationError:
    """API Gateway's AccessDenied 403 for a refused Invoke.

    AWS masks the account in the resource ARN to its last four digits and says when a Deny
    statement (rather than a missing Allow) refused the call.
    """
    parts = resource.split(":", 5)
    if len(parts) == 6 and len(parts[4]) > 4:  # noqa: PLR2004 - arn:partition:service:region:account:rest
        parts[4] = "*" * (len(parts[4]) - 4) + parts[4][-4:]
    masked = ":".join(parts)
    explicit = decision is Decision.EXPLICIT_DENY
    suffix = " with an explicit deny" if explicit else ""
    cause = (
        f"a Deny statement of the policy matches {INVOKE} on {resource}"
        if explicit
        else f"no Allow statement of the policy matches {INVOKE} on {resource}"
    )
    return VerificationError(
        FailureKind.ACCESS_DENIED,
        f"User: {principal_arn} is not authorized to perform: {INVOKE} on resource: "
        f"{masked}{suffix}",
        likely_cause=cause,
    )
