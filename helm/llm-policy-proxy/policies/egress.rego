# Shadow-AI egress: may this caller open a connection to this destination? AI provider hosts (catalogue
# in data.ai_providers) are refused and pointed at the proxy, unless listed in data.egress; internal
# destinations are refused unless the proxy's allow_internal admitted them, and then only for the
# apps and teams data.egress.internal_targets names for that entry (everyone when it names none).
# Entry point: data.llm.egress.decision; input {"host", "port", "method", "identity", "destination"}.
package llm.egress

host := lower(trim_suffix(input.host, "."))

catalogue := data.ai_providers

# A provider is found by looking the host's parent domains up in catalogue.domains (a handful of key
# lookups, most specific first); only when none is there are the few glob patterns for regional names
# tried (glob.match costs about as much as a whole rule).
labels := split(host, ".")

parents := [concat(".", array.slice(labels, i, count(labels))) | some i in numbers.range(0, count(labels) - 1)]

# The lookup is tested before it is bound: regorus' RVM yields "<undefined>" for `id := m[k]` inside a
# comprehension when k is missing, where the interpreter (and OPA) skip it.
domain_matches := [catalogue.domains[parent] | some parent in parents; catalogue.domains[parent]]

provider_ids := domain_matches if {
	count(domain_matches) > 0
} else := [p.provider |
	some p in catalogue.patterns
	glob.match(p.host, ["."], host)
]

default provider := null

provider := provider_ids[0]

# A domain whose provider has no catalogue entry is still a provider: it is named by its id.
provider_name := object.get(catalogue.providers, [provider, "name"], provider)

default mode := "deny_providers"

mode := data.egress.mode

host_listed(patterns) if {
	some pattern in patterns
	glob.match(pattern, ["."], host)
}

excepted if host_listed(object.get(data.egress, "allow_hosts", []))

excepted if host_listed(object.get(object.get(data.egress, ["exceptions", "apps"], {}), input.identity.app, []))

# An internal target granted by name in data.egress.internal_targets is an explicit allow in any mode.
excepted if {
	internal
	count(allowed_by) > 0
	every entry in allowed_by {
		targets[entry]
		entry_admits(entry)
	}
}

reasons contains {"code": "ai_provider_blocked", "message": msg} if {
	provider != null
	not excepted
	msg := sprintf("%s is an AI provider (%s); send model calls through the LLM proxy at %s instead", [
		host,
		provider_name,
		data.egress.proxy_base_url,
	])
}

reasons contains {"code": "host_not_allowed", "message": msg} if {
	mode == "allow_list"
	provider == null
	not excepted
	msg := sprintf("%s is not on the egress allow-list", [host])
}

destination := object.get(input, "destination", {})

internal if destination.internal == true

allowed_by := object.get(destination, "allowed_by", [])

targets := object.get(data.egress, "internal_targets", {})

entry_admits(entry) if not targets[entry]

entry_admits(entry) if input.identity.team in object.get(targets[entry], "teams", [])

entry_admits(entry) if input.identity.app in object.get(targets[entry], "apps", [])

internal_admitted if {
	count(allowed_by) > 0
	every entry in allowed_by {
		entry_admits(entry)
	}
}

reasons contains {"code": "internal_destination", "message": msg} if {
	internal
	count(allowed_by) == 0
	msg := sprintf("%s:%v is an internal destination (%v); it is reached only when listed in egress.allow_internal", [
		host,
		input.port,
		object.get(destination, "rule", "internal"),
	])
}

reasons contains {"code": "internal_destination", "message": msg} if {
	internal
	count(allowed_by) > 0
	not internal_admitted
	msg := sprintf("%s:%v is an internal destination (%v) that data.egress.internal_targets opens to other apps and teams only", [
		host,
		input.port,
		object.get(destination, "rule", "internal"),
	])
}

decision := {
	"allow": count(reasons) == 0,
	"reasons": [reason | some reason in reasons],
	"provider": provider,
}
