"""The hub's merge: one record per entity, echo suppression, and the conflict policy."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from syncengine.db import session_scope
from syncengine.models import Link, Record
from syncengine.records import (
    GONE,
    TOMBSTONE,
    Change,
    already_has,
    merge,
    record_id_for,
    record_pushed,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def contact(system: str, ext: str, email: str, at: datetime = T0, **fields) -> Change:
    return Change(system, "contact", ext, {"email": email, **fields}, at, match_key=email)


def link_of(s: Session, record_id: int, system: str) -> Link:
    return s.execute(select(Link).where(Link.record_id == record_id, Link.system == system)).scalar_one()


def test_a_new_contact_fans_out_to_every_other_system():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m1-" + email, email, name="Ann"))
    assert set(merged.changed) == {"name", "email"}
    assert merged.targets == ["invoiceninja", "erpnext", "directus"]
    assert merged.version == 1


def test_the_echo_of_our_push_fans_out_nothing():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, name="Ann"))
        record_pushed(
            s, merged.record_id, "invoiceninja", "contact", "in-" + email, {"email": email, "name": "Ann"}
        )
    with session_scope() as s:
        echo = merge(s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(seconds=5), name="Ann"))
    assert echo.echo and echo.targets == [] and echo.version == merged.version


def test_same_contact_from_two_systems_at_once_is_one_record():
    email = f"{uuid.uuid4().hex}@example.test"
    barrier = threading.Barrier(2)
    results = []

    def arrive(system: str) -> None:
        barrier.wait()
        with session_scope() as s:
            results.append(merge(s, contact(system, f"{system}-{email}", email, name="Bo")))

    threads = [threading.Thread(target=arrive, args=(sys_,)) for sys_ in ("mautic", "invoiceninja")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len({r.record_id for r in results}) == 1
    with session_scope() as s:
        assert s.execute(select(func.count()).where(Record.match_key == email)).scalar_one() == 1
        assert s.execute(select(func.count()).where(Link.record_id == results[0].record_id)).scalar_one() == 2


def test_newest_remote_modification_wins_per_field_group():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merge(s, contact("invoiceninja", "in-" + email, email, T0, phone="1", city="Lyon"))
    with session_scope() as s:  # ERPNext edited the phone later; Invoice Ninja's older city edit arrives late
        merge(s, contact("erpnext", "erp-" + email, email, T0 + timedelta(minutes=5), phone="2"))
        late = merge(s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(minutes=1), phone="3"))
        record = s.get(Record, late.record_id)
        assert record.data["phone"] == "2"
        assert late.changed == []


def test_owned_fields_change_only_from_their_owner():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merge(s, contact("mautic", "m-" + email, email, T0, marketing_consent=True))
        merged = merge(s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(hours=1),
                                  marketing_consent=False))  # fmt: skip
        assert s.get(Record, merged.record_id).data["marketing_consent"] is True


def test_conflicts_resolve_the_same_in_any_order():
    def outcome(order):
        email = f"{uuid.uuid4().hex}@example.test"
        changes = {
            "a": contact("erpnext", "e-" + email, email, T0, name="From ERPNext"),
            "b": contact("directus", "d-" + email, email, T0, name="From Directus"),
        }
        with session_scope() as s:
            for key in order:
                merged = merge(s, changes[key])
            return s.get(Record, merged.record_id).data["name"]

    assert outcome("ab") == outcome("ba") == "From ERPNext"  # same instant: the tie-break is stable


def test_an_edit_on_top_of_what_we_pushed_is_taken_even_in_the_same_second():
    """Three-way: Invoice Ninja edits the city it got from us; timestamps tie at a second's resolution."""
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, T0, name="Cy", city=None))
        record_pushed(s, merged.record_id, "invoiceninja", "contact", "in-" + email,
                      {"email": email, "name": "Cy", "city": None})  # fmt: skip
    with session_scope() as s:
        edit = merge(s, contact("invoiceninja", "in-" + email, email, T0, name="Cy", city="Lyon"))
        assert edit.changed == ["city"] and edit.targets == ["erpnext", "mautic", "directus"]


def test_a_group_a_system_did_not_touch_never_overwrites_newer_values():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, T0, name="Di", phone="1"))
        record_pushed(s, merged.record_id, "erpnext", "contact", "e-" + email, {"email": email, "name": "Di"})
        merge(s, contact("mautic", "m-" + email, email, T0 + timedelta(minutes=1), name="Di", phone="2"))
        # ERPNext reports the contact again (an unrelated save) with an old timestamp and its old values.
        late = merge(s, contact("erpnext", "e-" + email, email, T0 + timedelta(hours=1), name="Di"))
        assert late.changed == [] and s.get(Record, late.record_id).data["phone"] == "2"


def test_a_delete_makes_a_tombstone_once_and_fans_out():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        created = merge(s, contact("invoiceninja", "in-" + email, email, name="Di"))
    gone = Change("invoiceninja", "contact", "in-" + email, {}, T0 + timedelta(seconds=5), deleted=True)
    with session_scope() as s:
        deleted = merge(s, gone)
        assert s.get(Record, deleted.record_id).deleted_at is not None
    assert deleted.record_id == created.record_id and deleted.version == created.version + 1
    assert deleted.changed == ["deleted"] and deleted.targets == ["erpnext", "mautic", "directus"]
    with session_scope() as s:
        again = merge(s, gone)
    assert again.targets == [] and again.version == deleted.version


def test_a_delete_is_no_echo_even_when_the_content_is_what_we_pushed():
    email = f"{uuid.uuid4().hex}@example.test"
    fields = {"email": email, "name": "Ed"}
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, name="Ed"))
        record_pushed(s, merged.record_id, "invoiceninja", "contact", "in-" + email, fields)
    archived = Change(
        "invoiceninja", "contact", "in-" + email, fields, T0 + timedelta(seconds=5), email, True
    )
    with session_scope() as s:
        deleted = merge(s, archived)
    assert not deleted.echo and deleted.changed == ["deleted"]
    assert deleted.targets == ["erpnext", "mautic", "directus"]
    with session_scope() as s:  # the same archive reported again (our own archive's webhook): an echo now
        assert merge(s, archived).targets == []


def test_record_id_for_finds_the_record_a_system_object_is_linked_to():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("invoiceninja", "c-" + email, email, name="Ann"))
        assert record_id_for(s, "invoiceninja", "contact", "c-" + email) == merged.record_id
    assert record_id_for(None, "invoiceninja", "contact", "c-" + email) == merged.record_id
    assert record_id_for(None, "erpnext", "contact", "c-" + email) is None
    assert record_id_for(None, "invoiceninja", "contact", None) is None


def test_invoice_accounting_comes_only_from_erpnext_and_a_system_that_has_it_needs_no_push():
    number = f"INV-{uuid.uuid4().hex[:8]}"
    header = {"number": number, "contact_id": 1, "date": "2026-11-02"}
    lines = {"lines": [{"sku": "A", "quantity": 1.0}]}
    with session_scope() as s:
        reported = {**header, **lines, "status": "sent", "total": 1.0}
        first = merge(s, Change("invoiceninja", "invoice", "in-" + number, reported, T0, match_key=number))
        assert set(first.changed) == {"number", "contact_id", "date", "lines"}
        booked = {**header, "status": "paid", "total": 2.0}
        books = merge(s, Change("erpnext", "invoice", "si-" + number, booked, T0, match_key=number))
        assert set(books.changed) == {"status", "total"} and books.targets == ["invoiceninja", "directus"]
        record = s.get(Record, first.record_id)
        assert (record.data["status"], record.data["total"]) == ("paid", 2.0)
        assert already_has(link_of(s, first.record_id, "invoiceninja"), "invoice", {**header, **lines})


def test_an_id_a_vendor_reuses_after_a_delete_moves_to_the_new_record():
    """ERPNext names a Customer by its name: a new "Acme" after the old one was deleted gets the same id."""
    name = f"Acme {uuid.uuid4().hex[:6]}"
    old_email, new_email = f"old-{uuid.uuid4().hex}@example.test", f"new-{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        old = merge(s, contact("erpnext", name, old_email, name=name))
    with session_scope() as s:
        merge(s, Change("erpnext", "contact", name, {}, T0 + timedelta(minutes=1), deleted=True))
    with session_scope() as s:
        new = merge(s, contact("mautic", "m-" + new_email, new_email, T0 + timedelta(minutes=2), name=name))
        record_pushed(s, new.record_id, "erpnext", "contact", name, {"email": new_email, "name": name})
    with session_scope() as s:
        assert record_id_for(s, "erpnext", "contact", name) == new.record_id
        kept = s.execute(select(Link.external_id).where(Link.record_id == old.record_id)).scalar_one()
        assert kept == f"{name}#deleted-{old.record_id}"


def _archived_in_invoice_ninja(email: str) -> int:
    """A contact from Mautic, pushed to Invoice Ninja and then archived there."""
    fields = {"email": email, "name": "Flo"}
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, name="Flo"))
        record_pushed(s, merged.record_id, "invoiceninja", "contact", "in-" + email, fields)
    archived = Change("invoiceninja", "contact", "in-" + email, fields, T0, email, deleted=True)
    with session_scope() as s:
        assert merge(s, archived).changed == ["deleted"]
    return merged.record_id


def test_an_unarchive_where_the_copy_was_archived_restores_the_record_for_every_system():
    email = f"{uuid.uuid4().hex}@example.test"
    record_id = _archived_in_invoice_ninja(email)
    live = contact("invoiceninja", "in-" + email, email, T0 + timedelta(seconds=5), name="Flo")
    with session_scope() as s:
        restored = merge(s, live)
        assert s.get(Record, record_id).deleted_at is None
    # Its source too: what changed elsewhere meanwhile was pushed nowhere.
    assert restored.changed == ["restored"]
    assert restored.targets == ["invoiceninja", "erpnext", "mautic", "directus"]
    with session_scope() as s:  # the same live copy again: nothing left to restore
        assert merge(s, live).targets == []


def test_an_edit_of_a_copy_that_is_not_archived_there_never_resurrects_the_record():
    email = f"{uuid.uuid4().hex}@example.test"
    record_id = _archived_in_invoice_ninja(email)
    with session_scope() as s:  # Mautic cannot archive: its copy stayed live, and an edit of it is no restore
        edited = merge(
            s, contact("mautic", "m-" + email, email, T0 + timedelta(minutes=1), name="Flo", city="Ely")
        )
        record = s.get(Record, record_id)
        assert record.deleted_at is not None and record.data["city"] == "Ely"  # kept for a later restore
    assert "restored" not in edited.changed
    still = Change("invoiceninja", "contact", "in-" + email, {"email": email, "name": "Flo B"},
                   T0 + timedelta(minutes=2), email, deleted=True)  # fmt: skip
    with session_scope() as s:  # an edit of the archived copy itself
        merge(s, still)
        assert s.get(Record, record_id).deleted_at is not None


def test_a_copy_archived_or_hard_deleted_is_marked_so_on_its_link():
    email = f"{uuid.uuid4().hex}@example.test"
    record_id = _archived_in_invoice_ninja(email)
    with session_scope() as s:
        record_pushed(s, record_id, "directus", "contact", "d-" + email, {"email": email, "name": "Flo"})
    gone = Change("directus", "contact", "d-" + email, {}, T0 + timedelta(minutes=1), deleted=True, gone=True)
    with session_scope() as s:
        merge(s, gone)
        marks = dict(
            s.execute(select(Link.system, Link.last_pushed_hash).where(Link.record_id == record_id)).all()
        )
    assert (marks["invoiceninja"], marks["directus"]) == (TOMBSTONE, GONE)


def test_an_edit_taken_after_the_archive_that_followed_it_is_no_restore():
    """Two workers may take an edit and the archive made right after it in either order."""
    email = f"{uuid.uuid4().hex}@example.test"
    record_id = _archived_in_invoice_ninja(email)  # archived at T0
    late_edit = contact("invoiceninja", "in-" + email, email, T0 - timedelta(seconds=3), name="Flo B")
    with session_scope() as s:
        merged = merge(s, late_edit)
        assert s.get(Record, record_id).deleted_at is not None
        link = link_of(s, record_id, "invoiceninja")
        assert link.last_pushed_hash == TOMBSTONE  # still archived there
    assert "restored" not in merged.changed


def test_the_archive_taken_after_the_restore_that_followed_it_changes_nothing():
    """The echo of our archive push, delayed behind a restore in the same system, must not archive again."""
    email = f"{uuid.uuid4().hex}@example.test"
    record_id = _archived_in_invoice_ninja(email)  # archived at T0
    with session_scope() as s:
        restored = merge(
            s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(minutes=1), name="Flo")
        )
    assert restored.changed == ["restored"]
    stale_archive = Change(
        "invoiceninja", "contact", "in-" + email, {}, T0 + timedelta(seconds=2), deleted=True
    )
    with session_scope() as s:
        again = merge(s, stale_archive)
        assert s.get(Record, record_id).deleted_at is None
        link = link_of(s, record_id, "invoiceninja")
        assert link.last_pushed_hash != TOMBSTONE
    assert again.targets == [] and "deleted" not in again.changed


def test_a_new_object_with_the_key_of_an_archived_one_takes_its_link_and_brings_the_record_back():
    """A client created again in Invoice Ninja instead of restored: the new one is the live copy."""
    email = f"{uuid.uuid4().hex}@example.test"
    record_id = _archived_in_invoice_ninja(email)
    again = contact("invoiceninja", "in2-" + email, email, T0 - timedelta(days=1), name="Flo")  # any stamp
    with session_scope() as s:
        merged = merge(s, again)
        assert s.get(Record, record_id).deleted_at is None
        link = link_of(s, record_id, "invoiceninja")
        assert (link.external_id, link.last_pushed_hash) == ("in2-" + email, None)
    assert merged.record_id == record_id and "restored" in merged.changed
    assert set(merged.targets) == {"invoiceninja", "erpnext", "mautic", "directus"}


def test_a_second_live_object_with_the_key_of_a_live_copy_does_not_take_its_link():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        first = merge(s, contact("invoiceninja", "in-" + email, email, name="Hal"))
    with session_scope() as s:
        merge(s, contact("invoiceninja", "in-dup-" + email, email, T0 + timedelta(seconds=1), name="Hal"))
        link = link_of(s, first.record_id, "invoiceninja")
        assert link.external_id == "in-" + email


def test_a_change_stamped_before_our_push_is_no_edit_but_one_in_the_same_tick_is():
    """The answer to our push said the vendor's copy was stamped T0+10 s (held: Ann). An event stamped before
    it (a late webhook) is no edit; at that very stamp our own content is the echo, and other content is an
    edit made in the same whole second (Invoice Ninja stamps seconds), taken."""
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, name="Ann"))
        held = {"email": email, "name": "Ann"}
        record_pushed(
            s, merged.record_id, "invoiceninja", "contact", "in-" + email, held, T0 + timedelta(seconds=10)
        )
    with session_scope() as s:
        late = merge(s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(seconds=5), name="Old"))
    assert late.echo and late.targets == [] and late.version == merged.version
    with session_scope() as s:
        assert s.get(Record, merged.record_id).data["name"] == "Ann"
        echo = merge(s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(seconds=10), name="Ann"))
    assert echo.echo and echo.targets == []
    with session_scope() as s:
        same_second = merge(
            s, contact("invoiceninja", "in-" + email, email, T0 + timedelta(seconds=10), name="Bo")
        )
    assert same_second.changed == ["name"] and "mautic" in same_second.targets
    with session_scope() as s:
        assert s.get(Record, merged.record_id).data["name"] == "Bo"


def test_a_delete_stamped_before_our_push_is_still_a_delete():
    email = f"{uuid.uuid4().hex}@example.test"
    with session_scope() as s:
        merged = merge(s, contact("mautic", "m-" + email, email, name="Ann"))
        held = {"email": email, "name": "Ann"}
        record_pushed(
            s, merged.record_id, "directus", "contact", "d-" + email, held, T0 + timedelta(seconds=10)
        )
    with session_scope() as s:
        gone = merge(
            s, Change("directus", "contact", "d-" + email, {}, T0 + timedelta(seconds=5), deleted=True)
        )
    assert "deleted" in gone.changed
    with session_scope() as s:
        assert s.get(Record, merged.record_id).deleted_at is not None


def test_a_link_looked_up_outside_a_transaction_never_waits_on_the_embedded_stores_write_lock(
    tmp_path, monkeypatch
):
    """On the embedded default (SQLite, one writer) a push's bookkeeping, inside the transaction that closes
    its idempotency key, read an ERPNext invoice's customer link in a transaction of its own: it waited on
    its own write lock for the 30 s busy timeout, and every worker and webhook waited with it (the demo's
    invoice step past its time, webhooks answered 503)."""
    import time
    from dataclasses import replace

    from syncengine import db
    from syncengine.models import Base
    from syncengine.settings import get_settings

    settings = replace(get_settings(), database_url=f"sqlite:///{tmp_path / 'embedded.sqlite3'}")
    monkeypatch.setattr(db, "get_settings", lambda: settings)
    Base.metadata.create_all(db.get_engine())
    with session_scope() as s:
        contact = Record(kind="contact", data={"email": "ann@x.test"})
        s.add(contact)
        s.flush()
        s.add(Link(record_id=contact.id, system="erpnext", kind="contact", external_id="CUST-1"))
    try:
        with session_scope() as holding:  # as the push's key closes: BEGIN IMMEDIATE, the write lock held
            holding.execute(select(func.count()).select_from(Record)).scalar_one()
            started = time.monotonic()
            assert record_id_for(None, "erpnext", "contact", "CUST-1") == contact.id
            assert time.monotonic() - started < 5, "waited on the write lock its own caller holds"
    finally:
        db.reset_engines()
