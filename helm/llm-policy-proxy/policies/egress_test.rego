package llm.egress_test

import data.llm.egress

providers := {"providers": [
	{"id": "openai", "name": "OpenAI", "hosts": ["api.openai.com"]},
	{"id": "azure_openai", "name": "Azure OpenAI", "hosts": ["*.openai.azure.com"]},
	{"id": "aws_bedrock", "name": "AWS Bedrock", "hosts": ["bedrock-runtime.*.amazonaws.com"]},
]}

settings := {
	"mode": "deny_providers",
	"proxy_base_url": "https://llm.example/v1",
	"allow_hosts": ["api.github.com"],
	"exceptions": {"apps": {"eval-harness": ["api.openai.com"]}},
}

conn(host, app) := {"host": host, "port": 443, "method": "CONNECT", "identity": {"app": app, "team": "t"}}

test_provider_host_refused_with_proxy_url if {
	d := egress.decision with input as conn("api.openai.com", "web") with data.ai_providers as providers
		with data.egress as settings
	not d.allow
	d.provider == "openai"
	contains(d.reasons[0].message, "https://llm.example/v1")
}

test_wildcard_provider_hosts_match if {
	egress.matches[0].id == "azure_openai" with input as conn("Contoso.OpenAI.Azure.com.", "web")
		with data.ai_providers as providers
	egress.matches[0].id == "aws_bedrock" with input as conn("bedrock-runtime.eu-west-1.amazonaws.com", "web")
		with data.ai_providers as providers
	count(egress.matches) == 0 with input as conn("a.b.openai.azure.com", "web") with data.ai_providers as providers
}

test_host_is_normalised if {
	egress.host == "api.openai.com" with input as conn("API.OpenAI.com.", "web")
}

test_non_provider_allowed if {
	d := egress.decision with input as conn("pypi.org", "web") with data.ai_providers as providers
		with data.egress as settings
	d == {"allow": true, "reasons": [], "provider": null}
}

test_app_exception_allows_provider if {
	d := egress.decision with input as conn("api.openai.com", "eval-harness") with data.ai_providers as providers
		with data.egress as settings
	d.allow
	d.provider == "openai"
	egress.excepted with input as conn("api.openai.com", "eval-harness") with data.egress as settings
}

test_allow_list_mode_refuses_unlisted_hosts if {
	strict := object.union(settings, {"mode": "allow_list"})
	d := egress.decision with input as conn("pypi.org", "web") with data.ai_providers as providers
		with data.egress as strict
	[r.code | some r in d.reasons] == ["host_not_allowed"]
	egress.mode == "allow_list" with data.egress as strict
	egress.host_listed(["api.github.com"]) with input as conn("api.github.com", "web")
	ok := egress.decision with input as conn("api.github.com", "web") with data.ai_providers as providers
		with data.egress as strict
	ok.allow
}

test_reasons_name_the_provider if {
	some r in egress.reasons with input as conn("x.openai.azure.com", "web") with data.ai_providers as providers
		with data.egress as settings
	r.code == "ai_provider_blocked"
	contains(r.message, "Azure OpenAI")
}

test_provider_null_for_other_hosts if {
	egress.provider == null with input as conn("example.com", "web") with data.ai_providers as providers
}

test_shipped_catalogue_covers_major_providers if {
	hosts := [
		"api.openai.com", "res1.openai.azure.com", "api.anthropic.com", "generativelanguage.googleapis.com",
		"us-central1-aiplatform.googleapis.com", "bedrock-runtime.us-east-1.amazonaws.com", "api.mistral.ai",
		"api.cohere.com", "api.groq.com", "api.together.xyz", "api.fireworks.ai", "api.perplexity.ai",
		"api.deepseek.com", "api.x.ai", "openrouter.ai", "api-inference.huggingface.co", "api.replicate.com",
	]
	every host in hosts {
		count(egress.matches) > 0 with input as conn(host, "web")
	}
}
