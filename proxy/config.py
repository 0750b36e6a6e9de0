"""Typed, frozen configuration: one YAML file with ${ENV} interpolation, validated once at start-up.

This is the only module that reads the environment: for interpolation, and for the OTEL_* and Prometheus
variables, parsed into `Config.telemetry_env` (proxy/telemetry/env.py) when the config is loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .egress.config import EgressConfig
from .identity.config import ApiKey, JwtConfig
from .mcp.config import McpConfig
from .telemetry.env import TelemetryEnv, parse_telemetry_env

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Endpoint = Literal["chat.completions", "completions", "responses", "embeddings", "messages"]
ALL_ENDPOINTS: tuple[Endpoint, ...] = ("chat.completions", "completions", "responses", "embeddings", "messages")
# What a model serves when its config names no endpoints: Anthropic's API has only Messages (and chat
# completions reach it through translation); an OpenAI-style upstream serves Messages through translation.
DEFAULT_ENDPOINTS: dict[str, tuple[Endpoint, ...]] = {
    "anthropic": ("messages", "chat.completions"),
    "openai": ("chat.completions", "completions", "responses", "messages"),
}


PromptEstimate = Literal["auto", "exact", "bound"]  # tokens.prompt_estimate


class ConfigError(Exception):
    """A config problem, with the dotted path of the offending key in the message."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    drain_timeout_s: float = Field(30.0, ge=0)
    # After the drain, how long closing the stores, the exporters and the threads may take before the
    # worker is declared stuck: it prints every thread's stack to stderr and exits 1.
    exit_grace_s: float = Field(10.0, gt=0)
    keepalive_timeout_s: float = Field(75.0, gt=0)
    # Cyclic GC (proxy/runtime.py): freeze the start-up heap; (young, middle, old) generation thresholds.
    gc_freeze: bool = True
    # How long a thread may hold the GIL while another waits (CPython's default: 5 ms). Background work
    # (trace export, big prompts scanned in a thread) then delays a request by at most this much.
    gil_switch_interval_ms: float = Field(1.0, gt=0, le=100)
    gc_thresholds: tuple[Annotated[int, Field(gt=0)], Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] = \
        (5000, 20, 100)


class SidecarIdentity(_Frozen):
    app: str = Field(min_length=1)
    team: str = Field(min_length=1)
    # A header set by the application (trusted: only it can reach a sidecar on 127.0.0.1).
    user_header: str | None = None


class AuthConfig(_Frozen):
    mode: Literal["gateway", "sidecar"] = "gateway"
    keys: tuple[ApiKey, ...] = ()
    # Keys with a lifecycle (`llm-policy-proxy keys create|list|revoke`), reloaded when the file changes
    # (polled every keys_reload_interval_s) or on SIGHUP; hashes only. Ids are shared with `keys`.
    keys_file: Path | None = None
    keys_reload_interval_s: float = Field(2.0, gt=0)
    # Label key metrics by key id (bounded by the number of issued keys); off: one aggregate series.
    metrics_per_key: bool = False
    jwt: JwtConfig = JwtConfig()
    sidecar: SidecarIdentity | None = None
    # Take the end user from the request body's `user` field when no header names one.
    user_from_body: bool = True

    @model_validator(mode="after")
    def _mode_needs_its_part(self) -> AuthConfig:
        if self.mode == "sidecar" and self.sidecar is None:
            raise ValueError("mode 'sidecar' needs auth.sidecar (app and team of the application)")
        ids = [k.id for k in self.keys]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate key ids: {', '.join(dupes)}")
        return self


class Timeouts(_Frozen):
    connect_s: float = Field(5.0, gt=0)
    first_byte_s: float = Field(120.0, gt=0)
    idle_s: float = Field(60.0, gt=0)
    # A client gone mid-stream: how long the upstream is read on to count what it generated (0: close at once).
    drain_on_disconnect_s: float = Field(3.0, ge=0)


class UpstreamConfig(_Frozen):
    # anthropic: the native Messages API (base_url like https://api.anthropic.com/v1; key sent as x-api-key).
    kind: Literal["openai", "azure", "openai_compatible", "anthropic"] = "openai_compatible"
    base_url: str
    api_key: str | None = None
    api_key_file: Path | None = None
    api_version: str | None = None
    # kind anthropic: the anthropic-version sent when the caller sent none (a chat request translated).
    anthropic_version: str = "2023-06-01"
    timeouts: Timeouts = Timeouts()
    max_connections: int = Field(256, gt=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _azure_needs_version(self) -> UpstreamConfig:
        if self.kind == "azure" and not self.api_version:
            raise ValueError("kind 'azure' needs api_version (e.g. 2024-10-21)")
        if self.api_key and self.api_key_file:
            raise ValueError("set api_key or api_key_file, not both")
        return self

    def resolved_key(self) -> str | None:
        if self.api_key_file is not None:
            try:
                return self.api_key_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"api_key_file {self.api_key_file}: {exc.strerror}") from exc
        return self.api_key or None


class Prices(_Frozen):
    """USD per 1M tokens."""

    input: float = Field(ge=0)
    output: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)
    # Anthropic prompt-cache writes (cache_creation_input_tokens); default: the input price.
    cache_write_input: float | None = Field(None, ge=0)


class ModelConfig(_Frozen):
    upstream: str
    # The upstream's own name for the model (for Azure: the deployment name).
    upstream_model: str | None = None
    aliases: tuple[str, ...] = ()
    prices: Prices
    context_window: int = Field(128_000, gt=0)
    max_output_tokens: int = Field(4096, gt=0)
    # claude-3 / claude-4.7: the offline Claude estimates (docs/anthropic.md), for models before and since
    # the tokenizer Claude Opus 4.7 introduced.
    encoding: Literal["o200k_base", "cl100k_base", "claude-3", "claude-4.7"] = "o200k_base"
    # None: the upstream kind's DEFAULT_ENDPOINTS.
    endpoints: tuple[Endpoint, ...] | None = None
    owned_by: str = "organization"


class PolicyConfig(_Frozen):
    engine: Literal["embedded", "opa"] = "embedded"
    # Run the embedded policies on regorus's compiled RVM (~4x faster). A version is served compiled only
    # if the RVM compiles it, it has no rule that may conflict and it agrees with the interpreter on the
    # whole validation sample; otherwise the interpreter serves it (logged and counted). `policy check`
    # reports which.
    compiled: bool = False
    dir: Path = Path("policies")
    opa_url: str = "http://127.0.0.1:8181"
    opa_timeout_ms: int = Field(200, gt=0)
    # Embedded engine: an evaluation not answered within this fails closed (the evaluator process that
    # is stuck on it is replaced), and a version whose sample takes longer is rejected at load.
    timeout_ms: int = Field(500, gt=0)
    fail_open: bool = False
    reload_interval_s: float = Field(2.0, ge=0)
    include_prompt: bool = False
    # compact: a clean allow is logged with its result and only the input's request and identity; denials,
    # audit findings, obligations, PII and engine errors keep the whole input. full: every decision whole.
    decision_log: Literal["compact", "full"] = "compact"
    shadow_dir: Path | None = None
    shadow_log: Path | None = None


class BreakerConfig(_Frozen):
    # Store calls failing (errors or timeouts) in a row before the budget store's circuit opens.
    failures: int = Field(5, ge=1)
    # How long an open circuit sends nothing to the store before one probe is let through.
    cooldown_s: float = Field(2.0, gt=0)


class BudgetConfig(_Frozen):
    store: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: Path = Path("var/budget.sqlite3")
    # How long a write waits for another process's lock on the SQLite file before the store counts as down.
    sqlite_busy_timeout_s: float = Field(2.0, gt=0)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Per store call. Too short and a busy event loop (big prompts being tokenized) turns slow replies
    # into false outages; a real outage is still answered (503 or fail-open) within this bound.
    redis_timeout_s: float = Field(1.0, gt=0)
    key_prefix: str = "llmpp"
    fail_open: bool = False
    ledger_path: Path = Path("var/ledger.jsonl")
    # A hold whose process stopped renewing it (it died) is reaped this long after the last renewal; live
    # requests renew theirs every third of it. Default: the longest upstream connect + first-byte timeout.
    reservation_ttl_s: float | None = Field(None, gt=0)
    breaker: BreakerConfig = BreakerConfig()
    # The policy input's budget state may be this old (per worker, same scopes): saves a store round trip
    # on most requests. Limits stay exact: every reserve checks them atomically in the store.
    state_max_age_s: float = Field(1.0, ge=0)


class TokensConfig(_Frozen):
    # Verified o200k_base/cl100k_base files (the Docker image bakes them here); default: the bpe-openai wheel.
    vocab_dir: Path | None = None
    # Bodies larger than this are tokenized and scanned in a worker thread, off the event loop.
    offload_bytes: int = Field(16 * 1024, ge=0)
    # auto: prompts tokenized with the model's encoding only when something needs the count: the policy
    # (or the shadow policy) may read input.estimate, or a budget scope the decision judged has a spend or
    # token limit; otherwise each text counts as its UTF-8 length, a safe upper bound. exact: always
    # tokenized. bound: never for the policy or limits (reservations hold a little more until settle).
    # In every mode a bound over the model's context window is counted before the request is refused.
    prompt_estimate: PromptEstimate = "auto"


class CustomPiiType(_Frozen):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    pattern: str
    validator: str | None = None
    category: Literal["pii", "secret"] = "pii"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class PiiConfig(_Frozen):
    custom: tuple[CustomPiiType, ...] = ()
    # With a key, placeholders are HMAC tokens stable across requests instead of per-request numbers.
    pseudonymize_key_file: Path | None = None


class TelemetryConfig(_Frozen):
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # False: no /metrics endpoint and no metric updates, for a deployment that does not scrape the proxy
    # (and for bench/telemetry_ab.py's telemetry-off side).
    metrics: bool = True
    # Label series by user id: unbounded cardinality, so opt-in only.
    metrics_user_label: bool = False
    # A child span per pipeline stage (pii.scan, policy.evaluate, budget.reserve, budget.settle). Each costs
    # ~50 us of CPU when exported (docs/performance.md); without them the stage times are attributes of the
    # server span.
    stage_spans: bool = False


class Config(_Frozen):
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    upstreams: dict[str, UpstreamConfig]
    models: dict[str, ModelConfig]
    policy: PolicyConfig = PolicyConfig()
    budget: BudgetConfig = BudgetConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    tokens: TokensConfig = TokensConfig()
    pii: PiiConfig = PiiConfig()
    egress: EgressConfig = EgressConfig()
    mcp: McpConfig = McpConfig()
    base_dir: Annotated[Path, Field(exclude=True)] = Path(".")
    # From the environment, not the file (a key of that name in the file is unknown).
    telemetry_env: Annotated[TelemetryEnv, Field(exclude=True)] = TelemetryEnv()

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        if not self.upstreams:
            raise ValueError("upstreams: at least one upstream is needed")
        names: dict[str, str] = {}
        for name, model in self.models.items():
            if model.upstream not in self.upstreams:
                known = ", ".join(sorted(self.upstreams))
                raise ValueError(f"models.{name}.upstream: unknown upstream {model.upstream!r} (known: {known})")
            untranslatable = set(model.endpoints or ()) - set(DEFAULT_ENDPOINTS["anthropic"])
            if self.upstreams[model.upstream].kind == "anthropic" and untranslatable:
                raise ValueError(f"models.{name}.endpoints: an anthropic upstream serves only messages and "
                                 f"chat.completions, not {', '.join(sorted(untranslatable))}")
            for public in (name, *model.aliases):
                if public in names:
                    raise ValueError(f"models.{name}: name {public!r} is already used by model {names[public]!r}")
                names[public] = name
        auth = self.auth
        if auth.mode == "gateway" and not (auth.keys or auth.keys_file or auth.jwt.issuers):
            raise ValueError("auth.keys: gateway mode needs keys, a keys_file or jwt.issuers (or use auth.mode: "
                             "sidecar)")
        return self

    def path(self, relative: Path) -> Path:
        """Resolve a path from the config against the config file's folder."""
        return relative if relative.is_absolute() else (self.base_dir / relative)


def interpolate(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed YAML document."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{where or '<root>'}: environment variable {name} is not set")
        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "<root>"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{location}: {message}")
    return "\n".join(lines)


def parse_config(document: Any, *, base_dir: Path, env: Mapping[str, str] | None = None) -> Config:
    if not isinstance(document, dict):
        raise ConfigError("<root>: the config must be a mapping")
    env = os.environ if env is None else env
    data = interpolate(document, env)
    if "telemetry_env" in data:
        raise ConfigError("telemetry_env: unknown key")
    try:
        telemetry_env = parse_telemetry_env(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return Config.model_validate({**data, "base_dir": base_dir, "telemetry_env": telemetry_env})
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_config(document, base_dir=path.resolve().parent, env=env)

