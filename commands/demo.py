"""`syncengine demo`: a day of a small business, played against the simulators on the embedded default.

Everything is real except the vendors: the receiver under gunicorn, a Celery worker, the SQLite store and
broker, signed webhooks. Each step says what a person does in one system, then shows, as they happen, the
events the engine receives and the writes it makes in the others; the end is a table of what each system
holds.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncengine.progress import Tracker, progress

SYSTEMS = ("mautic", "invoiceninja", "erpnext", "directus")
# What each system holds each kind in (its simulator's table, in SYSTEMS' order; None: not carried there).
HELD = {
    "contacts": ("leads", "clients", "Customer", "contacts"),
    "products": (None, "products", "Item", "products"),
    "invoices": (None, "invoices", "Sales Invoice", "invoices"),
    "payments": (None, "payments", "Payment Entry", "payments"),
}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# A step normally ends in seconds; on a busy machine a task that met the SQLite store locked by another
# writer ("database is locked") is re-driven from the store, which can take a minute or two: wait for it.
STEP_TIMEOUT = 180.0


@dataclass
class Demo:
    home: Path
    sims: dict[str, Any] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    stack: Any = None  # simulators.stack.Stack, once started
    seen_events: int = 0
    seen_writes: dict[str, int] = field(default_factory=dict)
    bar: Tracker | None = None

    # --- set-up ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """The simulators (Mautic with its two template emails), then the stack every run uses
        (simulators.stack): the store migrated, the receiver and a worker, the webhooks subscribed."""
        from simulators import stack

        sims = stack.simulators((*SYSTEMS, "revolut"))
        for name in ("invoice", "receipt"):  # Mautic's transactional templates, ids 1 and 2
            sims["mautic"].add_email(name=f"{name} email")
        self.stack = stack.start(sims, home=self.home, layout=stack.Layout(log=self.home / "engine.log"))
        self.sims, self.secrets = sims, self.stack.secrets
        self.urls = {name: server.url for name, server in self.stack.servers.items()}
        self.seen_writes = {name: self._writes(name) for name in SYSTEMS}

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()

    # --- watching ---------------------------------------------------------------------------------------

    def _writes(self, system: str) -> int:
        return sum(1 for r in self.sims[system].requests_log() if r["method"] in WRITE_METHODS)

    def show_progress(self) -> bool:
        """Print what happened since last time; True while the engine is still busy."""
        busy = False
        with sqlite3.connect(self.home / "syncengine.sqlite3") as db:
            rows = db.execute(
                "SELECT id, source, event_type, status FROM inbox_events WHERE id > ? ORDER BY id",
                (self.seen_events,),
            ).fetchall()
            waiting = db.execute(
                "SELECT count(*) FROM inbox_events WHERE status IN ('received', 'processing')"
            )
            busy = waiting.fetchone()[0] > 0
        for inbox_id, source, event_type, status in rows:
            if status in ("received", "processing"):
                break
            print(f"    ← {source:<12} {event_type:<32} {status}")
            self.seen_events = inbox_id
        for system in SYSTEMS:
            now = self._writes(system)
            if now > self.seen_writes[system]:
                print(f"    → {system:<12} {now - self.seen_writes[system]} write(s)")
                self.seen_writes[system] = now
        return busy

    def step(
        self, title: str, action: Callable[[], Any], done: Callable[[], bool], timeout: float = STEP_TIMEOUT
    ) -> None:
        print(f"\n● {title}")
        action()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = self.show_progress()
            if done() and not busy:
                time.sleep(1.5)  # room for the echoes, which must write nothing
                self.show_progress()
                print("  ✓ done")
                self._advance()
                return
            time.sleep(0.3)
        print("  ✗ not finished in time; see engine.log (run the demo with --keep to look at it)")
        self._advance()

    def _advance(self) -> None:
        if self.bar is not None:
            self.bar.advance()

    # --- what each system holds ------------------------------------------------------------------------

    def table(self) -> str:
        counts = {
            kind: {system: len(self.sims[system].db.get(table, {})) if table else None
                   for system, table in zip(SYSTEMS, tables, strict=True)}
            for kind, tables in HELD.items()
        }  # fmt: skip
        counts["emails"] = dict.fromkeys(SYSTEMS, None) | {"mautic": len(self.sims["mautic"].sent_emails())}
        lines = [f"{'':<10}" + "".join(f"{s:>14}" for s in SYSTEMS)]
        for kind, row in counts.items():
            lines.append(f"{kind:<10}" + "".join(f"{'-' if row[s] is None else row[s]:>14}" for s in SYSTEMS))
        return "\n".join(lines)


def run(home: Path | None = None, keep: bool = False) -> int:
    """The day, in `home` or a temporary folder removed at the end unless `keep`."""
    from .demo_day import STEPS, play

    demo = Demo(home or Path(tempfile.mkdtemp(prefix="syncengine-demo-")))
    print(f"syncengine demo: simulators, receiver and worker on the embedded default in {demo.home}")
    try:
        with progress("demo: starting the simulators, receiver and worker", total=STEPS, unit="steps") as bar:
            demo.bar = bar
            demo.start()
            bar.describe("demo: a day of a small business")
            play(demo)
        print("\nWhat each system holds now:\n" + demo.table())
    finally:
        demo.stop()
        if keep or home is not None:
            print(f"\nkept {demo.home}: engine.log, the store (syncengine.sqlite3)")
        else:
            shutil.rmtree(demo.home, ignore_errors=True)
    return 0
