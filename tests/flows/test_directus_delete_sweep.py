"""A Directus hard delete whose Flow webhook was lost (Flows never retry) is found in the activity log by
the ('directus', 'deleted') sweep: the hub record becomes a tombstone and the other systems archive their
copies once; the late webhook and a second sweep collapse with it and write nothing."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tasks.sweep_sources import SOURCES
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with, writes
from tests.flows.test_deletes import assert_no_ping_pong, hub_deleted, synced_contact
from tests.flows.test_sweeps import run_sweep
from tests.support import SECRETS, wait_until
from webhooks.directus import parse
from webhooks.sender import Incoming

DIRECTUS_AUTH = {"Authorization": "Bearer directus-static-token"}


def inbox_rows() -> int:
    with session_scope() as s:
        return s.execute(select(func.count()).select_from(InboxEvent)).scalar_one()


def test_a_delete_whose_webhook_was_lost_is_swept_from_the_activity_log_once(deployment):
    address = synced_contact(deployment, "del-sweep")
    sims = deployment.sims
    item = directus_contacts_with(sims["directus"], address)[0]
    directus = sims["directus"]
    directus.set_faults(drop_webhooks=1.0)
    try:
        url = f"{deployment.servers['directus'].url}/items/contacts/{item['id']}"
        assert requests.delete(url, headers=DIRECTUS_AUTH, timeout=10).status_code == 204
        directus.flush_webhooks(timeout=10)
    finally:
        directus.clear_faults()
    deployment.settle()
    assert not hub_deleted(address), "the delete webhook was not dropped"
    before = {name: writes(sim) for name, sim in sims.items()}

    run_sweep(deployment, "directus", "deleted")
    wait_until(
        lambda: (
            customers_with(sims["erpnext"], address)[0].get("disabled")
            and clients_with(sims["invoiceninja"], address)[0].get("archived_at")
        ),
        timeout=60,
    )
    deployment.settle()
    assert hub_deleted(address)
    after = {name: writes(sim) for name, sim in sims.items()}
    # One archive in Invoice Ninja, one `disabled` in ERPNext, nothing in Mautic (it keeps its contacts)
    # nor in Directus (the item is gone).
    assert after == {**before, "invoiceninja": before["invoiceninja"] + 1, "erpnext": before["erpnext"] + 1}
    assert_no_ping_pong(deployment)

    # The Flow's webhook, late, and the sweep again (the delete is within its lookback): both collapse.
    rows = inbox_rows()
    late = {"event": "contacts.items.delete", "payload": [str(item["id"])], "keys": [str(item["id"])],
            "collection": "contacts"}  # fmt: skip
    answer = requests.post(f"{deployment.receiver}/webhooks/directus", json=late,
                           headers={"X-Webhook-Secret": SECRETS["directus"]}, timeout=10)  # fmt: skip
    assert answer.status_code == 200 and answer.json() == {"duplicate": True}
    run_sweep(deployment, "directus", "deleted")
    deployment.settle()
    assert inbox_rows() == rows
    assert {name: writes(sim) for name, sim in sims.items()} == after


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
