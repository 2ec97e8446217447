"""Hard deletes whose webhook was lost (Directus Flows and Mautic never re-send) are found by the deleted
sweeps, in Directus's activity log and Mautic's audit log: the hub record becomes a tombstone and the other
systems archive their copies once; the late webhook and a second sweep collapse with it and write nothing."""

from __future__ import annotations

import json

import requests
from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tasks.sweep_sources import SOURCES
from tests.flows.test_contacts import directus_contacts_with, writes
from tests.flows.test_deletes import assert_no_ping_pong, hub_deleted, synced_contact
from tests.flows.test_restores import ARCHIVING, archived_in
from tests.flows.test_sweeps import mautic_contacts_with, run_sweep
from tests.support import sign, wait_until
from webhooks.directus import parse
from webhooks.sender import Incoming

DIRECTUS_AUTH = {"Authorization": "Bearer directus-static-token"}
MAUTIC_AUTH = ("admin", "sim-mautic-pass")


def inbox_rows() -> int:
    with session_scope() as s:
        return s.execute(select(func.count()).select_from(InboxEvent)).scalar_one()


def delete_unheard(deployment, system: str, path: str, auth: dict) -> None:
    """DELETE `path` in `system` with its webhooks dropped, and check the hub heard nothing. Deletes that
    earlier tests of the shared deployment left unheard on purpose (the drift report's) are swept first,
    so that the writes counted are this test's alone."""
    run_sweep(deployment, system, "deleted")
    deployment.settle()
    sim = deployment.sims[system]
    sim.set_faults(drop_webhooks=1.0)
    try:
        answer = requests.delete(f"{deployment.servers[system].url}{path}", timeout=10, **auth)
        assert answer.ok, answer.text
        sim.flush_webhooks(timeout=10)
    finally:
        sim.clear_faults()
    deployment.settle()


def swept_once(deployment, address: str, system: str, late: dict) -> None:
    """One sweep of (system, deleted) tombstones the contact: one archive in each other system that archives
    (Invoice Ninja, ERPNext, Directus; Mautic keeps its contacts); then the late webhook and a second sweep
    store nothing and write nothing."""
    sims = deployment.sims
    assert not hub_deleted(address), "the delete webhook was not dropped"
    archived = [other for other in ARCHIVING if other != system]
    before = {name: writes(sim) for name, sim in sims.items()}
    run_sweep(deployment, system, "deleted")
    wait_until(lambda: all(archived_in(deployment, address, archived).values()), timeout=60)
    deployment.settle()
    assert hub_deleted(address)
    after = {name: writes(sim) for name, sim in sims.items()}
    assert after == {**before, **{name: before[name] + 1 for name in archived}}
    assert_no_ping_pong(deployment)

    rows = inbox_rows()
    body = json.dumps(late).encode()
    answer = requests.post(f"{deployment.receiver}/webhooks/{system}", data=body, headers=sign(system, body),
                           timeout=10)  # fmt: skip
    assert answer.status_code == 200 and answer.json() == {"duplicate": True}
    run_sweep(deployment, system, "deleted")  # the delete is within its lookback: listed again
    deployment.settle()
    assert inbox_rows() == rows
    assert {name: writes(sim) for name, sim in sims.items()} == after


def test_a_directus_delete_whose_webhook_was_lost_is_swept_from_the_activity_log_once(deployment):
    address = synced_contact(deployment, "del-sweep-dx")
    item = directus_contacts_with(deployment.sims["directus"], address)[0]
    delete_unheard(deployment, "directus", f"/items/contacts/{item['id']}", {"headers": DIRECTUS_AUTH})
    late = {"event": "contacts.items.delete", "payload": [str(item["id"])], "keys": [str(item["id"])],
            "collection": "contacts"}  # fmt: skip
    swept_once(deployment, address, "directus", late)


def test_a_mautic_delete_whose_webhook_was_lost_is_swept_from_the_audit_log_once(deployment):
    address = synced_contact(deployment, "del-sweep-mt")
    [lead] = mautic_contacts_with(deployment.sims["mautic"], address)
    delete_unheard(deployment, "mautic", f"/api/contacts/{lead['id']}/delete", {"auth": MAUTIC_AUTH})
    late = {"mautic.lead_post_delete": [{"id": lead["id"], "contact": {"id": lead["id"]},
                                         "timestamp": "2026-01-01T00:00:00+00:00"}]}  # fmt: skip
    swept_once(deployment, address, "mautic", late)


def test_a_batch_delete_webhook_is_keyed_per_item_as_the_sweep_keys_each_row():
    """A batch DELETE is one Flow event but one activity row per item: each key is one inbox event."""
    body = {"event": "products.items.delete", "payload": [4, 7], "keys": [4, 7], "collection": "products"}
    received = parse(Incoming({}, b"", body, None, 0.0))
    source = SOURCES[("directus", "deleted")]
    swept = [source.event(None, {"collection": "products", "item": k, "timestamp": "2026-01-01T00:00:00Z"})
             for k in ("4", "7")]  # fmt: skip
    assert [e.event_id for e in received] == [e.event_id for e in swept]
    assert [e.event_id for e in received] == ["directus:products:4:deleted", "directus:products:7:deleted"]
    assert [e.payload["keys"] for e in received] == [[4], [7]]
    assert {e.event_type for e in received + swept} == {"products.items.delete"}
