"""What `syncengine status` shows, problems first: failed and stuck pushes and other outbox tasks (bookings,
emails) with their reasons, effects that failed or were left unfinished, failed and retrying inbox events
with their last error; then the healthy summary: the inbox by status, the oldest waiting event, the
broker's queues, breakers, sweep cursors and OAuth token expiry. Each is a key of the report (`--json`
carries the same), so more sections can be added."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kombu.exceptions import ChannelError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import inbox, outbox
from .breaker import breaker_for
from .celery_app import QUEUES
from .celery_app import app as celery_app
from .db import session_scope
from .idempotency import DEFAULT_LEASE
from .models import (
    IdempotencyKey,
    IdempotencyPhase,
    InboxEvent,
    InboxStatus,
    OAuthToken,
    SyncCursor,
    utcnow,
)
from .settings import SERVICES

# A task still waiting this long after it was set off is stuck, even without an error yet.
STUCK_AFTER = timedelta(minutes=10)
# An effect left 'called' this long (its worker died, or an answer it could not read) needs a look.
UNFINISHED_AFTER = max(timedelta(minutes=10), 2 * DEFAULT_LEASE)
# Failed effects are shown for this long (a push's own keep failing in its outbox row until it is done).
FAILED_EFFECTS_FOR = timedelta(days=7)
PUSH_OPERATIONS = ("push_", "archive_", "restore_")
LIMIT = 20


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
        tasks = outbox.problems(session, STUCK_AFTER, LIMIT)
        report = {
            "tasks": tasks,
            "task_counts": outbox.counts_by_state(session),
            "effects": effect_problems(session),
            "failed": [_event(e) for e in inbox.recent_failures(session, LIMIT)],
            "retrying": [_event(e) for e in retrying_events(session)],
            "events": inbox.counts_by_status(session),
            "cursors": sweep_cursors(session),
            "tokens": token_expiry(session),
        }
        oldest = inbox.oldest_unprocessed(session)
    report["problems"] = sum(len(report[k]) for k in ("failed", "retrying")) + sum(
        len(v) for part in ("tasks", "effects") for v in report[part].values()
    )
    # Outside that transaction: on SQLite the breakers' own reads would wait for its write lock.
    report |= {
        "breakers": breaker_states(),
        "oldest_unprocessed_seconds": (utcnow() - oldest).total_seconds() if oldest else None,
        "queues": queue_depths(),
    }
    return report


def _event(e: InboxEvent) -> dict[str, Any]:
    return {"id": e.id, "source": e.source, "event_type": e.event_type, "attempts": e.attempts,
            "error": e.last_error, "next_attempt_at": e.available_at}  # fmt: skip


def retrying_events(session: Session) -> list[InboxEvent]:
    """Events that failed an attempt and wait for the next one."""
    query = (
        select(InboxEvent)
        .where(InboxEvent.status == InboxStatus.RECEIVED, InboxEvent.last_error.is_not(None))
        .order_by(InboxEvent.id)
        .limit(LIMIT)
    )
    return list(session.execute(query).scalars())


def effect_problems(session: Session) -> dict[str, list[dict[str, Any]]]:
    """External effects that failed (lately), or were called and never finished: a worker died after the
    call, or the answer could not be read. A push's own effects are left to its outbox row."""
    now, key = utcnow(), IdempotencyKey
    not_push = [~key.operation.startswith(prefix) for prefix in PUSH_OPERATIONS]
    failed = session.execute(
        select(key)
        .where(key.phase == IdempotencyPhase.FAILED, key.updated_at >= now - FAILED_EFFECTS_FOR, *not_push)
        .order_by(key.updated_at.desc())
        .limit(LIMIT)
    ).scalars()
    unfinished = session.execute(
        select(key)
        .where(key.phase == IdempotencyPhase.CALLED, key.updated_at <= now - UNFINISHED_AFTER)
        .order_by(key.updated_at)
        .limit(LIMIT)
    ).scalars()
    return {"failed": [_effect(k, now) for k in failed], "unfinished": [_effect(k, now) for k in unfinished]}


def _effect(key: IdempotencyKey, now: Any) -> dict[str, Any]:
    response = key.response if isinstance(key.response, dict) else {}
    return {
        "key": key.key, "system": key.system, "operation": key.operation, "phase": key.phase,
        "error": response.get("error"), "seconds_ago": (now - key.updated_at).total_seconds(),
    }  # fmt: skip


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


# --- the screen -------------------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    return "\n".join([*render_problems(report), *render_summary(report)])


def render_problems(report: dict[str, Any]) -> list[str]:
    tasks, effects = report["tasks"], report["effects"]
    if not report["problems"]:
        return ["no failures: every push, effect and event is done or on its way", ""]
    lines = [f"PROBLEMS: {report['problems']}"]
    lines += _section(FAILED_TASKS, [_task_line(t) for t in tasks["failed"]])
    lines += _section("stuck pushes and tasks", [_task_line(t) for t in tasks["stuck"]])
    lines += _section("failed effects", [_effect_line(e) for e in effects["failed"]])
    lines += _section(
        "unfinished effects (called, no answer recorded)", [_effect_line(e) for e in effects["unfinished"]]
    )
    lines += _section(FAILED_EVENTS, [_event_line(e) for e in report["failed"]])
    lines += _section("retrying events", [_event_line(e) for e in report["retrying"]])
    return [*lines, ""]


FAILED_TASKS = "failed pushes and tasks (replay one: `syncengine replay --push <id>`; all: `replay --failed`)"
FAILED_EVENTS = (
    "failed events (replay one: `syncengine replay <id>`;\n"
    "  all of them: `syncengine replay --failed [--source S] [--type T]`)"
)


def _section(title: str, lines: list[str]) -> list[str]:
    return [f"{title}:", *lines] if lines else []


def _task_line(t: dict[str, Any]) -> str:
    what = " ".join(str(a) for a in t["args"])
    origin = f" (event #{t['event']})" if t["event"] else ""
    state = {"pending": "retrying" if t["error"] else "waiting", "running": "running, lease lapsed"}.get(
        t["state"], t["state"]
    )
    detail = t["error"] or f"set off {_age(t['age_seconds'])} ago"
    return f"  #{t['id']} {t['task']} {what} {state} x{t['attempts']}{origin}: {detail}"


def _effect_line(e: dict[str, Any]) -> str:
    detail = e["error"] or "no answer recorded"
    return (
        f"  {e['key']} ({e['system']} {e['operation']}) {e['phase']} {_age(e['seconds_ago'])} ago: {detail}"
    )


def _event_line(e: dict[str, Any]) -> str:
    return f"  #{e['id']} {e['source']} {e['event_type']} x{e['attempts']}: {e['error']}"


def _age(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def render_summary(report: dict[str, Any]) -> list[str]:
    counts = report["task_counts"]
    lines = ["pushes and tasks in the outbox:"]
    lines += [f"  {state:<11} {count}" for state, count in counts.items()]
    lines.append("inbox events:")
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
    return lines + _sweeps_and_tokens(report)


def _sweeps_and_tokens(report: dict[str, Any]) -> list[str]:
    lines = ["sweeps (last finished):"]
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
    return lines
