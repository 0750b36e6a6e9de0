"""The built-in demo model: a deterministic upstream speaking OpenAI's and Anthropic's wire formats."""

from .behaviour import count_tokens
from .model import MODELS, DemoModel, flatten

__all__ = ["MODELS", "DemoModel", "count_tokens", "flatten"]
