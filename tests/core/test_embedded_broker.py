"""The embedded default's SQLite broker (syncengine.broker.EmbeddedTransport) keeps only what waits: a taken
message leaves the file, those kombu's own transport left behind are deleted on open, the poll of an empty
queue reads an index, not every message the file ever held, and a worker whose prefetch window is full
takes its next message as soon as a slot is free."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import kombu
import pytest
from sqlalchemy import event

from syncengine.broker import EmbeddedTransport


def embedded(path: Path) -> kombu.Connection:
    return kombu.Connection(f"sqlite:///{path}", transport=EmbeddedTransport)


def filled(conn: kombu.Connection, count: int) -> kombu.simple.SimpleQueue:
    """The queue 'sync' with `count` messages {"n": 0..count-1} published to it."""
    queue = conn.SimpleQueue("sync")
    for n in range(count):
        queue.put({"n": n})
    return queue


def messages(path: Path) -> list[tuple[int, int]]:
    """(queue id, visible) of every message the file holds."""
    with sqlite3.connect(path) as db:
        return db.execute("SELECT queue_id, visible FROM kombu_message ORDER BY id").fetchall()


def test_a_taken_message_leaves_the_file_and_the_rest_come_in_order(tmp_path):
    path = tmp_path / "broker.sqlite3"
    with embedded(path) as conn:
        queue = filled(conn, 30)
        taken = []
        for _ in range(20):
            message = queue.get(timeout=2)
            taken.append(message.payload["n"])
            message.ack()
        assert taken == list(range(20))
        assert len(messages(path)) == 10  # the ten still waiting, nothing of the twenty taken
        assert conn.default_channel._size("sync") == 10
        queue.close()


def test_messages_kombus_own_transport_took_are_deleted_when_the_file_is_opened(tmp_path):
    path = tmp_path / "broker.sqlite3"
    with kombu.Connection(f"sqla+sqlite:///{path}") as old:  # an earlier version: kombu's transport alone
        queue = filled(old, 8)
        for _ in range(5):
            queue.get(timeout=2).ack()
        queue.close()
    assert [visible for _, visible in messages(path)] == [0] * 5 + [1] * 3  # kept, invisible, for good

    with embedded(path) as conn:
        queue = conn.SimpleQueue("sync")
        assert [queue.get(timeout=2).payload["n"] for _ in range(3)] == [5, 6, 7]
        assert messages(path) == []
        queue.close()


def test_an_empty_queue_is_polled_by_its_index_whatever_waits_in_the_others(tmp_path):
    path = tmp_path / "broker.sqlite3"
    with embedded(path) as conn:
        busy = filled(conn, 500)
        channel = conn.default_channel
        polls: list[tuple[str, tuple]] = []

        def seen(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
            if statement.lstrip().upper().startswith("SELECT") and "kombu_message" in statement:
                polls.append((statement, parameters))

        engine = channel.session.get_bind()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            idle = conn.SimpleQueue("intake")
            with contextlib.suppress(idle.Empty):
                idle.get(timeout=0.2)
            idle.close()
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert polls, "the empty queue was not polled"
        with sqlite3.connect(path) as db:
            for statement, parameters in polls:
                plan = " ".join(row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + statement, parameters))
                assert "ix_kombu_message_waiting" in plan, plan
                assert "SCAN" not in plan, plan
        busy.close()


def test_a_worker_whose_prefetch_window_is_full_looks_again_at_once_and_an_idle_one_at_the_poll(
    tmp_path, monkeypatch
):
    """kombu slept the whole polling interval while the window was full too, so each process waited after
    every task before the next was handed out."""
    from syncengine import broker

    slept: list[float] = []
    monkeypatch.setattr(broker, "sleep", slept.append)
    with embedded(tmp_path / "broker.sqlite3") as conn:
        producer = conn.Producer()
        for n in range(2):
            producer.publish({"n": n}, routing_key="sync", declare=[kombu.Queue("sync")])
        held: list[kombu.Message] = []
        with conn.Consumer(kombu.Queue("sync"), callbacks=[lambda _body, m: held.append(m)]) as consumer:
            consumer.qos(prefetch_count=1)
            conn.drain_events(timeout=1)
            assert len(held) == 1  # the window (one message) is full now
            with pytest.raises(TimeoutError):
                conn.drain_events(timeout=0.01)
            assert slept and set(slept) == {broker.FULL_WINDOW_SECONDS}, slept

            held.pop().ack()
            conn.drain_events(timeout=1)  # the second message, the moment the window opened
            held.pop().ack()
            slept.clear()
            with pytest.raises(TimeoutError):
                conn.drain_events(timeout=0.01)  # nothing waits: the broker is polled at its interval
            assert slept and set(slept) == {broker.EMBEDDED_POLL_SECONDS}, slept
