"""kombu's transports as the engine runs them.

Redis: one client reused for publishing. kombu builds a new `redis.Redis` client for every message it
publishes; with redis-py 5 and later that copies ~170 response callbacks each time, which was a third of the
receiver's cost per webhook. A client is thread-safe and shares the channel's connection pool, so one per
channel is enough.

SQLite (the embedded default): polled often, write-ahead logged (EmbeddedTransport).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any

from kombu.transport import redis, sqlalchemy
from kombu.utils.objects import cached_property
from sqlalchemy import Engine, event

# How often an embedded worker looks at its SQLite queues. kombu's default is a second, and a virtual
# transport's consumer also sleeps that long whenever its prefetch window is full (its drain raises Empty):
# a worker of 2 processes ran about 2 tasks a second however short they were, and each hop of a flow
# (webhook, push, echo) waited up to a second. An empty poll is one SQLite read of two queues.
EMBEDDED_POLL_SECONDS = 0.05


class Channel(redis.Channel):
    @cached_property
    def _publisher(self) -> Any:
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._publisher


class Transport(redis.Transport):
    Channel = Channel


class EmbeddedChannel(sqlalchemy.Channel):
    def _engine_from_config(self) -> Engine:
        engine = super()._engine_from_config()
        event.listen(engine, "connect", _write_ahead)
        return engine

    def _get(self, queue: str) -> Any:
        """kombu takes the file's write lock (BEGIN IMMEDIATE) to look at each queue, empty or not: polled
        often, on a busy machine, a poller descheduled while holding it kept the receiver from publishing
        for seconds. A plain read first (write-ahead logging lets it pass any writer) finds most queues
        empty without the lock."""
        if not self._waiting(queue):
            raise Empty()
        return super()._get(queue)

    def _waiting(self, queue: str) -> bool:
        found = self._get_or_create(queue)
        message = self.message_cls
        try:
            return (
                self.session.query(message.id)
                .filter(message.queue_id == found.id, message.visible != False)  # noqa: E712 - kombu's own test
                .limit(1)
                .first()
            ) is not None
        finally:
            self.session.commit()


def queued(app: Any, queues: Iterable[str]) -> bool:
    """Whether the broker still holds messages waiting in any of `queues` (not those a worker has taken).
    While it does, a task published a lease ago and not yet started is most likely among them, behind a
    backlog, not lost: publishing it again would only lengthen the backlog. A broker that cannot be asked
    counts as empty, so redelivery goes on as it would without this."""
    try:
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            return any(channel._size(queue) for queue in queues)
    except Exception:  # any transport error: redeliver as without this check
        return False


def _write_ahead(dbapi_connection: Any, _record: Any) -> None:
    """Every publish and every take is a write transaction; in kombu's default rollback-journal mode each
    cost several fsyncs (a third of a worker's time). Write-ahead logging with NORMAL sync may lose the
    last messages to a power cut, never to a crash of ours, and a lost message is one the store still
    holds: the redelivery sweep sends its inbox or outbox row again (a lost take is a second delivery,
    which the row's claim turns into a no-op)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class EmbeddedTransport(sqlalchemy.Transport):
    """The SQLite broker of the embedded default: polled every EMBEDDED_POLL_SECONDS, write-ahead logged."""

    Channel = EmbeddedChannel
    polling_interval = EMBEDDED_POLL_SECONDS
