"""What `syncengine status` shows, problems first: failed and stuck pushes and other outbox tasks (bookings,
emails) with their reasons, effects that failed or were left unfinished, failed and retrying inbox events
with their last error; then the healthy summary: the inbox by status, the oldest waiting event, the
broker's queues, breakers, sweep cursors and OAuth token expiry. Each is a key of the report (`--json`
carries the same), so more sections can be added."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from syncengine import inbox, outbox
from syncengine.db import session_scope
from syncengine.idempotency import DEFAULT_LEASE
from syncengine.models import (
    IdempotencyKey,
    IdempotencyPhase,
    InboxEvent,
    InboxStatus,
    OAuthToken,
    SyncCursor,
    utcnow,
)
from syncengine.readings import breaker_states, queue_depths
from syncengine.settings import get_settings

# A task still waiting this long after it was set off is stuck, even without an error yet.
STUCK_AFTER = timedelta(minutes=10)
# An effect left 'called' this long (its worker died, or an answer it could not read) needs a look.
UNFINISHED_AFTER = max(timedelta(minutes=10), 2 * DEFAULT_LEASE)
# Failed effects are shown for this long (a push's own keep failing in its outbox row until it is done).
FAILED_EFFECTS_FOR = timedelta(days=7)
PUSH_OPERATIONS = ("push_", "archive_", "restore_")
LIMIT = 20
# A sweep that last finished more than this many periods ago is stale (README: alert on it too).
STALE_PERIODS = 3
# Beat refreshes the Revolut access token 5 minutes before it expires: less left means it did not.
TOKEN_WARNING = 4 * 60


def collect() -> dict[str, Any]:
    with session_scope() as session:
        tasks = outbox.problems(session, STUCK_AFTER, LIMIT)
        report = {
            "tasks": tasks,
            "task_counts": outbox.counts_by_state(session),
            "effects": effect_problems(session),
            "failed": [_event(e) for e in inbox.recent_failures(session, LIMIT)],
            "retrying": [_event(e) for e in retrying_events(session)],
            "retrying_count": retrying_count(session),
            "events": inbox.counts_by_status(session),
            "cursors": sweep_cursors(session),
            "tokens": token_expiry(session),
        }
        oldest = inbox.oldest_unprocessed(session)
    # Outside that transaction: on SQLite the breakers' own reads would wait for its write lock.
    report |= {
        "breakers": breaker_states(),
        "oldest_unprocessed_seconds": (utcnow() - oldest).total_seconds() if oldest else None,
        "queues": queue_depths(),
    }
    report["problems"] = count_problems(report)
    return report


def count_problems(report: dict[str, Any]) -> int:
    """Everything the problems part of the screen is about (the lists show the first LIMIT of each)."""
    listed = report["events"].get("failed", 0) + report["retrying_count"] + report["task_counts"]["failed"]
    listed += len(report["tasks"]["stuck"]) + sum(len(v) for v in report["effects"].values())
    listed += sum(state not in ("closed", "unknown") for state in report["breakers"].values())
    listed += sum(bool(c["stale"]) for c in report["cursors"]) + sum(
        bool(t["problem"]) for t in report["tokens"]
    )
    return listed + (all(d is None for d in report["queues"].values()))


def _event(e: InboxEvent) -> dict[str, Any]:
    return {"id": e.id, "source": e.source, "event_type": e.event_type, "attempts": e.attempts,
            "error": e.last_error, "next_attempt_at": e.available_at}  # fmt: skip


def retrying_count(session: Session) -> int:
    query = select(func.count()).where(
        InboxEvent.status == InboxStatus.RECEIVED, InboxEvent.last_error.is_not(None)
    )
    return int(session.execute(query).scalar_one())


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
    """Each (system, kind) sweep: its cursor and when it last finished. Stale when it last finished more than
    three periods ago (beat stopped, or the sweep keeps failing): changes whose webhooks were lost wait."""
    rows = session.execute(select(SyncCursor).order_by(SyncCursor.system, SyncCursor.kind)).scalars()
    now, settings = utcnow(), get_settings()
    out = []
    for c in rows:
        ago = (now - c.swept_at).total_seconds() if c.swept_at else None
        every = sweep_period(c.system, c.kind)
        configured = settings.services.get(c.system) is not None and settings.services[c.system].configured
        stale = bool(configured and every and ago is not None and ago > STALE_PERIODS * every)
        out.append({"system": c.system, "kind": c.kind, "cursor": c.cursor, "swept_at": c.swept_at,
                    "seconds_ago": ago, "every_seconds": every, "stale": stale})  # fmt: skip
    return out


def sweep_period(system: str, kind: str) -> float | None:
    from beat_schedule import BEAT_SCHEDULE

    entry = BEAT_SCHEDULE.get(f"sweep-{system}-{kind}")
    return float(entry["schedule"]) if entry and isinstance(entry["schedule"], int | float) else None


def token_expiry(session: Session) -> list[dict[str, Any]]:
    """Stored OAuth tokens (never their values): when the access token expires, when it was refreshed, and
    the problem when there is one (beat refreshes it well before it expires)."""
    now = utcnow()
    out = []
    # The same table keeps the webhook signing secrets vendors make for us (syncengine.signing_secrets,
    # "<sender>:webhook"): no token, nothing expires.
    tokens = select(OAuthToken).where(OAuthToken.provider.not_like("%:webhook")).order_by(OAuthToken.provider)
    for t in session.execute(tokens).scalars():
        left = (t.expires_at - now).total_seconds() if t.expires_at else None
        out.append({"provider": t.provider, "expires_at": t.expires_at, "refreshed_at": t.refreshed_at,
                    "expires_in_seconds": left, "has_refresh_token": t.refresh_token_enc is not None,
                    "problem": _token_problem(left, t.refresh_token_enc is not None)})  # fmt: skip
    return out


def _token_problem(left: float | None, refreshable: bool) -> str | None:
    if not refreshable:
        return "no refresh token: run `syncengine revolut consent`"
    if left is not None and left <= 0:
        return f"access token expired {_age(-left)} ago: is beat running? else `syncengine revolut consent`"
    if left is not None and left < TOKEN_WARNING:
        return f"access token expires in {_age(left)} and was not refreshed: is beat running?"
    return None


# --- the screen -------------------------------------------------------------------------------------------

WIDTH = 100  # every line fits 100 columns: long reasons wrap, indented under their item


def render(report: dict[str, Any], show: int = LIMIT) -> str:
    """The screen; `show` items at most per problem section (`status --watch` shows fewer)."""
    lines = [*render_problems(report, show), *render_summary(report)]
    return "\n".join(fit(line) for item in lines for line in item.split("\n"))


def fit(line: str) -> str:
    """A line within the width: an item's reason moved whole onto the next line when it fits there (so it
    can still be searched for), else wrapped under the item."""
    if len(line) <= WIDTH:
        return line
    indent = " " * (len(line) - len(line.lstrip()) + 4)
    head, sep, reason = line.partition(": ")
    if sep and len(head) < WIDTH and len(indent) + len(reason) <= WIDTH:
        return f"{head}:\n{indent}{reason}"
    return textwrap.fill(line, WIDTH, subsequent_indent=indent, break_on_hyphens=False)


def render_problems(report: dict[str, Any], show: int = LIMIT) -> list[str]:
    tasks, effects = report["tasks"], report["effects"]
    if not report["problems"]:
        return ["no problems: every push, effect and event is done or on its way", ""]
    failed_tasks, failed_events = report["task_counts"]["failed"], report["events"].get("failed", 0)
    lines = [f"PROBLEMS: {report['problems']:,}"]
    lines += _section(FAILED_TASKS, [_task_line(t) for t in tasks["failed"]], failed_tasks, show)
    lines += _section("stuck pushes and tasks", [_task_line(t) for t in tasks["stuck"]], show=show)
    lines += _section("failed effects", [_effect_line(e) for e in effects["failed"]], show=show)
    lines += _section(
        "unfinished effects (called, no answer recorded)", [_effect_line(e) for e in effects["unfinished"]],
        show=show,
    )  # fmt: skip
    lines += _section(FAILED_EVENTS, [_event_line(e) for e in report["failed"]], failed_events, show)
    retrying = report["retrying_count"]
    lines += _section("retrying events", [_retrying_line(e) for e in report["retrying"]], retrying, show)
    return [*lines, *_environment_problems(report), ""]


def _environment_problems(report: dict[str, Any]) -> list[str]:
    lines = []
    if all(depth is None for depth in report["queues"].values()):
        lines += [
            "broker unreachable: queues and breakers unknown; webhooks wait in the inbox (check REDIS_URL)"
        ]
    open_ = [
        f"  {name} {state}"
        for name, state in report["breakers"].items()
        if state not in ("closed", "unknown")
    ]
    lines += _section(OPEN_BREAKERS, open_)
    stale = [c for c in report["cursors"] if c["stale"]]
    lines += _section(STALE_SWEEPS, [
        f"  {c['system']} {c['kind']}: {_age(c['seconds_ago'])} ago (runs every {_age(c['every_seconds'])})"
        for c in stale
    ])  # fmt: skip
    return lines + _section(
        "oauth tokens", [f"  {t['provider']}: {t['problem']}" for t in report["tokens"] if t["problem"]]
    )


FAILED_TASKS = "failed pushes and tasks (replay one: `syncengine replay --push <id>`; all: `replay --failed`)"
FAILED_EVENTS = (
    "failed events (replay one: `syncengine replay <id>`;\n"
    "  all of them: `syncengine replay --failed [--source S] [--type T]`)"
)
OPEN_BREAKERS = "open circuit breakers (calls wait for the cool-down; a vendor down or refusing us)"
STALE_SWEEPS = "stale sweeps (is beat running? `syncengine sweep <system> <kind>` shows the failure)"


def _section(title: str, lines: list[str], total: int | None = None, show: int = LIMIT) -> list[str]:
    """A title and its first `show` lines; how many more there are when there are more."""
    if not lines:
        return []
    more = (len(lines) if total is None else total) - min(show, len(lines))
    return [f"{title}:", *lines[:show], *([f"  … and {more:,} more"] if more > 0 else [])]


def _task_line(t: dict[str, Any]) -> str:
    what = " ".join(str(a) for a in t["args"])
    origin = f" (event #{t['event']})" if t["event"] else ""
    state = {"pending": "retrying" if t["error"] else "waiting", "running": "running, lease lapsed"}.get(
        t["state"], t["state"]
    )
    detail = t["error"] or f"set off {_age(t['age_seconds'])} ago"
    return f"  #{t['id']} {t['task']} {what} {state} x{t['attempts']}{origin}{_next(t)}: {detail}"


def _effect_line(e: dict[str, Any]) -> str:
    detail = e["error"] or "no answer recorded"
    return (
        f"  {e['key']} ({e['system']} {e['operation']}) {e['phase']} {_age(e['seconds_ago'])} ago: {detail}"
    )


def _event_line(e: dict[str, Any]) -> str:
    return f"  #{e['id']} {e['source']} {e['event_type']} x{e['attempts']}: {e['error']}"


def _retrying_line(e: dict[str, Any]) -> str:
    return f"  #{e['id']} {e['source']} {e['event_type']} x{e['attempts']}{_next(e)}: {e['error']}"


def _next(item: dict[str, Any]) -> str:
    """The next attempt of what waits for a retry ("next attempt in 2 min")."""
    when = item.get("next_attempt_at")
    if not when or not item.get("error"):
        return ""
    left = (when - utcnow()).total_seconds()
    return f", next attempt in {_age(left)}" if left > 0 else ", next attempt due now"


def _age(seconds: float) -> str:
    from syncengine.progress import duration

    return duration(seconds)


def _row(label: str, items: list[str]) -> list[str]:
    """A label and its items side by side, as many per line as fit the width; never an item cut in two."""
    lines = [f"{label:<14}"]
    for item in items:
        if len(lines[-1]) > 14 and len(lines[-1]) + 3 + len(item) > WIDTH:
            lines.append(" " * 14)
        lines[-1] += (" · " if len(lines[-1]) > 14 else "") + item
    return [line.rstrip() for line in lines]


def render_summary(report: dict[str, Any]) -> list[str]:
    events = dict(report["events"])
    retrying = report.get("retrying_count", len(report["retrying"]))
    events = {"waiting": events.pop("received", 0) - retrying, "retrying": retrying, **events}
    oldest = report["oldest_unprocessed_seconds"]
    lines = _row("inbox events:", [f"{k} {v:,}" for k, v in events.items()])
    lines += _row("", [f"oldest unprocessed: {'none' if oldest is None else _age(oldest) + ' ago'}"])
    lines += _row("outbox:", [f"{k} {v:,}" for k, v in report["task_counts"].items()])
    lines += _row(
        "queues:", [f"{k} {'unreachable' if v is None else f'{v:,}'}" for k, v in report["queues"].items()]
    )
    closed = [name for name, state in report["breakers"].items() if state == "closed"]
    others = [f"{name} {state}" for name, state in report["breakers"].items() if state != "closed"]
    lines += _row("breakers:", [*others, *([f"closed: {', '.join(closed)}"] if closed else [])])
    return lines + _sweeps_and_tokens(report)


def _sweeps_and_tokens(report: dict[str, Any]) -> list[str]:
    sweeps = [
        f"{c['system']} {c['kind']} "
        + (_age(c["seconds_ago"]) + " ago" if c["seconds_ago"] is not None else "never")
        for c in report.get("cursors", [])
    ]
    lines = _row("sweeps:", sweeps or ["none yet"])
    tokens = [
        f"{t['provider']} "
        + (f"access token expires in {_age(t['expires_in_seconds'])}" if t["expires_in_seconds"] is not None
           and t["expires_in_seconds"] > 0 else "access token expired" if t["expires_in_seconds"] is not None
           else "no expiry stored")
        + ("" if t["has_refresh_token"] else ", NO refresh token: consent again")
        for t in report.get("tokens", [])
    ]  # fmt: skip
    return lines + _row(
        "oauth tokens:", tokens or ["none (Revolut not consented: `syncengine revolut consent`)"]
    )
