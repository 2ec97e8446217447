"""A circuit breaker per service, shared by every worker process and machine.

After `threshold` failures within `window` seconds the breaker opens for `cooldown` seconds; then exactly
one probe is let through per cool-down (an atomic SET NX), and its success closes the breaker. The state
lives in Redis in production and in the store on the embedded default, so every worker sees the same.
A broken state store must not stop delivery: it then reports the breaker closed (as Saleor does).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .errors import CircuitOpen
from .settings import env_value

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True)
class BreakerPolicy:
    # Failures within the window that open the breaker.
    threshold: int = 5
    window: float = 60.0
    # How long an open breaker refuses calls before one probe may go through.
    cooldown: float = 30.0
    # How long a worker trusts the state it last read: a breaker that opens elsewhere is seen within a
    # second, and a closed breaker costs no Redis round trip per call.
    state_ttl: float = 1.0


class BreakerStore(Protocol):
    def add_failure(self, service: str, now: float, window: float) -> int: ...
    def open(self, service: str, now: float) -> None: ...
    def opened_at(self, service: str) -> float | None: ...
    def take_probe(self, service: str, now: float, ttl: float) -> bool: ...
    def close(self, service: str) -> None: ...


class Breaker:
    def __init__(
        self, service: str, store: BreakerStore, policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.service = service
        self.store = store
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self._seen: tuple[float | None, float] = (None, 0.0)  # (opened_at, trusted until, monotonic)

    def state(self) -> str:
        opened = self._opened_at(fresh=True)
        if opened is None:
            return CLOSED
        return OPEN if self.clock() < opened + self.policy.cooldown else HALF_OPEN

    def before_call(self) -> None:
        """Raise CircuitOpen unless the breaker is closed or this caller wins the one probe."""
        opened = self._opened_at()
        if opened is None:
            return
        now = self.clock()
        reopen_at = opened + self.policy.cooldown
        if now < reopen_at:
            raise CircuitOpen(f"{self.service} circuit open", retry_after=reopen_at - now)
        if not self._guard(lambda: self.store.take_probe(self.service, now, self.policy.cooldown), True):
            raise CircuitOpen(f"{self.service} circuit half-open, probe in flight", retry_after=1.0)

    def record_success(self) -> None:
        if self._opened_at() is not None:
            log.info("%s circuit closed after a successful probe", self.service)
            self._guard(lambda: self.store.close(self.service), None)
            self._remember(None)

    def record_failure(self) -> None:
        now = self.clock()
        if self._opened_at(fresh=True) is not None:  # the probe failed: a new cool-down
            self._open(now)
            return
        failures = self._guard(lambda: self.store.add_failure(self.service, now, self.policy.window), 0)
        if failures >= self.policy.threshold:
            log.warning(
                "%s circuit opened after %s failures in %.0f s", self.service, failures, self.policy.window
            )
            self._open(now)

    def _open(self, now: float) -> None:
        self._guard(lambda: self.store.open(self.service, now), None)
        self._remember(now)

    def _opened_at(self, fresh: bool = False) -> float | None:
        value, trusted_until = self._seen
        if fresh or time.monotonic() >= trusted_until:
            value = self._guard(lambda: self.store.opened_at(self.service), None)
            self._remember(value)
        return value

    def _remember(self, opened_at: float | None) -> None:
        self._seen = (opened_at, time.monotonic() + self.policy.state_ttl)

    def _guard(self, op, fallback):  # type: ignore[no-untyped-def]
        try:
            return op()
        except Exception as exc:
            log.warning("breaker state store unavailable (%s): treating %s as closed", type(exc).__name__,
                        self.service)  # fmt: skip
            return fallback


# KEYS: opened_at, probe; ARGV: now, cool-down, probe TTL in ms. 1 when this caller may call.
_TAKE_PROBE = """
local opened = redis.call('GET', KEYS[1])
if opened and tonumber(ARGV[1]) < tonumber(opened) + tonumber(ARGV[2]) then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[3])) then return 1 end
return 0
"""


class RedisBreakerStore:
    """Failures in a sorted set trimmed to the window; 'open' as a timestamp; the probe as SET NX PX."""

    def __init__(self, client, prefix: str = "syncengine:breaker") -> None:  # type: ignore[no-untyped-def]
        self.redis = client
        self.prefix = prefix

    def _key(self, service: str, part: str) -> str:
        return f"{self.prefix}:{service}:{part}"

    def add_failure(self, service: str, now: float, window: float) -> int:
        key = self._key(service, "failures")
        pipe = self.redis.pipeline()
        pipe.zremrangebyscore(key, 0, now - window)
        pipe.zadd(key, {uuid.uuid4().hex: now})
        pipe.zcard(key)
        pipe.expire(key, int(window) + 1)
        return int(pipe.execute()[2])

    def open(self, service: str, now: float) -> None:
        pipe = self.redis.pipeline()
        pipe.set(self._key(service, "opened_at"), repr(now))
        pipe.delete(self._key(service, "probe"), self._key(service, "failures"))
        pipe.execute()

    def opened_at(self, service: str) -> float | None:
        value = self.redis.get(self._key(service, "opened_at"))
        return float(value) if value is not None else None

    def take_probe(self, service: str, now: float, ttl: float) -> bool:
        # Checked against the stored opened_at, atomically: a worker whose cached view predates a failed
        # probe's re-open must not take the new cool-down's probe (open() clears the probe key).
        keys = (self._key(service, "opened_at"), self._key(service, "probe"))
        return bool(self.redis.eval(_TAKE_PROBE, 2, *keys, repr(now), repr(ttl), max(1, int(ttl * 1000))))

    def close(self, service: str) -> None:
        self.redis.delete(*(self._key(service, p) for p in ("opened_at", "probe", "failures")))


class SqlBreakerStore:
    """The same state in the store, for the embedded default (SQLite serialises the writers)."""

    def _row(self, session, service: str):  # type: ignore[no-untyped-def]
        from .models import CircuitBreakerState

        row = session.get(CircuitBreakerState, service, with_for_update=True)
        if row is None:
            row = CircuitBreakerState(service=service, failures=[])
            session.add(row)
        return row

    def add_failure(self, service: str, now: float, window: float) -> int:
        from .shared_state import state_session

        with state_session() as session:
            row = self._row(session, service)
            row.failures = [t for t in (row.failures or []) if t > now - window] + [now]
            return len(row.failures)

    def open(self, service: str, now: float) -> None:
        from .shared_state import state_session

        with state_session() as session:
            row = self._row(session, service)
            row.opened_at, row.probe_at, row.failures = now, None, []

    def opened_at(self, service: str) -> float | None:
        from .models import CircuitBreakerState
        from .shared_state import state_session

        with state_session() as session:
            row = session.get(CircuitBreakerState, service)
            return row.opened_at if row else None

    def take_probe(self, service: str, now: float, ttl: float) -> bool:
        from .shared_state import state_session

        with state_session() as session:
            row = self._row(session, service)
            if row.opened_at is not None and now < row.opened_at + ttl:
                return False  # re-opened since the caller looked: a new cool-down, not yet over
            if row.probe_at is not None and row.probe_at > now - ttl:
                return False
            row.probe_at = now
            return True

    def close(self, service: str) -> None:
        from .shared_state import state_session

        with state_session() as session:
            row = self._row(session, service)
            row.opened_at, row.probe_at, row.failures = None, None, []


class MemoryBreakerStore:
    """The state in this process only: for an operator's one-off command (a sweep, `setup`), whose failures
    against a mistyped URL must not open the breaker every worker shares. It still stops this command from
    hammering a vendor that keeps failing."""

    def __init__(self) -> None:
        self.failures: dict[str, list[float]] = {}
        self.opened: dict[str, float] = {}
        self.probes: dict[str, float] = {}

    def add_failure(self, service: str, now: float, window: float) -> int:
        kept = [t for t in self.failures.get(service, []) if t > now - window] + [now]
        self.failures[service] = kept
        return len(kept)

    def open(self, service: str, now: float) -> None:
        self.opened[service] = now
        self.failures.pop(service, None)
        self.probes.pop(service, None)

    def opened_at(self, service: str) -> float | None:
        return self.opened.get(service)

    def take_probe(self, service: str, now: float, ttl: float) -> bool:
        if self.probes.get(service, float("-inf")) > now - ttl:
            return False
        self.probes[service] = now
        return True

    def close(self, service: str) -> None:
        for part in (self.failures, self.opened, self.probes):
            part.pop(service, None)


_local: MemoryBreakerStore | None = None


def keep_local() -> None:
    """From now on, this process's breakers are its own (MemoryBreakerStore): the shared ones are neither
    tripped nor read. For one-off commands; workers and the receiver never call it."""
    global _local
    _local = _local or MemoryBreakerStore()


def breaker_for(service: str, policy: BreakerPolicy | None = None) -> Breaker:
    from .shared_state import get_redis

    if policy is None and (cooldown := env_value("SYNCENGINE_BREAKER_COOLDOWN")):
        # An operator's knob, and the fault suite's accelerated clock (a 2-minute outage in seconds).
        policy = BreakerPolicy(cooldown=float(cooldown))
    if _local is not None:
        return Breaker(service, _local, policy)
    client = get_redis()
    store: BreakerStore = RedisBreakerStore(client) if client is not None else SqlBreakerStore()
    return Breaker(service, store, policy)
