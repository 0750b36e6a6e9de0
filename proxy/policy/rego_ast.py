"""Reading regorus' AST (`engine.get_ast_as_json()`): packages, rule definitions and where they are,
test rules, and the `with input as` overrides in tests. Pure functions over the parsed JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from proxy.policy.bundle import TEST_SUFFIX

Node = dict[str, Any]
ANY_KEY = "[_]"  # a head segment whose key is computed: a partial object rule


@dataclass(frozen=True, slots=True)
class TestCase:
    package: str
    name: str
    location: str

    @property
    def rule(self) -> str:
        return f"{self.package}.{self.name}"


@dataclass(frozen=True, slots=True)
class RuleDefinition:
    """One definition (a rule with its else chain) of a complete rule, function or object rule."""

    package: str  # data.<package>
    path: str  # data.<package>.<head>, with ANY_KEY for a computed object key
    kind: str  # "complete", "function", "object", "set" or "default"
    location: str  # file:line
    values: tuple[Node | None, ...]  # the head value, then each else value (None-valued heads are `true`)
    args: tuple[Node, ...]


def package_path(module: Node) -> str:
    return "data." + ".".join(ref_names(module["ast"]["package"]["refr"]))


def ref_names(ref: Node) -> Iterator[str]:
    if "Var" in ref:
        yield str(ref["Var"]["value"])
    elif "RefDot" in ref:
        yield from ref_names(ref["RefDot"]["refr"])
        yield str(ref["RefDot"]["field"][1])
    elif "RefBrack" in ref:
        yield from ref_names(ref["RefBrack"]["refr"])
        index = ref["RefBrack"]["index"]
        yield str(index["String"]["value"]) if "String" in index else ANY_KEY


def definitions(modules: list[Node]) -> Iterator[RuleDefinition]:
    for module in modules:
        package, file = package_path(module), module["source"]["file"]
        for rule in module["ast"]["rules"]:
            if "Default" in rule:
                head = rule["Default"]
                yield RuleDefinition(package, _join(package, head["refr"]), "default",
                                     f"{file}:{head['span']['line']}", (head["value"],), ())
                continue
            spec = rule.get("Spec")
            if spec is None:
                continue
            kind, head = next(iter(spec["head"].items()))
            path = _join(package, head["refr"])
            assign = head.get("assign")
            chained = [body["assign"]["value"] if body.get("assign") else None
                       for body in spec["bodies"] if body.get("is_else")]
            values = (assign["value"] if assign else None, *chained)
            shape = {"Func": "function", "Set": "set"}.get(kind, "object" if ANY_KEY in path else "complete")
            yield RuleDefinition(package, path, shape, f"{file}:{spec['span']['line']}", values,
                                 tuple(head.get("args", ())))


def imported_names(module: Node) -> Iterator[str]:
    """The names a module's imports bind (`import data.a.b` binds b, `... as c` binds c)."""
    source = module["source"].get("contents", "").encode()
    for item in module["ast"]["imports"]:
        alias = item.get("as")
        if alias:
            yield source[alias["start"]:alias["end"]].decode()
        else:
            *_, last = ref_names(item["refr"])
            yield last


def locations(modules: list[Node], path: str) -> list[str]:
    """file:line of every definition of the rule at `path` (data.pkg.rule)."""
    return [d.location for d in definitions(modules) if d.path == path]


def defines(modules: list[Node], path: str) -> bool:
    return any(d.path == path or d.path.startswith(path + ".") for d in definitions(modules))


def discover_tests(modules: list[Node]) -> list[TestCase]:
    seen: dict[str, TestCase] = {}
    for module in modules:
        package = package_path(module)
        for rule in module["ast"]["rules"]:
            head = _test_head(rule)
            if head is not None:
                case = TestCase(package, head[0], f"{module['source']['file']}:{head[1]}")
                seen.setdefault(case.rule, case)
    return sorted(seen.values(), key=lambda c: c.rule)


def input_overrides(node: Any) -> Iterator[Node]:
    """The span of every `with input as ...` modifier (the whole modifier, `with` to the end of its value)."""
    if isinstance(node, dict):
        for modifier in node.get("with_mods") or ():
            if modifier["refr"].get("Var", {}).get("value") == "input":
                yield modifier["span"]
        for value in node.values():
            yield from input_overrides(value)
    elif isinstance(node, list):
        for value in node:
            yield from input_overrides(value)


def variables(node: Any) -> Iterator[str]:
    """Names an expression refers to, except called functions (builtins or rules, never locals)."""
    if isinstance(node, dict):
        if "Var" in node and isinstance(node["Var"], dict):
            yield str(node["Var"]["value"])
            return
        for key, value in node.items():
            if key == "fcn" or key == "field":
                continue
            yield from variables(value)
    elif isinstance(node, list):
        for value in node:
            yield from variables(value)


def without_positions(node: Any) -> Any:
    """The expression with source positions dropped, so two definitions' values can be compared."""
    if isinstance(node, dict):
        return {k: without_positions(v) for k, v in node.items() if k not in ("span", "eidx")}
    if isinstance(node, list | tuple):
        return [without_positions(v) for v in node if not (isinstance(v, dict) and "line" in v and "col" in v)]
    return node


def _join(package: str, ref: Node) -> str:
    return ".".join((package, *ref_names(ref))).replace("." + ANY_KEY, ANY_KEY)


def _test_head(rule: Node) -> tuple[str, int] | None:
    # Only plain rules count (functions named test_ are helpers, as in OPA); `default test_x` adds nothing.
    spec = rule.get("Spec")
    if spec is None:
        return None
    kind, head = next(iter(spec["head"].items()))
    if kind == "Func":
        return None
    var = head["refr"].get("Var")
    if var is None or not str(var["value"]).startswith("test_"):
        return None
    return str(var["value"]), int(var["span"]["line"])


# Builtins whose answer is not a function of their arguments (OPA's "nondeterministic" builtins, and the
# families they belong to): a policy calling one may answer the same input differently from one call to the
# next, so none of its answers is ever reused.
VOLATILE_BUILTINS = ("time.now_ns", "rand.", "uuid.rfc4122", "http.send", "net.lookup_ip_addr", "opa.runtime",
                     "io.jwt.decode_verify", "crypto.x509.parse_and_verify_certificates", "providers.")


def reads_input_key(modules: list[Node], key: str) -> bool:
    """Whether any of these modules may read `input.<key>`; test modules (`*_test.rego`) are not served
    and are skipped. Conservative: only `input.<other>` and `input["<other>"]` with a constant key are
    known not to; `input` used whole (`walk(input, ...)`, `x := input`, `some k in input`), with a
    computed key, or imported (`import input.<key>`) counts as reading it."""
    keys = input_keys_read(modules)
    return keys is None or key in keys


def input_keys_read(modules: list[Node]) -> frozenset[str] | None:
    """The top-level input keys the served modules may read, or None when they may read the whole input
    (used whole, or with a computed key): the same conservative reading as reads_input_key."""
    keys: set[str] = set()
    served = [module["ast"] for module in modules if not str(module["source"]["file"]).endswith(TEST_SUFFIX)]
    return frozenset(keys) if all(_collect_keys(node, keys) for node in served) else None


def depends_on(modules: list[Node]) -> frozenset[str] | None:
    """The input keys the served modules' answers can depend on, with their data fixed: None when that is
    more than some keys (the whole input may be read, or a volatile builtin is called). An entry point
    asked with an input that has none of these keys has one answer for the whole version."""
    served = [module for module in modules if not str(module["source"]["file"]).endswith(TEST_SUFFIX)]
    if any(name.startswith(VOLATILE_BUILTINS) for name in called(served)):
        return None
    return input_keys_read(served)


def called(node: Any) -> Iterator[str]:
    """The dotted name of every function called (builtins and rules alike)."""
    if isinstance(node, dict):
        call = node.get("Call")
        if isinstance(call, dict):
            yield ".".join(ref_names(call["fcn"]))
        for value in node.values():
            yield from called(value)
    elif isinstance(node, list):
        for value in node:
            yield from called(value)


def _collect_keys(node: Any, keys: set[str]) -> bool:
    """Adds the input keys `node` reads to `keys`; False when it may read the whole input."""
    if isinstance(node, list):
        return all(_collect_keys(value, keys) for value in node)
    if not isinstance(node, dict):
        return True
    if _is_input(node):
        return False
    for kind in ("RefDot", "RefBrack"):
        ref = node.get(kind)
        if isinstance(ref, dict) and _is_input(ref["refr"]):
            named = ref["field"][1] if kind == "RefDot" else ref["index"].get("String", {}).get("value")
            if named is None:
                return False
            keys.add(str(named))
            return True
    for name, value in node.items():
        if name == "with_mods":  # `with input as {...}` replaces the input; only its value may read it
            if not all(_collect_keys(modifier.get("as"), keys) for modifier in value or ()):
                return False
        elif not _collect_keys(value, keys):
            return False
    return True


def _is_input(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("Var"), dict) and node["Var"].get("value") == "input"
