"""The circuit breaker, on the real Redis (production) and in the store (embedded)."""

from __future__ import annotations

import threading
import uuid

import pytest

from syncengine.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    BreakerPolicy,
    RedisBreakerStore,
    SqlBreakerStore,
)
from syncengine.errors import CircuitOpen
from syncengine.shared_state import get_redis


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "store"])
def breaker_store(request):
    return RedisBreakerStore(get_redis()) if request.param == "redis" else SqlBreakerStore()


def make(store, clock, threshold=3) -> Breaker:
    policy = BreakerPolicy(threshold=threshold, window=60, cooldown=30)
    return Breaker(f"svc-{uuid.uuid4().hex[:8]}", store, policy, clock)


def test_opens_after_threshold_failures_in_the_window(breaker_store):
    clock = FakeClock()
    breaker = make(breaker_store, clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 61  # the first two fall out of the window
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == CLOSED
    breaker.record_failure()
    assert breaker.state() == OPEN
    with pytest.raises(CircuitOpen) as raised:
        breaker.before_call()
    assert 29 <= raised.value.retry_after <= 30


def test_one_probe_per_cooldown_then_closes_on_success(breaker_store):
    clock = FakeClock()
    breaker = make(breaker_store, clock, threshold=1)
    breaker.record_failure()
    clock.now += 31
    assert breaker.state() == HALF_OPEN
    breaker.before_call()  # this caller is the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # everyone else waits
    breaker.record_success()
    assert breaker.state() == CLOSED
    breaker.before_call()


def test_failed_probe_starts_a_new_cooldown(breaker_store):
    clock = FakeClock()
    breaker = make(breaker_store, clock, threshold=1)
    breaker.record_failure()
    clock.now += 31
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state() == OPEN
    clock.now += 31
    breaker.before_call()  # the next cool-down's single probe


def test_exactly_one_probe_among_eight_concurrent_workers(breaker_store):
    clock = FakeClock()
    name = f"svc-{uuid.uuid4().hex[:8]}"
    policy = BreakerPolicy(threshold=1, window=60, cooldown=30)
    Breaker(name, breaker_store, policy, clock).record_failure()
    clock.now += 31
    allowed = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        redis_backed = isinstance(breaker_store, RedisBreakerStore)
        own_store = RedisBreakerStore(get_redis()) if redis_backed else SqlBreakerStore()
        breaker = Breaker(name, own_store, policy, clock)
        barrier.wait()
        try:
            breaker.before_call()
            allowed.append(1)
        except CircuitOpen:
            pass

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(allowed) == 1


def test_a_broken_state_store_never_stops_delivery():
    class Broken:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("redis down")

            return fail

    breaker = Breaker("svc-broken", Broken(), BreakerPolicy(threshold=1))
    breaker.record_failure()
    breaker.before_call()
    assert breaker.state() == CLOSED


def test_an_open_breaker_is_seen_by_other_workers_within_the_state_ttl(breaker_store):
    import time

    clock = FakeClock()
    name = f"svc-{uuid.uuid4().hex[:8]}"
    policy = BreakerPolicy(threshold=1, window=60, cooldown=30, state_ttl=0.2)
    here, elsewhere = Breaker(name, breaker_store, policy, clock), Breaker(name, breaker_store, policy, clock)
    here.before_call()  # trusts 'closed' for 0.2 s: no store round trip per call
    elsewhere.record_failure()
    here.before_call()
    time.sleep(0.25)
    with pytest.raises(CircuitOpen):
        here.before_call()
