"""Creates waiting for one system are looked up together (tasks.push_batch), end to end on the real worker:
the sync queue is paused while a dozen new Mautic leads make their pushes, as a first sync's backlog does,
then resumed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.models import Link, OutboxTask, Record
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with, mautic_contact
from tests.support import wait_until


@contextmanager
def sync_paused(deployment: Any) -> Iterator[None]:
    """The worker takes no push while the block runs (it still handles the events that stage them)."""
    with Celery(broker=deployment.env["REDIS_URL"], set_as_current=False) as app:
        assert app.control.cancel_consumer("sync", reply=True, timeout=5)
        try:
            yield
        finally:
            assert app.control.add_consumer("sync", reply=True, timeout=5)


def waiting_pushes(system: str) -> int:
    with session_scope() as s:
        rows = s.execute(
            select(OutboxTask.subject).where(
                OutboxTask.task == "tasks.push.push", OutboxTask.state != "failed"
            )
        ).scalars()
        return sum(1 for subject in rows if subject.endswith(f',"{system}"]'))


def list_requests(sim: Any, path: str) -> int:
    return sum(1 for r in sim.requests_log("GET") if r["path"] == path)


def test_creates_waiting_for_one_system_are_looked_up_together_and_each_made_once(deployment):
    sims, tag = deployment.sims, uuid.uuid4().hex[:8]
    emails = [f"batch{i}-{tag}@example.test" for i in range(12)]
    # One is in Directus already, typed by hand, capitals and all, its webhook never sent: the look-up
    # together must find it as a look-up alone would, and link it, not make a second.
    sims["directus"].seed({"items": {"contacts": [{"email": emails[5].upper(), "name": "Typed By Hand"}]}})
    (hand,) = directus_contacts_with(sims["directus"], emails[5])
    looked_before = {s: list_requests(sims[s], p) for s, p in
                     (("directus", "/items/contacts"), ("erpnext", "/api/v2/document/Customer"),
                      ("invoiceninja", "/api/v1/clients"))}  # fmt: skip
    with sync_paused(deployment):
        for i, address in enumerate(emails):
            mautic_contact(deployment, address, f"Batch{i}")
        wait_until(lambda: waiting_pushes("directus") >= len(emails), timeout=60)
    deployment.settle()
    wait_until(
        lambda: all(waiting_pushes(s) == 0 for s in ("directus", "erpnext", "invoiceninja")), timeout=60
    )

    for address in emails:
        assert len(directus_contacts_with(sims["directus"], address)) == 1, address
        assert len(customers_with(sims["erpnext"], address)) == 1, address
        assert len(clients_with(sims["invoiceninja"], address)) == 1, address
    with session_scope() as s:
        record_id = s.execute(select(Record.id).where(Record.match_key == emails[5])).scalar_one()
        linked = s.execute(
            select(Link.external_id).where(Link.record_id == record_id, Link.system == "directus")
        ).scalar_one()
    assert linked == str(hand["id"])
    # A dozen creates, looked up in far fewer requests than one each (the worker's second process may take
    # a few alone while the first runs its batch; ERPNext's list requests include its Customers' reads).
    directus_lookups = list_requests(sims["directus"], "/items/contacts") - looked_before["directus"]
    assert 1 <= directus_lookups <= len(emails) // 3, directus_lookups
    erpnext_lists = list_requests(sims["erpnext"], "/api/v2/document/Customer") - looked_before["erpnext"]
    assert 1 <= erpnext_lists <= len(emails) // 3, erpnext_lists
    ninja_lists = list_requests(sims["invoiceninja"], "/api/v1/clients") - looked_before["invoiceninja"]
    assert 1 <= ninja_lists <= len(emails) // 3, ninja_lists  # every client listed, not one filter each


def test_when_the_first_create_fails_its_followers_go_back_to_their_own_tasks_and_are_made_once(deployment):
    """Directus answers the batch's first create with 429s past the connector's own 3 tries: that push is
    retried later, and the creates it had taken go back to their own tasks at once (held, they would wait
    for their claims' lease to lapse and for the redelivery sweep, which this stack does not run), and each
    is made once."""
    sims, tag = deployment.sims, uuid.uuid4().hex[:8]
    emails = [f"back{i}-{tag}@example.test" for i in range(8)]
    before = len(sims["directus"].requests_log())
    with sync_paused(deployment):
        for i, address in enumerate(emails):
            mautic_contact(deployment, address, f"Back{i}")
        wait_until(lambda: waiting_pushes("directus") >= len(emails), timeout=60)
        sims["directus"].set_faults(rate_limit_storm={"count": 3}, match_method="POST",
                                    match_path="/items/contacts")  # fmt: skip
    try:
        wait_until(lambda: waiting_pushes("directus") == 0, timeout=90)
    finally:
        sims["directus"].clear_faults()
    deployment.settle()
    assert [len(directus_contacts_with(sims["directus"], a)) for a in emails] == [1] * len(emails)
    posts = [r["status"] for r in sims["directus"].requests_log()[before:]
             if (r["method"], r["path"]) == ("POST", "/items/contacts")]  # fmt: skip
    assert sorted(posts) == [200] * len(emails) + [429] * 3  # the refused create, then each made once
