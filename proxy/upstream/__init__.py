"""Talking to model providers: pooled HTTP and SSE framing."""
