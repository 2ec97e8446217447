"""A small fixed-window rate limit shared by every web process and machine: a counter per window in Redis
(INCR with an expiry), or a row in the shared-state store without Redis.

For endpoints a person uses now and then (the OAuth callback), not for webhook intake: senders retry, and
refusing them would only delay what they send. A broken counter store lets the request through (the
endpoint's own checks still stand) rather than lock its only user out.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import delete

from . import counters
from .models import MetricCounter
from .shared_state import get_redis, state_session

log = logging.getLogger(__name__)

PREFIX = "ratelimit:"


@dataclass(frozen=True)
class Limit:
    name: str
    count: int  # requests allowed per window
    per: int  # the window, in seconds


def allow(limit: Limit, now: float | None = None) -> int:
    """0 when this request may go on, else the seconds until the window ends (for Retry-After)."""
    now = time.time() if now is None else now
    window = int(now // limit.per)
    try:
        used = _count(limit, window)
    except Exception as exc:
        log.warning("rate limit %s not counted, request let through: %s", limit.name, type(exc).__name__)
        return 0
    return 0 if used <= limit.count else max(1, int((window + 1) * limit.per - now))


def _count(limit: Limit, window: int) -> int:
    """This request's number in its window."""
    client = get_redis()
    if client is not None:
        key = f"syncengine:{PREFIX}{limit.name}:{window}"
        pipe = client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, limit.per + 1)
        return int(pipe.execute()[0])
    name = PREFIX + limit.name
    with state_session() as session:  # only this window's count is kept
        session.execute(
            delete(MetricCounter).where(MetricCounter.name == name, MetricCounter.labels != str(window))
        )
    return counters.bump(name, str(window))


def reset(limit: Limit) -> None:
    """Forget the counts of `limit` (an operator after a burst of mistakes, or a test)."""
    client = get_redis()
    if client is not None:
        keys = list(client.scan_iter(f"syncengine:{PREFIX}{limit.name}:*", count=100))
        if keys:
            client.delete(*keys)
        return
    with state_session() as session:
        session.execute(delete(MetricCounter).where(MetricCounter.name == PREFIX + limit.name))
