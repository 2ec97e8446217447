"""F8's adapters without a deployment: the Invoice Ninja note is appended once per activity ref."""

from __future__ import annotations

import uuid

import pytest

from connectors.directus_mapping import ActivityAdapter
from connectors.invoiceninja_mapping import NoteAdapter
from syncengine.errors import Retryable


class FakeInvoiceNinja:
    def __init__(self) -> None:
        self.client = {"id": "c1", "private_notes": "VIP"}
        self.updates = 0

    def get_client(self, client_id: str) -> dict:
        return dict(self.client)

    def update_client(self, client_id: str, changes: dict) -> dict:
        self.updates += 1
        self.client.update(changes)
        return dict(self.client)


class Refs:
    def __init__(self, ids: dict[str, str | None]) -> None:
        self.ids = ids

    def external_id(self, record_id: int, system: str) -> str | None:
        return self.ids.get(system)


def activity() -> dict:
    ref = f"mautic:email_open:{uuid.uuid4().int % 10**6}"
    return {"ref": ref, "contact_id": 7, "type": "email_open", "subject": "News",
            "occurred_at": "2026-11-25T10:00:00+00:00", "details": {"email_id": 1}}  # fmt: skip


def test_the_note_line_is_appended_once_and_keeps_the_notes_there():
    adapter, connector, fields = NoteAdapter(), FakeInvoiceNinja(), activity()
    body = adapter.to_vendor(adapter.carried(fields), Refs({"invoiceninja": "c1"}))
    first = adapter.create(connector, body, None)
    again = adapter.update(connector, adapter.external_id(first), body)
    assert connector.updates == 1 and first == again
    lines = connector.client["private_notes"].splitlines()
    assert lines[0] == "VIP" and lines[1].startswith(f"[{fields['ref']}] ") and len(lines) == 2
    assert adapter.external_id(first) == f"c1:{fields['ref']}"


def test_a_note_waits_until_the_contact_is_in_invoice_ninja():
    with pytest.raises(Retryable):
        NoteAdapter().to_vendor(activity(), Refs({}))


def test_the_directus_item_is_keyed_by_the_ref_and_points_at_the_contact_item():
    fields = activity()
    body = ActivityAdapter().to_vendor(fields, Refs({"directus": "42"}))
    assert body["ext_id"] == fields["ref"] and body["contact"] == "42" and "ref" not in body
    assert ActivityAdapter().marker(fields) == fields["ref"]
