package llm.models_test

import data.llm.models

catalogue := {
	"default": ["gpt-4o-mini"],
	"teams": {"payments": ["gpt-4o", "text-embedding-3-*"], "research": ["*"]},
	"apps": {"support-bot": ["gpt-4.1-nano"]},
}

chat(model, team, app) := {
	"request": {"endpoint": "chat.completions", "model": model},
	"identity": {"team": team, "app": app},
	"model": {"provider": "openai"},
}

test_team_list_allows_its_model if {
	count(models.deny) == 0 with input as chat("gpt-4o", "payments", "billing-api") with data.models as catalogue
}

test_team_list_refuses_other_model if {
	reasons := models.deny with input as chat("o1", "payments", "billing-api") with data.models as catalogue
	some reason in reasons
	reason.code == "model_not_allowed"
	contains(reason.message, "o1")
}

test_app_list_wins_over_team_list if {
	reasons := models.deny with input as chat("gpt-4o", "payments", "support-bot") with data.models as catalogue
	{r.code | some r in reasons} == {"model_not_allowed"}
}

test_default_list_for_unlisted_team if {
	count(models.deny) == 0 with input as chat("gpt-4o-mini", "ops", "tool") with data.models as catalogue
	count(models.deny) == 1 with input as chat("gpt-4o", "ops", "tool") with data.models as catalogue
}

test_wildcard_pattern_matches_dotted_names if {
	models.model_allowed("text-embedding-3-large") with input as chat("x", "payments", "a") with data.models as catalogue
	models.model_allowed("gpt-4.1") with input as chat("x", "research", "a") with data.models as catalogue
}

test_unknown_model_denied if {
	doc := object.union(chat("gpt-9", "research", "lab"), {"model": null})
	reasons := models.deny with input as doc with data.models as catalogue
	{r.code | some r in reasons} == {"unknown_model"}
}

test_models_list_needs_no_model if {
	doc := {"request": {"endpoint": "models.list", "model": null}, "identity": {"team": "ops", "app": "a"}, "model": null}
	count(models.deny) == 0 with input as doc with data.models as catalogue
}

test_caller_patterns_fall_back_to_default if {
	models.caller_patterns == ["gpt-4o-mini"] with input as chat("x", "ops", "tool") with data.models as catalogue
}

test_allowed_models_filters_catalogue_in_order if {
	doc := {"identity": {"team": "payments", "app": "billing-api"}, "models": ["o1", "gpt-4o", "text-embedding-3-small", "gpt-4o-mini"]}
	models.allowed_models == ["gpt-4o", "text-embedding-3-small"] with input as doc with data.models as catalogue
}
