"""kombu's transports as the engine runs them.

Redis: one client reused for publishing. kombu builds a new `redis.Redis` client for every message it
publishes; with redis-py 5 and later that copies ~170 response callbacks each time, which was a third of the
receiver's cost per webhook. One per channel, holding one connection, is enough.

SQLite (the embedded default): polled often, write-ahead logged (EmbeddedTransport).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from queue import Empty
from time import monotonic, sleep
from typing import Any

from kombu.transport import redis, sqlalchemy
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property
from sqlalchemy import Engine, Table, delete, event, insert, select, text
from sqlalchemy.exc import OperationalError

# How often an embedded worker looks at its SQLite queues. kombu's default is a second, and a virtual
# transport's consumer also sleeps that long whenever its prefetch window is full (its drain raises Empty):
# a worker of 2 processes ran about 2 tasks a second however short they were, and each hop of a flow
# (webhook, push, echo) waited up to a second. An empty poll is one SQLite read of two queues.
EMBEDDED_POLL_SECONDS = 0.05
# How soon a worker whose prefetch window is full sees a slot come free (a task acknowledged). kombu sleeps
# the whole polling interval there too: each of a worker's processes waited 25 ms on average after every
# task, longer than most tasks take, and the cores were half idle through a first sync. Looking at the
# window reads no file, only the worker's own count.
FULL_WINDOW_SECONDS = 0.002


class Channel(redis.Channel):
    @cached_property
    def _publisher(self) -> Any:
        """kombu's client, holding one connection of the channel's pool: a client that takes a connection
        from the pool and gives it back around each command spent 6 % of the receiver's CPU per webhook
        doing so. Its lock keeps it thread-safe; a connection Redis dropped is made again by its retry."""
        options: dict[str, Any] = {"connection_pool": self.pool, "single_connection_client": True}
        if (credential_provider := self.pool.connection_kwargs.get("credential_provider")) is not None:
            options["credential_provider"] = credential_provider  # as kombu's _create_client passes it
        return self.Client(**options)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        yield client or self._publisher


class Transport(redis.Transport):
    Channel = Channel


class EmbeddedChannel(sqlalchemy.Channel):
    """kombu's SQLAlchemy channel, with the publish, the poll and the take that the embedded default runs
    all day made cheap and kept cheap.

    kombu marks a message it hands out invisible and keeps it for good: the file grew by every task ever
    run, and the poll of an empty queue read all of them (SQLite cannot use an index for kombu's
    `visible != 0`): 10 ms a poll after 10,000 tasks, 50 ms after 50,000, twenty polls a second. A taken
    message is deleted here instead, in the transaction that takes it (kombu never hands an invisible
    message out again, so nothing else changes), those an earlier version left are deleted once, and
    each queue's waiting messages are found by an index. The queue's row is looked up once per channel,
    not by an ORM query at every publish and take."""

    def _engine_from_config(self) -> Engine:
        engine = super()._engine_from_config()
        event.listen(engine, "connect", _write_ahead)
        return engine

    def _open(self) -> Any:
        opened = super()._open()
        _tidy(opened[0], self.message_cls.__table__)
        return opened

    @cached_property
    def _queue_ids(self) -> dict[str, int]:
        return {}

    def _queue_id(self, queue: str) -> int:
        if queue not in self._queue_ids:
            self._queue_ids[queue] = self._get_or_create(queue).id
        return self._queue_ids[queue]

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        messages = self.message_cls.__table__
        try:
            self.session.execute(
                insert(messages).values(queue_id=self._queue_id(queue), payload=dumps(payload), visible=True,
                                        version=1)
            )  # fmt: skip
            self.session.commit()
        except OperationalError:  # as kombu's: the publish fails, and can be retried
            self.session.rollback()
            raise

    def _get(self, queue: str) -> Any:
        """kombu takes the file's write lock (BEGIN IMMEDIATE) to look at each queue, empty or not: polled
        often, on a busy machine, a poller descheduled while holding it kept the receiver from publishing
        for seconds. A plain read first (write-ahead logging lets it pass any writer) finds most queues
        empty without the lock."""
        try:
            waiting = self._next(queue) is not None
        finally:
            self.session.commit()
        if not waiting:
            raise Empty()
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            found = self._next(queue, with_payload=True)
            if found is None:  # another process took it in between
                raise Empty()
            messages = self.message_cls.__table__
            self.session.execute(delete(messages).where(messages.c.id == found.id))
            return loads(bytes_to_str(found.payload))
        finally:
            self.session.commit()

    def _next(self, queue: str, with_payload: bool = False) -> Any:
        """The queue's oldest waiting message (its id, and payload if asked), by the waiting index."""
        messages = self.message_cls.__table__
        columns = (messages.c.id, messages.c.payload) if with_payload else (messages.c.id,)
        return self.session.execute(
            select(*columns)
            .where(messages.c.queue_id == self._queue_id(queue), messages.c.visible == True)  # noqa: E712
            .order_by(messages.c.id)
            .limit(1)
        ).first()


_tidied: set[str] = set()


def _tidy(engine: Engine, messages: Table) -> None:
    """Once per process and file: the index that finds a queue's waiting messages, and the messages taken
    before this version (kombu's invisible ones) deleted."""
    key = str(engine.url)
    if key in _tidied:
        return
    with engine.begin() as conn:
        name = messages.name
        index = f"CREATE INDEX IF NOT EXISTS ix_{name}_waiting ON {name} (queue_id, visible, id)"
        conn.exec_driver_sql(index)
        conn.execute(delete(messages).where(messages.c.visible == False))  # noqa: E712
    _tidied.add(key)


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

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:
        """kombu's, but for the sleep between two looks: the polling interval when the queues were empty,
        FULL_WINDOW_SECONDS while the prefetch window is full (no queue was read)."""
        started = monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError() from None  # socket.timeout, as kombu raises
                sleep(self.polling_interval if self._window_open() else FULL_WINDOW_SECONDS)

    def _window_open(self) -> bool:
        return any(channel._consumers and channel.qos.can_consume() for channel in self.channels)
