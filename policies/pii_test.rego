package llm.pii_test

import data.llm.pii

rules := {
	"always_block": ["aws_access_key", "private_key"],
	"block": ["card"],
	"redact": ["email", "phone"],
	"restore": false,
	"teams": {
		"payments": {"redact": ["card"], "restore": true},
		"fraud-lab": {"allow": ["card", "email"]},
		"legal": {"block": ["email"]},
		"rogue": {"allow": ["aws_access_key"]},
	},
}

found(team, types) := {"identity": {"team": team}, "pii": {"types": types}}

test_secret_blocked_with_types_named if {
	reasons := pii.deny with input as found("ops", ["aws_access_key", "email"]) with data.pii as rules
	some reason in reasons
	reason.code == "pii_blocked"
	endswith(reason.message, ": aws_access_key")
}

test_card_blocked_by_default if {
	count(pii.deny) == 1 with input as found("ops", ["card"]) with data.pii as rules
}

# Blocked types are redacted too: never in an allowed request, but the answer may contain them.
test_email_is_redacted_not_blocked if {
	count(pii.deny) == 0 with input as found("ops", ["email"]) with data.pii as rules
	pii.redact == ["aws_access_key", "card", "email", "phone", "private_key"] with input as found("ops", ["email"])
		with data.pii as rules
}

test_team_redacts_card_instead_of_blocking if {
	count(pii.deny) == 0 with input as found("payments", ["card"]) with data.pii as rules
	pii.redact == ["aws_access_key", "card", "email", "phone", "private_key"] with input as found("payments", ["card"])
		with data.pii as rules
	pii.restore with input as found("payments", ["card"]) with data.pii as rules
}

test_team_allowed_types_pass_untouched if {
	count(pii.deny) == 0 with input as found("fraud-lab", ["card", "email"]) with data.pii as rules
	pii.redact == ["aws_access_key", "phone", "private_key"] with input as found("fraud-lab", []) with data.pii as rules
}

test_team_can_block_more if {
	count(pii.deny) == 1 with input as found("legal", ["email"]) with data.pii as rules
	pii.redact == ["aws_access_key", "card", "email", "phone", "private_key"] with input as found("legal", [])
		with data.pii as rules
}

test_blocked_types_are_redacted_in_answers if {
	every type in ["aws_access_key", "private_key", "card"] {
		type in pii.redact with input as found("ops", []) with data.pii as rules
	}
}

test_answers_allow_lets_a_blocked_type_through_in_answers if {
	lenient := object.union(rules, {"answers_allow": ["card"]})
	not "card" in pii.redact with input as found("ops", []) with data.pii as lenient
	count(pii.deny) == 1 with input as found("ops", ["card"]) with data.pii as lenient
	team := object.union(rules, {"teams": {"ops": {"answers_allow": ["aws_access_key"]}}})
	not "aws_access_key" in pii.redact with input as found("ops", []) with data.pii as team
}

test_secrets_cannot_be_unblocked_by_team if {
	count(pii.deny) == 1 with input as found("rogue", ["aws_access_key"]) with data.pii as rules
}

test_restore_defaults_to_data if {
	not pii.restore with input as found("ops", []) with data.pii as rules
}

test_blocked_covers_overridable_types if {
	pii.blocked("card") with input as found("ops", []) with data.pii as rules
	not pii.blocked("card") with input as found("payments", []) with data.pii as rules
}

test_team_rules_empty_for_unlisted_team if {
	pii.team_rules == {} with input as found("ops", []) with data.pii as rules
}

test_found_blocked_lists_only_blocked_types if {
	pii.found_blocked == {"card", "private_key"} with input as found("ops", ["card", "email", "private_key"]) with data.pii as rules
}

test_shipped_data_blocks_every_secret_type if {
	secrets := [
		"aws_access_key", "aws_secret_key", "github_token", "slack_token", "openai_key", "anthropic_key",
		"google_api_key", "stripe_key", "jwt", "private_key", "url_credentials", "password", "auth_header",
	]
	every type in secrets {
		pii.blocked(type) with input as found("payments", [])
		type in pii.redact with input as found("payments", [])
	}
}
