"""Anthropic's Messages API: POST /v1/messages and /v1/messages/count_tokens."""

from .messages import MESSAGES

__all__ = ["MESSAGES"]
