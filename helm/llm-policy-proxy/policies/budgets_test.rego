package llm.budgets_test

import data.llm.budgets

config := {
	"scopes": {
		"team": {"payments": [{"limit_usd": 500, "window": "month"}], "*": [{"limit_usd": 100, "window": "month"}]},
		"app": {"billing-api": [{"limit_usd": 50, "window": "day"}]},
		"user": {"*": [{"limit_usd": 5, "window": "day"}]},
	},
	"downgrade_at_percent": 90,
	"deny_at_percent": 100,
	"downgrade": {"gpt-4o": "gpt-4o-mini", "o1": "o3-mini"},
}

catalogue := {"default": ["gpt-4o", "gpt-4o-mini", "o1"], "teams": {}, "apps": {}}

spent(model, percent) := {
	"request": {"model": model},
	"identity": {"team": "payments", "app": "billing-api", "user": null},
	"budget": {"team:payments": {"scope": "team:payments", "limit_usd": 500, "spent_usd": percent * 5, "percent": percent, "window": "month"}},
}

test_limits_per_scope_from_data if {
	budgets.budgets == [
		{"scope": "team:payments", "limit_usd": 500, "window": "month"},
		{"scope": "app:billing-api", "limit_usd": 50, "window": "day"},
	] with input as spent("gpt-4o", 10) with data.budgets as config
}

test_wildcard_limits_for_unlisted_team_and_user if {
	doc := {"identity": {"team": "ops", "app": "tool", "user": "u-1"}, "budget": {}}
	budgets.budgets == [
		{"scope": "team:ops", "limit_usd": 100, "window": "month"},
		{"scope": "user:u-1", "limit_usd": 5, "window": "day"},
	] with input as doc with data.budgets as config
}

test_limits_for_falls_back_to_empty if {
	budgets.limits_for("app", "tool") == [] with data.budgets as config
}

test_downgrade_near_limit if {
	budgets.downgrade_to == "gpt-4o-mini" with input as spent("gpt-4o", 90) with data.budgets as config
		with data.models as catalogue
	budgets.headers == {"x-policy-model-downgrade": "gpt-4o -> gpt-4o-mini"} with input as spent("gpt-4o", 95)
		with data.budgets as config with data.models as catalogue
}

test_no_downgrade_below_threshold if {
	not budgets.downgrade_to with input as spent("gpt-4o", 89.9) with data.budgets as config with data.models as catalogue
	not budgets.near_limit with input as spent("gpt-4o", 89.9) with data.budgets as config
}

test_no_downgrade_to_a_model_the_caller_may_not_use if {
	not budgets.downgrade_to with input as spent("o1", 95) with data.budgets as config with data.models as catalogue
}

test_exhausted_budget_denied if {
	reasons := budgets.deny with input as spent("gpt-4o", 100) with data.budgets as config
	{r.code | some r in reasons} == {"budget_exhausted"}
	budgets.exhausted == {"team:payments"} with input as spent("gpt-4o", 100) with data.budgets as config
	not budgets.downgrade_to with input as spent("gpt-4o", 100) with data.budgets as config with data.models as catalogue
}

test_scopes_are_the_budgets_from_identity_alone if {
	who := {"version": 1, "identity": {"app": "billing-api", "team": "payments", "user": null, "key_id": "k-1",
		"source": "api_key"}, "request": {"endpoint": "chat.completions", "api": "openai", "model": "gpt-4o"}}
	budgets.scopes == [
		{"scope": "team:payments", "limit_usd": 500, "window": "month"},
		{"scope": "app:billing-api", "limit_usd": 50, "window": "day"},
	] with input as who with data.budgets as config
}

test_no_scopes_held_in_dry_run if {
	who := {"version": 1, "identity": {"app": "a", "team": "payments", "user": null, "key_id": null, "source": "api_key"},
		"request": {"endpoint": "chat.completions", "api": "openai", "model": "gpt-4o"}}
	budgets.scopes == [] with input as who with data.budgets as config with data.config.audit_only as ["llm.budgets"]
}
