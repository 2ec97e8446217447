"""Revolut's sweep: transactions created since (newest first, paged with `to`), re-reading a trailing window
for state changes (syncengine.vendors.revolut.STATE_WINDOW). The events are shaped in its home
(syncengine.vendors.revolut.swept)."""

from __future__ import annotations

from syncengine.vendors import revolut

from .source import Source, iso

TRANSACTIONS = Source(
    "revolut", "payment",
    lambda c, since, size: c.transactions(since, page_size=size),
    lambda _c, row: iso(row["created_at"]), lambda _c, row: revolut.swept(row),
    page_size=1000, lookback=revolut.STATE_WINDOW,  # 1000: Revolut's max count, against 60 requests/min
)  # fmt: skip

SOURCES: tuple[Source, ...] = (TRANSACTIONS,)
