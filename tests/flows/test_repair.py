"""Anti-entropy end to end: `syncengine reconcile --repair` finds the objects that differ from the hub with
no event left to tell (a lost webhook and no sweep since; an edit the vendor stamped in the past) and
repairs each by the conflict policy; `--dry-run` only says what it would do; `status --drift` shows it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import Record
from tests.flows.test_contacts import clients_with, directus_contacts_with, writes
from tests.flows.test_convergence_patterns import everywhere, fields, phone
from tests.flows.test_deletes import synced_contact


def syncengine(deployment: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncengine", *args],
        env=deployment.env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def diverge(deployment: Any) -> tuple[str, str]:
    """Two contacts made to differ without an event: a Directus phone edit whose webhook was lost, and an
    Invoice Ninja city the vendor stamped an hour in the past (older than what the hub applied)."""
    lost, stale = synced_contact(deployment, "repair-lost"), synced_contact(deployment, "repair-stale")
    sims = deployment.sims
    item = directus_contacts_with(sims["directus"], lost)[0]
    with sims["directus"].lock:
        item["phone"] = "+33 6 66 66 66 01"
        item["date_updated"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    client = clients_with(sims["invoiceninja"], stale)[0]
    with sims["invoiceninja"].lock:
        client["city"] = "Stale City"
        client["updated_at"] = int((datetime.now(UTC) - timedelta(hours=1)).timestamp())
    return lost, stale


def record_of(address: str) -> int:
    with session_scope() as s:
        return s.execute(select(Record.id).where(Record.match_key == address)).scalar_one()


def lines_about(output: str, *records: int) -> list[str]:
    return [line for line in output.splitlines() if any(f"(record {r})" in line for r in records)]


def exit_code_matches(done: subprocess.CompletedProcess[str]) -> bool:
    """Exit 1 exactly when some repair failed (the package's earlier tests leave their own differences)."""
    return done.returncode == (1 if ": failed" in done.stdout else 0)


def test_reconcile_repairs_what_no_event_will_and_a_second_run_finds_nothing(deployment):
    # given
    lost, stale = diverge(deployment)
    ours = (record_of(lost), record_of(stale))
    before = {name: writes(sim) for name, sim in deployment.sims.items()}
    # when: a dry run
    dry = syncengine(deployment, "reconcile", "--repair", "--dry-run")
    # then: it names both (Directus's lost edit, Invoice Ninja's stale city), and writes nothing
    assert dry.returncode == 0, dry.stderr
    assert sorted(line.split()[0] for line in lines_about(dry.stdout, *ours)) == ["directus", "invoiceninja"]
    assert all("would merge" in line for line in lines_about(dry.stdout, *ours))
    assert {name: writes(sim) for name, sim in deployment.sims.items()} == before
    # when: the repair
    done = syncengine(deployment, "reconcile", "--repair")
    deployment.settle()
    # then: the lost edit is everywhere, the stale city is written over with the hub's
    assert exit_code_matches(done), done.stdout + done.stderr
    assert all(": merged" in line for line in lines_about(done.stdout, *ours)), done.stdout
    assert fields(deployment, lost, "phone") == everywhere(phone("+33 6 66 66 66 01"))
    assert clients_with(deployment.sims["invoiceninja"], stale)[0]["city"] != "Stale City"
    assert len(set(fields(deployment, stale, "city").values()) - {"missing"}) == 1
    # and it is recorded; a second run has nothing left to repair for these two
    report = syncengine(deployment, "status", "--drift")
    assert report.returncode == 0 and "repair run of" in report.stdout
    again = syncengine(deployment, "reconcile", "--repair", "--dry-run")
    assert again.returncode == 0 and lines_about(again.stdout, *ours) == []


def test_reconcile_without_a_system_to_compare_is_an_operator_mistake(deployment):
    env_without = {k: v for k, v in deployment.env.items() if not k.startswith("MAUTIC_")}
    done = subprocess.run(
        [sys.executable, "-m", "syncengine", "reconcile", "--repair", "mautic"],
        env=env_without, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
