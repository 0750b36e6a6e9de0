# What to do with personal data and secrets found in a request: block, redact or let through.
# Secrets (data.pii.always_block) cannot be unblocked by a team override.
package llm.pii

team_rules := object.get(data.pii.teams, input.identity.team, {})

# Evaluated per type found (usually none), not per configured type: keeps requests cheap.
blocked(type) if type in data.pii.always_block

blocked(type) if {
	type in array.concat(data.pii.block, object.get(team_rules, "block", []))
	not type in object.get(team_rules, "allow", [])
	not type in object.get(team_rules, "redact", [])
}

found_blocked := {type | some type in input.pii.types; blocked(type)}

deny contains {"code": "pii_blocked", "message": msg} if {
	count(found_blocked) > 0
	msg := sprintf("request contains data that may not be sent to a model: %s", [concat(", ", sort(found_blocked))])
}

# All configured types, not only the ones found: the answer may contain them too.
redact := sort({type |
	some type in array.concat(data.pii.redact, object.get(team_rules, "redact", []))
	not type in object.get(team_rules, "allow", [])
	not blocked(type)
})

restore := object.get(team_rules, "restore", data.pii.restore)
