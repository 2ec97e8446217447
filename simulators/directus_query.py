"""Directus query language subset: filter (JSON or bracket form), sort, fields, search (the Directus items
API, as Directus 11 answers it)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


class QueryError(ValueError):
    """Becomes 400 INVALID_QUERY."""


class UnknownField(ValueError):
    """A filter, `fields` or `sort` names a field the collection lacks: Directus answers 403, not 400."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


OPERATORS = frozenset({
    "_eq", "_neq", "_lt", "_lte", "_gt", "_gte", "_in", "_nin", "_null", "_nnull", "_empty", "_nempty",
    "_between", "_nbetween", "_contains", "_ncontains", "_icontains", "_nicontains", "_starts_with",
    "_nstarts_with", "_istarts_with", "_nistarts_with", "_ends_with", "_nends_with", "_iends_with",
    "_niends_with",
})  # fmt: skip


def check_query(args: MultiDict, flt: dict[str, Any] | None, types: dict[str, str]) -> None:
    """Every field the query names exists (else UnknownField) and every operator is one Directus has
    (else QueryError, in its words). `types` maps each field to its Directus type."""
    for name in [*list_param(args, "fields"), *(s.lstrip("-") for s in list_param(args, "sort"))]:
        if name != "*" and not name.startswith("*") and name.split(".")[0] not in types:
            raise UnknownField(name.split(".")[0])
    for name, op in _conditions(flt):
        if name not in types:
            raise UnknownField(name)
        if op not in OPERATORS:
            raise QueryError(f'Invalid query. "{types[name]}" field type does not contain the "{op}" filter '
                             "operator.")  # fmt: skip


def _conditions(flt: Any) -> list[tuple[str, str]]:
    """(field, operator) of every condition in a filter tree."""
    if not isinstance(flt, dict):
        return []
    found = []
    for key, cond in flt.items():
        if key in ("_and", "_or"):
            found += [
                pair for child in (cond if isinstance(cond, list) else []) for pair in _conditions(child)
            ]
        elif isinstance(cond, dict) and cond and all(k.startswith("_") for k in cond):
            found += [(key, op) for op in cond]
        else:
            found.append((key, "_eq"))
    return found


def parse_filter(args: MultiDict) -> dict[str, Any] | None:
    """``filter={"a":{"_eq":1}}`` or ``filter[a][_eq]=1`` (``_or``/``_and`` children as ``[0]``, ``[1]``)."""
    if "filter" in args:
        try:
            value = json.loads(args["filter"])
        except ValueError as exc:
            raise QueryError("Invalid query. Invalid JSON for filter object.") from exc
        if not isinstance(value, dict):
            raise QueryError("Invalid query. Filter must be an object.")
        return value
    tree: dict[str, Any] = {}
    for key, value in args.items(multi=True):
        if not key.startswith("filter["):
            continue
        parts = re.findall(r"\[([^\]]*)\]", key[len("filter") :])
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _listify(tree) if tree else None


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, str) and _ISO.match(value):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
        except ValueError:
            return None
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)  # naive values read as UTC
    return None


def _pair(field_value: Any, arg: Any) -> tuple[Any, Any]:
    """Compare like the database would: dates as instants, numbers as numbers, else as given."""
    ft, at = _as_time(field_value), _as_time(arg)
    if ft is not None and at is not None:
        return ft, at
    if isinstance(field_value, bool):
        return field_value, arg if isinstance(arg, bool) else str(arg).lower() in ("true", "1")
    if isinstance(field_value, int | float) and isinstance(arg, str):
        try:
            return field_value, float(arg)
        except ValueError:
            return str(field_value), arg
    if isinstance(field_value, str) and isinstance(arg, int | float):
        try:
            return float(field_value), arg
        except ValueError:
            return field_value, str(arg)
    return field_value, arg


def _as_list(arg: Any) -> list[Any]:
    return arg if isinstance(arg, list) else [a for a in str(arg).split(",") if a != ""]


def _op(op: str, value: Any, arg: Any) -> bool:
    if op in ("_null", "_nnull"):
        want = arg in (True, "true", "1", 1)
        return (value is None) == want if op == "_null" else (value is not None) == want
    if op in ("_empty", "_nempty"):
        empty = value in (None, "", [], {})
        return empty if op == "_empty" else not empty
    if op in ("_in", "_nin"):
        hit = any(_eq(value, a) for a in _as_list(arg))
        return hit if op == "_in" else not hit
    if op in ("_between", "_nbetween"):
        lo, hi = _as_list(arg)[:2]
        inside = value is not None and _cmp(value, lo) >= 0 and _cmp(value, hi) <= 0
        return inside if op == "_between" else not inside
    if value is None:
        return op == "_neq" and arg is not None
    if op == "_eq":
        return _eq(value, arg)
    if op == "_neq":
        return not _eq(value, arg)
    if op in ("_lt", "_lte", "_gt", "_gte"):
        c = _cmp(value, arg)
        return {"_lt": c < 0, "_lte": c <= 0, "_gt": c > 0, "_gte": c >= 0}[op]
    text, needle = str(value), str(arg)
    checks = {
        "_contains": needle in text,
        "_ncontains": needle not in text,
        "_icontains": needle.lower() in text.lower(),
        "_nicontains": needle.lower() not in text.lower(),
        "_starts_with": text.startswith(needle),
        "_nstarts_with": not text.startswith(needle),
        "_istarts_with": text.lower().startswith(needle.lower()),
        "_ends_with": text.endswith(needle),
        "_nends_with": not text.endswith(needle),
        "_iends_with": text.lower().endswith(needle.lower()),
    }
    if op not in checks:
        raise QueryError(f'Invalid query. Unknown filter operator "{op}".')
    return checks[op]


def _eq(value: Any, arg: Any) -> bool:
    a, b = _pair(value, arg)
    return a == b


def _cmp(value: Any, arg: Any) -> int:
    a, b = _pair(value, arg)
    try:
        return (a > b) - (a < b)
    except TypeError:
        return (str(a) > str(b)) - (str(a) < str(b))


def matches(item: dict[str, Any], flt: dict[str, Any] | None) -> bool:
    if not flt:
        return True
    for key, cond in flt.items():
        if key == "_and":
            if not all(matches(item, c) for c in cond):
                return False
        elif key == "_or":
            if not any(matches(item, c) for c in cond):
                return False
        elif isinstance(cond, dict) and cond and all(k.startswith("_") for k in cond):
            if not all(_op(op, item.get(key), arg) for op, arg in cond.items()):
                return False
        elif isinstance(cond, dict):
            nested = item.get(key)
            if not isinstance(nested, dict) or not matches(nested, cond):
                return False
        elif not _eq(item.get(key), cond):  # shorthand {"field": value}
            return False
    return True


def sort_items(items: list[dict[str, Any]], spec: list[str]) -> list[dict[str, Any]]:
    """Stable multi-key sort; NULLs first ascending (SQLite, the engine §9 was observed on)."""
    for field in reversed([s for s in spec if s]):
        desc = field.startswith("-")
        name = field.lstrip("-")

        def key(item: dict[str, Any], name: str = name) -> tuple[int, Any]:
            v = item.get(name)
            t = _as_time(v)
            return (0, "") if v is None else (1, t if t is not None else v)

        items = sorted(items, key=key, reverse=desc)
    return items


def list_param(args: MultiDict, name: str) -> list[str]:
    """``sort=a,-b`` or ``sort[]=a&sort[]=-b``."""
    values = args.getlist(name) + args.getlist(f"{name}[]")
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def project(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields or "*" in fields or any(f.startswith("*") for f in fields):
        return dict(item)
    return {f: item.get(f) for f in fields if "." not in f}


def search(item: dict[str, Any], needle: str) -> bool:
    needle = needle.lower()
    return any(
        (isinstance(v, str) and needle in v.lower()) or (isinstance(v, int | float) and str(v) == needle)
        for v in item.values()
    )
