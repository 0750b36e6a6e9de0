"""The enforce stage: a decision's obligations applied to the request, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from proxy.budget.pricing import worst_case_micros
from proxy.catalogue import Catalogue, CatalogueEntry
from proxy.endpoints.base import Json, ModelCall
from proxy.gateway.analyse import Analysis
from proxy.pii import Placeholders, redact
from proxy.policy.decision import Decision
from proxy.policy.errors import PolicyEngineError


@dataclass(frozen=True, slots=True)
class Effective:
    """The request as it will be forwarded, and what the relay and settle stages need to know about it."""

    entry: CatalogueEntry
    body: bytes
    hide_usage_chunk: bool  # we asked for stream usage the client did not ask for
    placeholders: Placeholders | None  # the request's redaction book, kept when the answer is restored
    redacted: dict[str, int]
    max_output_tokens: int
    cost_micros: int


def enforce(call: ModelCall, entry: CatalogueEntry, analysis: Analysis, decision: Decision, catalogue: Catalogue,
            pseudonym_key: bytes | None = None) -> Effective:
    changes: Json = {}
    if decision.model is not None and decision.model != entry.name:
        target = catalogue.resolve(decision.model)
        if target is None or call.endpoint.name not in target.endpoints:
            # A policy that names a model the proxy cannot route is broken: an engine error, never a guess.
            raise PolicyEngineError(f"decision rewrites the model to {decision.model!r}, which the catalogue "
                                    f"does not serve on {call.endpoint.route}")
        entry = target
    if entry.upstream_model != call.model:
        changes["model"] = entry.upstream_model

    max_output = call.worst_case_output(entry.max_output_tokens)
    if decision.max_tokens is not None and call.endpoint.max_output_keys:
        requested = call.max_output_tokens
        if requested is None or requested > decision.max_tokens:
            # Every cap the caller sent above it is lowered: the upstream may honour any one of them.
            keys = call.endpoint.max_output_keys
            sent = [k for k in keys if call.body.get(k) is not None]
            for key in [k for k in sent if call.body[k] > decision.max_tokens] if sent else keys[-1:]:
                changes[key] = decision.max_tokens
            # The cap is per choice: n choices of capped length are still n times the output.
            max_output = call.worst_case_output(entry.max_output_tokens, decision.max_tokens)

    hide_usage = False
    if call.stream and call.endpoint.usage_opt_in:
        options = call.body.get("stream_options") or {}
        if not options.get("include_usage"):
            # Budgets need the real token count, so always ask; the extra chunk is dropped on the way back.
            changes["stream_options"] = {**options, "include_usage": True}
            hide_usage = True

    placeholders = None
    redacted: dict[str, int] = {}
    body = call.body
    types = frozenset(decision.redact)
    if types and any(m.type in types for found in analysis.matches.values() for m in found):
        placeholders = Placeholders(pseudonym_key)
        body = redacted_copy(call, analysis, types, placeholders, redacted)

    payload = orjson.dumps({**body, **changes} if changes else body)
    cost = worst_case_micros(analysis.prompt_tokens, max_output, entry.micro_prices)
    return Effective(entry, payload, hide_usage, placeholders if decision.restore else None, redacted,
                     max_output, cost)


def redacted_copy(call: ModelCall, analysis: Analysis, types: frozenset[str], placeholders: Placeholders,
                  counts: dict[str, int]) -> Json:
    # A fresh copy through JSON: the caller's parsed body stays as it came (the audit and shadow stages read it).
    body: Json = orjson.loads(orjson.dumps(call.body))
    for path, text, slot, key in list(call.endpoint.texts(body)):
        matches = analysis.matches.get(path)
        if matches:
            hits = [m for m in matches if m.type in types]
            for m in hits:
                counts[m.type] = counts.get(m.type, 0) + 1
            if hits:
                slot[key] = redact(text, hits, types, placeholders)  # type: ignore[index]
    return body
