"""``GET /api/<entities>`` query semantics: ``search``, ``where[]``, ``orderBy``, ``start``/``limit``.

``where`` arrives as PHP-style nested query keys (``where[0][col]=date_modified&where[0][expr]=gte&…``) and
is applied as ``CommonRepository::buildWhereClauseFromArray`` does, including ``andX``/``orX`` groups.
Comparisons follow MySQL's defaults: case-insensitive strings, NULL matches no comparison.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.datastructures import MultiDict

Row = dict[str, Any]
Getter = Callable[[Row, str], Any]


class BadQuery(ValueError):
    """An invalid where/search/order parameter (answered as a 400 in Mautic's error shape)."""


def nested(args: MultiDict[str, str], root: str) -> Any:
    """``root[0][col]=x`` → ``[{"col": "x"}]``; digit-keyed levels become lists in key order."""
    tree: dict[str, Any] = {}
    for key, value in args.items(multi=True):
        if not key.startswith(root + "["):
            continue
        parts = [root, *re.findall(r"\[([^\]]*)\]", key[len(root) :])]
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(tree.get(root, []))


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(k.isdigit() for k in node):
            return [_listify(node[k]) for k in sorted(node, key=int)]
        return {k: _listify(v) for k, v in node.items()}
    return node


def _cmp(a: Any, b: Any) -> tuple[Any, Any]:
    try:
        return float(a), float(b)
    except (TypeError, ValueError):
        return str(a).lower(), str(b).lower()


def _like(value: Any, pattern: Any) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return value is not None and re.fullmatch(regex, str(value), re.IGNORECASE | re.DOTALL) is not None


def _vals(val: Any) -> list[Any]:
    return [v.strip() for v in val.split(",")] if isinstance(val, str) else list(val or [])


def _check(value: Any, expr: str, val: Any) -> bool:
    checks: dict[str, Callable[[], bool]] = {
        "isNull": lambda: value is None,
        "isNotNull": lambda: value is not None,
        "isEmpty": lambda: value in (None, ""),
        "isNotEmpty": lambda: value not in (None, ""),
        "like": lambda: _like(value, val),
        "notLike": lambda: not _like(value, val),
        "in": lambda: (
            any(_cmp(value, v)[0] == _cmp(value, v)[1] for v in _vals(val)) if value is not None else False
        ),
        "notIn": lambda: (
            value is not None and not any(_cmp(value, v)[0] == _cmp(value, v)[1] for v in _vals(val))
        ),
        "between": lambda: (
            value is not None and _check(value, "gte", _vals(val)[0]) and _check(value, "lte", _vals(val)[1])
        ),
        "notBetween": lambda: (
            value is not None
            and not (_check(value, "gte", _vals(val)[0]) and _check(value, "lte", _vals(val)[1]))
        ),
    }
    if expr in checks:
        return checks[expr]()
    ops = {
        "eq": lambda x, y: x == y,
        "neq": lambda x, y: x != y,
        "lt": lambda x, y: x < y,
        "lte": lambda x, y: x <= y,
        "gt": lambda x, y: x > y,
        "gte": lambda x, y: x >= y,
    }
    if expr not in ops:
        raise BadQuery(f"Invalid where expression: {expr}")
    if value is None:
        return False
    return ops[expr](*_cmp(value, val))


def matches_where(row: Row, clauses: Any, get: Getter, columns: Callable[[str], bool]) -> bool:
    if not isinstance(clauses, list):
        raise BadQuery("where must be an array of clauses")
    for clause in clauses:
        if not isinstance(clause, dict) or "expr" not in clause:
            raise BadQuery("Each where clause needs expr")
        expr = clause["expr"]
        if expr in ("andX", "orX"):
            parts = [matches_where(row, [sub], get, columns) for sub in clause.get("val") or []]
            if not (all(parts) if expr == "andX" else any(parts)):
                return False
            continue
        col = str(clause.get("col", "")).removeprefix("l.")
        if not columns(col):
            raise BadQuery(f"Invalid where column: {col}")
        if not _check(get(row, col), expr, clause.get("val")):
            return False
    return True


def order(rows: Iterable[Row], order_by: str, direction: str, get: Getter) -> list[Row]:
    desc = direction.upper() == "DESC"
    present = [r for r in rows if get(r, order_by) is not None]
    missing = [r for r in rows if get(r, order_by) is None]
    present.sort(key=lambda r: _cmp(get(r, order_by), get(r, order_by))[0], reverse=desc)
    return present + missing if desc else missing + present  # MySQL sorts NULL first ascending


def search_contact(row: Row, text: str) -> bool:
    """``search``: ``email:x`` style commands (``%`` wildcards, ``!`` negates), ``ids:1,2``, plain text."""
    text = text.strip()
    if not text:
        return True
    negate = text.startswith("!")
    text = text.lstrip("!")
    command, sep, value = text.partition(":")
    fields = row["fields"]
    if sep and command == "ids":
        hit = str(row["id"]) in [v.strip() for v in value.split(",")]
    elif sep and command == "is" and value in ("anonymous", "identified"):
        hit = (row.get("date_identified") is None) == (value == "anonymous")
    elif sep and command in fields:
        hit = _like(fields.get(command), value)
    elif sep and command == "name":
        hit = any(_like(fields.get(f), f"{value}%") for f in ("firstname", "lastname"))
    else:
        needle = text.lower()
        hit = any(
            needle in str(fields.get(f) or "").lower() for f in ("firstname", "lastname", "email", "company")
        )
    return hit != negate
