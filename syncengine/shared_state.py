"""The Redis client that shared state (breakers, locks, rate limits) uses, one per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import redis
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from .db import engine_for, session_scope
from .models import Base
from .redis_tls import client_kwargs
from .settings import get_settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis | None:
    """None on the embedded default: shared state then lives in the store."""
    url = get_settings().redis_url
    if not url:
        return None
    tls = client_kwargs(url, get_settings().redis_ssl_cert_reqs)
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30, **tls
    )


@contextmanager
def state_session() -> Iterator[Session]:
    """A transaction on the store of shared state when there is no Redis (breakers, leases).

    On Postgres that is the main database. On SQLite it is a file of its own: SQLite has one writer per
    file, and a handler holding the main file's write lock must still be able to read a breaker."""
    settings = get_settings()
    if not settings.database_url.startswith("sqlite"):
        with session_scope() as session:
            yield session
        return
    session = Session(_state_engine(str(settings.home / "state.sqlite3")), expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
    """This file holds breakers, leases (locks) and metric counters, and a push takes a lease and counts
    itself: syncing each write to disk (FULL, as the store does) cost a tenth of an embedded worker's time.
    A power cut may lose the last writes; every process that held those leases died with it, and a breaker
    or a count is worth less than the fsync."""
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


@lru_cache(maxsize=2)
def _state_engine(path: str) -> Engine:
    from .models import CircuitBreakerState, Lease, MetricCounter

    engine = engine_for(f"sqlite:///{path}")
    event.listen(engine, "connect", _normal_sync)
    tables = [CircuitBreakerState.__table__, Lease.__table__, MetricCounter.__table__]
    Base.metadata.create_all(engine, tables=tables)
    return engine
