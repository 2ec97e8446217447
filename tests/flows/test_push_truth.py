"""A push is done when the vendor holds what we sent (issue 14), end to end on the real worker: Directus is
told to ignore `city` on writes (the simulator's `ignore_fields` test switch: it answers the PATCH with the
city it kept, as ERPNext answers a Customer's email from its primary Contact). The push fails with the
reason, `status` shows it first, the Directus echo of that write is no edit, and once Directus takes the
field again, replaying the event re-pushes it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import requests
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import InboxEvent, Link, OutboxTask, Record
from tests.flows.test_contacts import clients_with, directus_contacts_with, mautic_contact
from tests.support import ROOT, wait_until


def syncengine(deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncengine", *args], cwd=ROOT, env=deployment.env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def edit_city(deployment, client: dict, city: str) -> None:
    url = f"{deployment.servers['invoiceninja'].url}/api/v1/clients/{client['id']}"
    keep = ("id", "email", "first_name", "last_name")
    body = {"city": city, "contacts": [{k: c[k] for k in keep} for c in client["contacts"]]}
    headers = {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}
    response = requests.put(url, json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def failed_pushes(record_id: int) -> list[OutboxTask]:
    with session_scope() as s:
        rows = s.execute(select(OutboxTask).where(OutboxTask.state == "failed")).scalars().all()
        return [r for r in rows if r.task == "tasks.push.push" and r.args["args"] == [record_id, "directus"]]


def test_a_field_the_vendor_does_not_take_fails_the_push_is_shown_first_and_replays(deployment):
    email = f"truth-{uuid.uuid4().hex[:8]}@example.test"
    mautic_contact(deployment, email, "Tru")
    sims = deployment.sims
    wait_until(lambda: clients_with(sims["invoiceninja"], email)
               and directus_contacts_with(sims["directus"], email), timeout=60)  # fmt: skip
    deployment.settle()
    with session_scope() as s:
        record_id = s.execute(select(Record.id).where(Record.match_key == email)).scalar_one()

    sims["directus"].set_faults(ignore_fields=["city"], match_method="PATCH", match_path="/items/contacts/")
    try:
        edit_city(deployment, clients_with(sims["invoiceninja"], email)[0], "Gdansk")
        wait_until(lambda: failed_pushes(record_id), timeout=60)
        deployment.settle()  # the Directus echo of the refused write has arrived and been handled
        (row,) = failed_pushes(record_id)
        assert row.last_error == f"directus kept city=None (sent 'Gdansk') for contact {record_id}"
        assert directus_contacts_with(sims["directus"], email)[0].get("city") is None

        # Never "updated", and the echo is no edit: the hub and the others keep the user's edit.
        with session_scope() as s:
            assert s.get(Record, record_id).data["city"] == "Gdansk"
            link = s.execute(
                select(Link).where(Link.record_id == record_id, Link.system == "directus")
            ).scalar_one()
            assert link.pushed_remote_at is not None
        assert clients_with(sims["invoiceninja"], email)[0]["city"] == "Gdansk"

        report = json.loads(syncengine(deployment, "status", "--json").stdout)
        assert any(t["id"] == row.id and t["error"] == row.last_error for t in report["tasks"]["failed"])
        screen = syncengine(deployment, "status").stdout
        assert screen.index(f"#{row.id} push {record_id} directus failed x1") < screen.index("inbox events:")
        assert row.last_error in screen
    finally:
        sims["directus"].clear_faults()

    with session_scope() as s:
        origin = s.get(InboxEvent, row.inbox_id)
        assert (origin.source, origin.event_type) == ("invoiceninja", "update_client")
    replayed = syncengine(deployment, "replay", str(row.inbox_id))
    assert replayed.returncode == 0, replayed.stderr
    assert f"1 push(es) and task(s): {row.id}" in replayed.stdout
    wait_until(lambda: directus_contacts_with(sims["directus"], email)[0].get("city") == "Gdansk", timeout=60)
    deployment.settle()
    assert failed_pushes(record_id) == []
    with session_scope() as s:
        assert s.get(OutboxTask, row.id) is None  # done: the row is gone
    report = json.loads(syncengine(deployment, "status", "--json").stdout)
    assert row.id not in [t["id"] for t in report["tasks"]["failed"] + report["tasks"]["stuck"]]
