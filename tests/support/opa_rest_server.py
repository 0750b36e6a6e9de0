"""A test OPA: OPA's REST Data API (v1) served by aiohttp with regorus evaluating behind it.

Speaks what OpaServer and later integration tests rely on: POST/GET /v1/data/{path} -> {"result": ...}
or {} when undefined, `decision_id` when enabled, `?provenance` and `?metrics`, OPA's error JSON,
/health and PUT /v1/policies/{id}. Knobs (delay, status override) let tests simulate a slow or sick OPA.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from proxy.policy.bundle import PolicyBundle, load_bundle
from proxy.policy.embedded import compile_engine
from proxy.policy.errors import PolicyEngineError
from proxy.policy.rego import describe_error, evaluate_json

OPA_VERSION = "1.4.2-regorus"


@dataclass
class OpaState:
    bundle: PolicyBundle
    engine: Any
    decision_ids: bool = False
    delay_s: float = 0.0
    extra_policies: dict[str, str] = field(default_factory=dict)

    def rebuild(self) -> None:
        modules = self.bundle.modules + tuple(self.extra_policies.items())
        bundle = PolicyBundle(self.bundle.root, modules, self.bundle.data, self.bundle.revision)
        self.engine = compile_engine(bundle)


STATE = web.AppKey("opa_state", OpaState)


@dataclass
class RunningOpa:
    url: str
    runner: web.AppRunner
    state: OpaState

    async def close(self) -> None:
        await self.runner.cleanup()
        # regorus engines may only be dropped on the thread that built them (this loop's).
        self.state.engine = None


async def start_opa_server(policy_dir: Path, *, decision_ids: bool = False) -> RunningOpa:
    """Serves `policy_dir` on 127.0.0.1 with an ephemeral port; close() when done."""
    bundle = load_bundle(policy_dir)
    state = OpaState(bundle, compile_engine(bundle), decision_ids=decision_ids)
    app = build_app(state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return RunningOpa(f"http://127.0.0.1:{port}", runner, state)


def build_app(state: OpaState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/health", health)
    app.router.add_post("/v1/data", data_api)
    app.router.add_get("/v1/data", data_api)
    app.router.add_post("/v1/data/{path:.*}", data_api)
    app.router.add_get("/v1/data/{path:.*}", data_api)
    app.router.add_put("/v1/policies/{id:.*}", put_policy)
    return app


async def health(request: web.Request) -> web.Response:
    return _json({})


async def data_api(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if state.delay_s:
        await asyncio.sleep(state.delay_s)
    try:
        input_doc = await _input(request)
    except ValueError as exc:
        return _error(400, "invalid_parameter", str(exc))
    path = request.match_info.get("path", "").strip("/")
    rule = "data" + "".join(f".{part}" for part in path.split("/") if part)
    started = time.perf_counter_ns()
    try:
        result = _evaluate(state.engine, rule, input_doc)
    except PolicyEngineError as exc:
        return _error(500, "internal_error", str(exc))
    body: dict[str, Any] = {}
    if result is not None:
        body["result"] = result
    if state.decision_ids:
        body["decision_id"] = str(uuid.uuid4())
    if _flag(request, "provenance"):
        body["provenance"] = {"version": OPA_VERSION, "bundles": {"policies": {"revision": state.bundle.revision}}}
    if _flag(request, "metrics"):
        body["metrics"] = {"timer_rego_query_eval_ns": time.perf_counter_ns() - started}
    return _json(body)


async def put_policy(request: web.Request) -> web.Response:
    state = request.app[STATE]
    policy_id = request.match_info["id"]
    previous = state.extra_policies.get(policy_id)
    state.extra_policies[policy_id] = await request.text()
    try:
        state.rebuild()
    except PolicyEngineError as exc:
        if previous is None:
            del state.extra_policies[policy_id]
        else:
            state.extra_policies[policy_id] = previous
        return _error(400, "invalid_parameter", str(exc))
    return _json({})


async def _input(request: web.Request) -> dict[str, Any] | None:
    if request.method == "GET":
        raw = request.query.get("input")
        return None if raw is None else _object(raw.encode(), "input query parameter")
    body = await request.read()
    if not body.strip():
        return None
    doc = _object(body, "request body")
    unknown = set(doc) - {"input"}
    if unknown:
        raise ValueError(f"request body has unknown keys: {sorted(unknown)}")
    value = doc.get("input")
    if value is not None and not isinstance(value, dict):
        # OPA accepts any JSON input; our policies only take objects, and regorus needs one here.
        raise ValueError("input must be an object")
    return value


def _object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(f"{what} must be a JSON object")
    return doc


def _evaluate(engine: Any, rule: str, input_doc: dict[str, Any] | None) -> Any:
    # Rules go through eval_rule; package or root paths are documents, evaluated as a query.
    try:
        return evaluate_json(engine, rule, input_doc if input_doc is not None else {})
    except PolicyEngineError as exc:
        if "not a valid rule path" not in str(exc):
            raise
    try:
        answer = engine.eval_query_as_json(rule)
    except RuntimeError as exc:
        raise PolicyEngineError(describe_error(exc)) from exc
    results = orjson.loads(answer).get("result") or []
    return results[0]["expressions"][0]["value"] if results else None


def _flag(request: web.Request, name: str) -> bool:
    return name in request.query and request.query[name].lower() in ("", "true")


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)
