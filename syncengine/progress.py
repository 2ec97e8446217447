"""Progress of long work, so it is never silent: a bar on a terminal (rich: counts, rate, ETA when the total
is known), and elsewhere (a worker's log, a pipe, a one-off dyno) one line in the log every so often.

    with progress("sweep invoiceninja contact", unit="listed") as bar:
        for page in pages:
            bar.advance(len(page), new=new_in_page)

The bar draws on stderr, so what a command prints on stdout stays clean; lines printed meanwhile appear
above the bar.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .settings import env_seconds

log = logging.getLogger("syncengine.progress")
# Seconds between two progress lines in a log (SYNCENGINE_PROGRESS_EVERY; 0: one per step).
LOG_EVERY = env_seconds("SYNCENGINE_PROGRESS_EVERY", 10)


class Tracker:
    """Counts one piece of work: `advance` the main count, and keep side counts (new=3, failed=1)."""

    def __init__(self, title: str, total: int | None, unit: str) -> None:
        self.title, self.total, self.unit = title, total, unit
        self.done = 0
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()

    def advance(self, n: int = 1, **counts: int) -> None:
        self.done += n
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        self.refresh()

    def set(self, done: int | None = None, total: int | None = None, **counts: int) -> None:
        """Absolute figures (a watcher reading them from the store)."""
        self.done = self.done if done is None else done
        self.total = self.total if total is None else total
        self.counts.update(counts)
        self.refresh()

    def describe(self, title: str) -> None:
        self.title = title
        self.refresh()

    def refresh(self) -> None:
        """Show the new figures (subclasses)."""

    def close(self) -> None:
        """The work ended (subclasses)."""

    # --- what both ways of showing say ---------------------------------------------------------------

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def side_counts(self) -> str:
        return ", ".join(f"{value:,} {name}" for name, value in self.counts.items())

    def line(self) -> str:
        """One line: "sweep invoiceninja contact: 1,200 of 2,000 listed (85/s, ETA 9 s), 40 new"."""
        of = f" of {self.total:,}" if self.total is not None else ""
        eta = ""
        rate = self.rate()
        if self.total is not None and rate > 0 and self.done < self.total:
            eta = f", ETA {duration((self.total - self.done) / rate)}"
        side = self.side_counts()
        return f"{self.title}: {self.done:,}{of} {self.unit} ({rate:,.1f}/s{eta})" + (
            f", {side}" if side else ""
        )


class LogTracker(Tracker):
    """A line in the log at most every `every` seconds, and one at the end when the work took that long."""

    def __init__(self, title: str, total: int | None, unit: str, every: float = LOG_EVERY) -> None:
        super().__init__(title, total, unit)
        self.every = every
        self.logged_at = time.monotonic()
        self.logged = False

    def refresh(self) -> None:
        if time.monotonic() - self.logged_at >= self.every:
            self._log()

    def close(self) -> None:
        if self.logged:
            self._log(suffix=f", done in {duration(time.monotonic() - self.started)}")

    def _log(self, suffix: str = "") -> None:
        log.info("%s%s", self.line(), suffix)
        self.logged_at, self.logged = time.monotonic(), True


class BarTracker(Tracker):
    """A rich progress bar on the terminal."""

    def __init__(self, title: str, total: int | None, unit: str) -> None:
        super().__init__(title, total, unit)
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if total is not None:
            columns += [BarColumn(bar_width=24), TextColumn("{task.completed:,.0f}/{task.total:,.0f}")]
        else:
            columns.append(TextColumn("{task.completed:,.0f}"))
        columns += [TextColumn(unit), _Rate(), TextColumn("{task.fields[side]}")]
        columns += [_Remaining()] if total is not None else []
        columns.append(TimeElapsedColumn())
        self.bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task(title, total=total, side="")
        self.bar.start()

    def refresh(self) -> None:
        side = self.side_counts()
        self.bar.update(self.task, description=self.title, completed=self.done, total=self.total,
                        side=f"· {side}" if side else "")  # fmt: skip

    def close(self) -> None:
        self.refresh()
        self.bar.stop()


class _Rate(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{(task.finished_speed or task.speed or 0):,.1f}/s", style="progress.data.speed")


class _Remaining(ProgressColumn):
    def render(self, task: Task) -> Text:
        left = task.time_remaining
        return Text("ETA -" if left is None else f"ETA {duration(left)}", style="progress.remaining")


def duration(seconds: float) -> str:
    """A short human duration: 9 s, 4 min 10 s, 2 h 5 min."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    big, small = (seconds // 60, seconds % 60) if seconds < 3600 else (seconds // 3600, seconds % 3600 // 60)
    units = ("min", "s") if seconds < 3600 else ("h", "min")
    return f"{big} {units[0]}" + (f" {small} {units[1]}" if small else "")


def on_terminal(stream: Any = None) -> bool:
    """A person watches (stderr, or the stream given, is a terminal): a bar; otherwise lines in the log."""
    return (stream or sys.stderr).isatty()


@contextmanager
def progress(
    title: str, total: int | None = None, unit: str = "", *, every: float = LOG_EVERY
) -> Iterator[Tracker]:
    tracker: Tracker = (
        BarTracker(title, total, unit) if on_terminal() else LogTracker(title, total, unit, every)
    )
    try:
        yield tracker
    finally:
        tracker.close()
