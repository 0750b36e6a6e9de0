# The one entry point for model calls: data.llm.main.decision (contract: docs/policy-contract.md).
# Packages listed in data.config.audit_only run in dry-run: their denials land in "audit",
# and their obligations are not applied.
package llm.main

packages := ["llm.models", "llm.pii", "llm.limits", "llm.budgets"]

denials := {
	"llm.models": data.llm.models.deny,
	"llm.pii": data.llm.pii.deny,
	"llm.limits": data.llm.limits.deny,
	"llm.budgets": data.llm.budgets.deny,
}

# Referencing data.config directly (not object.get on `data`) keeps OPA from evaluating every package.
default audit_only := set()

audit_only := {name | some name in data.config.audit_only}

reasons := [reason |
	some name in packages
	not name in audit_only
	some reason in denials[name]
]

audit := [reason |
	some name in packages
	name in audit_only
	some reason in denials[name]
]

obligations["model"] := data.llm.budgets.downgrade_to if not "llm.budgets" in audit_only

obligations["headers"] := data.llm.budgets.headers if {
	not "llm.budgets" in audit_only
	count(data.llm.budgets.headers) > 0
}

obligations["budgets"] := data.llm.budgets.budgets if {
	not "llm.budgets" in audit_only
	count(data.llm.budgets.budgets) > 0
}

obligations["max_tokens"] := data.llm.limits.max_tokens if not "llm.limits" in audit_only

obligations["redact"] := data.llm.pii.redact if {
	not "llm.pii" in audit_only
	count(data.llm.pii.redact) > 0
}

obligations["restore"] := true if {
	not "llm.pii" in audit_only
	count(data.llm.pii.redact) > 0
	data.llm.pii.restore == true
}

decision := object.union(
	{"allow": count(reasons) == 0, "reasons": reasons, "audit": audit},
	obligations,
)
