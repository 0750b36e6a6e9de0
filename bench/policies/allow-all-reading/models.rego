package llm.models

allowed_models := input.models
