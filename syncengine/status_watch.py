"""`syncengine status --watch`: the status screen refreshed until the backlog is drained, and then said so.

The backlog is what waits to be done without having failed yet: events received or being processed, pushes
and tasks pending or running. What fails meanwhile or waits for a retry is a problem on the screen, not
backlog, so a vendor that is down cannot keep the watch going for ever. On a terminal the screen redraws in
place with the backlog's rate and ETA under it; elsewhere one line per refresh.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from .db import session_scope
from .models import InboxEvent, InboxStatus, OutboxTask, TaskState
from .progress import Tracker, duration, on_terminal


@dataclass(frozen=True)
class Backlog:
    events: int  # received (never failed) or processing
    tasks: int  # pending (never failed) or running
    retrying: int  # events and tasks that failed an attempt and wait for the next one

    @property
    def size(self) -> int:
        return self.events + self.tasks


def backlog() -> Backlog:
    with session_scope() as session:
        events = session.execute(
            select(func.count()).where(
                (InboxEvent.status == InboxStatus.PROCESSING)
                | ((InboxEvent.status == InboxStatus.RECEIVED) & InboxEvent.last_error.is_(None))
            )
        ).scalar_one()
        tasks = session.execute(
            select(func.count()).where(
                (OutboxTask.state == TaskState.RUNNING)
                | ((OutboxTask.state == TaskState.PENDING) & OutboxTask.last_error.is_(None))
            )
        ).scalar_one()
        retrying = (
            session.execute(
                select(func.count()).where(
                    InboxEvent.status == InboxStatus.RECEIVED, InboxEvent.last_error.is_not(None)
                )
            ).scalar_one()
            + session.execute(
                select(func.count()).where(
                    OutboxTask.state == TaskState.PENDING, OutboxTask.last_error.is_not(None)
                )
            ).scalar_one()
        )
    return Backlog(int(events), int(tasks), int(retrying))


def describe(now: Backlog, tracker: Tracker) -> str:
    """ "backlog: 1,234 events and 56 pushes/tasks waiting (draining 40.0/s, ETA 31 s)"."""
    if now.size == 0:
        return drained(now, tracker)
    rate = tracker.rate()
    pace = f"draining {rate:,.1f}/s, ETA {duration(now.size / rate)}" if rate > 0 else "not draining yet"
    return f"backlog: {now.events:,} events and {now.tasks:,} pushes/tasks waiting ({pace})"


def drained(now: Backlog, tracker: Tracker) -> str:
    after = f" after {duration(time.monotonic() - tracker.started)}" if tracker.done else ""
    left = f"; {now.retrying:,} retrying after an error (listed above)" if now.retrying else ""
    return f"backlog drained{after}: every event, push and task is done or failed{left}"


def watch(interval: float, as_json: bool = False) -> int:
    """Until the backlog is drained (exit 0); Ctrl-C stops it sooner."""
    tracker = Tracker("backlog", None, "done")
    first = backlog()
    if on_terminal(sys.stdout) and not as_json:
        return _live(interval, tracker, first)
    now = first
    while True:
        tracker.set(done=max(0, first.size - now.size))
        if as_json:
            line = {"events": now.events, "tasks": now.tasks, "retrying": now.retrying,
                    "rate": round(tracker.rate(), 2), "drained": now.size == 0}  # fmt: skip
            print(json.dumps(line), flush=True)
        else:
            print(describe(now, tracker), flush=True)
        if now.size == 0:
            return 0
        time.sleep(interval)
        now = backlog()


def _live(interval: float, tracker: Tracker, first: Backlog) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from .status import collect, render

    now = first
    with Live(console=Console(), auto_refresh=False, vertical_overflow="visible") as live:
        while True:
            tracker.set(done=max(0, first.size - now.size))
            footer = describe(now, tracker)
            hint = "" if now.size == 0 else f"\n(refreshed every {interval:g} s; Ctrl-C stops watching)"
            live.update(Text(f"{render(collect())}\n\n{footer}{hint}"), refresh=True)
            if now.size == 0:
                return 0
            time.sleep(interval)
            now = backlog()
