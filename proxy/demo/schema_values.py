"""A deterministic JSON value valid against a JSON Schema: what the demo model answers structured requests with.

Covers what SDKs generate (pydantic, zod, instructor, LangChain): types and type lists, properties and
required, $ref into $defs/definitions, anyOf/oneOf/allOf, enum, const, string formats and lengths,
numeric bounds and multipleOf, array bounds. Recursive schemas end at a depth bound by choosing null,
an empty array or leaving optional properties out.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 6
_FORMATS = {"date": "2026-01-15", "date-time": "2026-01-15T12:00:00Z", "time": "12:00:00",
            "email": "someone@example.com", "uri": "https://example.com/", "url": "https://example.com/",
            "uuid": "00000000-0000-4000-8000-000000000000", "ipv4": "192.0.2.1", "hostname": "example.com"}


class SchemaValues:
    """Values for one request: strings take `word` (a word from the prompt), so answers look related."""

    def __init__(self, root: Any, word: str = "demo") -> None:
        self._root = root if isinstance(root, dict) else {}
        self._word = word or "demo"

    def value(self, schema: Any = None, depth: int = 0) -> Any:
        schema = self._root if schema is None else schema
        if schema is True or not isinstance(schema, dict) or depth > 2 * MAX_DEPTH:
            return self._word  # past the bound a schema that recurses through required fields gets cut
        schema = self._resolved(schema, depth)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            options = [o for o in schema.get(key) or () if isinstance(o, dict)]
            if options:
                return self.value(self._pick(options, depth), depth + 1)
        if isinstance(schema.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self._resolved(part, depth) if isinstance(part, dict) else {}
                merged["properties"] = {**(merged.get("properties") or {}), **(part.get("properties") or {})}
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged.setdefault("type", part.get("type"))
            return self.value(merged, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] if depth < MAX_DEPTH else ["null"]
            kind = (kinds or kind)[0] if (kinds or kind) else None
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        return self._typed(kind, schema, depth)

    def _typed(self, kind: str, schema: dict[str, Any], depth: int) -> Any:
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            count = int(schema.get("minItems", 0)) if depth >= MAX_DEPTH else max(1, int(schema.get("minItems", 1)))
            if "maxItems" in schema:
                count = min(count, int(schema["maxItems"]))
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            return [self.value(items, depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            return _number(schema, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema)

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        found = schema.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        required = set(schema.get("required") or ())
        out = {}
        for name, sub in properties.items():
            if depth >= MAX_DEPTH and name not in required:
                continue
            out[name] = self.value(sub, depth + 1)
        for name in required - set(out):
            out[name] = self._word
        return out

    def _string(self, schema: dict[str, Any]) -> str:
        text = _FORMATS.get(str(schema.get("format")), self._word)
        minimum, maximum = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < minimum:
            text += "x" * (minimum - len(text))
        if isinstance(maximum, int) and len(text) > maximum:
            text = text[:maximum]
        return text

    def _resolved(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        for _ in range(MAX_DEPTH * 4):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                return schema
            target: Any = self._root
            for part in ref.lstrip("#/").split("/") if ref != "#" else ():
                key = part.replace("~1", "/").replace("~0", "~")
                target = target.get(key, {}) if isinstance(target, dict) else {}
            found = target if isinstance(target, dict) else {}
            schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **found}
        return schema

    def _pick(self, options: list[dict[str, Any]], depth: int) -> dict[str, Any]:
        # Deep in a recursive schema, the null branch (if any) ends the recursion.
        if depth >= MAX_DEPTH:
            for option in options:
                if option.get("type") == "null":
                    return option
        return next((o for o in options if o.get("type") != "null"), options[0])


def _number(schema: dict[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1.0
    if isinstance(low, int | float) and isinstance(high, int | float) and not integer:
        value = (low + high) / 2
    elif isinstance(low, int | float):
        value = low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    elif isinstance(high, int | float):
        value = high - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
    step = schema.get("multipleOf")
    if isinstance(step, int | float) and step > 0:
        value = math.ceil(value / step) * step
    if integer:
        return math.ceil(value)
    return value
