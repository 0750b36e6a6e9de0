"""The one path every model call takes, stage by stage, top to bottom (see docs/architecture.md).

`serve_model_call` is the whole path; each stage below it takes only what it uses and returns a typed
value, and reports what happened to the request's Observation (written once, when the request ends).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import time

import aiohttp
import orjson
from aiohttp import web
from opentelemetry.trace import SpanKind

from proxy.budget import BudgetExceeded, BudgetStore, RateLimited, Reservation, cost_micros, rate_limit_headers
from proxy.catalogue import Catalogue, CatalogueEntry
from proxy.components import Components
from proxy.config import AuthConfig
from proxy.endpoints.base import EndpointSpec, Json, ModelCall, Usage, parse_call
from proxy.endpoints.bounds import check_context
from proxy.errors import BadRequest, PayloadTooLarge, Unavailable, UnknownModel, UpstreamError
from proxy.gateway.analyse import Analysis, analyse_off_loop, counted, counted_off_loop
from proxy.gateway.answer_transform import OutputRules
from proxy.gateway.decide import Decided, Decider
from proxy.gateway.enforce import Effective, enforce
from proxy.gateway.limit_signals import denial_headers
from proxy.gateway.observation import Observation
from proxy.gateway.relay import Tally, relay_json, relay_stream
from proxy.identity import Identity
from proxy.pii import Scanner
from proxy.policy.decision import denial_error
from proxy.policy.errors import PolicyEngineError
from proxy.telemetry.logging import get_logger
from proxy.telemetry.tracing import Tracing
from proxy.tokens import TokenEstimator
from proxy.upstream.adapters import adapter_for, check_translatable
from proxy.upstream.adapters.relay import relay_translated
from proxy.upstream.client import Upstream

log = get_logger("proxy.gateway.pipeline")


async def serve_model_call(request: web.Request, spec: EndpointSpec, parts: Components, identity: Identity,
                           observation: Observation) -> web.StreamResponse:
    # parse: body -> typed call (400, 413); the end user named by a trusted header or the body
    raw = await read_body(request, parts.config.server.max_body_bytes)
    call = parse(spec, raw, parts.pseudonym_key)
    observation.called(spec.name, call.model, call.stream)
    identity = with_end_user(identity, call, request, parts.config.auth)
    observation.identified(identity)

    # resolve: public model name -> catalogue entry (404), refused if its upstream's API cannot say it (400)
    entry = resolve_model(parts.catalogue, call, parts.upstreams)
    observation.resolved(entry)

    # analyse: PII findings, worst-case cost, prompt tokens: counted if the policy reads input.estimate, else
    # an upper bound, counted only if the context window or a limit needs it (pure; big bodies off the loop)
    offload = parts.config.tokens.offload_bytes
    with parts.tracing.stage("pii.scan"):
        analysis = await analyse_off_loop(call, entry, parts.estimator, parts.scanner, len(raw), offload,
                                          exact=parts.decider.reads_estimate)
        if analysis.prompt_tokens > entry.context_window:
            analysis = await counted_off_loop(analysis, call, entry, parts.estimator, len(raw), offload)
    observation.analysed(analysis)
    check_context(call.endpoint.api, analysis.prompt_tokens, entry.context_window)  # 400, before the policy

    # decide: budget scopes, their state, one policy evaluation (503 fail closed, 403 deny); a limit on
    # the scopes judged holds the prompt's exact count, never the bound
    with parts.tracing.stage("policy.evaluate"):
        decided = await decide(parts.decider, call, entry, identity, analysis, observation)
    headers = allowed_or_denied(decided, observation.request_id)
    if parts.decider.holds_count(decided.scopes) and not analysis.prompt_exact:
        analysis = await counted_off_loop(analysis, call, entry, parts.estimator, len(raw), offload)
        observation.analysed(analysis)

    # enforce: model rewrite, max_tokens cap, request redaction (pure; 503 if it cannot be carried out)
    effective = carry_out(call, entry, analysis, decided, parts.catalogue, parts.pseudonym_key, observation)

    # reserve: worst-case cost on every scope the decision judged, atomically (429, 503)
    with parts.tracing.stage("budget.reserve"):
        reservation = await reserve(parts.store, decided, analysis, effective, observation)
    if reservation.rate is not None:
        headers.update(rate_limit_headers(reservation.rate))

    # forward + relay, then settle: actual cost committed, the rest released, whatever happened
    tally, started = Tally(), time.perf_counter()
    try:
        return await forward_and_relay(request, parts.upstreams[effective.entry.upstream], parts.tracing,
                                       parts.scanner, call, effective, decided.decision.redact, headers, tally,
                                       observation)
    finally:
        first = tally.first_content_at
        observation.relayed(tally, time.perf_counter() - started, None if first is None else first - started)
        with parts.tracing.stage("budget.settle"):
            await asyncio.shield(settle(parts.store, parts.estimator, call, effective, analysis, reservation,
                                        tally, observation))


async def read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body of {request.content_length} bytes exceeds the limit of {limit} bytes.")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.") from None


def decode_json(raw: bytes) -> Json:
    if not raw:
        raise BadRequest("The request body is empty; expected a JSON object.")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = "it is not valid UTF-8" if "UTF-8" in str(exc) else f"{exc.msg} at position {exc.pos}"
        raise BadRequest(f"We could not parse the JSON body of your request: {detail}.") from None
    if not isinstance(value, dict):
        raise BadRequest("The request body must be a JSON object.")
    return value


def parse(spec: EndpointSpec, raw: bytes, pseudonym_key: bytes | None) -> ModelCall:
    call = parse_call(spec, decode_json(raw))
    if call.user is None:
        return call
    # The body's end user is whatever the caller chose (often an e-mail address): the policy, the budgets
    # and the logs see only a stable digest of it (the body forwarded upstream is left as it came).
    return dataclasses.replace(call, user=body_user(call.user, pseudonym_key))


def body_user(user: str, key: bytes | None) -> str:
    """Keyed with the pseudonym key when one is configured, so a digest cannot be matched to a guess."""
    digest = hmac.new(key, user.encode(), "sha256") if key is not None else hashlib.sha256(user.encode())
    return "u-" + digest.hexdigest()[:24]


def with_end_user(identity: Identity, call: ModelCall, request: web.Request, auth: AuthConfig) -> Identity:
    sidecar = auth.sidecar
    if sidecar is not None and sidecar.user_header:
        header_user = request.headers.get(sidecar.user_header)
        if header_user:
            return identity.with_user(header_user)
    if auth.user_from_body and call.user:
        return identity.with_user(call.user)
    return identity


def resolve_model(catalogue: Catalogue, call: ModelCall, upstreams: dict[str, Upstream]) -> CatalogueEntry:
    entry = catalogue.resolve(call.model)
    if entry is None:
        raise UnknownModel(f"The model `{call.model}` does not exist or you do not have access to it.",
                           param="model")
    if call.endpoint.name not in entry.endpoints:
        raise BadRequest(f"The model `{call.model}` is not available on {call.endpoint.route}.",
                         param="model", code="model_not_supported")
    # A request the upstream's API cannot express is refused before anything is decided (400).
    check_translatable(call.endpoint, upstreams[entry.upstream].config.kind, call.body)
    return entry


async def decide(decider: Decider, call: ModelCall, entry: CatalogueEntry, identity: Identity, analysis: Analysis,
                 observation: Observation) -> Decided:
    try:
        decided = await decider.decide(call, entry, identity, analysis, observation.request_id)
    except PolicyEngineError as exc:
        observation.policy_failed()
        raise Unavailable("The policy engine could not decide on this request, so it was not forwarded.",
                          code="policy_unavailable") from exc
    observation.decided(decided)
    return decided


def allowed_or_denied(decided: Decided, request_id: str) -> dict[str, str]:
    """The headers every answer to an allowed request carries; a denied one is a 403 with them."""
    headers = {"x-request-id": request_id, "x-policy-revision": decided.revision, **decided.decision.headers}
    if not decided.decision.allow:
        error = denial_error(decided.decision, decided.revision)
        error.headers.update(headers)
        error.headers.update(denial_headers(decided.decision, decided.budget_states, time.time()))
        raise error
    return headers


def carry_out(call: ModelCall, entry: CatalogueEntry, analysis: Analysis, decided: Decided, catalogue: Catalogue,
              pseudonym_key: bytes | None, observation: Observation) -> Effective:
    try:
        effective = enforce(call, entry, analysis, decided.decision, catalogue, pseudonym_key)
    except PolicyEngineError as exc:
        observation.policy_failed()
        raise Unavailable(f"The policy decision could not be carried out: {exc}.", code="policy_unavailable") \
            from exc
    observation.enforced(effective.entry, bool(effective.redacted))
    return effective


async def reserve(store: BudgetStore, decided: Decided, analysis: Analysis, effective: Effective,
                  observation: Observation) -> Reservation:
    try:
        reservation = await store.reserve(observation.request_id, decided.scopes, effective.cost_micros,
                                          analysis.prompt_tokens + effective.max_output_tokens)
    except (BudgetExceeded, RateLimited) as exc:
        observation.limited("budget" if isinstance(exc, BudgetExceeded) else "rate", exc.scope)
        raise
    observation.reserved(reservation)
    return reservation


async def forward_and_relay(request: web.Request, upstream: Upstream, tracing: Tracing, scanner: Scanner,
                            call: ModelCall, effective: Effective, redact_types: tuple[str, ...],
                            headers: dict[str, str], tally: Tally, observation: Observation) -> web.StreamResponse:
    with tracing.span(f"POST {upstream.name}", SpanKind.CLIENT,
                      {"gen_ai.request.model": effective.entry.upstream_model,
                       "server.address": upstream.config.base_url}):
        response = await forward(request, call, effective, upstream, tracing, observation)
        try:
            rules = OutputRules(scanner, frozenset(redact_types), effective.placeholders)
            relayed = await relay(request, call, effective, upstream, response, rules, tally, headers)
            if call.stream and not tally.client_gone:
                observation.completed(relayed.status)
            return relayed
        finally:
            response.close()


async def forward(request: web.Request, call: ModelCall, effective: Effective, upstream: Upstream, tracing: Tracing,
                  observation: Observation) -> aiohttp.ClientResponse:
    """The effective request to the upstream, across APIs through an adapter; returns at its headers."""
    adapter = adapter_for(call.endpoint, upstream.config.kind)
    upstream_headers = {"x-request-id": observation.request_id}
    path, body = call.endpoint.upstream_path, effective.body
    if adapter is None:
        upstream_headers.update({name: request.headers[name] for name in call.endpoint.forward_headers
                                 if name in request.headers})
    else:
        path, body = adapter.upstream_path, adapter.translate_request(effective.body, effective.max_output_tokens)
    tracing.inject(upstream_headers)
    try:
        response = await upstream.send(path, effective.entry.upstream_model, body, upstream_headers)
    except UpstreamError as exc:
        observation.upstream_failed(exc.code or "error")
        raise
    observation.forwarded(response.status)
    return response


async def relay(request: web.Request, call: ModelCall, effective: Effective, upstream: Upstream,
                response: aiohttp.ClientResponse, rules: OutputRules, tally: Tally,
                headers: dict[str, str]) -> web.StreamResponse:
    """JSON or SSE back to the client, in the caller's API, with the decision's response obligations."""
    adapter = adapter_for(call.endpoint, upstream.config.kind)
    if adapter is not None:
        return await relay_translated(request, adapter, call, upstream, response, rules, tally, headers)
    if call.stream and response.status == 200 and response.content_type == "text/event-stream":
        return await relay_stream(request, call.endpoint, upstream, response, rules, tally, headers,
                                  effective.hide_usage_chunk)
    return await relay_json(call.endpoint, upstream, response, rules, tally, headers)


async def settle(store: BudgetStore, estimator: TokenEstimator, call: ModelCall, effective: Effective,
                 analysis: Analysis, reservation: Reservation, tally: Tally, observation: Observation) -> None:
    """Never raises: the ledger-backed store already kept the record of a settle that failed."""
    usage, estimated = await final_usage(estimator, call, effective.entry, analysis, tally,
                                         observation.upstream_status)
    cost = cost_micros(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens,
                       effective.entry.micro_prices, usage.cache_write_input_tokens) if usage is not None else 0
    observation.settled(usage, estimated, cost)
    try:
        await store.settle(reservation, cost, usage.input_tokens + usage.output_tokens if usage else 0)
    except Exception:
        log.exception("settle_failed", reservation=reservation.id)


async def final_usage(estimator: TokenEstimator, call: ModelCall, entry: CatalogueEntry, analysis: Analysis,
                      tally: Tally, upstream_status: int | None) -> tuple[Usage | None, bool]:
    """Reported usage when there is some; else the prompt's count plus the streamed text actually generated
    (and True: estimated); None after an upstream error, when nothing was generated."""
    if tally.usage is not None:
        return tally.usage, False
    if upstream_status != 200:
        return None, False
    await estimator.ready(entry.encoding)  # the first count may have to build the tables (off the loop)
    prompt_tokens = counted(analysis, call, entry, estimator).prompt_tokens  # spend is never charged a bound
    return Usage(prompt_tokens, estimator.output(entry.encoding, tally.output_texts(call.endpoint)), 0), True

