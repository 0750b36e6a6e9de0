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

# All configured types, not only the ones found: the answer may contain them too. Types blocked in
# requests are masked in answers as well (a 200 that has started cannot become a 403), unless
# answers_allow (in data.pii or the team's rules) lets the model write them.
redact := sort(configured_redact | {type | some type in blockable; blocked(type); not answer_allowed(type)})

configured_redact contains type if {
	some type in array.concat(data.pii.redact, object.get(team_rules, "redact", []))
	not type in object.get(team_rules, "allow", [])
	not blocked(type)
}

blockable := array.concat(array.concat(data.pii.always_block, data.pii.block), object.get(team_rules, "block", []))

answer_allowed(type) if type in object.get(data.pii, "answers_allow", [])

answer_allowed(type) if type in object.get(team_rules, "answers_allow", [])

restore := object.get(team_rules, "restore", data.pii.restore)
