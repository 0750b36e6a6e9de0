"""Errors raised by policy engines; the caller maps them to 503 (fail closed) or lets them pass (fail open)."""

from __future__ import annotations


class PolicyEngineError(Exception):
    """The engine could not produce a valid decision: a deny unless the operator configured fail-open."""


class PolicyCompileError(PolicyEngineError):
    """A policy version failed to load; the message carries file:line:col where the engine reports it."""
