"""The inputs a policy version decided recently, without prompt text: part of the sample the next version
must answer correctly before it replaces this one. Bounded: the last `size` distinct inputs per entry point.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from proxy.policy.contract import ENTRYPOINTS, Entrypoint
from proxy.policy.samples import Sample

DEFAULT_SIZE = 128


class RecentInputs:
    def __init__(self, table: Sequence[Entrypoint] = ENTRYPOINTS, size: int = DEFAULT_SIZE) -> None:
        self._private = {row.path: row.private for row in table}
        self._size = size
        # Keyed by the input without its time, so a caller repeating the same request keeps one slot.
        self._inputs: dict[str, collections.OrderedDict[bytes, bytes]] = {row.path: collections.OrderedDict()
                                                                           for row in table}

    def record(self, entrypoint: str, document: Mapping[str, Any]) -> None:
        kept = self._inputs.get(entrypoint)
        if kept is None:
            return
        stored = _without(document, self._private[entrypoint])
        key = orjson.dumps({k: v for k, v in stored.items() if k != "time"})
        if key in kept:
            kept.move_to_end(key)
            return
        kept[key] = orjson.dumps(stored)
        if len(kept) > self._size:
            kept.popitem(last=False)

    def samples(self) -> dict[str, list[Sample]]:
        """Newest first, named by who sent them (team/app), never by content."""
        return {path: [Sample(f"recent:{path.removeprefix('data.')}#{i} ({_who(doc)})", doc)
                       for i, doc in enumerate(orjson.loads(raw) for raw in reversed(kept.values()))]
                for path, kept in self._inputs.items()}

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._inputs.values())


def record_input(engine: object, entrypoint: str, document: Mapping[str, Any]) -> None:
    """Keep `document` as a recent input of `engine`'s policy version, if it keeps them (a reloading
    embedded engine does; a remote OPA does not)."""
    recent = getattr(engine, "recent", None)
    if isinstance(recent, RecentInputs):
        recent.record(entrypoint, document)


def _without(document: Mapping[str, Any], paths: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """A copy without the values at `paths` (only the objects along those paths are copied)."""
    stored = dict(document)
    for path in paths:
        _drop(stored, path)
    return stored


def _drop(target: dict[str, Any], path: tuple[str, ...]) -> None:
    key = path[0]
    if key not in target:
        return
    if len(path) == 1:
        del target[key]
    elif isinstance(target[key], dict):
        target[key] = inner = dict(target[key])
        _drop(inner, path[1:])


def _who(document: Mapping[str, Any]) -> str:
    identity = document.get("identity")
    if not isinstance(identity, dict):
        return "?"
    return f"{identity.get('team', '?')}/{identity.get('app', '?')}"
