# Size limits per team: prompt tokens and requested output tokens (deny, or cap where data says so).
package llm.limits

limits := object.union(data.limits.default, object.get(data.limits.teams, input.identity.team, {}))

generates_text if input.request.endpoint in {"chat.completions", "completions", "responses", "messages"}

requested := input.request.max_tokens

deny contains {"code": "prompt_too_large", "message": msg} if {
	input.estimate.prompt_tokens > limits.max_prompt_tokens
	msg := sprintf("prompt has about %d tokens; the limit for team %q is %d", [
		input.estimate.prompt_tokens,
		input.identity.team,
		limits.max_prompt_tokens,
	])
}

# A prompt over the model's context window never reaches the policy: the proxy answers it with a 400
# context_length_exceeded, as the provider would (SDKs and routers fall back on that code).

deny contains {"code": "max_tokens_exceeded", "message": msg} if {
	generates_text
	limits.on_max_tokens == "deny"
	is_number(requested)
	requested > limits.max_tokens
	msg := sprintf("max_tokens %d exceeds the limit of %d for team %q", [requested, limits.max_tokens, input.identity.team])
}

# Cap when the request asks for too much (cap mode) or leaves max_tokens unset (any mode).
max_tokens := limits.max_tokens if {
	generates_text
	not is_number(requested)
}

max_tokens := limits.max_tokens if {
	generates_text
	limits.on_max_tokens == "cap"
	is_number(requested)
	requested > limits.max_tokens
}
