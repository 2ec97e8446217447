"""The Redis client that shared state (breakers, locks, rate limits) uses, one per process."""

from __future__ import annotations

from functools import lru_cache

import redis

from .settings import get_settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis | None:
    """None on the embedded default: shared state then lives in the store."""
    url = get_settings().redis_url
    if not url:
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
