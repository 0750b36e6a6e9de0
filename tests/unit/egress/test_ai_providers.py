"""The provider catalogue (policies/data/ai_providers.json) through the shipped egress policy: every entry
matches what it claims, look-alikes match nothing, and compiled and interpreted policies agree."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import pytest
import regorus

from proxy.policy.bundle import default_policy_dir
from proxy.policy.embedded import EmbeddedRego

CATALOGUE_FILE = default_policy_dir() / "data" / "ai_providers.json"
CATALOGUE: dict[str, Any] = json.loads(CATALOGUE_FILE.read_text())["ai_providers"]
PROVIDERS: dict[str, Any] = CATALOGUE["providers"]
EXAMPLES = [(host, pid) for pid, entry in PROVIDERS.items() for host in entry["examples"]]
IDENTITY = {"app": "web", "team": "shop", "user": None, "key_id": None, "source": "anonymous", "admin": False}
# What a security team expects to find, by the ids used in the file.
EXPECTED = {
    "openai", "azure_openai", "anthropic", "google_gemini", "google_vertex", "aws_bedrock", "mistral", "cohere",
    "groq", "together", "fireworks", "perplexity", "deepseek", "xai", "openrouter", "huggingface", "replicate",
    "ai21", "cerebras", "sambanova", "voyage", "moonshot", "zhipu", "alibaba_dashscope", "baidu_qianfan",
    "deepinfra", "nvidia_nim", "jina", "github_models", "ibm_watsonx", "aws_sagemaker", "oracle_genai",
}
# Hosts next to providers' that are not model APIs (or are other people's), and crafted look-alikes.
NOT_PROVIDERS = [
    "openai.com.evil.example", "notopenai.com", "api.openai.co", "openai.azure.com.evil.example", "googleapis.com",
    "storage.googleapis.com", "oauth2.googleapis.com", "aiplatform-fake.example", "us-central1-aiplatform.example",
    "amazonaws.com", "s3.us-east-1.amazonaws.com", "sts.us-east-1.amazonaws.com", "bedrock-runtime.amazonaws.com",
    "bedrock-runtime.us-east-1.s3.amazonaws.com", "azure.com", "management.azure.com", "ai.azure.com",
    "login.microsoftonline.com", "huggingface.co", "cdn-lfs.huggingface.co", "github.com", "api.github.com",
    "nvidia.com", "api.ngc.nvidia.com", "aliyuncs.com", "oss-cn-hangzhou.aliyuncs.com", "baidubce.com",
    "cloudflare.com", "api.cloudflare.com", "pypi.org", "files.pythonhosted.org", "x.ai.example", "cloud.ibm.com",
    "oraclecloud.com", "objectstorage.us-ashburn-1.oraclecloud.com", "volces.com", "registry.npmjs.org",
]


@cache
def engines() -> tuple[EmbeddedRego, EmbeddedRego]:
    return EmbeddedRego.from_dir(default_policy_dir()), EmbeddedRego.from_dir(default_policy_dir(), compiled=True)


def provider_of(host: str) -> str | None:
    interpreter, compiled = engines()
    document = {"version": 1, "host": host, "port": 443, "method": "CONNECT", "identity": IDENTITY}
    decision = interpreter.evaluate_rule("data.llm.egress.decision", document)
    assert compiled.evaluate_entrypoint("data.llm.egress.decision", document) == decision, host
    assert decision["allow"] is (decision["provider"] is None)
    provider: str | None = decision["provider"]
    return provider


def glob_matches(pattern: str, host: str) -> bool:
    """The policy's own matcher (Rego glob.match with `.` delimiters), asked directly."""
    engine = regorus.Engine()
    engine.add_policy("g.rego", 'package g\n\nhit := glob.match(input.pattern, ["."], input.host)\n')
    engine.set_input({"pattern": pattern, "host": host})
    return bool(engine.eval_rule("data.g.hit"))


@pytest.mark.parametrize(("host", "provider"), EXAMPLES)
def test_every_example_is_classified_as_its_provider(host: str, provider: str) -> None:
    assert provider_of(host) == provider
    assert provider_of(host.upper() + ".") == provider


@pytest.mark.parametrize(("domain", "provider"), CATALOGUE["domains"].items())
def test_every_domain_claims_an_example_of_its_provider(domain: str, provider: str) -> None:
    assert provider in PROVIDERS
    claimed = [h for h in PROVIDERS[provider]["examples"] if h == domain or h.endswith("." + domain)]
    assert claimed, f"{domain}: no example of {provider} lies in it"
    assert provider_of(domain) == provider
    assert provider_of(f"deep.sub.{domain}") == provider


@pytest.mark.parametrize("entry", CATALOGUE["patterns"], ids=lambda e: e["host"])
def test_every_pattern_claims_an_example_of_its_provider(entry: dict[str, str]) -> None:
    provider = entry["provider"]
    assert provider in PROVIDERS
    claimed = [h for h in PROVIDERS[provider]["examples"] if glob_matches(entry["host"], h)]
    assert claimed, f"{entry['host']}: no example of {provider} matches it"
    for host in claimed:
        assert provider_of(host) == provider


@pytest.mark.parametrize("host", NOT_PROVIDERS)
def test_look_alikes_and_neighbours_are_not_providers(host: str) -> None:
    assert provider_of(host) is None


def test_the_catalogue_file_matches_its_schema() -> None:
    schema = json.loads((default_policy_dir() / "schema" / "egress_catalogue.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(CATALOGUE_FILE.read_text()))


def test_the_catalogue_covers_what_a_security_team_expects() -> None:
    assert set(PROVIDERS) >= EXPECTED
    assert all(entry["name"] and entry["examples"] for entry in PROVIDERS.values())
    used = set(CATALOGUE["domains"].values()) | {p["provider"] for p in CATALOGUE["patterns"]}
    assert used == set(PROVIDERS), "a provider without a domain or pattern can never match"


@pytest.mark.parametrize("host", [
    "eu.api.openai.com", "us.api.openai.com", "API.OpenAI.com.", "anything.openai.com", "res1.openai.azure.com",
    "res1.cognitiveservices.azure.com", "bedrock-runtime.us-east-1.amazonaws.com",
    "bedrock-agent-runtime.eu-west-3.amazonaws.com", "us-central1-aiplatform.googleapis.com",
    "generativelanguage.googleapis.com",
])
def test_the_hosts_named_in_the_issue_are_providers(host: str) -> None:
    assert provider_of(host) is not None
