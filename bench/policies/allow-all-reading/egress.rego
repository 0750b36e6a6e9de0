package llm.egress

decision := {"allow": true, "reasons": []}
