"""PHP's unserialize() for the values Mautic's audit log keeps (a Doctrine `array` column: the changes of a
save, PHP-serialized): null, booleans, integers, floats, strings and arrays. Nothing else is accepted; an
object or a malformed text is a ValueError, never code run."""

from __future__ import annotations

from typing import Any


def unserialize(text: str) -> Any:
    data = text.encode()
    value, end = _value(data, 0)
    if end != len(data):
        raise ValueError(f"trailing data at {end}")
    return value


def _value(data: bytes, at: int) -> tuple[Any, int]:
    kind = data[at : at + 2]
    if kind == b"N;":
        return None, at + 2
    if kind in (b"b:", b"i:", b"d:"):
        end = data.index(b";", at)
        raw = data[at + 2 : end].decode()
        return (raw == "1" if kind == b"b:" else int(raw) if kind == b"i:" else float(raw)), end + 1
    if kind == b"s:":
        colon = data.index(b":", at + 2)
        size = int(data[at + 2 : colon])
        start = colon + 2  # past ':"'
        if data[start - 1 : start] != b'"' or data[start + size : start + size + 2] != b'";':
            raise ValueError(f"bad string at {at}")
        return data[start : start + size].decode(), start + size + 2
    if kind == b"a:":
        colon = data.index(b":", at + 2)
        count, at = int(data[at + 2 : colon]), colon + 2  # past ':{'
        items: dict[Any, Any] = {}
        for _ in range(count):
            key, at = _value(data, at)
            items[key], at = _value(data, at)
        if data[at : at + 1] != b"}":
            raise ValueError(f"unclosed array at {at}")
        return items, at + 1
    raise ValueError(f"unsupported PHP value {kind!r} at {at}")
