"""llm-policy-proxy: an OpenAI-compatible reverse proxy that enforces Rego policies on every LLM call."""
