package llm.mcp_test

import data.llm.mcp

settings := {
	"methods": ["initialize", "tools/list", "tools/call", "resources/read", "notifications/initialized"],
	"destructive_teams": ["platform"],
	"secret_types": ["github_token", "aws_access_key"],
	"redact_arguments": ["email"],
	"redact_results": ["github_token"],
	"restore": true,
	"calls_per_minute": 10,
}

msg(method, tool, annotations, team) := {
	"version": 1,
	"request": {
		"api": "mcp", "server": "crm", "kind": "request", "method": method, "name": tool,
		"protocol_version": "2025-11-25", "session": true, "listing": false,
	},
	"tool": {"name": tool, "known": annotations != null, "annotations": object.get({"a": annotations}, "a", {})},
	"identity": {"app": "a", "team": team, "user": null, "key_id": "k-1", "source": "api_key", "admin": false},
	"pii": {"types": [], "counts": {}, "findings": []},
	"budget": {},
	"time": {"unix": 0, "weekday": 1, "hour_utc": 0},
}

read_only := {"readOnlyHint": true}

destructive := {"readOnlyHint": false, "destructiveHint": true}

test_read_only_tool_allowed_for_everyone if {
	d := mcp.decision with input as msg("tools/call", "lookup", read_only, "payments") with data.mcp as settings
	d.allow
	d.budgets == [{"scope": "mcp:k-1:crm:lookup", "requests_per_minute": 10}]
}

test_destructive_tool_denied_outside_the_team if {
	d := mcp.decision with input as msg("tools/call", "send_mail", destructive, "payments") with data.mcp as settings
	not d.allow
	d.reasons[0].code == "mcp_tool_not_allowed"
}

test_destructive_tool_allowed_for_the_team if {
	d := mcp.decision with input as msg("tools/call", "send_mail", destructive, "platform") with data.mcp as settings
	d.allow
}

test_a_tool_without_annotations_counts_as_destructive if {
	d := mcp.decision with input as msg("tools/call", "mystery", null, "payments") with data.mcp as settings
	not d.allow
}

test_secrets_in_arguments_denied_even_for_the_team if {
	m := json.patch(msg("tools/call", "send_mail", destructive, "platform"), [{
		"op": "replace", "path": "/pii",
		"value": {"types": ["github_token"], "counts": {"github_token": 1}, "findings": []},
	}])
	d := mcp.decision with input as m with data.mcp as settings
	not d.allow
	d.reasons[0].code == "mcp_secret_in_arguments"
}

test_pii_in_arguments_redacted_and_restored if {
	d := mcp.decision with input as msg("tools/call", "lookup", read_only, "payments") with data.mcp as settings
	d.redact_arguments == ["email"]
	d.restore
}

test_unlisted_method_denied if {
	d := mcp.decision with input as msg("sampling/createMessage", null, null, "platform") with data.mcp as settings
	not d.allow
	d.reasons[0].code == "mcp_method_not_allowed"
}

test_listing_is_not_counted_against_the_rate if {
	m := json.patch(msg("tools/call", "lookup", read_only, "payments"), [
		{"op": "replace", "path": "/request/listing", "value": true},
	])
	d := mcp.decision with input as m with data.mcp as settings
	d.allow
	d.budgets == []
}

test_tool_names_unfit_for_a_scope_share_one_scope if {
	d := mcp.decision with input as msg("tools/call", "a b|c", read_only, "payments") with data.mcp as settings
	d.budgets[0].scope == "mcp:k-1:crm:_other"
}

test_client_responses_and_streams_allowed if {
	m := json.patch(msg("tools/call", null, null, "payments"), [
		{"op": "replace", "path": "/request/kind", "value": "listen"},
		{"op": "replace", "path": "/request/method", "value": null},
		{"op": "replace", "path": "/tool", "value": null},
	])
	d := mcp.decision with input as m with data.mcp as settings
	d.allow
}
