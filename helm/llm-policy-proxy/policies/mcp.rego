# MCP gateway: one decision per message to an MCP server, data.llm.mcp.decision (contract: docs/mcp.md,
# policies/schema/mcp_input.v1.json and mcp_decision.v1.json). Read-only tools for everyone, the rest
# only for data.mcp.destructive_teams; no secrets in tool arguments; PII in arguments redacted and
# restored in the answer; secrets in results redacted; calls per minute per caller and tool.
package llm.mcp

request := input.request

# MCP's own default: a tool that does not say it is read-only may be destructive. A tool the server
# never listed has no annotations, so it is treated the same way.
read_only if input.tool.annotations.readOnlyHint == true

may_call if read_only

may_call if input.identity.team in data.mcp.destructive_teams

reasons contains {"code": "mcp_method_not_allowed", "message": msg} if {
	request.kind in {"request", "notification"}
	not request.method in data.mcp.methods
	msg := sprintf("MCP method %s is not allowed through this gateway", [request.method])
}

reasons contains {"code": "mcp_tool_not_allowed", "message": msg} if {
	request.method == "tools/call"
	not may_call
	msg := sprintf("tool %s on %s is not read-only; only teams %s may call it", [
		input.tool.name, request.server, concat(", ", data.mcp.destructive_teams),
	])
}

secrets_found := {type | some type in input.pii.types; type in data.mcp.secret_types}

reasons contains {"code": "mcp_secret_in_arguments", "message": msg} if {
	count(secrets_found) > 0
	msg := sprintf("the arguments contain secrets (%s), which may not be sent to a tool", [
		concat(", ", sort(secrets_found)),
	])
}

caller := input.identity.key_id if input.identity.key_id != null else := input.identity.app

# Scope names cannot hold every character a tool name may have: such tools share one scope per caller.
tool_key := input.tool.name if {
	is_string(input.tool.name)
	regex.match(`^[A-Za-z0-9._/-]{1,128}$`, input.tool.name)
} else := "_other"

limits := [{
	"scope": sprintf("mcp:%s:%s:%s", [caller, request.server, tool_key]),
	"requests_per_minute": data.mcp.calls_per_minute,
}] if {
	request.method == "tools/call"
	not request.listing
} else := []

decision := {
	"allow": count(reasons) == 0,
	"reasons": [r | some r in reasons],
	"redact_arguments": data.mcp.redact_arguments,
	"redact_results": data.mcp.redact_results,
	"restore": data.mcp.restore,
	"budgets": limits,
}
