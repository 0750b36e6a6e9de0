"""The one path every model call takes, stage by stage, top to bottom (see docs/architecture.md)."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiohttp import web
from opentelemetry.trace import SpanKind

from .analyse import analyse_off_loop
from .answer_transform import OutputRules
from .audit import AuditRecord
from .budget import BudgetExceeded, BudgetState, RateLimited, Reservation, cost_micros, rate_limit_headers
from .catalogue import CatalogueEntry
from .decide import decide
from .endpoints.base import EndpointSpec, Json, ModelCall, Usage, parse_call
from .endpoints.bounds import check_context
from .enforce import Effective, enforce
from .errors import BadRequest, PayloadTooLarge, Unavailable, UnknownModel, UpstreamError
from .identity import Identity
from .limit_signals import denial_headers
from .policy.decision import denial_error
from .policy.errors import PolicyEngineError
from .relay import Tally, relay_json, relay_stream
from .services import AUDIT, DECIDED, IDENTITY, REQUEST_ID, SERVICES, Services
from .telemetry.logging import get_logger
from .upstream.adapters import adapter_for, check_translatable
from .upstream.adapters.relay import relay_translated
from .upstream.client import Upstream

log = get_logger("proxy.pipeline")


async def serve_model_call(request: web.Request, spec: EndpointSpec) -> web.StreamResponse:
    services = request.app[SERVICES]
    record = request[AUDIT]
    record.endpoint = spec.name
    request_id = request[REQUEST_ID]

    # parse: body -> typed call (400, 413)
    raw = await read_body(request, services.config.server.max_body_bytes)
    call = parse_call(spec, decode_json(raw))
    record.model_requested, record.stream = call.model, call.stream
    request[IDENTITY] = identity = with_end_user(request[IDENTITY], call, request, services)

    # resolve: public model name -> catalogue entry (404)
    entry = resolve_model(services, call)
    record.model_used, record.upstream = entry.name, entry.upstream
    # A request the upstream's API cannot express is refused before anything is decided (400).
    check_translatable(call.endpoint, services.upstreams[entry.upstream].config.kind, call.body)

    # estimate + scan: prompt tokens, worst-case cost, PII findings (pure; big bodies off the loop)
    with services.tracing.stage("pii.scan"):
        analysis = await analyse_off_loop(call, entry, services.estimator, services.scanner, len(raw),
                                          services.config.tokens.offload_bytes)
    record.input_tokens = analysis.prompt_tokens
    record.pii_types = tuple(sorted(analysis.counts()))
    check_context(call.endpoint.api, analysis.prompt_tokens, entry.context_window)  # 400, before the policy

    # budget state + decide: the policy decision, with fail-closed on engine or store errors (503)
    try:
        with services.tracing.stage("policy.evaluate"):
            decided, scopes = await decide(services.policy, services.store, services.scopes, call, entry,
                                           identity, analysis, fail_open=services.config.policy.fail_open,
                                           request_id=request_id,
                                           include_prompt=services.config.policy.include_prompt)
    except PolicyEngineError as exc:
        record.decision = "error"
        services.metrics.policy_failed(engine=services.config.policy.engine, fail_open=False)
        raise Unavailable("The policy engine could not decide on this request, so it was not forwarded.",
                          code="policy_unavailable") from exc
    request[DECIDED] = decided
    decision = decided.decision
    observe_budgets(services, decided.budget_states)
    record.policy_revision = decided.revision
    record.reason_codes = tuple(r.code for r in decision.reasons)
    record.audit_codes = tuple(r.code for r in decision.audit)
    if decided.failed_open:
        record.decision = "fail_open"
        services.metrics.policy_failed(engine=services.config.policy.engine, fail_open=True)
    else:
        record.decision = "allow" if decision.allow else "deny"
        services.metrics.policy_decided(allow=decision.allow, reasons=record.reason_codes, audit=record.audit_codes,
                                        seconds=decided.seconds, engine=services.config.policy.engine)
    headers = {"x-request-id": request_id, "x-policy-revision": decided.revision, **decision.headers}
    pii_actions = {t: ("block" if not decision.allow else "redact" if t in decision.redact else "allow")
                   for t in analysis.counts()}
    services.metrics.pii_found(counts=analysis.counts(), action_of=pii_actions, direction="request")
    if not decision.allow:
        error = denial_error(decision, decided.revision)
        error.headers.update(headers)
        error.headers.update(denial_headers(decision, decided.budget_states, time.time()))
        raise error

    # enforce: model rewrite, max_tokens cap, request redaction (pure)
    try:
        effective = enforce(call, entry, analysis, decision, services.catalogue, services.pseudonym_key)
    except PolicyEngineError as exc:
        record.decision = "error"
        raise Unavailable(f"The policy decision could not be carried out: {exc}.", code="policy_unavailable") \
            from exc
    record.model_used, record.upstream = effective.entry.name, effective.entry.upstream
    record.extra["provider"] = effective.entry.provider
    if effective.redacted:
        record.pii_action = "redact"

    # reserve: worst-case cost on every scope, atomically (429, 503)
    try:
        with services.tracing.stage("budget.reserve"):
            reservation = await services.store.reserve(request_id, scopes, effective.cost_micros,
                                                       analysis.prompt_tokens + effective.max_output_tokens)
    except (BudgetExceeded, RateLimited) as exc:
        kind = "budget" if isinstance(exc, BudgetExceeded) else "rate"
        services.metrics.child(services.metrics.limited, kind, exc.scope.partition(":")[0]).inc()
        record.extra["limited_scope"] = exc.scope
        raise
    if reservation.rate is not None:
        headers.update(rate_limit_headers(reservation.rate))
    if reservation.local:
        record.extra["budget_fail_open"] = True
        services.metrics.child(services.metrics.fail_open, "budget_store").inc()

    tally = Tally()
    started = time.perf_counter()
    upstream = services.upstreams[effective.entry.upstream]
    try:
        with services.tracing.span(f"POST {upstream.name}", SpanKind.CLIENT,
                                   {"gen_ai.request.model": effective.entry.upstream_model, "server.address":
                                    upstream.config.base_url}):
            return await forward_and_relay(request, services, call, effective, upstream, decision.redact, headers,
                                           tally, record)
    finally:
        # settle: actual cost committed, the rest released, whatever happened (shielded from cancellation)
        record.upstream_seconds = time.perf_counter() - started
        if tally.first_content_at is not None:
            record.ttft_seconds = tally.first_content_at - started
        await asyncio.shield(settle(services, call, effective, analysis.prompt_tokens, reservation, tally, record,
                                    identity))


async def forward_and_relay(request: web.Request, services: Services, call: ModelCall, effective: Effective,
                            upstream: Upstream, redact_types: tuple[str, ...], headers: dict[str, str], tally: Tally,
                            record: AuditRecord) -> web.StreamResponse:
    # forward: effective request -> upstream response headers (502, 504); across APIs through an adapter
    adapter = adapter_for(call.endpoint, upstream.config.kind)
    upstream_headers = {"x-request-id": request[REQUEST_ID]}
    path, body = call.endpoint.upstream_path, effective.body
    if adapter is None:
        upstream_headers.update({name: request.headers[name] for name in call.endpoint.forward_headers
                                 if name in request.headers})
    else:
        path, body = adapter.upstream_path, adapter.translate_request(effective.body, effective.max_output_tokens)
    services.tracing.inject(upstream_headers)
    try:
        response = await upstream.send(path, effective.entry.upstream_model, body, upstream_headers)
    except UpstreamError as exc:
        services.metrics.child(services.metrics.upstream_errors, upstream.name, exc.code or "error").inc()
        raise
    record.upstream_status = response.status
    if response.status >= 500 or response.status == 429:
        services.metrics.child(services.metrics.upstream_errors, upstream.name, f"status_{response.status}").inc()
    try:
        # relay: JSON or SSE back to the client, with the decision's response obligations
        rules = OutputRules(services.scanner, frozenset(redact_types), effective.placeholders)
        if adapter is not None:
            return await relay_translated(request, adapter, call, upstream, response, rules, tally, headers, record)
        if call.stream and response.status == 200 and response.content_type == "text/event-stream":
            streamed = await relay_stream(request, call.endpoint, upstream, response, rules, tally, headers,
                                          effective.hide_usage_chunk)
            if not tally.client_gone:
                record.completed_status = streamed.status
            return streamed
        return await relay_json(call.endpoint, upstream, response, rules, tally, headers)
    finally:
        response.close()


def observe_budgets(services: Services, states: tuple[BudgetState, ...]) -> None:
    # Per-user scopes are unbounded label values: exported only when the operator opts in.
    for state in states:
        if state.limit_micros is None or (state.scope.startswith("user:")
                                          and not services.config.telemetry.metrics_user_label):
            continue
        services.metrics.budget_observed(scope=f"{state.scope}/{state.window}", spent_usd=state.spent_micros / 1e6,
                                         limit_usd=state.limit_micros / 1e6)


async def settle(services: Services, call: ModelCall, effective: Effective, prompt_estimate: int,
                 reservation: Reservation, tally: Tally, record: AuditRecord, identity: Identity) -> None:
    usage = final_usage(services, call, effective.entry, prompt_estimate, tally, record)
    cost = cost_micros(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens,
                       effective.entry.micro_prices, usage.cache_write_input_tokens) if usage is not None else 0
    record.cost_usd = cost / 1_000_000
    if tally.stream_error:
        record.extra["stream_error"] = tally.stream_error
        services.metrics.child(services.metrics.upstream_errors, effective.entry.upstream, tally.stream_error).inc()
    if tally.client_gone:
        record.client_disconnected = True
    if tally.response_pii:
        record.extra["response_pii"] = dict(tally.response_pii)
        services.metrics.pii_found(counts=tally.response_pii, action_of={t: "redact" for t in tally.response_pii},
                                   direction="response")
    try:
        with services.tracing.stage("budget.settle"):
            await services.store.settle(reservation, cost, usage.input_tokens + usage.output_tokens if usage else 0)
    except Exception:  # settle must never fail the request; the ledger-backed store already kept the record
        log.exception("settle_failed", reservation=reservation.id)
    if usage is not None:
        services.metrics.tokens_used(model=effective.entry.name, team=identity.team, app=identity.app,
                                     input_tokens=usage.input_tokens, cached_input_tokens=usage.cached_input_tokens,
                                     output_tokens=usage.output_tokens, cost_usd=record.cost_usd)
    services.metrics.upstream_finished(operation=call.endpoint.name, model=effective.entry.name,
                                       provider=effective.entry.provider, upstream=effective.entry.upstream,
                                       seconds=record.upstream_seconds, ttft=record.ttft_seconds)


def final_usage(services: Services, call: ModelCall, entry: CatalogueEntry, prompt_estimate: int, tally: Tally,
                record: AuditRecord) -> Usage | None:
    """Reported usage when there is some; else the estimate plus the streamed text actually generated."""
    if tally.usage is not None:
        usage = tally.usage
    elif record.upstream_status != 200:
        return None  # an upstream error: nothing generated, the reservation is released
    else:
        output = services.estimator.output(entry.encoding, tally.output_texts(call.endpoint))
        usage = Usage(prompt_estimate, output, 0)
        record.extra["usage_source"] = "estimated"
    record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
    record.cached_input_tokens = usage.cached_input_tokens
    if usage.cache_write_input_tokens:
        record.extra["cache_write_input_tokens"] = usage.cache_write_input_tokens
    return usage


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


def with_end_user(identity: Identity, call: ModelCall, request: web.Request, services: Services) -> Identity:
    sidecar = services.config.auth.sidecar
    if sidecar is not None and sidecar.user_header:
        header_user = request.headers.get(sidecar.user_header)
        if header_user:
            return identity.with_user(header_user)
    if services.config.auth.user_from_body and call.user:
        return identity.with_user(call.user)
    return identity


def resolve_model(services: Services, call: ModelCall) -> CatalogueEntry:
    entry = services.catalogue.resolve(call.model)
    if entry is None:
        raise UnknownModel(f"The model `{call.model}` does not exist or you do not have access to it.",
                           param="model")
    if call.endpoint.name not in entry.endpoints:
        raise BadRequest(f"The model `{call.model}` is not available on {call.endpoint.route}.",
                         param="model", code="model_not_supported")
    return entry
