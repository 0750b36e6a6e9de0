"""Rules that may conflict: a complete rule, function or object rule defined more than once with values
that can differ. When two such definitions apply at once the interpreter reports a conflict (an engine
error, so a deny), while the compiled RVM silently answers undefined or one of the values; so compiled
mode never serves a version that has one, and the interpreter's error stands in both modes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from proxy.policy.rego_ast import Node, RuleDefinition, definitions, imported_names, package_path, variables
from proxy.policy.rego_ast import without_positions as bare

CONFLICTING_KINDS = frozenset({"complete", "function", "object"})


@dataclass(frozen=True, slots=True)
class PossibleConflict:
    path: str
    locations: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.path} is defined {len(self.locations)} times with values that may differ "
                f"({', '.join(self.locations)})")


def possible_conflicts(modules: list[Node]) -> list[PossibleConflict]:
    groups: dict[str, list[RuleDefinition]] = defaultdict(list)
    names: dict[str, set[str]] = defaultdict(lambda: {"input", "data"})
    for module in modules:
        names[package_path(module)].update(imported_names(module))
    for definition in definitions(modules):
        names[definition.package].add(definition.path[len(definition.package) + 1:].split(".")[0])
        if definition.kind in CONFLICTING_KINDS:
            groups[definition.path].append(definition)
    return [PossibleConflict(path, tuple(d.location for d in group))
            for path, group in sorted(groups.items())
            if len(group) > 1 and not _always_equal(group, names[group[0].package])]


def _always_equal(group: list[RuleDefinition], known: set[str]) -> bool:
    """Every definition yields the same value: the same expression, over the same arguments, naming
    only rules, imports and arguments (a local variable may be bound differently in each body)."""
    first = group[0]
    shape = (bare(first.values), bare(first.args))
    if any((bare(d.values), bare(d.args)) != shape for d in group[1:]):
        return False
    allowed = known | set(variables(list(first.args)))
    return all(name in allowed for value in first.values if value is not None for name in variables(value))
