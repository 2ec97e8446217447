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
from collections import deque
from dataclasses import dataclass

from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent, InboxStatus, OutboxTask, TaskState
from syncengine.progress import duration, on_terminal


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


class Pace:
    """How fast the backlog moves, over the last WINDOW seconds: work that makes more work (an event sets
    off pushes) grows it before it drains, so the pace is measured, never assumed."""

    WINDOW = 30.0

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.samples: deque[tuple[float, int]] = deque()
        self.moved = False

    def add(self, size: int) -> None:
        now = time.monotonic()
        if self.samples and self.samples[-1][1] != size:
            self.moved = True
        self.samples.append((now, size))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.WINDOW:
            self.samples.popleft()

    def rate(self) -> float | None:
        """Items drained per second (negative: growing); None until there are two looks."""
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        return (first - last) / (t1 - t0) if t1 - t0 >= 1.0 else None


def describe(now: Backlog, pace: Pace) -> str:
    """ "backlog: 1,234 events and 56 pushes/tasks waiting (draining 40.0/s, ETA 31 s)"."""
    if now.size == 0:
        return drained(now, pace)
    rate = pace.rate()
    if rate is None:
        how = "measuring the pace"
    elif rate > 0.05:
        how = f"draining {rate:,.1f}/s, ETA {duration(now.size / rate)}"
    elif rate < -0.05:
        how = f"growing {-rate:,.1f}/s: events are setting off their pushes"
    else:
        how = "not moving: are the workers running?" if time.monotonic() - pace.started > 10 else "steady"
    return f"backlog: {now.events:,} events and {now.tasks:,} pushes/tasks waiting ({how})"


def drained(now: Backlog, pace: Pace) -> str:
    after = f" after {duration(time.monotonic() - pace.started)}" if pace.moved else ""
    left = f"; {now.retrying:,} retrying after an error (listed above)" if now.retrying else ""
    return f"backlog drained{after}: every event, push and task is done or failed{left}"


def watch(interval: float, as_json: bool = False) -> int:
    """Until the backlog is drained (exit 0); Ctrl-C stops it sooner."""
    pace = Pace()
    if on_terminal(sys.stdout) and not as_json:
        return _live(interval, pace)
    while True:
        now = backlog()
        pace.add(now.size)
        if as_json:
            rate = pace.rate()
            line = {"events": now.events, "tasks": now.tasks, "retrying": now.retrying,
                    "rate": None if rate is None else round(rate, 2), "drained": now.size == 0}  # fmt: skip
            print(json.dumps(line), flush=True)
        else:
            print(describe(now, pace), flush=True)
        if now.size == 0:
            return 0
        time.sleep(interval)


SHOW = 5  # problems per section on the watch screen: the backlog line must stay in sight


def _live(interval: float, pace: Pace) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from .status import collect, render

    with Live(console=Console(), auto_refresh=False, vertical_overflow="visible") as live:
        while True:
            now = backlog()
            pace.add(now.size)
            footer = describe(now, pace)
            hint = "" if now.size == 0 else f"\n(refreshed every {interval:g} s; Ctrl-C stops watching)"
            live.update(Text(f"{render(collect(), show=SHOW)}\n\n{footer}{hint}"), refresh=True)
            if now.size == 0:
                return 0
            time.sleep(interval)
