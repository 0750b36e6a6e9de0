# Shadow-AI egress: may this caller open a connection to this host? AI provider hosts (catalogue in
# data.ai_providers) are refused and pointed at the proxy, unless listed in data.egress.
# Entry point: data.llm.egress.decision; input {"host", "port", "method", "identity"}.
package llm.egress

host := lower(trim_suffix(input.host, "."))

# Most connections go to hosts named exactly in the catalogue or to no provider at all, so exact
# names are compared first and glob.match (about as costly as a whole rule) runs only on wildcard
# patterns. The first matching provider wins so overlapping patterns never conflict.
exact_matches := [p | some p in data.ai_providers.providers; host in p.hosts]

matches := exact_matches if {
	count(exact_matches) > 0
} else := [p |
	some p in data.ai_providers.providers
	some pattern in p.hosts
	contains(pattern, "*")
	glob.match(pattern, ["."], host)
]

default mode := "deny_providers"

mode := data.egress.mode

host_listed(patterns) if {
	some pattern in patterns
	glob.match(pattern, ["."], host)
}

excepted if host_listed(object.get(data.egress, "allow_hosts", []))

excepted if host_listed(object.get(object.get(data.egress, ["exceptions", "apps"], {}), input.identity.app, []))

reasons contains {"code": "ai_provider_blocked", "message": msg} if {
	count(matches) > 0
	not excepted
	msg := sprintf("%s is an AI provider (%s); send model calls through the LLM proxy at %s instead", [
		host,
		matches[0].name,
		data.egress.proxy_base_url,
	])
}

reasons contains {"code": "host_not_allowed", "message": msg} if {
	mode == "allow_list"
	count(matches) == 0
	not excepted
	msg := sprintf("%s is not on the egress allow-list", [host])
}

default provider := null

provider := matches[0].id

decision := {
	"allow": count(reasons) == 0,
	"reasons": [reason | some reason in reasons],
	"provider": provider,
}
