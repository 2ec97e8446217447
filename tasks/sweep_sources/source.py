"""A sweep source: how one (system, kind) is listed through its connector, and the webhook event each listed
change becomes (the vendor's home shapes it: syncengine.vendors.<vendor>)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncengine.inbox import NewEvent

Row = dict[str, Any]
Shape = Callable[[Any, Row], NewEvent]  # (connector, listed row) -> the webhook event of that change


@dataclass(frozen=True)
class Source:
    system: str
    kind: str
    # (connector, since, page size) -> changed rows, one vendor request per page
    list_changes: Callable[[Any, datetime, int], Iterator[Row]]
    modified: Callable[[Any, Row], datetime]  # (connector, row) -> the cursor value the row earns
    shape: Shape
    # Listed oldest change first and paged by key: the cursor may advance after each page. Otherwise a
    # later page can hold older changes, so it advances only once the whole listing is stored.
    ordered: bool = False
    page_size: int = 100
    lookback: float = 0.0  # re-read this much more than the configured lookback

    def event(self, connector: Any, row: Row) -> NewEvent:
        return self.shape(connector, row)


def iso(value: str) -> datetime:
    """A listed ISO 8601 stamp as an aware time (naive ones are UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
