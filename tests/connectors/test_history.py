"""connectors.history: a field group dated by the write that gave it its values."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.history import group_dates


def at(second: int) -> datetime:
    return datetime(2026, 12, 7, 6, 0, second, tzinfo=UTC)


def test_a_group_is_dated_by_the_last_of_its_fields_to_get_its_value():
    saves = [  # newest first
        ({"city": "Lyon"}, at(40)),
        ({"phone": "2", "city": "Brest"}, at(30)),  # our push: the phone again, an older city
        ({"phone": "2"}, at(20)),
        ({"email": "a@x.io", "phone": "1"}, at(10)),  # the create
    ]
    groups = {"identity": {"email": "a@x.io", "phone": "2"}, "address": {"city": "Lyon"}}
    # the phone came at 20 (the push at 30 sent it again), the email at 10: the group is as it is since 20
    assert group_dates(saves, groups) == {"identity": at(20), "address": at(40)}


def test_a_group_no_save_explains_is_left_to_the_objects_stamp():
    assert group_dates([({"phone": "9"}, at(5))], {"identity": {"phone": "2"}, "tax": {"vat": "x"}}) == {}


# --- an object never edited since its creation needs no history (connectors.current.with_history) ----------


def test_an_object_never_edited_since_its_creation_is_not_asked_for_its_history(monkeypatch):
    """Each vendor tells an untouched object by its stamps (ERPNext `modified` = `creation`, Mautic's
    `dateModified` unset or `dateAdded`, Directus' `date_updated` null): every group got its value at the
    object's stamp, so no history is read for it; an edited one is still dated by its history."""
    from connectors import current
    from connectors.adapters import adapter_for
    from connectors.erpnext_mapping import CustomerAdapter
    from syncengine.db import session_scope

    erp = CustomerAdapter(site_timezone=UTC)
    stamp = "2026-12-07 07:00:00.000000"
    customer = {"name": "C-1", "customer_name": "Ann Lee", "email_id": "ann@x.io", "creation": stamp}
    mautic = adapter_for("mautic", "contact")
    lead = {"id": 3, "dateAdded": "2026-12-07T06:00:00+00:00", "fields": {"all": {"email": "ann@x.io"}}}
    directus = adapter_for("directus", "contact")
    item = {"id": 4, "email": "ann@x.io", "date_created": "2026-12-07T06:00:00.000Z", "date_updated": None}
    untouched = [
        erp.to_change({**customer, "modified": stamp}),
        mautic.to_change({**lead, "dateModified": None}),
        mautic.to_change({**lead, "dateModified": lead["dateAdded"]}),
        directus.to_change(item),
    ]
    edited = [
        erp.to_change({**customer, "modified": "2026-12-07 08:00:00.000000"}),
        mautic.to_change({**lead, "dateModified": "2026-12-07T08:00:00+00:00"}),
        directus.to_change({**item, "date_updated": "2026-12-07T08:00:00.000Z"}),
    ]
    assert all(change.unedited for change in untouched) and not any(change.unedited for change in edited)

    asked: list[str] = []

    def dates(adapter, connector, external_id, groups):  # what would ask the vendor: recorded, not sent
        asked.append(f"{adapter.system} {external_id}")
        return {}

    for system in ("erpnext", "mautic", "directus"):
        monkeypatch.setattr(type(adapter_for(system, "contact")), "dates", dates)
    monkeypatch.setattr(current, "connector_for", lambda system: None)
    with session_scope() as session:
        for change in untouched:
            assert current.with_history(session, change) is change
        assert asked == []
        for change in edited:
            current.with_history(session, change)
    assert asked == ["erpnext C-1", "mautic 3", "directus 4"]
