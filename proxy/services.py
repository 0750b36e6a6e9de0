"""The runtime objects every request needs, built once by the app and kept under typed keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .audit import AuditRecord
from .catalogue import Catalogue
from .config import Config
from .identity import Identity
from .upstream.client import Upstream


@dataclass(slots=True)
class Services:
    config: Config
    catalogue: Catalogue
    upstreams: dict[str, Upstream]


SERVICES = web.AppKey("services", Services)
IDENTITY = web.RequestKey("identity", Identity)
AUDIT = web.RequestKey("audit", AuditRecord)
REQUEST_ID = web.RequestKey("request_id", str)
