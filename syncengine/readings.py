"""Readings of the live state that `/metrics` and `syncengine status` both show: the messages waiting in each
queue, and each service's circuit breaker. Both answer even when the broker or Redis does not."""

from __future__ import annotations

from typing import Any

from kombu.exceptions import ChannelError

from .breaker import breaker_for
from .celery_app import QUEUES
from .celery_app import app as celery_app
from .settings import SERVICES


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue; None when the broker cannot be reached."""
    try:
        with celery_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return {q: _depth(conn.default_channel, q) for q in QUEUES}
    except Exception:
        return dict.fromkeys(QUEUES)


def _depth(channel: Any, queue: str) -> int:
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # no consumer ever declared it: nothing can be waiting in it
        return 0


def breaker_states() -> dict[str, str]:
    """Each service's breaker; "unknown" for all when Redis, where they live, does not answer."""
    from .shared_state import get_redis

    client = get_redis()
    try:
        if client is not None:
            client.ping()
    except Exception:
        return dict.fromkeys((*SERVICES, "openai"), "unknown")
    return {service: breaker_for(service).state() for service in (*SERVICES, "openai")}
