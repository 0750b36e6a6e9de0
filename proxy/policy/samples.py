"""Built-in sample inputs a policy version must answer correctly before it serves.

Every endpoint, identity kind, PII mix and budget state, and the extremes of each number, built with
the same functions the proxy uses (so a field added to the input appears here too). Every value an
input schema enumerates (endpoints, identity sources, and any enum added later) gets a sample of its own.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from proxy.identity import Identity
from proxy.pii.types import CATEGORIES
from proxy.pii.types import Finding as PiiFinding
from proxy.policy.input import (
    BudgetState,
    Estimate,
    ModelFacts,
    RequestFacts,
    build_egress_input,
    build_input,
    build_models_input,
    identity_input,
)

NOW = 1_795_000_000.0  # a Wednesday, 08:53 UTC


@dataclass(frozen=True, slots=True)
class Sample:
    """An input and where it came from (`builtin:...`, `tests:file:line`, `recent:...`), for error messages."""

    name: str
    input: dict[str, Any]


IDENTITIES = {
    "key": Identity(app="billing-api", team="payments", user=None, key_id="k-1", source="api_key"),
    "key+user": Identity(app="notebook", team="research", user="u-42", key_id="k-2", source="api_key"),
    "admin": Identity(app="admin-cli", team="platform", user="u-1", key_id="k-3", source="api_key", admin=True),
    "sidecar": Identity(app="support-bot", team="support", user=None, key_id=None, source="sidecar"),
    "anonymous": Identity(app="unknown", team="unknown", user=None, key_id=None, source="anonymous"),
}
GPT_4O = ModelFacts("openai", 2.5, 10.0, 128_000, 1.25)
MODELS: dict[str, tuple[str, ModelFacts | None]] = {
    "known": ("gpt-4o", GPT_4O),
    "reasoning": ("o1", ModelFacts("openai", 15.0, 60.0, 200_000, 7.5)),
    "embedding": ("text-embedding-3-small", ModelFacts("openai", 0.02, 0.0, 8191)),
    "no-window": ("local-model", ModelFacts("local", 0.0, 0.0, None)),
    "unknown": ("gpt-9", None),
}
SECRETS = sorted(t for t, category in CATEGORIES.items() if category == "secret")
PII_MIXES: dict[str, tuple[str, ...]] = {
    "none": (),
    "email": ("email",),
    "email+phone": ("email", "phone"),
    "card": ("card",),
    "secret": (SECRETS[0],),
    "pii+secret": ("email", "card", SECRETS[-1]),
}
BUDGETS: dict[str, tuple[tuple[str, float, float | None], ...]] = {
    "none": (),
    "tracked": (("team:{team}", 0.0, None),),
    "under": (("team:{team}", 40.0, 500.0),),
    "near": (("team:{team}", 92.0, 500.0), ("app:{app}", 50.0, 100.0)),
    "exhausted": (("team:{team}", 100.0, 500.0),),
    "over": (("team:{team}", 150.0, 500.0), ("app:{app}", 100.0, 10.0), ("user:u-42", 99.0, 1.0)),
}
SIZES: dict[str, tuple[int | None, int]] = {
    "default": (512, 812),
    "no-max-tokens": (None, 40),
    "tiny": (1, 0),
    "huge": (2**31 - 1, 10_000_000),
}
HOSTS = ["api.openai.com", "API.OpenAI.com.", "my-resource.openai.azure.com",
         "bedrock-runtime.eu-central-1.amazonaws.com", "generativelanguage.googleapis.com",
         "api.anthropic.com", "api.github.com", "pypi.org", "localhost", "127.0.0.1", "::1",
         "xn--pi-7kc.openai.com", "a" * 63 + ".example.com"]
CATALOGUE = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o1", "o3-mini", "text-embedding-3-small",
             "claude-sonnet-4", "gpt-9"]


def decision_samples() -> list[Sample]:
    samples = [Sample(f"builtin:{who}/pii={pii}/budget={budget}", decision_input(who=who, pii=pii, budget=budget))
               for who, pii, budget in itertools.product(IDENTITIES, PII_MIXES, BUDGETS)]
    samples += [Sample(f"builtin:{endpoint}/model={model}/size={size}",
                       decision_input(endpoint=endpoint, model=model, size=size))
                for endpoint, model, size in itertools.product(
                    ("chat.completions", "embeddings"), MODELS, SIZES)]
    samples += [Sample(f"builtin:pii={kind}", decision_input(pii=(kind,))) for kind in CATEGORIES]
    samples.append(Sample("builtin:pii=many-findings", decision_input(pii=tuple(CATEGORIES) * 4)))
    samples.append(Sample("builtin:stream+tools", decision_input(stream=True, tools=tuple(f"t{i}" for i in range(64)))))
    samples.append(Sample("builtin:sunday-night", decision_input(now=NOW + 4 * 86_400 + 15 * 3_600)))
    return samples


def decision_input(*, who: str = "key", pii: str | tuple[str, ...] = "none", budget: str = "none",
                   endpoint: str = "chat.completions", model: str = "known", size: str = "default",
                   stream: bool = False, tools: tuple[str, ...] = (), now: float = NOW) -> dict[str, Any]:
    identity = IDENTITIES[who]
    name, facts = MODELS[model]
    max_tokens, prompt_tokens = SIZES[size]
    request = RequestFacts(endpoint=endpoint, model=name, stream=stream,  # type: ignore[arg-type]
                           max_tokens=max_tokens, messages=2, tool_names=tools, user=identity.user)
    estimate = Estimate(prompt_tokens, max_tokens or 4096, 0.0071)
    types = PII_MIXES[pii] if isinstance(pii, str) else pii
    findings = tuple(PiiFinding(t, 1 + i % 3, f"messages[{i}].content") for i, t in enumerate(types))
    states = [_state(scope.format(team=identity.team, app=identity.app), percent, limit)
              for scope, percent, limit in BUDGETS[budget]]
    return build_input(request, identity, facts, estimate, findings, states, now)


MCP_MESSAGES: dict[str, tuple[str, str | None, str | None]] = {
    "initialize": ("request", "initialize", None),
    "tools/list": ("request", "tools/list", None),
    "resources/read": ("request", "resources/read", "crm://customers/7"),
    "prompts/get": ("request", "prompts/get", "greet"),
    "notification": ("notification", "notifications/initialized", None),
    "response": ("response", None, None),
    "listen": ("listen", None, None),
    "terminate": ("terminate", None, None),
}
MCP_TOOLS: dict[str, Mapping[str, Any] | None] = {
    "read-only": {"readOnlyHint": True},
    "destructive": {"readOnlyHint": False, "destructiveHint": True, "title": "Send mail"},
    "no-hints": {},
    "unknown": None,
}


def mcp_samples() -> list[Sample]:
    # Imported here: proxy.mcp builds on proxy.policy, not the other way round.
    from proxy.mcp.input import MessageFacts, ToolFacts, build_mcp_input

    samples = []
    for who, (kind, method, name) in itertools.product(IDENTITIES, MCP_MESSAGES.values()):
        facts = MessageFacts("crm", kind, method, name, "2025-11-25", session=kind != "request")
        samples.append(Sample(f"builtin:mcp/{who}/{method or kind}", build_mcp_input(facts, IDENTITIES[who], None,
                                                                                      (), (), NOW)))
    for who, tool, pii, listing in itertools.product(IDENTITIES, MCP_TOOLS, ("none", "email+phone", "secret"),
                                                     (False, True)):
        facts = MessageFacts("crm", "request", "tools/call", "send_mail", "2025-11-25", True, listing)
        findings = tuple(PiiFinding(t, 1, f"params.arguments.a{i}") for i, t in enumerate(PII_MIXES[pii]))
        states = [_state(f"tool:crm/send_mail:{IDENTITIES[who].key_id or 'app'}", 90.0, 60.0)]
        samples.append(Sample(f"builtin:mcp/{who}/tools/call/{tool}/pii={pii}/listing={listing}",
                              build_mcp_input(facts, IDENTITIES[who], ToolFacts("send_mail", MCP_TOOLS[tool]),
                                              () if listing else findings, () if listing else states, NOW)))
    return samples


def scopes_samples() -> list[Sample]:
    calls = (("chat.completions", "openai"), ("embeddings", "openai"), ("messages", "anthropic"))
    return [Sample(f"builtin:scopes/{who}/{endpoint}/{model}", {
        "version": 1, "identity": identity_input(IDENTITIES[who]),
        "request": {"endpoint": endpoint, "api": api, "model": model}})
        for who, (endpoint, api), model in itertools.product(IDENTITIES, calls, ("gpt-4o", "o1"))]


def models_samples() -> list[Sample]:
    lists = {"none": [], "catalogue": CATALOGUE, "many": [f"model-{i}" for i in range(200)]}
    return [Sample(f"builtin:{who}/models={kind}", build_models_input(IDENTITIES[who], names))
            for who, (kind, names) in itertools.product(IDENTITIES, lists.items())]


def egress_samples() -> list[Sample]:
    return [Sample(f"builtin:{who}/{method} {host}:{port}", build_egress_input(host, port, method, IDENTITIES[who]))
            for host in HOSTS for who in ("key", "sidecar")
            for port, method in ((443, "CONNECT"), (80, "GET"))]


def enum_samples(schema: Mapping[str, Any], base: Sample) -> list[Sample]:
    """`base` once per value of every enum its input schema declares (for a field present in `base`)."""
    samples = []
    for path, values in _enums(schema, schema, ()):
        for value in values:
            doc = copy.deepcopy(base.input)
            target: Any = doc
            for key in path[:-1]:
                target = target.get(key) if isinstance(target, dict) else None
            if isinstance(target, dict) and path[-1] in target and target[path[-1]] != value:
                target[path[-1]] = value
                samples.append(Sample(f"{base.name}/{'.'.join(path)}={value}", doc))
    return samples


def _enums(root: Mapping[str, Any], schema: Mapping[str, Any], path: tuple[str, ...],
           ) -> Iterator[tuple[tuple[str, ...], list[Any]]]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    if isinstance(schema.get("enum"), list) and path:
        yield path, schema["enum"]
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _enums(root, sub, (*path, key))


def _state(scope: str, percent: float, limit: float | None) -> BudgetState:
    spent = 0.0 if limit is None else limit * percent / 100
    remaining = None if limit is None else max(0.0, limit - spent)
    return BudgetState(scope, spent, percent, "month", limit, remaining)
