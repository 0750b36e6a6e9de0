"""The runtime objects every request needs, built once by the app and kept under typed keys."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from .audit import AuditRecord
from .budget import BudgetStore
from .catalogue import Catalogue
from .config import Config
from .decide import Decided, ScopeMemory
from .eventlog import EventLog
from .identity import Identity
from .identity.authenticator import Authenticator
from .pii import Scanner
from .policy.engine import PolicyEngine
from .policy.shadow import ShadowEvaluator
from .telemetry.metrics import Metrics
from .telemetry.tracing import Tracing
from .tokens import TokenEstimator
from .upstream.client import Upstream


@dataclass(slots=True)
class Services:
    config: Config
    catalogue: Catalogue
    upstreams: dict[str, Upstream]
    metrics: Metrics
    estimator: TokenEstimator
    scanner: Scanner
    policy: PolicyEngine
    store: BudgetStore
    scopes: ScopeMemory
    pseudonym_key: bytes | None
    tracing: Tracing
    shadow: ShadowEvaluator | None = None
    background: set[asyncio.Task[object]] = field(default_factory=set)


SERVICES = web.AppKey("services", Services)
METRICS = web.AppKey("metrics", Metrics)
EVENT_LOG = web.AppKey("event_log", EventLog)
TRACING = web.AppKey("tracing", Tracing)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
IDENTITY = web.RequestKey("identity", Identity)
AUDIT = web.RequestKey("audit", AuditRecord)
REQUEST_ID = web.RequestKey("request_id", str)
DECIDED = web.RequestKey("decided", Decided)
