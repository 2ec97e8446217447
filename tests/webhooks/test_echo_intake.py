"""Our own write coming back is known at intake (webhooks.echoes): stored done, no task published, the
link noted as seen. Anything else with the same object id (a real edit, an archive, an object we hold no
link for) is stored and handed to a worker as before."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select

from connectors.adapters import adapter_for
from connectors.base import marker_lock
from syncengine import inbox
from syncengine.db import session_scope
from syncengine.locks import lock
from syncengine.models import Base, InboxEvent, InboxStatus, Link, Record
from syncengine.records import content_hash
from tests.support import dumps, sign


@pytest.fixture()
def published(monkeypatch):
    """The inbox ids the receiver hands to the broker."""
    sent: list[int] = []
    monkeypatch.setattr("webhooks.receive.publish", lambda ids: sent.extend(ids))
    return sent


def _client(n: str, email: str, *, updated_at: int = 1_765_000_000, **extra) -> dict:
    contact = {"first_name": "Ada", "last_name": n, "email": email, "phone": "", "is_primary": True}
    return {"id": n, "name": f"Client {n}", "updated_at": updated_at, "contacts": [contact],
            "is_deleted": False, "archived_at": 0, **extra}  # fmt: skip


def _linked(system: str, kind: str, external_id: str, pushed: dict | None) -> int:
    """A record linked to `external_id` there, as our push there left it (`pushed`: what it holds)."""
    with session_scope() as session:
        record = Record(kind=kind, data={}, field_meta={}, version=1)
        session.add(record)
        session.flush()
        adapter = adapter_for(system, kind)
        pushed_hash = None if pushed is None else content_hash(adapter.to_change(pushed).fields)
        session.add(Link(record_id=record.id, system=system, kind=kind, external_id=external_id,
                         last_pushed_hash=pushed_hash, known={}))  # fmt: skip
        return record.id


def _event(row_id: int) -> InboxEvent:
    with session_scope() as session:
        event = session.get(InboxEvent, row_id)
        session.expunge(event)
        return event


def _link(system: str, external_id: str) -> Link:
    with session_scope() as session:
        link = session.execute(
            select(Link).where(Link.system == system, Link.external_id == external_id)
        ).scalar_one()
        session.expunge(link)
        return link


def _post(client, path: str, sender: str, payload: dict):
    body = dumps(payload)
    response = client.post(path, data=body, headers=sign(sender, body))
    response.close()  # the receiver publishes once the answer is sent
    return response


def test_the_echo_of_our_create_is_stored_done_and_costs_no_task(client, published):
    n = f"echo-{uuid.uuid4().hex[:8]}"
    ours = _client(n, f"{n}@example.test")
    _linked("invoiceninja", "contact", n, ours)
    response = _post(client, "/webhooks/invoiceninja/create_client", "invoiceninja", ours)
    assert response.status_code == 202
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.DONE
    assert _event(row_id).processed_at is not None
    assert published == []
    link = _link("invoiceninja", n)
    assert link.last_seen_hash == link.last_pushed_hash
    assert link.remote_updated_at == datetime.fromtimestamp(ours["updated_at"], UTC)  # as merge notes it


def test_a_real_edit_of_the_same_object_is_handed_to_a_worker(client, published):
    n = f"edit-{uuid.uuid4().hex[:8]}"
    ours = _client(n, f"{n}@example.test")
    _linked("invoiceninja", "contact", n, ours)
    edited = _client(n, f"{n}@example.test", updated_at=ours["updated_at"] + 5, name="Renamed there")
    response = _post(client, "/webhooks/invoiceninja/update_client", "invoiceninja", edited)
    assert response.status_code == 202
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.RECEIVED
    assert published == [row_id]
    link = _link("invoiceninja", n)
    assert link.last_seen_hash is None and link.remote_updated_at is None  # untouched: the worker decides


def test_an_archive_with_our_content_is_never_an_echo_at_intake(client, published):
    n = f"arch-{uuid.uuid4().hex[:8]}"
    ours = _client(n, f"{n}@example.test")
    _linked("invoiceninja", "contact", n, ours)
    archived = {**ours, "archived_at": int(time.time())}
    response = _post(client, "/webhooks/invoiceninja/archive_client", "invoiceninja", archived)
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.RECEIVED
    assert published == [row_id]


def test_an_object_we_hold_no_push_for_is_handed_to_a_worker(client, published):
    n = f"new-{uuid.uuid4().hex[:8]}"
    _linked("invoiceninja", "contact", n, None)  # linked from its own report: nothing of ours there
    theirs = _client(n, f"{n}@x.test")
    response = _post(client, "/webhooks/invoiceninja/create_client", "invoiceninja", theirs)
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.RECEIVED
    assert published == [row_id]


def test_an_erpnext_echo_is_read_without_asking_the_site(client, published, monkeypatch):
    """ERPNext's stamps need the site's time zone, asked of the site: the receiver needs none of it."""
    monkeypatch.setattr("connectors.connector_for",
                        lambda *a, **k: pytest.fail("the receiver asked ERPNext"))  # fmt: skip
    name = f"CUST-{uuid.uuid4().hex[:8]}"
    doc = {"doctype": "Customer", "name": name, "customer_name": "Ada Lovelace",
           "email_id": f"{name}@x.test", "mobile_no": None, "tax_id": None, "disabled": 0,
           "modified": "2026-12-07 05:00:00.000000"}  # fmt: skip
    from connectors.erpnext_mapping import CustomerAdapter

    pushed = content_hash(CustomerAdapter(site_timezone=UTC).to_change(doc).fields)
    with session_scope() as session:
        record = Record(kind="contact", data={}, field_meta={}, version=1)
        session.add(record)
        session.flush()
        session.add(Link(record_id=record.id, system="erpnext", kind="contact", external_id=name,
                         last_pushed_hash=pushed, known={}))  # fmt: skip
    payload = {"event": "after_insert", "doctype": "Customer", "name": name, "modified": doc["modified"],
               "doc": doc}  # fmt: skip
    response = _post(client, "/webhooks/erpnext", "erpnext", payload)
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.DONE
    assert published == []
    assert _link("erpnext", name).remote_updated_at is None  # no stamp taken, as note_echo


def test_a_duplicate_echo_is_a_duplicate(client, published):
    n = f"dup-{uuid.uuid4().hex[:8]}"
    ours = _client(n, f"{n}@example.test")
    _linked("invoiceninja", "contact", n, ours)
    assert _post(client, "/webhooks/invoiceninja/create_client", "invoiceninja", ours).status_code == 202
    again = _post(client, "/webhooks/invoiceninja/create_client", "invoiceninja", ours)
    assert again.status_code == 200 and again.json == {"duplicate": True}
    assert published == []


@pytest.mark.parametrize("echo", [True, False], ids=["echo", "edit"])
def test_embedded_store_does_the_same(tmp_path, echo):
    """SQLite (the embedded default): the link check and the INSERT in one transaction."""
    engine = create_engine(f"sqlite:///{tmp_path / 's.sqlite3'}")
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        now = datetime.now(UTC)
        conn.execute(
            Record.__table__.insert().values(
                id=1, kind="contact", data={}, field_meta={}, version=1, created_at=now, updated_at=now
            )
        )
        conn.execute(Link.__table__.insert().values(
            record_id=1, system="mautic", kind="contact", external_id="7", last_pushed_hash="h1", known={},
            updated_at=now))  # fmt: skip
    at = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)
    probe = inbox.Echo("mautic", "contact", "7", "h1" if echo else "h2", at)
    event = inbox.NewEvent("mautic", "k1", "mautic.lead_post_save_update", {"contact": {"id": 7}})
    with engine.begin() as conn:
        row_id, echoed = inbox.store_checked(conn, event, probe)
    with engine.begin() as conn:
        again = inbox.store_checked(conn, event, probe)
        status = conn.execute(select(InboxEvent.status).where(InboxEvent.id == row_id)).scalar_one()
        link = conn.execute(select(Link.last_seen_hash, Link.remote_updated_at)).one()
    assert row_id is not None and echoed is echo
    assert again == (None, False)
    assert status == (InboxStatus.DONE if echo else InboxStatus.RECEIVED)
    assert link.last_seen_hash == ("h1" if echo else None)
    assert (link.remote_updated_at is not None) is echo
    engine.dispose()


def _creating(n: str, ours: dict, *, stores: dict | None) -> threading.Thread:
    """A push creating `n` in Invoice Ninja: it holds the object's marker lock until it has stored the link
    (as what `stores` reads as; None: the create fails and stores nothing)."""
    adapter = adapter_for("invoiceninja", "contact")
    name = marker_lock("invoiceninja", adapter.marker(adapter.to_change(ours).fields))
    held = threading.Event()

    def push() -> None:
        with lock(name, timeout=10.0, wait=1.0):
            held.set()
            time.sleep(0.3)  # the vendor has answered, and sent its webhook; the link is being stored
            if stores is not None:
                _linked("invoiceninja", "contact", n, stores)

    thread = threading.Thread(target=push)
    thread.start()
    assert held.wait(5)
    return thread


def test_the_echo_of_a_create_still_being_stored_is_known_once_it_is(client, published):
    n = f"late-{uuid.uuid4().hex[:8]}"
    ours = _client(n, f"{n}@example.test")
    pushing = _creating(n, ours, stores=ours)
    response = _post(client, "/webhooks/invoiceninja/create_client", "invoiceninja", ours)
    pushing.join()
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.DONE
    assert published == []
    link = _link("invoiceninja", n)
    assert link.last_seen_hash == link.last_pushed_hash


def test_an_edit_made_while_our_create_is_stored_is_handed_to_a_worker(client, published):
    n = f"race-{uuid.uuid4().hex[:8]}"
    ours = _client(n, f"{n}@example.test")
    pushing = _creating(n, ours, stores=ours)
    edited = _client(n, f"{n}@example.test", updated_at=ours["updated_at"] + 1, name="Edited at once")
    response = _post(client, "/webhooks/invoiceninja/update_client", "invoiceninja", edited)
    pushing.join()
    (row_id,) = response.json["accepted"]
    assert _event(row_id).status == InboxStatus.RECEIVED
    assert published == [row_id]
    assert _link("invoiceninja", n).last_seen_hash is None
