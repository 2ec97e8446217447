"""The convergence check itself, on simulators with nothing behind them: it must see a disagreement, a
duplicate and a lost newest write, or the random runs would prove nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators import REGISTRY
from simulators.convergence.contacts import CARRIES, SYSTEMS, Contacts
from simulators.convergence.oracle import TIE, expected, problems
from simulators.convergence.scenario import Person, Write
from syncengine.vendors.erpnext import custom_field_seed

EMAIL = "conv-oracle@example.test"


@pytest.fixture()
def contacts() -> Iterator[Contacts]:
    sims = {name: REGISTRY[name]() for name in SYSTEMS}
    sims["erpnext"] = REGISTRY["erpnext"](custom_fields=custom_field_seed())
    servers = {name: sim.serve() for name, sim in sims.items()}
    yield Contacts(sims, {name: server.url for name, server in servers.items()})
    for server in servers.values():
        server.stop()


def everywhere(contacts: Contacts, phone: str) -> Person:
    person = Person(EMAIL, created=True, origin="directus")
    for system in SYSTEMS:
        values = {"phone": phone, "city": "Lyon", "vat": "FR1"}
        contacts.create(system, EMAIL, "Oracle", {k: v for k, v in values.items() if k in CARRIES[system]})
    person.writes = [Write("directus", name, value, 1.0, 1.1) for name, value in
                     (("phone", phone), ("city", "Lyon"), ("vat", "FR1"))]  # fmt: skip
    return person


def test_the_newest_write_wins_and_only_another_systems_write_ties_with_it():
    writes = [
        Write("mautic", "phone", "A", 10.0, 10.1),
        Write("mautic", "phone", "B", 10.2, 10.3),  # Mautic's last: A can no longer win
        Write("erpnext", "phone", "C", 10.5, 10.6),  # the newest
        Write("directus", "phone", "D", 8.0, 10.5 - TIE - 0.1),  # ordered before C
        Write("invoiceninja", "phone", "E", 8.0, 10.5 - TIE + 0.1),  # too close to C to order
    ]
    assert expected(writes, "phone") == {"B", "C", "E"}
    assert expected(writes, "city") == {None}


def test_systems_that_agree_on_the_newest_values_pass(contacts):
    assert problems(everywhere(contacts, "+331"), contacts) == []


def test_a_system_holding_another_value_or_a_second_object_is_reported(contacts):
    person = everywhere(contacts, "+331")
    contacts.edit("mautic", EMAIL, "phone", "+332")
    contacts.create("erpnext", EMAIL, "Oracle", {"phone": "+331"})
    found = problems(person, contacts)
    assert "erpnext: 2 objects" in found
    assert any(p.startswith("phone: systems disagree") and "'mautic': '+332'" in p for p in found), found


def test_a_newest_write_that_no_system_holds_is_reported(contacts):
    person = everywhere(contacts, "+331")
    person.writes.append(Write("invoiceninja", "phone", "+339", 5.0, 5.1))
    assert problems(person, contacts) == ["phone: all hold '+331', newest write lost; may win: ['+339']"]


def test_a_person_deleted_in_mautic_must_not_be_there_and_archived_elsewhere(contacts):
    person = everywhere(contacts, "+331")
    contacts.delete("mautic", EMAIL)
    person.deleted_in = "mautic"
    assert problems(person, contacts) == [f"{s}: live again after its delete in mautic"
                                          for s in ("invoiceninja", "erpnext", "directus")]  # fmt: skip
