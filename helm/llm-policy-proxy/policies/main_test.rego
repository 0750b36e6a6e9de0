package llm.main_test

import data.llm.main

base := {
	"version": 1,
	"request": {"endpoint": "chat.completions", "model": "gpt-4o", "max_tokens": 256},
	"identity": {"team": "payments", "app": "billing-api", "user": null},
	"model": {"provider": "openai", "context_window": 128000},
	"estimate": {"prompt_tokens": 100},
	"pii": {"types": []},
	"budget": {},
}

with_pii(types) := object.union(base, {"pii": {"types": types}})

test_packages_aggregated_in_order if {
	main.packages == ["llm.models", "llm.pii", "llm.limits", "llm.budgets"]
}

test_denials_keyed_by_package if {
	{name | some name, _ in main.denials} == {"llm.models", "llm.pii", "llm.limits", "llm.budgets"} with input as base
}

test_clean_request_allowed_with_obligations if {
	d := main.decision with input as base
	d.allow
	d.reasons == []
	d.audit == []
	every type in ["card", "email", "phone", "github_token"] { type in d.redact } # blocked types: in answers
	d.restore == true
	not d.budgets # named by data.llm.budgets.scopes, asked before the decision
}

test_deny_reasons_collected if {
	d := main.decision with input as with_pii(["aws_access_key"])
	not d.allow
	[r.code | some r in d.reasons] == ["pii_blocked"]
	main.reasons == d.reasons with input as with_pii(["aws_access_key"])
}

test_audit_only_package_reports_but_allows if {
	d := main.decision with input as with_pii(["aws_access_key"]) with data.config.audit_only as ["llm.pii"]
	d.allow
	[r.code | some r in d.audit] == ["pii_blocked"]
	not d.redact
	main.audit_only == {"llm.pii"} with data.config.audit_only as ["llm.pii"]
}

test_obligations_from_enforced_packages if {
	doc := object.union(base, {"request": {"max_tokens": 100000}, "identity": {"team": "research"}})
	main.obligations.max_tokens == 16384 with input as doc
	not main.obligations.max_tokens with input as doc with data.config.audit_only as ["llm.limits"]
}

test_downgrade_model_and_header if {
	doc := object.union(base, {"budget": {"team:payments": {"percent": 95, "spent_usd": 475, "limit_usd": 500, "window": "month"}}})
	d := main.decision with input as doc
	d.model == "gpt-4o-mini"
	d.headers["x-policy-model-downgrade"] == "gpt-4o -> gpt-4o-mini"
}
