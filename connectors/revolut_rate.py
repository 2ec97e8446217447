"""A client-side rate limit shared by every process that calls one vendor: Revolut allows a business a number
of requests a minute (its usage and limits guide, docs/architecture.md: Vendors' documentation), and answers
429 past it."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from syncengine.errors import Retryable
from syncengine.shared_state import get_redis

log = logging.getLogger(__name__)

RATE_LIMIT = 60  # requests per window per business (Revolut's usage and limits guide)
# One second over the vendor's minute: requests sent at the edge of the window may arrive bunched.
RATE_WINDOW = 61.0


def _now_ms(argv: int) -> str:
    """Lua: `now` in milliseconds from ARGV[argv], or from the Redis server's clock when that is ""."""
    return f"""local now = tonumber(ARGV[{argv}])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""


# Sliding-window log: a sorted set of admission times (ms). KEYS: log, pause. ARGV: limit, window ms, now ms
# ("" = the Redis server's clock, one clock for every host), a unique member. Returns 0 when admitted, else
# the milliseconds to wait.
_ACQUIRE = (
    _now_ms(3)
    + """
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return paused - now end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""
)
_PAUSE = (
    _now_ms(2)
    + """
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]) + 1000)
end
return until_ms
"""
)


class RateLimiter:
    """At most `limit` requests in any rolling `window` seconds, across every process sharing the name.

    Waits inline up to `max_wait`; a longer wait raises Retryable so the task retries later instead of
    holding a worker. A broken Redis does not stop delivery (the vendor's 429 still protects it)."""

    def __init__(
        self, name: str, limit: int = RATE_LIMIT, window: float = RATE_WINDOW, *, redis: Any = None,
        clock: Callable[[], float] | None = None, sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 10.0,
    ) -> None:  # fmt: skip
        self.name, self.limit, self.window = name, limit, window
        self.redis = redis
        self.clock = clock
        self.sleep = sleep
        self.max_wait = max_wait
        self._local: deque[float] = deque()
        self._local_lock = threading.Lock()
        self._local_paused = 0.0

    @classmethod
    def for_service(cls, service: str, **kwargs: Any) -> RateLimiter:
        """Redis-backed when Redis is configured, per process on the embedded default."""
        return cls(f"syncengine:ratelimit:{service}", redis=get_redis(), **kwargs)

    def acquire(self) -> None:
        """Block until a request may be sent."""
        waited = 0.0
        while (wait := self._try()) > 0:
            if waited + wait > self.max_wait:
                raise Retryable(f"{self.name}: client-side rate limit reached", retry_after=wait)
            self.sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """The vendor said 429 + Retry-After: every process holds back for that long."""
        if self.redis is None:
            with self._local_lock:
                self._local_paused = max(self._local_paused, self._now() + seconds)
            return
        try:
            self.redis.eval(_PAUSE, 1, f"{self.name}:paused", int(seconds * 1000), self._now_ms_arg())
        except Exception as exc:  # the limiter is a courtesy; the vendor still enforces its limit
            log.warning("rate limiter state unavailable (%s)", type(exc).__name__)

    def _try(self) -> float:
        if self.redis is None:
            return self._try_local()
        try:
            args = (self.limit, int(self.window * 1000), self._now_ms_arg(), uuid.uuid4().hex)
            wait_ms = self.redis.eval(_ACQUIRE, 2, self.name, f"{self.name}:paused", *args)
        except Exception as exc:
            log.warning("rate limiter state unavailable (%s): sending anyway", type(exc).__name__)
            return 0.0
        return int(wait_ms) / 1000

    def _try_local(self) -> float:
        with self._local_lock:
            now = self._now()
            if self._local_paused > now:
                return self._local_paused - now
            while self._local and self._local[0] <= now - self.window:
                self._local.popleft()
            if len(self._local) < self.limit:
                self._local.append(now)
                return 0.0
            return max(0.001, self._local[0] + self.window - now)

    def _now(self) -> float:
        return (self.clock or time.time)()

    def _now_ms_arg(self) -> str:
        return "" if self.clock is None else str(int(self.clock() * 1000))
