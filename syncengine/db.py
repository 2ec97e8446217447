"""Engine and sessions: Postgres in production, one SQLite file on the embedded default."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from .settings import get_settings

T = TypeVar("T")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _make_engine(url: str, **options: object) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _serialise_sqlite_writers(engine)
        return engine
    # No pre-ping: it would cost a round trip per webhook. A connection that died with a Postgres restart
    # is invalidated on first use and the caller retries once (see `with_reconnect`).
    return create_engine(
        url,
        **options,
        pool_size=5,
        max_overflow=10,
        # Fail fast when Postgres is down so the receiver can answer 503 while the sender still waits.
        connect_args={"connect_timeout": 3, "application_name": "syncengine"},
    )


def _serialise_sqlite_writers(engine: Engine) -> None:
    """SQLite allows one writer: take the write lock at BEGIN so two writers never deadlock."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


_engines: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = _make_engine(url)
    return engine


def get_engine() -> Engine:
    return engine_for(get_settings().database_url)


def autocommit_engine() -> Engine:
    """Autocommit connections, for single statements that are atomic on their own (no BEGIN, no COMMIT).

    On Postgres a pool of its own: switching a pooled connection in and out of autocommit costs a `SET`
    round trip at every check-in. SQLite has one writer anyway, so it shares the file's pool."""
    url = get_settings().database_url
    key = "autocommit:" + url
    if key not in _engines:
        base = engine_for(url)
        _engines[key] = (
            base.execution_options(isolation_level="AUTOCOMMIT")
            if is_sqlite(base)
            else _make_engine(url, isolation_level="AUTOCOMMIT")
        )
    return _engines[key]


_kept = threading.local()


def kept_connection() -> Connection:
    """An autocommit connection this thread keeps from one call to the next, for the receiver's single
    statements: checking one out of the pool and back for every webhook was 8 % of the receiver's CPU.
    Use it through `kept_scope`, which drops it when a statement fails, so a connection that died (a
    Postgres restart) is not kept: the next call connects again."""
    engine = autocommit_engine()
    kept = getattr(_kept, "pair", None)
    if kept is None or kept[0] is not engine or kept[1].invalidated or kept[1].closed:
        drop_kept_connection()
        kept = _kept.pair = (engine, engine.connect())
    return kept[1]


def drop_kept_connection() -> None:
    kept, _kept.pair = getattr(_kept, "pair", None), None
    if kept is not None:
        with suppress(Exception):  # a dead connection may fail to close: it is dropped either way
            kept[1].invalidate()
            kept[1].close()


@contextmanager
def kept_scope() -> Iterator[Connection]:
    """The kept connection for one statement, dropped if the statement fails."""
    try:
        yield kept_connection()
    except BaseException:
        drop_kept_connection()
        raise


@lru_cache(maxsize=4)
def _sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=engine_for(url), expire_on_commit=False)


def with_reconnect(work: Callable[[], T]) -> T:
    """Run `work` again once if its connection turned out to be dead (Postgres restarted since)."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return work()


@contextmanager
def session_scope() -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = _sessionmaker(get_settings().database_url)()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


@contextmanager
def read_scope() -> Iterator[Session]:
    """Reads that need no transaction of their own (a single SELECT): no BEGIN, no COMMIT round trips."""
    session = Session(bind=autocommit_engine(), expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def reset_engines() -> None:
    """Forget pooled connections (a forked worker must not share its parent's sockets; tests switch URLs)."""
    _kept.pair = None  # this thread's: its engine is forgotten below
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()
    _sessionmaker.cache_clear()
