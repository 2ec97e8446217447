"""kombu's Redis transport, reusing one Redis client for publishing.

kombu builds a new `redis.Redis` client for every message it publishes; with redis-py 5 and later that
copies ~170 response callbacks each time, which was a third of the receiver's cost per webhook. A client
is thread-safe and shares the channel's connection pool, so one per channel is enough.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis
from kombu.utils.objects import cached_property


class Channel(redis.Channel):
    @cached_property
    def _publisher(self) -> Any:
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._publisher


class Transport(redis.Transport):
    Channel = Channel
