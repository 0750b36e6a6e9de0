# Which models a caller may use: an app's list wins over its team's, a team's over the default.
# Also answers the /v1/models listing in one evaluation (allowed_models).
package llm.models

# object.get rather than an else chain: the compiled engine (regorus RVM) does not fall through
# `else` when a body's lookup is undefined.
caller_patterns := object.get(
	data.models.apps,
	input.identity.app,
	object.get(data.models.teams, input.identity.team, data.models.default),
)

# An exact name never pays for glob.match (which costs about as much as a whole rule).
# null delimiters: "gpt-4*" must match "gpt-4.1" although it contains a dot.
model_allowed(name) if {
	name in caller_patterns
} else := true if {
	some pattern in caller_patterns
	contains(pattern, "*")
	glob.match(pattern, null, name)
}

# /v1/models: input {"identity": {...}, "models": ["gpt-4o", ...]}; linear in the catalogue.
allowed_models := [name | some name in input.models; model_allowed(name)]

deny contains {"code": "unknown_model", "message": msg} if {
	input.request.endpoint != "models.list"
	input.model == null
	msg := sprintf("model %q is not in the proxy's model catalogue", [input.request.model])
}

deny contains {"code": "model_not_allowed", "message": msg} if {
	input.request.endpoint != "models.list"
	input.model != null
	not model_allowed(input.request.model)
	msg := sprintf("model %q is not allowed for app %q of team %q", [
		input.request.model,
		input.identity.app,
		input.identity.team,
	])
}
