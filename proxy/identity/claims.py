"""Verified token claims to app, team, user, admin and the policy's allow-listed claims (pure).

Paths are claim names (`email`, `kubernetes.io`) or JSON Pointers (`/kubernetes.io/serviceaccount/name`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import AdminRule, ClaimRule, IdentityClaims

MAX_VALUE_CHARS = 256
_MISSING = object()


class UnmappedClaims(ValueError):
    """The claims name no app or team under the issuer's rules; the message names the rule, not values."""


@dataclass(frozen=True, slots=True)
class Mapped:
    app: str
    team: str
    user: str | None
    admin: bool


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The value at `path`, or None when any step is missing."""
    if not path.startswith("/"):
        return claims.get(path)
    node: Any = claims
    for raw in path[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part, _MISSING)
        elif isinstance(node, list) and part.isdecimal() and (part == "0" or not part.startswith("0")) \
                and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is _MISSING:
            return None
    return node


def as_text(value: Any) -> str | None:
    """A claim value usable as an app, team or user name: a short string without control characters, or an
    integer. Anything else (objects, floats, booleans, huge strings) maps to nothing."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_VALUE_CHARS and value.isprintable():
        return value
    return None


def _values(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [text for text in map(as_text, items) if text is not None]


def apply_rule(rule: ClaimRule, claims: Mapping[str, Any]) -> str | None:
    for path in rule.claim:
        value = claim_at(claims, path)
        if value is None:
            continue
        if rule.map is not None:
            # The table's order is the priority: the token's list order is the issuer's, not the operator's.
            present = set(_values(value))
            for key, mapped in rule.map.items():
                if key in present:
                    return mapped
        elif not isinstance(value, list) and (text := as_text(value)) is not None:
            return text
    return rule.default


def is_admin(rule: AdminRule | None, claims: Mapping[str, Any]) -> bool:
    if rule is None:
        return False
    value = claim_at(claims, rule.claim)
    return value is not None and not set(_values(value)).isdisjoint(rule.any_of)


def required(name: str, rule: ClaimRule, claims: Mapping[str, Any]) -> str:
    value = apply_rule(rule, claims)
    if value is None:
        through = " through its map" if rule.map else ""
        raise UnmappedClaims(f"The token's claims map to no {name} (claim {', '.join(rule.claim)}{through}, "
                             "and no default).")
    return value


def map_identity(rules: IdentityClaims, admin: AdminRule | None, claims: Mapping[str, Any]) -> Mapped:
    user = apply_rule(rules.user, claims) if rules.user is not None else None
    return Mapped(required("app", rules.app, claims), required("team", rules.team, claims), user,
                  is_admin(admin, claims))


def policy_claims(claims: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """The allow-listed claims, nested as issued (`/kubernetes.io/namespace` -> {"kubernetes.io": {...}})."""
    chosen: dict[str, Any] = {}
    for path in paths:
        value = claim_at(claims, path)
        if value is None:
            continue
        parts = [path] if not path.startswith("/") else \
            [raw.replace("~1", "/").replace("~0", "~") for raw in path[1:].split("/")]
        node = chosen
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break  # an earlier, shorter path copied this whole value already
            node = child
        else:
            node.setdefault(parts[-1], value)
    return chosen
