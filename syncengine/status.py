"""What `syncengine status` shows: the inbox by status, the oldest waiting event, the broker's queues."""

from __future__ import annotations

from typing import Any

from kombu.exceptions import ChannelError

from . import inbox
from .breaker import breaker_for
from .celery_app import QUEUES
from .celery_app import app as celery_app
from .db import session_scope
from .models import utcnow
from .settings import SERVICES


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue; None when the broker cannot be reached."""
    try:
        with celery_app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return {q: _depth(conn.default_channel, q) for q in QUEUES}
    except Exception:
        return dict.fromkeys(QUEUES)


def _depth(channel: Any, queue: str) -> int:
    try:
        return channel.queue_declare(queue=queue, passive=True).message_count
    except ChannelError:  # no consumer ever declared it: nothing can be waiting in it
        return 0


def breaker_states() -> dict[str, str]:
    return {service: breaker_for(service).state() for service in (*SERVICES, "openai")}


def collect() -> dict[str, Any]:
    with session_scope() as session:
        oldest = inbox.oldest_unprocessed(session)
        failures = [
            {"id": e.id, "source": e.source, "event_type": e.event_type, "attempts": e.attempts,
             "error": e.last_error}
            for e in inbox.recent_failures(session)
        ]  # fmt: skip
        events = inbox.counts_by_status(session)
    # Outside that transaction: on SQLite the breakers' own reads would wait for its write lock.
    return {
        "breakers": breaker_states(),
        "events": events,
        "oldest_unprocessed_seconds": (utcnow() - oldest).total_seconds() if oldest else None,
        "queues": queue_depths(),
        "failed": failures,
    }


def render(report: dict[str, Any]) -> str:
    lines = ["inbox events:"]
    lines += [f"  {status:<11} {count}" for status, count in report["events"].items()]
    oldest = report["oldest_unprocessed_seconds"]
    lines.append(f"oldest unprocessed: {'none' if oldest is None else f'{oldest:.0f} s ago'}")
    lines.append("queues:")
    lines += [
        f"  {name:<11} {'unreachable' if depth is None else depth}"
        for name, depth in report["queues"].items()
    ]
    lines.append("circuit breakers:")
    lines += [f"  {name:<13} {state}" for name, state in report["breakers"].items()]
    if report["failed"]:
        lines.append("failed events (replay with `syncengine replay <id>`):")
        lines += [
            f"  #{f['id']} {f['source']} {f['event_type']} x{f['attempts']}: {f['error']}"
            for f in report["failed"]
        ]
    return "\n".join(lines)
