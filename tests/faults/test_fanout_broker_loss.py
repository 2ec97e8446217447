"""The fan-out of an event outlives a broker that dies as its handler commits: the push tasks are written
in the event's own transaction (syncengine.outbox), so when Redis is down at the moment they would be
published they wait in the outbox, and the redelivery sweep publishes them once Redis is back. Here Redis
dies while a Directus update's handler is reading the item back; the change still reaches the others."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.faults.conftest import Stack, unique
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with
from tests.support import wait_until


def directus(stack: Stack, method: str, path: str, body: dict | None = None) -> dict:
    response = requests.request(method, stack.servers["directus"].url + path, json=body, timeout=30,
                                headers={"Authorization": "Bearer directus-static-token"})  # fmt: skip
    assert response.status_code in (200, 201, 204), response.text
    return response.json()["data"] if response.content else {}


def test_a_change_whose_handler_commits_while_redis_dies_still_fans_out(stack: Stack):
    stack.settle()
    email = f"outbox-{unique()}@example.test"
    item = directus(stack, "POST", "/items/contacts", {"email": email, "first_name": "Out"})
    erp, dx = stack.sims["erpnext"], stack.sims["directus"]
    wait_until(lambda: customers_with(erp, email), timeout=60)
    stack.settle()

    baseline = _last_inbox_id()
    # The update's handler reads the item back from Directus: slow that read so Redis can die meanwhile.
    dx.set_faults(latency_ms=4000, match_method="GET", match_path="/items/contacts/")
    try:
        seen = len(dx.requests_log())
        directus(stack, "PATCH", f"/items/contacts/{item['id']}", {"city": "Gdansk"})
        read_back = f"/items/contacts/{item['id']}"
        wait_until(lambda: any(e["method"] == "GET" and e["path"] == read_back
                               for e in dx.requests_log()[seen:]), timeout=30)  # fmt: skip
        stack.redis.kill()
        wait_until(lambda: directus_contacts_with(dx, email)[0].get("city") == "Gdansk", timeout=10)
        wait_until(lambda: _update_done(baseline), timeout=30)  # committed 'done' while the broker was away
        log_from = len(stack.worker.output())
        # Redis stays down until the task has finished trying to publish the pushes (it retries briefly).
        wait_until(lambda: "tasks.dispatch.process" in stack.worker.output()[log_from:], timeout=60)
    finally:
        dx.clear_faults()
        if stack.redis.proc is None or stack.redis.proc.poll() is not None:
            stack.redis.start()
    stack.redeliver()  # a redelivery pass, as the beat would run it
    ninja = stack.sims["invoiceninja"]
    wait_until(lambda: (clients_with(ninja, email)[0].get("city") or "") == "Gdansk", timeout=15)


def _last_inbox_id() -> int:
    with session_scope() as s:
        return s.execute(select(func.coalesce(func.max(InboxEvent.id), 0))).scalar_one()


def _update_done(after: int) -> bool:
    query = select(InboxEvent.status).where(InboxEvent.id > after,
                                            InboxEvent.event_type == "contacts.items.update")  # fmt: skip
    with session_scope() as s:
        return "done" in s.execute(query).scalars().all()
