"""What a converged end looks like for one person, checked against the simulators' stores.

A person alive at the end has exactly one live copy in every system, and every system that carries a field
shows the same value: the one written last (the conflict rule: newest modification wins per field group;
each group has one varying field here). Writes less than `TIE` seconds apart in different systems cannot be
ordered by stamps Invoice Ninja and Mautic keep in whole seconds, so any of them may win, but all systems
must still agree. A deleted person has no live copy anywhere, except in Mautic when it was deleted elsewhere
(Mautic keeps its contacts); deleted in Mautic, it is not there at all. No system ever holds two objects for
one person.
"""

from __future__ import annotations

from simulators.convergence.contacts import CARRIES, FIELDS, SYSTEMS, Contacts, Copy
from simulators.convergence.scenario import Person, Write

TIE = 1.1  # seconds: a whole-second stamp may read up to a second early


def expected(writes: list[Write], name: str) -> set[str | None]:
    """The values that may win for this field: the last write's, and any other write within a tie of it."""
    mine = [w for w in writes if w.field == name]
    if not mine:
        return {None}
    last = max(mine, key=lambda w: w.end)
    return {w.value for w in mine if w.end >= last.start - TIE}


def problems(person: Person, contacts: Contacts) -> list[str]:
    copies = {system: contacts.copies(system, person.email) for system in SYSTEMS}
    found = [f"{system}: {len(c)} objects" for system, c in copies.items() if len(c) > 1]
    if person.deleted_in is not None:
        return found + _deleted(person, copies)
    if not person.created:
        return found
    return found + _alive(person, copies)


def _deleted(person: Person, copies: dict[str, list[Copy]]) -> list[str]:
    out = []
    for system, found in copies.items():
        if system == "mautic" and person.deleted_in != "mautic":
            continue
        if system == "mautic" and found:
            out.append("mautic: the contact deleted there is back")
        elif any(c.live for c in found):
            out.append(f"{system}: live again after its delete in {person.deleted_in}")
    return out


def _alive(person: Person, copies: dict[str, list[Copy]]) -> list[str]:
    out = []
    live: dict[str, Copy] = {}
    for system, found in copies.items():
        if not found:
            out.append(f"{system}: missing")
        elif not found[0].live:
            out.append(f"{system}: archived, though never deleted")
        else:
            live[system] = found[0]
    for name in FIELDS:
        shown = {system: c.values.get(name) for system, c in live.items() if name in CARRIES[system]}
        allowed = expected(person.writes, name)
        if len(set(shown.values())) > 1:
            out.append(f"{name}: systems disagree {shown}; may win: {sorted(map(str, allowed))}")
        elif shown and next(iter(shown.values())) not in allowed:
            out.append(f"{name}: all hold {next(iter(shown.values()))!r}, newest write lost; may win: "
                       f"{sorted(map(str, allowed))}")  # fmt: skip
    return out


def describe(person: Person, contacts: Contacts) -> list[str]:
    """The person's copies as they are at the end, one line per system (for the trace)."""
    lines = []
    for system in SYSTEMS:
        for c in contacts.copies(system, person.email):
            shown = " ".join(f"{k}={v}" for k, v in c.values.items())
            lines.append(f"  {system} #{c.id} {'live' if c.live else 'archived'} {shown}")
    return lines or ["  (no copy anywhere)"]
