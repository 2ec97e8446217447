"""Anti-entropy end to end: `syncengine reconcile --repair` finds the objects that differ from the hub with
no event left to tell (a lost webhook and no sweep since; an edit the vendor stamped in the past) and
repairs each by the conflict policy; `--dry-run` only says what it would do; `status --drift` shows it."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

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


def test_reconcile_repairs_what_no_event_will_and_a_second_run_finds_nothing(deployment):
    # given
    lost, stale = diverge(deployment)
    before = {name: writes(sim) for name, sim in deployment.sims.items()}
    # when: a dry run
    dry = syncengine(deployment, "reconcile", "--repair", "--dry-run")
    # then: it names both, and writes nothing
    assert dry.returncode == 0, dry.stderr
    assert "would merge" in dry.stdout and "would be repaired" in dry.stdout
    assert {name: writes(sim) for name, sim in deployment.sims.items()} == before
    # when: the repair
    done = syncengine(deployment, "reconcile", "--repair")
    deployment.settle()
    # then: the lost edit is everywhere, the stale city is written over with the hub's
    assert done.returncode == 0, done.stdout + done.stderr
    assert fields(deployment, lost, "phone") == everywhere(phone("+33 6 66 66 66 01"))
    assert clients_with(deployment.sims["invoiceninja"], stale)[0]["city"] != "Stale City"
    assert len(set(fields(deployment, stale, "city").values()) - {"missing"}) == 1
    # and it is recorded; a second run has nothing left to repair among these
    report = syncengine(deployment, "status", "--drift")
    assert report.returncode == 0 and "repair run of" in report.stdout
    again = syncengine(deployment, "reconcile", "--repair", "--dry-run")
    assert again.returncode == 0
    ours = [line for line in again.stdout.splitlines() if lost in line or stale in line]
    assert ours == []


def test_reconcile_without_a_system_to_compare_is_an_operator_mistake(deployment):
    env_without = {k: v for k, v in deployment.env.items() if not k.startswith("MAUTIC_")}
    done = subprocess.run(
        [sys.executable, "-m", "syncengine", "reconcile", "--repair", "mautic"],
        env=env_without, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
