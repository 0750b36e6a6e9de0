package llm.egress_test

import data.llm.egress

providers := {
	"providers": {
		"openai": {"name": "OpenAI", "examples": ["api.openai.com"]},
		"azure_openai": {"name": "Azure OpenAI", "examples": ["x.openai.azure.com"]},
		"aws_bedrock": {"name": "AWS Bedrock", "examples": ["bedrock-runtime.eu-west-1.amazonaws.com"]},
	},
	"domains": {"openai.com": "openai", "openai.azure.com": "azure_openai", "nameless.example": "nameless"},
	"patterns": [{"host": "bedrock*.*.amazonaws.com", "provider": "aws_bedrock"}],
}

settings := {
	"mode": "deny_providers",
	"proxy_base_url": "https://llm.example/v1",
	"allow_hosts": ["api.github.com"],
	"exceptions": {"apps": {"eval-harness": ["api.openai.com"]}},
	"internal_targets": {"10.2.0.0/16:8000": {"teams": ["ml"], "apps": ["batch"]}},
}

conn(host, app) := {"host": host, "port": 443, "method": "CONNECT", "identity": {"app": app, "team": "t"}}

# A destination as the proxy describes it: internal, admitted (or not) by allow_internal entries.
internal(host, port, app, team, rule, allowed_by) := {
	"host": host, "port": port, "method": "CONNECT", "identity": {"app": app, "team": team},
	"destination": {
		"host": host, "port": port, "addresses": [host], "internal": true, "rule": rule,
		"allowed_by": allowed_by, "resolved": true,
	},
}

test_provider_host_refused_with_proxy_url if {
	d := egress.decision with input as conn("api.openai.com", "web") with data.ai_providers as providers
		with data.egress as settings
	not d.allow
	d.provider == "openai"
	contains(d.reasons[0].message, "https://llm.example/v1")
}

test_provider_domains_match_every_subdomain if {
	egress.provider == "openai" with input as conn("eu.api.openai.com", "web") with data.ai_providers as providers
	egress.provider == "openai" with input as conn("us.api.openai.com", "web") with data.ai_providers as providers
	egress.provider == "openai" with input as conn("openai.com", "web") with data.ai_providers as providers
	egress.provider == "azure_openai" with input as conn("Contoso.OpenAI.Azure.com.", "web")
		with data.ai_providers as providers
	egress.provider == "azure_openai" with input as conn("a.b.openai.azure.com", "web")
		with data.ai_providers as providers
}

test_lookalike_hosts_are_not_providers if {
	egress.provider == null with input as conn("notopenai.com", "web") with data.ai_providers as providers
	egress.provider == null with input as conn("openai.com.evil.example", "web") with data.ai_providers as providers
	egress.provider == null with input as conn("openai.co", "web") with data.ai_providers as providers
}

test_wildcard_provider_hosts_match if {
	egress.provider == "aws_bedrock" with input as conn("bedrock-runtime.eu-west-1.amazonaws.com", "web")
		with data.ai_providers as providers
	egress.provider == null with input as conn("bedrock-runtime.a.b.amazonaws.com", "web")
		with data.ai_providers as providers
	egress.provider == null with input as conn("s3.eu-west-1.amazonaws.com", "web") with data.ai_providers as providers
}

test_provider_without_catalogue_entry_is_refused_by_its_id if {
	some r in egress.reasons with input as conn("api.nameless.example", "web") with data.ai_providers as providers
		with data.egress as settings
	r.code == "ai_provider_blocked"
	contains(r.message, "(nameless)")
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

test_internal_destination_not_admitted_by_the_proxy_is_refused if {
	d := egress.decision with input as internal("10.0.0.1", 22, "web", "t", "private", [])
		with data.ai_providers as providers with data.egress as settings
	not d.allow
	[r.code | some r in d.reasons] == ["internal_destination"]
	contains(d.reasons[0].message, "(private)")
	contains(d.reasons[0].message, "egress.allow_internal")
}

test_internal_target_admitted_without_a_data_entry_is_allowed_for_everyone if {
	d := egress.decision with input as internal("10.3.0.5", 8000, "web", "t", "private", ["10.3.0.0/16:8000"])
		with data.ai_providers as providers with data.egress as settings
	d.allow
}

test_internal_target_with_a_data_entry_is_allowed_for_its_teams_and_apps_only if {
	team := egress.decision with input as internal("10.2.0.5", 8000, "web", "ml", "private", ["10.2.0.0/16:8000"])
		with data.ai_providers as providers with data.egress as settings
	team.allow
	app := egress.decision with input as internal("10.2.0.5", 8000, "batch", "t", "private", ["10.2.0.0/16:8000"])
		with data.ai_providers as providers with data.egress as settings
	app.allow
	other := egress.decision with input as internal("10.2.0.5", 8000, "web", "t", "private", ["10.2.0.0/16:8000"])
		with data.ai_providers as providers with data.egress as settings
	[r.code | some r in other.reasons] == ["internal_destination"]
	contains(other.reasons[0].message, "internal_targets")
}

test_every_admitting_entry_must_grant_the_caller if {
	d := egress.decision with input as internal("10.2.0.5", 8000, "web", "ml", "private", ["10.2.0.0/16:8000", "10.0.0.0/8:*"])
		with data.ai_providers as providers
		with data.egress as object.union(settings, {"internal_targets": {
			"10.2.0.0/16:8000": {"teams": ["ml"]},
			"10.0.0.0/8:*": {"teams": ["ops"]},
		}})
	not d.allow
}

test_granted_internal_target_passes_allow_list_mode if {
	strict := object.union(settings, {"mode": "allow_list"})
	d := egress.decision with input as internal("10.2.0.5", 8000, "web", "ml", "private", ["10.2.0.0/16:8000"])
		with data.ai_providers as providers with data.egress as strict
	d.allow
	ungranted := egress.decision with input as internal("10.3.0.5", 8000, "web", "ml", "private", ["10.3.0.0/16:8000"])
		with data.ai_providers as providers with data.egress as strict
	[r.code | some r in ungranted.reasons] == ["host_not_allowed"]
}

test_input_without_destination_is_external if {
	not egress.internal with input as conn("10.0.0.1", "web")
}

test_shipped_catalogue_covers_major_providers if {
	hosts := [
		"api.openai.com", "eu.api.openai.com", "us.api.openai.com", "res1.openai.azure.com",
		"res1.cognitiveservices.azure.com", "api.anthropic.com", "generativelanguage.googleapis.com",
		"us-central1-aiplatform.googleapis.com", "bedrock-runtime.us-east-1.amazonaws.com", "api.mistral.ai",
		"api.cohere.com", "api.groq.com", "api.together.xyz", "api.fireworks.ai", "api.perplexity.ai",
		"api.deepseek.com", "api.x.ai", "openrouter.ai", "api-inference.huggingface.co", "api.replicate.com",
	]
	every host in hosts {
		egress.provider != null with input as conn(host, "web")
	}
}
