"""Traffic seeded with PII and secrets leaves none of them in logs, decision logs, metrics or spans.

The proxy runs as a real `llm-policy-proxy serve` process with JSON logs on stdout and traces exported
over OTLP/HTTP to a sink in this test, so every output is checked exactly as an operator would see it.
Values travel in every field a model or provider sees (names, metadata, tool and schema descriptions,
refusals, data URLs, Responses instructions and items), in evasive forms, and in tool-call arguments the
model writes; a finding's JSON path may name a field, never a value.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from aiohttp import web

from tests.conftest import UpstreamHandle
from tests.support.config import KEYS, config_document
from tests.support.processes import start_proxy, stop_proxy
from tests.support.servers import ServerThread
from tests.support.tool_call_model import ToolCallModel

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "+44 20 7946 0958"
SSN = "123-45-6789"
GITHUB = "ghp_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8"
AWS = "AKIA" + "Z7QW3ERT5YUI2OPA"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA PRIVATE KEY-----"
IBAN = "DE89 3704 0044 0532 0130 00"
NAME_EMAIL = "r.okafor@example.net"  # in a message's name, a tool schema, metadata, ... (never in message text)
ARGS_PHONE = "+1 415 555 2671"  # only ever written by the model, in tool-call arguments
BASIC = "ZGVwbG95OlRyMHViNGRvcjN4IQ=="
EVASIONS = ["４１１１ １１１１ １１１１ １１１１", "jane\u200b.doe@exa\u200cmple.org", "4111.1111.1111.1111"]
SEEDED = [EMAIL, CARD, CARD.replace(" ", ""), PHONE, SSN, GITHUB, AWS, "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn",
          IBAN, NAME_EMAIL, ARGS_PHONE, BASIC, "7946 0958", "79460958", "r.okafor", *EVASIONS, *KEYS.values()]
# Fragments of a value (the phone's last groups) catch a partial redaction; four digits alone would also
# turn up by chance in any timing or count on /metrics.


class OtlpSink:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def app(self) -> web.Application:
        async def traces(request: web.Request) -> web.Response:
            self.bodies.append(await request.read())
            return web.Response(body=b"", content_type="application/x-protobuf")
        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        return app


@pytest.mark.slow
def test_seeded_pii_and_secrets_never_reach_any_output(servers: ServerThread, upstream: UpstreamHandle,
                                                       tmp_path: Path) -> None:
    sink = OtlpSink()
    sink_runner, sink_port = servers.start_app(sink.app())
    tools = ToolCallModel()
    tools.arguments = f'{{"dial": "{ARGS_PHONE}", "card": "{CARD}"}}'
    tools_runner, tools_port = servers.start_app(tools.build_app())
    document = config_document(upstream.url, tmp_path)
    document["upstreams"]["tools"] = {"kind": "openai_compatible", "base_url": f"http://127.0.0.1:{tools_port}/v1"}
    document["models"]["tool-model"] = {"upstream": "tools", "upstream_model": "tool-model",
                                        "prices": {"input": 1.0, "output": 1.0}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    log_path = tmp_path / "proxy.log"
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "leak-test"}
    with open(log_path, "wb") as log_file:
        proc, root = start_proxy(config, env=env, stdout=log_file)
    try:
        base = root + "/v1"

        def client(key: str) -> openai.OpenAI:
            return openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=10)

        research, payments = client(KEYS["research"]), client(KEYS["payments"])
        research.chat.completions.create(model="gpt-4o", messages=[
            {"role": "system", "content": f"Escalate to {EMAIL} or {PHONE}"},
            {"role": "user", "content": f"My SSN is {SSN}, mail {EMAIL}, iban {IBAN}"}])
        payments.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": f"refund {CARD}"}])
        list(payments.chat.completions.create(model="gpt-4o", stream=True,
                                              messages=[{"role": "user", "content": f"card {CARD} for {EMAIL}"}]))
        for secret in (GITHUB, AWS, PEM, f"Authorization: Basic {BASIC}", *EVASIONS[::2]):
            with pytest.raises(openai.PermissionDeniedError):
                research.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": secret}])
        with pytest.raises(openai.PermissionDeniedError):
            research.responses.create(model="gpt-4o", input=f"deploy with {GITHUB}")
        research.embeddings.create(model="text-embedding-3-small", input=[f"customer {EMAIL}", f"ssn {SSN}"])
        # Every other field a model or provider sees, and an evasive form.
        research.chat.completions.create(
            model="gpt-4o", metadata={"contact": NAME_EMAIL},
            messages=[{"role": "system", "content": "be brief", "name": f"bot {NAME_EMAIL}"},
                      {"role": "assistant", "content": [{"type": "refusal", "refusal": f"not {NAME_EMAIL}"}]},
                      {"role": "user", "content": f"mail {EVASIONS[1]}"}],
            tools=[{"type": "function", "function": {"name": "send", "description": f"as {NAME_EMAIL}", "parameters": {
                "type": "object", "properties": {"to": {"type": "string", "description": NAME_EMAIL}}}}}],
            response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {
                "type": "object", "description": f"reply to {NAME_EMAIL}"}}})
        research.responses.create(model="gpt-4o", instructions=f"answer {NAME_EMAIL}", input=[
            {"role": "user", "content": [{"type": "input_text", "text": f"hi {NAME_EMAIL}"}]},
            {"type": "function_call", "call_id": "c", "name": "lookup", "arguments": f'{{"q": "{NAME_EMAIL}"}}'},
            {"type": "function_call_output", "call_id": "c", "output": f"found {NAME_EMAIL}"}])
        upstream.model.reply_override = f"Call {PHONE} or mail {EMAIL}"
        list(research.chat.completions.create(model="gpt-4o", stream=True,
                                              messages=[{"role": "user", "content": "contact?"}]))
        # Tool-call arguments the model writes, whole and streamed, chat and responses.
        research.chat.completions.create(model="tool-model", messages=[{"role": "user", "content": "call them"}])
        list(research.chat.completions.create(model="tool-model", stream=True,
                                              messages=[{"role": "user", "content": "call them"}]))
        list(research.responses.create(model="tool-model", input="call them", stream=True))
        with pytest.raises(openai.AuthenticationError):
            client("sk-" + "unknownkey" * 4).chat.completions.create(model="gpt-4o", messages=[
                {"role": "user", "content": EMAIL}])
        # The body's `user` is an end-user id the caller chose; it may hold anything.
        research.chat.completions.create(model="gpt-4o", user=NAME_EMAIL.replace("okafor", "user-okafor"),
                                         messages=[{"role": "user", "content": "hello"}])
        metrics = httpx.get(root + "/metrics").text
    finally:
        try:
            stop_proxy(proc, log=log_path)
        finally:
            servers.stop_app(sink_runner)
            servers.stop_app(tools_runner)

    logs = log_path.read_text()
    spans = b"".join(sink.bodies)
    assert '"event":"decision"' in logs and '"event":"request"' in logs
    assert '"trace_id"' in logs
    assert spans, "no spans were exported"
    assert "llm_proxy_pii_findings_total" in metrics
    assert '"path":"metadata.contact"' in logs and '"path":"tools[0].function.description"' in logs
    outputs = {"logs": logs, "metrics": metrics, "spans": spans.decode("latin-1")}
    leaks = [(name, value) for name, text in outputs.items() for value in SEEDED if value in text]
    assert leaks == []
    # Redaction also kept the values from the provider; blocked requests never reached it. (The shipped
    # policy forwards SSNs and IBANs: they are found and reported, but only redacted where policy data says.)
    forwarded = str([r.body for r in upstream.model.received] + tools.received)
    assert not [value for value in SEEDED if value not in (SSN, IBAN) and value in forwarded]
    user = NAME_EMAIL.replace("okafor", "user-okafor")
    # The body's `user` reaches the policy, budgets and logs only as its digest.
    assert user not in logs and user not in outputs["spans"] and user not in metrics
    assert '"user":"u-' in logs
