"""The drift comparison on its own: a record deleted in the hub is drift where its copy should have been
archived, not where the system keeps its copy by design."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from syncengine.db import session_scope
from syncengine.records import Change, merge, record_pushed
from tasks import drift

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_a_deleted_record_is_drift_where_it_should_be_archived_but_not_in_mautic():
    email = f"{uuid.uuid4().hex}@example.test"
    fields = {"email": email, "name": "Gil"}
    client = {"id": f"in-{email}", "name": "Gil", "updated_at": 1, "archived_at": 0, "is_deleted": False,
              "contacts": [{"email": email, "first_name": "Gil", "is_primary": True}]}  # fmt: skip
    lead = {"id": f"m-{email}", "dateAdded": T0.isoformat(), "fields": {"all": {"email": email}}}
    with session_scope() as s:
        merged = merge(s, Change("erpnext", "contact", f"e-{email}", fields, T0, match_key=email))
        record_pushed(s, merged.record_id, "invoiceninja", "contact", client["id"], fields)
        record_pushed(s, merged.record_id, "mautic", "contact", lead["id"], fields)
        merge(s, Change("erpnext", "contact", f"e-{email}", {}, T0, deleted=True, gone=True))  # trashed there

    with session_scope() as s:
        in_ninja = drift.compare(s, "invoiceninja", "contact", [client])  # the archive never landed
        in_mautic = drift.compare(s, "mautic", "contact", [lead])  # Mautic keeps its contacts
    mine = merged.record_id  # the store is shared: other tests' records are compared too
    assert [(d.problem, d.external_id) for d in in_ninja.differences if d.record_id == mine] == [
        (drift.DELETED_IN_HUB, client["id"])
    ]
    assert [d for d in in_mautic.differences if d.record_id == mine] == []
