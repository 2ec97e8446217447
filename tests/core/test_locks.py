"""Named locks on Redis and in the store: one holder at a time, expiring with a dead holder."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from syncengine import locks, shared_state
from syncengine.errors import Retryable


@pytest.fixture(params=["redis", "store"])
def backend(request, monkeypatch):
    if request.param == "store":
        monkeypatch.setattr(locks, "get_redis", lambda: None)
    return request.param


def test_one_holder_at_a_time(backend):
    name = f"t-{uuid.uuid4().hex}"
    inside, overlap = [], []

    def work():
        with locks.lock(name, timeout=10, wait=10):
            inside.append(1)
            if len(inside) > 1:
                overlap.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert overlap == []


def test_busy_lock_raises_retryable(backend):
    name = f"t-{uuid.uuid4().hex}"
    with locks.lock(name, timeout=10), pytest.raises(Retryable), locks.lock(name, timeout=10, wait=0.2):
        pass


def test_a_dead_holders_lock_expires(backend):
    name = f"t-{uuid.uuid4().hex}"
    assert locks._acquire(name, "dead-holder", timeout=0.3)
    time.sleep(0.4)
    with locks.lock(name, timeout=5, wait=1):
        pass


def test_shared_state_uses_the_configured_redis():
    assert shared_state.get_redis().ping()


def redis_away():
    """A client of a Redis that is not there (a closed port): the errors redis-py really raises."""
    import redis

    from simulators.stack import free_port

    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)


def test_a_lock_whose_redis_went_away_before_its_release_does_not_fail_the_work(monkeypatch, caplog):
    """The work under it is finished; the lock expires at its timeout. (A push that raised here failed for
    good after its create: the soak's Redis restart.)"""
    name = f"t-{uuid.uuid4().hex}"
    done = []
    with locks.lock(name, timeout=1):
        monkeypatch.setattr(locks, "get_redis", redis_away)
        done.append(1)
    assert done == [1]
    assert f"lock {name} not released (ConnectionError): it expires at its timeout" in caplog.text
    monkeypatch.undo()
    time.sleep(1.1)
    with locks.lock(name, timeout=5, wait=0.5):  # expired as promised
        pass
