"""``frappe.client.get_list`` semantics over dicts: filters, or_filters, fields, order_by, paging.

Filters come as URL-encoded JSON in three forms: ``[[field, op, value]]``, ``[[doctype, field, op, value]]``
(a child doctype filters on its rows) and ``{field: value}`` / ``{field: [op, value]}``. Comparisons follow
MariaDB's defaults where they matter to a sweep: strings compare case-insensitively and date(-time) strings
compare as datetimes, so ``modified >= "2024-05-01"`` matches ``2024-05-01 00:00:00.000000``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from simulators.erpnext.errors import FrappeError

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$")
Doc = dict[str, Any]


def loads(value: Any, what: str) -> Any:
    """Query values are JSON text; a malformed one is a Frappe ValidationError, not a crash."""
    if value is None or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise FrappeError("ValidationError", f"Invalid JSON in {what}: {value}") from None


def _norm(value: Any) -> Any:
    if isinstance(value, str) and _DATETIME.match(value):
        return datetime.fromisoformat(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value.lower()
    if isinstance(value, bool):
        return int(value)
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    """One column may hold values of several kinds to `_norm` (hash names such as "1e40a7c9b2", which read
    as a number, beside "a3f0..."): numbers first, then dates, then text, never compared across kinds."""
    norm = _norm(value)
    if isinstance(norm, int | float):
        return 0, norm
    if isinstance(norm, datetime):
        return 1, norm
    return 2, "" if norm is None else str(norm)


def _pair(a: Any, b: Any) -> tuple[Any, Any]:
    x, y = _norm(a), _norm(b)
    if isinstance(x, datetime) and isinstance(b, str) and not isinstance(y, datetime):
        return str(a), str(b)
    if type(x) is not type(y) and not (isinstance(x, int | float) and isinstance(y, int | float)):
        return str(a).lower(), str(b).lower()
    return x, y


def _like(value: Any, pattern: Any) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, "" if value is None else str(value), re.IGNORECASE | re.DOTALL) is not None


def _as_list(value: Any) -> list[Any]:
    return [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value or [])


def compare(value: Any, op: str, target: Any) -> bool:
    op = op.strip().lower()
    if op == "is":
        is_set = value not in (None, "")
        return is_set if str(target).lower() == "set" else not is_set
    if op in ("in", "not in"):
        hit = any(value is not None and _pair(value, t)[0] == _pair(value, t)[1] for t in _as_list(target))
        return hit if op == "in" else not hit
    if op in ("like", "not like"):
        return _like(value, target) if op == "like" else not _like(value, target)
    if op == "between":
        low, high = _as_list(target)[:2]
        return compare(value, ">=", low) and compare(value, "<=", high)
    if value is None:
        return op in ("!=", "<>") and target is not None
    a, b = _pair(value, target)
    checks: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda x, y: x == y,
        "==": lambda x, y: x == y,
        "!=": lambda x, y: x != y,
        "<>": lambda x, y: x != y,
        ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y,
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
    }
    if op not in checks:
        raise FrappeError("ValidationError", f"Operator must be one of {', '.join(checks)}: {op}")
    try:
        return checks[op](a, b)
    except TypeError:
        return False


def normalize_filters(doctype: str, raw: Any) -> list[tuple[str, str, str, Any]]:
    """Every accepted form as ``(doctype, field, op, value)``."""
    raw = loads(raw, "filters")
    out: list[tuple[str, str, str, Any]] = []
    if isinstance(raw, dict):
        for field, cond in raw.items():
            if isinstance(cond, list) and len(cond) == 2 and isinstance(cond[0], str):
                out.append((doctype, field, cond[0], cond[1]))
            else:
                out.append((doctype, field, "=", cond))
        return out
    for item in raw or []:
        if not isinstance(item, list | tuple) or len(item) not in (2, 3, 4):
            raise FrappeError("ValidationError", f"Invalid filter: {item}")
        if len(item) == 2:
            out.append((doctype, item[0], "=", item[1]))
        elif len(item) == 3:
            out.append((doctype, item[0], item[1], item[2]))
        else:
            out.append((item[0], item[1], item[2], item[3]))
    return out


def _matches(doc: Doc, cond: tuple[str, str, str, Any], doctype: str, children: dict[str, str]) -> bool:
    dt, field, op, value = cond
    if dt == doctype:
        return compare(doc.get(field), op, value)
    rows = [r for f, child in children.items() if child == dt for r in doc.get(f) or []]
    return any(compare(r.get(field), op, value) for r in rows)


def select(
    docs: Iterable[Doc],
    doctype: str,
    children: dict[str, str],
    known: frozenset[str],
    filters: Any = None,
    or_filters: Any = None,
    fields: Any = None,
    order_by: str | None = None,
    start: int = 0,
    page_length: int = 20,
) -> list[Doc]:
    conds = normalize_filters(doctype, filters)
    ors = normalize_filters(doctype, or_filters)
    for dt, field, _op, _value in conds + ors:
        if dt == doctype and field not in known:
            raise FrappeError("DataError", f"Field not permitted in query: {field}")
    picked = [
        d
        for d in docs
        if all(_matches(d, c, doctype, children) for c in conds)
        and (not ors or any(_matches(d, c, doctype, children) for c in ors))
    ]
    for field, desc in reversed(_order(order_by or "modified desc", known)):
        picked.sort(key=lambda d, f=field: (d.get(f) is not None, *_sort_key(d.get(f))), reverse=desc)
    picked = picked[start : start + page_length] if page_length else picked[start:]
    wanted = _fields(fields, known)
    return [_project(d, wanted, children) for d in picked]


def _order(text: str, known: frozenset[str]) -> list[tuple[str, bool]]:
    out = []
    for part in text.split(","):
        words = part.replace("`", "").split()
        if not words:
            continue
        field = words[0].rsplit(".", 1)[-1]
        if field not in known:
            raise FrappeError("DataError", f"Field not permitted in query: {field}")
        out.append((field, len(words) > 1 and words[1].lower() == "desc"))
    return out


def _fields(fields: Any, known: frozenset[str]) -> list[tuple[str, str]]:
    """``(source, output key)`` pairs; ``*`` stays as is; ``field as alias`` is accepted as in SQL."""
    wanted = loads(fields, "fields") or ["name"]
    out = []
    for field in [wanted] if isinstance(wanted, str) else wanted:
        source, _, alias = str(field).partition(" as ")
        source = source.strip().replace("`", "")
        if source != "*" and source not in known:
            raise FrappeError("DataError", f"Field not permitted in query: {source}")
        out.append((source, alias.strip() or source))
    return out


def _project(doc: Doc, wanted: list[tuple[str, str]], children: dict[str, str]) -> Doc:
    out: Doc = {}
    for source, key in wanted:
        if source == "*":
            out.update({k: v for k, v in doc.items() if k not in children})
        else:
            out[key] = doc.get(source)
    return out
