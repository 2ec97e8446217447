"""The Stats API over ``audit_log``: where Mautic keeps a trace of a deleted contact, which no other API
lists, so a contact deletion whose webhook was lost can still be found.

Facts, from ``mautic/mautic`` (paths under ``app/bundles/``):

- ``GET /api/stats/{table}`` → ``CoreBundle/Controller/Api/StatsApiController::listAction``: query ``start``
  (0), ``limit`` (100), ``order`` (``order[i][col]``, ``order[i][dir]``), ``where`` (``where[i][col]``,
  ``where[i][expr]``, ``where[i][val]``, the contact list's clause format); answer ``{"total": n, "stats":
  [raw table rows]}``, or ``{"availableTables": [...], "tableColumns": {...}}`` for a table nobody serves;
  a query that fails (an unknown column) is caught and answered ``{"errors": [{message, code}]}`` with 200.
- ``audit_log`` is served by ``CoreBundle/EventListener/StatsSubscriber`` to administrators only; anyone
  else gets the table list.
- A contact delete writes ``{bundle: lead, object: lead, objectId: <the deleted id>, action: delete,
  details: {name: <primary identifier>}}``; a save writes ``create``/``update`` with the changes
  (``LeadBundle/EventListener/LeadSubscriber::onLeadDelete`` / ``onLeadPostSave``). ``details`` is a
  Doctrine ``array`` column: PHP-serialized in the row the Stats API returns.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.mautic.activity import MauticActivity
from simulators.mautic.fields import Row
from simulators.mautic.listing import BadQuery, matches_where, nested, order

AUDIT_COLUMNS = ("id", "user_id", "user_name", "bundle", "object", "object_id", "action", "details",
                 "date_added", "ip_address")  # fmt: skip


def _column(row: Row, col: str) -> Any:
    return row.get(col)


def _known(col: str) -> bool:
    return col in AUDIT_COLUMNS


def php_serialize(value: Any) -> str:
    """PHP's serialize() for the strings, numbers and string-keyed arrays audit details hold."""
    if value is None:
        return "N;"
    if isinstance(value, bool):
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return f"a:{len(value)}:{{" + "".join(php_serialize(k) + php_serialize(v) for k, v in items) + "}"
    text = str(value)
    return f's:{len(text.encode())}:"{text}";'


class MauticStats(MauticActivity):
    """Mixin: ``audit_log`` rows written as Mautic writes them, read back through ``/api/stats``."""

    def write_audit_log(self, object_id: Any, action: str, details: Row) -> None:
        row_id = self.db.next_id("audit_log")
        self.db["audit_log"][row_id] = {
            "id": row_id, "user_id": 1, "user_name": "API User", "bundle": "lead", "object": "lead",
            "object_id": int(object_id), "action": action, "details": php_serialize(details),
            "date_added": self.db_now(), "ip_address": "127.0.0.1",
        }  # fmt: skip

    @route("GET", "/api/stats/{table}")
    def stats(self, request: Request, table: str) -> Response:
        if table != "audit_log" or not self.is_admin(request):  # StatsSubscriber serves it to admins only
            return self.json({"availableTables": ["audit_log"], "tableColumns": {"audit_log": AUDIT_COLUMNS}})
        args = request.args
        start, limit = self.page(args) if "limit" in args else (self.page(args)[0], 100)
        where = nested(args, "where") or []
        try:
            matches_where({}, where, _column, _known)  # the columns are checked as the SQL is built
        except BadQuery as exc:
            # The controller catches the query's exception and answers it in the body, with a 200.
            return self.json({"errors": [{"message": str(exc), "code": 0}]})
        rows = [r for r in self.db["audit_log"].values() if matches_where(r, where, _column, _known)]
        for clause in reversed(nested(args, "order") or [{"col": "id", "dir": "ASC"}]):
            rows = order(rows, str(clause.get("col", "id")), str(clause.get("dir", "ASC")), _column)
        shown = rows[start : start + limit] if limit else rows[start:]
        return self.json({"total": len(rows), "stats": shown})
