# Budget limits per team, app and user as data (returned for the proxy to reserve against), and the
# reaction to the current spend: downgrade to a cheaper model near the limit, deny when exhausted.
package llm.budgets

# object.get rather than an else chain: the compiled engine (regorus RVM) does not fall through
# `else` when a body's lookup is undefined.
limits_for(kind, name) := object.get(data.budgets.scopes, [kind, name], object.get(data.budgets.scopes, [kind, "*"], []))

# The entry point data.llm.budgets.scopes (input: policies/schema/scopes_input.v1.json): the budget
# limits of a call, from who calls and which model only. The proxy asks it before it reads the spend,
# so the scopes whose state this package judges below are the scopes it then reserves on. In dry-run
# (llm.budgets in data.config.audit_only) nothing is held.
default scopes := []

scopes := budgets if not "llm.budgets" in data.llm.main.audit_only

budgets := [object.union(limit, {"scope": sprintf("%s:%s", [kind, name])}) |
	some kind in ["team", "app", "user"]
	name := input.identity[kind]
	is_string(name)
	some limit in limits_for(kind, name)
]

exhausted contains scope if {
	some scope, state in input.budget
	state.percent >= data.budgets.deny_at_percent
}

deny contains {"code": "budget_exhausted", "message": msg} if {
	some scope in exhausted
	state := input.budget[scope]
	msg := sprintf("budget %s is exhausted: %d%% of this %s's limit used", [scope, round(state.percent), state.window])
}

near_limit if {
	some state in input.budget
	state.percent >= data.budgets.downgrade_at_percent
}

downgrade_to := target if {
	near_limit
	count(exhausted) == 0
	target := data.budgets.downgrade[input.request.model]
	data.llm.models.model_allowed(target)
}

default headers := {}

headers := {"x-policy-model-downgrade": sprintf("%s -> %s", [input.request.model, downgrade_to])}
