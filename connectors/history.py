"""When each field group got the values it holds, from a vendor's history of writes (Directus revisions,
ERPNext Versions, Mautic's audit log): an object read back is stamped with its newest write, which may be
of another group, and a value written earlier must not pass for as new as that (connectors.current)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

# One write: canonical name -> the value it wrote (only the fields it sent), and when; newest first.
Save = tuple[dict[str, Any], datetime]


def group_dates(saves: Sequence[Save], groups: dict[str, dict[str, Any]]) -> dict[str, datetime]:
    """Each group (name -> current values) dated by the last of its fields to get its current value; a
    group none of whose fields the saves at hand explain is left out (the object's stamp stands)."""
    found = {}
    for group, values in groups.items():
        dates = [at for name, value in values.items() if (at := _since(saves, name, value)) is not None]
        if dates:
            found[group] = max(dates)
    return found


def _since(saves: Sequence[Save], name: str, value: Any) -> datetime | None:
    """When the field got `value`: the oldest write of the newest run that wrote it (a write that sends a
    value again, as our pushes send every field, is no change)."""
    when = None
    for written, at in saves:  # newest first
        if name not in written:
            continue
        if written[name] != value:
            break
        when = at
    return when
