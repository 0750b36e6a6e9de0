"""POST /v1/messages/count_tokens, answered by the proxy from its offline estimate.

Nothing is forwarded: a count needs no model, so no prompt leaves for one, no budget is touched, and a
count cannot become a way around the policy. The caller must still be allowed the model (the same
decision as GET /v1/models). The estimate's measured error is in docs/anthropic.md.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web

from proxy.gateway.observation import Observation
from proxy.gateway.pipeline import decode_json, read_body

from ...components import COMPONENTS
from ...errors import BadRequest, Unavailable, UnknownModel
from ...identity import Identity
from ...policy.errors import PolicyEngineError
from ...policy.input import identity_input
from .messages import MESSAGES

COUNT_TOKENS_ROUTE = "/v1/messages/count_tokens"


async def count_tokens(request: web.Request, record: Observation, identity: Identity) -> web.Response:
    services = request.app[COMPONENTS]
    record.called("messages.count_tokens")
    raw = await read_body(request, services.config.server.max_body_bytes)
    body = decode_json(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: Field required", param="model", code="missing_required_parameter")
    # The Messages rules, less max_tokens: a count has no output.
    MESSAGES.validate({**body, "max_tokens": 1})
    record.called("messages.count_tokens", model)
    entry = services.catalogue.resolve(model)
    if entry is None:
        raise UnknownModel(f"model: {model}", param="model")
    if MESSAGES.name not in entry.endpoints:
        raise BadRequest(f"The model `{model}` is not available on {MESSAGES.route}.", param="model",
                         code="model_not_supported")
    try:
        allowed = await services.policy.allowed_models(identity_input(identity), [entry.name])
    except PolicyEngineError as exc:
        raise Unavailable("The policy engine could not decide which models you may use.",
                          code="policy_unavailable") from exc
    if entry.name not in allowed:
        raise UnknownModel(f"model: {model}", param="model")
    record.resolved(entry)
    await services.estimator.ready(entry.encoding)  # never build the tables on the loop
    if len(raw) <= services.config.tokens.offload_bytes:
        tokens = services.estimator.prompt(MESSAGES.name, entry.encoding, body)
    else:
        tokens = await asyncio.to_thread(services.estimator.prompt, MESSAGES.name, entry.encoding, body)
    record.counted(tokens)
    return web.Response(body=orjson.dumps({"input_tokens": tokens}), content_type="application/json")
