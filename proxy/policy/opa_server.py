"""OpaServer: decisions from an OPA server over its REST Data API, on one pooled session.

AsyncOpaClient owns the session (TLS, client certificate, bearer token, pooled connector). Evaluation
is a thin POST on that same session because the client's query_rule retries with backoff (which
could double latency past our deadline) and raise_for_status() discards OPA's error JSON
({"code", "message"}), which operators need to tell an eval conflict from an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from opa_client.opa_async import AsyncOpaClient

from proxy.policy.decision import (
    Decision,
    EgressDecision,
    McpDecision,
    parse_allowed_models,
    parse_decision,
    parse_egress_decision,
    parse_mcp_decision,
)
from proxy.policy.engine import DEFAULT_ENTRYPOINTS, EntryPoints
from proxy.policy.errors import PolicyEngineError
from proxy.policy.input import INPUT_VERSION

_JSON = {"Content-Type": "application/json"}


class OpaServer:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.5,
        token: str | None = None,
        entrypoints: EntryPoints = DEFAULT_ENTRYPOINTS,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OPA url must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._entrypoints = entrypoints
        self._revision = f"opa:{self.url}"
        self._client = AsyncOpaClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            token=token,
            retries=0,
            timeout=timeout_s,
        )
        self._started = False

    async def start(self) -> OpaServer:
        """Opens the pooled session; call once on the event loop (e.g. in a cleanup_ctx)."""
        if not self._started:
            await self._client._init_session()
            self._started = True
        return self

    @property
    def revision(self) -> str:
        return self._revision

    @property
    def reads_estimate(self) -> bool:
        return True  # the server's policies are not ours to read

    async def evaluate(self, input: dict[str, Any]) -> Decision:
        return parse_decision(await self.query(self._entrypoints.decision, input))

    async def allowed_models(self, identity: dict[str, Any], models: Sequence[str]) -> list[str]:
        doc = {"version": INPUT_VERSION, "identity": identity, "models": list(models)}
        return parse_allowed_models(await self.query(self._entrypoints.allowed_models, doc), models)

    async def evaluate_egress(self, input: dict[str, Any]) -> EgressDecision:
        return parse_egress_decision(await self.query(self._entrypoints.egress, input))

    async def evaluate_mcp(self, input: dict[str, Any]) -> McpDecision:
        return parse_mcp_decision(await self.query(self._entrypoints.mcp, input))

    async def healthy(self) -> bool:
        return bool(await self._client.check_health())

    async def close(self) -> None:
        await self._client.close_connection()
        self._started = False

    async def query(self, rule: str, input: dict[str, Any]) -> Any:
        """The raw result of `rule` (None when undefined), within the timeout or PolicyEngineError."""
        session = self._client._session
        if session is None:
            raise PolicyEngineError("OpaServer used before start()")
        url = f"{self._client.root_url}/data/{_data_path(rule)}?provenance"
        body = orjson.dumps({"input": input})
        try:
            async with asyncio.timeout(self._timeout_s):
                async with session.post(url, data=body, headers=_JSON) as response:
                    payload = await response.read()
                    status = response.status
        except TimeoutError as exc:
            raise PolicyEngineError(f"OPA at {self.url} did not answer within {self._timeout_s}s") from exc
        except aiohttp.ClientError as exc:
            raise PolicyEngineError(f"OPA at {self.url} unreachable: {exc}") from exc
        document = _json(payload, status)
        if status != 200:
            raise PolicyEngineError(
                f"OPA answered {status} {document.get('code', 'error')}: {document.get('message', '')}".rstrip()
            )
        self._revision = _revision(document.get("provenance"), self._revision)
        return document.get("result")


def _data_path(rule: str) -> str:
    if not rule.startswith("data."):
        raise PolicyEngineError(f"entry point must start with 'data.', got {rule!r}")
    return rule.removeprefix("data.").replace(".", "/")


def _json(payload: bytes, status: int) -> dict[str, Any]:
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PolicyEngineError(f"OPA answered {status} with a body that is not JSON") from exc
    if not isinstance(document, dict):
        raise PolicyEngineError(f"OPA answered {status} with a JSON {type(document).__name__}, not an object")
    return document


def _revision(provenance: object, fallback: str) -> str:
    # OPA reports one revision per activated bundle, or a single legacy "revision".
    if not isinstance(provenance, dict):
        return fallback
    bundles = provenance.get("bundles")
    if isinstance(bundles, dict) and bundles:
        revisions = {name: b.get("revision") for name, b in bundles.items() if isinstance(b, dict)}
        if len(revisions) == 1:
            only = next(iter(revisions.values()))
            return str(only) if only else fallback
        return ",".join(f"{name}:{rev}" for name, rev in sorted(revisions.items()) if rev) or fallback
    revision = provenance.get("revision")
    return revision if isinstance(revision, str) and revision else fallback
