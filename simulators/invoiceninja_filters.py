"""Invoice Ninja v5 list filters the simulator serves (app/Filters/QueryFilters.php and the entity filters):
`updated_at`, `status` and `client_status`."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from simulators.invoiceninja_model import CANCELLED, DRAFT, PAID, PARTIAL, SENT


def parse_time(value: str) -> int | None:
    """Filters accept a unix timestamp or a date/datetime string (``QueryFilters::updated_at``)."""
    value = value.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


def status_matches(record: dict[str, Any], statuses: set[str]) -> bool:
    archived = bool(record["archived_at"]) and not record["is_deleted"]
    active = not record["archived_at"] and not record["is_deleted"]
    return (
        ("active" in statuses and active)
        or ("archived" in statuses and archived)
        or ("deleted" in statuses and bool(record["is_deleted"]))
    )


def client_status_matches(inv: dict[str, Any], wanted: set[str], today: date) -> bool:
    if "all" in wanted:
        return True
    overdue = (
        inv["status_id"] in (SENT, PARTIAL)
        and inv["balance"] > 0
        and bool(inv.get("due_date"))
        and inv["due_date"] < today.isoformat()
    )
    checks = {
        "paid": inv["status_id"] == PAID,
        "unpaid": inv["status_id"] in (SENT, PARTIAL),
        "overdue": overdue,
        "draft": inv["status_id"] == DRAFT,
        "cancelled": inv["status_id"] == CANCELLED,
    }
    return any(checks.get(w, False) for w in wanted)
