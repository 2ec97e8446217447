"""Named locks across processes and machines: a record's lock while we look it up before creating it
in a vendor that has no idempotency key, or while one process refreshes a token.

Redis (SET NX PX with a token, released only by its holder) in production; a lease row in the store on
the embedded default. Both expire, so a killed holder cannot block anyone for longer than the timeout.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

import redis.exceptions
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError

from .errors import Retryable
from .models import Lease, utcnow
from .shared_state import get_redis, state_session

log = logging.getLogger(__name__)

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


@contextmanager
def lock(name: str, timeout: float = 60.0, wait: float = 10.0) -> Iterator[None]:
    """Hold `name` for at most `timeout` seconds; raise Retryable if it cannot be had within `wait`."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    delay = 0.01
    while not _acquire(name, token, timeout):
        if time.monotonic() > deadline:
            raise Retryable(f"lock {name} is held elsewhere", retry_after=1.0)
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    try:
        yield
    finally:
        _release(name, token)


def try_lock(name: str, timeout: float = 60.0) -> Callable[[], None] | None:
    """Hold `name` now if it is free, without waiting: the function that releases it, or None."""
    token = uuid.uuid4().hex
    return partial(_release, name, token) if _acquire(name, token, timeout) else None


def _acquire(name: str, token: str, timeout: float) -> bool:
    client = get_redis()
    if client is not None:
        return bool(client.set(f"syncengine:lock:{name}", token, nx=True, px=int(timeout * 1000)))
    now = utcnow()
    with state_session() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.expires_at <= now))
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        result = session.execute(
            insert(Lease)
            .values(name=name, holder=token, expires_at=now + timedelta(seconds=timeout))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return result.rowcount == 1


def _release(name: str, token: str) -> None:
    """Best effort: a lock not released (Redis or the store away at that moment) expires at its timeout;
    raising here would fail work that is finished, or hide the error it ended with."""
    try:
        _delete(name, token)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError) as exc:
        log.warning("lock %s not released (%s): it expires at its timeout", name, type(exc).__name__)


def _delete(name: str, token: str) -> None:
    client = get_redis()
    if client is not None:
        client.eval(_RELEASE, 1, f"syncengine:lock:{name}", token)
        return
    with state_session() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == token))
