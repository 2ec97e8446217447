"""Counters every process adds to and /metrics reads: Redis hashes (HINCRBY), or the store without Redis.

Gunicorn and Celery run many processes on many machines; a counter kept in one process's memory would
show whichever process answered the scrape. The webhook path must stay cheap, so `BufferedCounts` adds
in memory and a background thread flushes once a second in one pipelined round trip.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import Counter
from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .models import MetricCounter
from .shared_state import get_redis, state_session

log = logging.getLogger(__name__)

PREFIX = "syncengine:metrics:"
SEP = "|"  # label values are ours (sender names, systems, outcomes, status codes): never contain it


def add(name: str, counts: Mapping[tuple[str, ...], int]) -> None:
    """Add `counts` (label values -> increment) to the shared counter `name`."""
    counts = {labels: n for labels, n in counts.items() if n}
    if not counts:
        return
    client = get_redis()
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for labels, n in counts.items():
            pipe.hincrby(PREFIX + name, SEP.join(labels), n)
        pipe.execute()
        return
    with state_session() as session:
        for labels, n in counts.items():
            key = {"name": name, "labels": SEP.join(labels)}
            row = session.get(MetricCounter, key, with_for_update=True)
            if row is None:
                session.add(MetricCounter(**key, value=n))
                session.flush()
            else:
                row.value += n


def bump(name: str, *labels: str) -> int:
    """Add one to a single cell of `name` and return its new value, atomically across processes."""
    key = SEP.join(labels)
    client = get_redis()
    if client is not None:
        return int(client.hincrby(PREFIX + name, key, 1))
    with state_session() as session:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert  # type: ignore[union-attr]
        statement = insert(MetricCounter).values(name=name, labels=key, value=1)
        statement = statement.on_conflict_do_update(
            index_elements=["name", "labels"], set_={"value": MetricCounter.value + 1}
        )
        return int(session.execute(statement.returning(MetricCounter.value)).scalar_one())


def forget(name: str, *labels: str) -> None:
    """Drop one cell of `name` (a count about something that is settled)."""
    key = SEP.join(labels)
    client = get_redis()
    if client is not None:
        client.hdel(PREFIX + name, key)
        return
    with state_session() as session:
        session.execute(delete(MetricCounter).where(MetricCounter.name == name, MetricCounter.labels == key))


def read(name: str) -> dict[tuple[str, ...], int]:
    """Every label combination of `name` with its total."""
    client = get_redis()
    if client is not None:
        raw = client.hgetall(PREFIX + name)
        return {tuple(k.decode().split(SEP)): int(v) for k, v in raw.items()}
    with state_session() as session:
        rows = session.execute(select(MetricCounter).where(MetricCounter.name == name)).scalars()
        return {tuple(r.labels.split(SEP)): r.value for r in rows}


def safe_add(name: str, counts: Mapping[tuple[str, ...], int]) -> bool:
    """`add`, but a broken Redis or store only costs the count, never the caller's work."""
    try:
        add(name, counts)
        return True
    except Exception as exc:
        log.warning("metric %s not counted: %s", name, type(exc).__name__)
        return False


class BufferedCounts:
    """In-memory increments flushed by a daemon thread every `interval` seconds (one per process: the
    thread is started on first use after a fork, since gunicorn forks its workers)."""

    def __init__(self, name: str, interval: float = 1.0) -> None:
        self.name = name
        self.interval = interval
        self._counts: Counter[tuple[str, ...]] = Counter()
        self._lock = threading.Lock()
        self._pid = 0
        self._wake = threading.Event()

    def incr(self, *labels: str) -> None:
        with self._lock:
            self._counts[labels] += 1
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._loop, name=f"metrics-{self.name}", daemon=True).start()
                atexit.register(self.flush)  # a worker stopped by gunicorn keeps its last second

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        if counts and not safe_add(self.name, counts):
            with self._lock:  # keep them for the next flush rather than lose them
                self._counts.update(counts)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self.flush()
