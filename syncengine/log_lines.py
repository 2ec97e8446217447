"""Log lines a payload cannot forge: every value that reaches a log message is written on one line.

A webhook body may hold a CR/LF followed by a made-up timestamp and level ("…\\n2026-01-01 INFO inbox 7
done"); logged as is, it reads as a line of our own. Line breaks, carriage returns and every other control
character (C0, DEL, C1, and the Unicode line and paragraph separators some viewers break on) are written
as escapes instead. A traceback keeps its own lines, but each exception's message in it is kept on one
line too (an exception message often quotes a payload value).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator
from types import TracebackType

_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")  # a tab is left alone
_CONTROLS_BUT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def one_line(text: str) -> str:
    """`text` with every line break and control character escaped."""
    return _CONTROLS.sub(_escape_one, text)


def keep_lines(text: str) -> str:
    """`text` (a traceback) with its line breaks kept and every other control character escaped."""
    return _CONTROLS_BUT_NEWLINE.sub(_escape_one, text)


def traceback_text(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """The traceback as `traceback.format_exception` writes it, each exception's message on one line."""
    formatted = traceback.TracebackException(*exc_info)
    for link in _chain(formatted):
        message = getattr(link, "_str", None)  # the message as the traceback module will print it
        if isinstance(message, str):
            link._str = one_line(message)  # type: ignore[attr-defined]
    return keep_lines("".join(formatted.format()).rstrip("\n"))


def _chain(formatted: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    """Every exception a traceback shows: causes, contexts and the members of exception groups."""
    seen: set[int] = set()
    todo = [formatted]
    while todo:
        link = todo.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo += [x for x in (link.__cause__, link.__context__) if x is not None]
        todo += list(getattr(link, "exceptions", None) or [])
