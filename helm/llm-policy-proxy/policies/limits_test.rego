package llm.limits_test

import data.llm.limits

table := {
	"default": {"max_prompt_tokens": 1000, "max_tokens": 500, "on_max_tokens": "cap"},
	"teams": {"strict": {"max_tokens": 100, "on_max_tokens": "deny"}},
}

req(team, prompt, max_tokens) := {
	"request": {"endpoint": "chat.completions", "model": "m", "max_tokens": max_tokens},
	"identity": {"team": team},
	"model": {"context_window": 4000},
	"estimate": {"prompt_tokens": prompt},
}

test_prompt_over_limit_denied if {
	reasons := limits.deny with input as req("ops", 1001, 10) with data.limits as table
	{r.code | some r in reasons} == {"prompt_too_large"}
}

test_prompt_at_limit_allowed if {
	count(limits.deny) == 0 with input as req("ops", 1000, 10) with data.limits as table
}

test_context_window_is_not_the_policys_to_judge if {
	doc := object.union(req("ops", 5000, 10), {"model": {"context_window": 4096}})
	table_big := object.union(table, {"default": {"max_prompt_tokens": 100000}})
	count(limits.deny) == 0 with input as doc with data.limits as table_big
}

test_max_tokens_capped_in_cap_mode if {
	limits.max_tokens == 500 with input as req("ops", 10, 4000) with data.limits as table
	count(limits.deny) == 0 with input as req("ops", 10, 4000) with data.limits as table
}

test_no_cap_when_request_is_within_limit if {
	not limits.max_tokens with input as req("ops", 10, 400) with data.limits as table
}

test_unset_max_tokens_is_capped if {
	limits.max_tokens == 100 with input as req("strict", 10, null) with data.limits as table
}

test_team_in_deny_mode_refuses_large_max_tokens if {
	reasons := limits.deny with input as req("strict", 10, 101) with data.limits as table
	{r.code | some r in reasons} == {"max_tokens_exceeded"}
}

test_team_values_override_defaults if {
	limits.limits == {"max_prompt_tokens": 1000, "max_tokens": 100, "on_max_tokens": "deny"} with input as req("strict", 1, 1)
		with data.limits as table
}

test_embeddings_have_no_output_cap if {
	doc := object.union(req("ops", 10, null), {"request": {"endpoint": "embeddings"}})
	not limits.max_tokens with input as doc with data.limits as table
	not limits.generates_text with input as doc with data.limits as table
}

test_requested_reads_request_max_tokens if {
	limits.requested == 7 with input as req("ops", 1, 7) with data.limits as table
}
