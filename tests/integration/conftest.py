"""Fixtures the integration tests share beyond tests/conftest.py: Redis servers, shared or private."""

from tests.support.redis_server import private_redis, redis_url

__all__ = ["private_redis", "redis_url"]
