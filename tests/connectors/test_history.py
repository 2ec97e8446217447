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
