"""Long work is never silent: a progress bar (counts, rate, elapsed; ETA when the total is known) when a
person watches a terminal, and a line in the log every so often otherwise. A sweep runs against the Invoice
Ninja simulator on an embedded store of its own (a SQLite file and broker), so what it finds goes nowhere
near the session's worker; the replay runs on the session's store and worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncengine import inbox
from syncengine.db import get_engine, session_scope
from syncengine.models import InboxEvent
from tests.support import ROOT
from tests.terminal import on_a_terminal

CLIENTS = 250  # three pages of Invoice Ninja's 100
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture()
def ninja() -> Iterator[str]:
    from simulators import REGISTRY

    sim = REGISTRY["invoiceninja"]()
    sim.seed({"clients": CLIENTS})
    server = sim.serve()
    yield server.url
    server.stop()


@pytest.fixture()
def embedded(tmp_path: Path, ninja: str) -> dict[str, str]:
    """The embedded default in a folder of its own, migrated, with Invoice Ninja configured."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"SYNCENGINE_HOME": str(tmp_path), "INVOICENINJA_URL": ninja, "INVOICENINJA_TOKEN": "TOKEN"}
    subprocess.run([sys.executable, "-m", "syncengine", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    return env


def test_a_sweep_on_a_terminal_shows_a_bar(embedded: dict[str, str]):
    screen = on_a_terminal("sweep", "invoiceninja", "contact", env=embedded)
    assert screen.returncode == 0, screen.terminal[-2000:]
    assert "\x1b[" in screen.terminal  # drawn and redrawn in place, not printed line after line
    shown = ANSI.sub("", screen.terminal)
    assert re.search(
        rf"sweep invoiceninja contact\s+{CLIENTS} listed\s+[\d.,]+/s\s+· {CLIENTS} new", shown
    ), shown
    assert "0:00:" in shown  # elapsed
    assert "syncengine.progress" not in shown  # no log lines on a terminal
    assert screen.stdout.startswith(f"invoiceninja contact: {CLIENTS} listed, {CLIENTS} new, cursor ")


def test_a_sweep_in_a_log_says_how_far_it_is(embedded: dict[str, str]):
    """Not on a terminal (a worker's log, a one-off dyno): a line every SYNCENGINE_PROGRESS_EVERY seconds
    (here 0: one per page), and one when done."""
    env = {**embedded, "SYNCENGINE_PROGRESS_EVERY": "0"}
    done = subprocess.run([sys.executable, "-m", "syncengine", "sweep", "invoiceninja", "contact"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "syncengine.progress" in line]
    counts = [int(m.group(1)) for line in lines if (m := re.search(r"contact: (\d+) listed \(", line))]
    assert counts[:3] == [100, 200, CLIENTS], lines
    assert all(re.search(r"listed \([\d.,]+/s\)", line) for line in lines), lines
    assert lines[-1].endswith("s") and "done in" in lines[-1] and f"{CLIENTS} new" in lines[-1]
    assert "\x1b[" not in done.stderr


def test_replay_failed_on_a_terminal_counts_what_settled(worker):
    kind = f"progress.{uuid.uuid4().hex[:8]}"  # no handler: each is settled as ignored at once
    with get_engine().begin() as conn:
        ids = inbox.store(conn, [inbox.NewEvent("directus", f"{kind}-{n}", kind, {}) for n in range(3)])
    with session_scope() as s:
        for inbox_id in ids:
            row = s.get(InboxEvent, inbox_id)
            row.attempts = 8
            inbox.fail(row, "gave up", max_attempts=8, retry_in=0)
    started = time.monotonic()
    screen = on_a_terminal("replay", "--failed", "--type", kind, env=dict(os.environ))
    assert screen.returncode == 0, ANSI.sub("", screen.terminal)[-2000:]
    shown = ANSI.sub("", screen.terminal)
    assert re.search(r"replay\s+\S*\s*3/3\s+settled", shown), shown
    assert "ETA" in shown
    assert f"replaying 3 event(s): {', '.join(map(str, ids))}" in screen.stdout
    assert "3 done, 0 failed, 0 retrying" in screen.stdout
    assert time.monotonic() - started < 120
