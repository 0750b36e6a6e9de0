"""PII and secrets in tool arguments and results: every string in a JSON value, found, redacted or restored.

Pure functions over parsed JSON. Paths name where a value was found (`arguments.to`, `content[0].text`),
never the value. Binary payloads (a resource's `blob`, an image's or audio's base64 `data`) are not text
and are skipped: scanning base64 would only find noise.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from proxy.mcp.jsonrpc import MAX_DEPTH
from proxy.pii import Finding, Match, Placeholders, Scanner, redact, restore, summarize

# A hostile document must not exhaust the stack, nor hide a value below the depth scanned: deeper
# nesting is refused (TooDeep), never passed on unscanned. Client params are refused at parse time.
_BINARY_ITEMS = frozenset({"image", "audio"})


@dataclass(frozen=True, slots=True)
class Scan:
    matches: dict[str, list[Match]]  # path -> matches, only paths with findings
    findings: tuple[Finding, ...]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for finding in self.findings:
            totals[finding.type] = totals.get(finding.type, 0) + finding.count
        return totals


NO_FINDINGS = Scan({}, ())


class TooDeep(ValueError):
    """A value nested deeper than MAX_DEPTH: it cannot be inspected, so it is not forwarded."""


def strings(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(path, text) for every string value inside `value`, in document order."""
    if depth > MAX_DEPTH:
        raise TooDeep(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        binary = value.get("type") in _BINARY_ITEMS
        for key, item in value.items():
            if key == "blob" or (binary and key == "data"):
                continue
            yield from strings(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]", depth + 1)


def scan(scanner: Scanner, value: Any, root: str) -> Scan:
    matches: dict[str, list[Match]] = {}
    for path, text in strings(value, root):
        found = scanner.find(text)
        if found:
            matches[path] = found
    if not matches:
        return NO_FINDINGS
    return Scan(matches, tuple(summarize(matches.items())))


def redacted(value: Any, found: Scan, types: Collection[str], root: str, placeholders: Placeholders,
             counts: dict[str, int]) -> Any:
    """A copy of `value` with every finding of `types` replaced by a placeholder; `counts` tallies them."""
    def replace(path: str, text: str) -> str:
        hits = [m for m in found.matches.get(path, ()) if m.type in types]
        for m in hits:
            counts[m.type] = counts.get(m.type, 0) + 1
        return redact(text, hits, types, placeholders) if hits else text
    return mapped(value, root, replace)


def restored(value: Any, placeholders: Placeholders) -> Any:
    """A copy of `value` with this call's placeholders turned back into the caller's values."""
    return mapped(value, "", lambda _, text: restore(text, placeholders))


def mapped(value: Any, path: str, change: Callable[[str, str], str], depth: int = 0) -> Any:
    """A copy of `value` with `change(path, text)` applied to each string `strings` would visit."""
    if depth > MAX_DEPTH:
        raise TooDeep(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return change(path, value)
    if isinstance(value, dict):
        binary = value.get("type") in _BINARY_ITEMS
        return {key: item if key == "blob" or (binary and key == "data")
                else mapped(item, f"{path}.{key}" if path else str(key), change, depth + 1)
                for key, item in value.items()}
    if isinstance(value, list):
        return [mapped(item, f"{path}[{index}]", change, depth + 1) for index, item in enumerate(value)]
    return value
