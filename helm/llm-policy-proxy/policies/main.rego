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

# One complete rule per package, {} when it is dry-run or has nothing to say: the compiled engine
# (regorus RVM) does not support partial object rules with constant keys.
budget_obligations := {"model": data.llm.budgets.downgrade_to, "headers": data.llm.budgets.headers} if {
	not "llm.budgets" in audit_only
	data.llm.budgets.downgrade_to
} else := {}

limit_obligations := {"max_tokens": data.llm.limits.max_tokens} if {
	not "llm.limits" in audit_only
	data.llm.limits.max_tokens
} else := {}

pii_obligations := {"redact": data.llm.pii.redact, "restore": true} if {
	not "llm.pii" in audit_only
	count(data.llm.pii.redact) > 0
	data.llm.pii.restore == true
} else := {"redact": data.llm.pii.redact} if {
	not "llm.pii" in audit_only
	count(data.llm.pii.redact) > 0
} else := {}

# Budget limits are not part of the decision: data.llm.budgets.scopes names them, before the state is read.
obligations := object.union_n([budget_obligations, limit_obligations, pii_obligations])

decision := object.union(
	{"allow": count(reasons) == 0, "reasons": reasons, "audit": audit},
	obligations,
)
