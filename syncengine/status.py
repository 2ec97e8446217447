"""What `syncengine status` shows: the inbox by status, the oldest waiting event, the broker's queues,
breakers, sweep cursors and OAuth token expiry (each a key of the report, so more sections can be added)."""

from __future__ import annotations

from typing import Any

from kombu.exceptions import ChannelError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import inbox
from .breaker import breaker_for
from .celery_app import QUEUES
from .celery_app import app as celery_app
from .db import session_scope
from .models import OAuthToken, SyncCursor, utcnow
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
        cursors = sweep_cursors(session)
        tokens = token_expiry(session)
    # Outside that transaction: on SQLite the breakers' own reads would wait for its write lock.
    return {
        "breakers": breaker_states(),
        "events": events,
        "oldest_unprocessed_seconds": (utcnow() - oldest).total_seconds() if oldest else None,
        "queues": queue_depths(),
        "failed": failures,
        "cursors": cursors,
        "tokens": tokens,
    }


def sweep_cursors(session: Session) -> list[dict[str, Any]]:
    """Each (system, kind) sweep: its cursor and when it last finished; a stale one means missed changes."""
    rows = session.execute(select(SyncCursor).order_by(SyncCursor.system, SyncCursor.kind)).scalars()
    now = utcnow()
    return [
        {"system": c.system, "kind": c.kind, "cursor": c.cursor, "swept_at": c.swept_at,
         "seconds_ago": (now - c.swept_at).total_seconds() if c.swept_at else None}
        for c in rows
    ]  # fmt: skip


def token_expiry(session: Session) -> list[dict[str, Any]]:
    """Stored OAuth tokens (never their values): when the access token expires, when it was refreshed."""
    now = utcnow()
    return [
        {"provider": t.provider, "expires_at": t.expires_at, "refreshed_at": t.refreshed_at,
         "expires_in_seconds": (t.expires_at - now).total_seconds() if t.expires_at else None,
         "has_refresh_token": t.refresh_token_enc is not None}
        for t in session.execute(select(OAuthToken).order_by(OAuthToken.provider)).scalars()
    ]  # fmt: skip


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
    lines.append("sweeps (last finished):")
    lines += [
        f"  {c['system']:<13} {c['kind']:<10} "
        + (f"{c['seconds_ago']:.0f} s ago" if c["seconds_ago"] is not None else "never")
        + f", cursor {c['cursor']}"
        for c in report.get("cursors", [])
    ] or ["  none yet"]
    lines.append("oauth tokens:")
    lines += [
        f"  {t['provider']:<13} "
        + (f"access token expires in {t['expires_in_seconds']:.0f} s" if t["expires_in_seconds"] is not None
           else "no expiry stored")
        + ("" if t["has_refresh_token"] else ", NO refresh token: consent again")
        for t in report.get("tokens", [])
    ] or ["  none (Revolut not consented: `syncengine revolut consent`)"]  # fmt: skip
    if report["failed"]:
        lines.append("failed events (replay one: `syncengine replay <id>`;")
        lines.append("  all of them: `syncengine replay --failed [--source S] [--type T]`):")
        lines += [
            f"  #{f['id']} {f['source']} {f['event_type']} x{f['attempts']}: {f['error']}"
            for f in report["failed"]
        ]
    return "\n".join(lines)
