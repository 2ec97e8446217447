"""Keep secrets out of every log line, whoever logs it (our code, Celery, requests, gunicorn).

A LogRecord factory redacts the message and any traceback when the record is made, so no handler that
Celery or gunicorn installs later can print the raw text.

Two kinds of masking: by shape (a header or field name followed by its value, `code=` in a query string,
Revolut's `oa_…` codes and tokens), and by exact value, for what configuration holds (`install`) and for
tokens fetched at run time (`register_secrets`, a bounded set: tokens rotate, and a set that only grows
makes every log line slower). Nothing that arrives in a request is ever learnt as a value: a stranger
could otherwise choose words for us to blank out.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

from .log_lines import keep_lines, one_line, traceback_text

MASK = "[REDACTED]"
MIN_LENGTH = 4  # shorter values would blank out ordinary words
RECENT_LIMIT = 64  # run-time tokens remembered; Revolut's rotate every 40 minutes and have their own shape

_SENSITIVE_NAMES = (
    r"authorization|x-api-token|x-webhook-secret|webhook-signature|x-frappe-webhook-signature|"
    r"revolut-signature|access_token|refresh_token|client_assertion|client_secret|api_secret|api_key|"
    r"password|secret|signing_secret|token"
)
_PATTERNS = (
    # Header or field followed by an auth scheme: "Authorization: Bearer abc", "'Authorization': 'token k:s'".
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(?:bearer|basic|token)\s+[^\s'\",}]+"),
    # name: value, name=value, "name": "value" for any sensitive name.
    re.compile(rf"(?i)((?:{_SENSITIVE_NAMES})['\"]?\s*[:=]\s*['\"]?)[^\s'\",}}&]+"),
    # An OAuth authorization code in a query string or form (the callback's own access log line).
    re.compile(r"(?i)((?<![\w-])code=)[^\s'\",}&]+"),
    # Revolut's authorization codes, access and refresh tokens, wherever they appear (oa_prod_…, oa_sand_…).
    re.compile(r"()\boa_(?:prod|sand)_[\w-]+"),
    # Signature values that travel without their header name.
    re.compile(r"(v1=)[0-9a-fA-F]{16,}"),
)

_configured: set[str] = set()
_recent: OrderedDict[str, None] = OrderedDict()
_lock = threading.Lock()
_matcher: re.Pattern[str] | None = None
_stale = False  # the known values changed since _matcher was compiled


def _rebuild() -> None:
    """Compile the values anew on the next redact, not on every registration."""
    global _stale
    _stale = True


def _current_matcher() -> re.Pattern[str] | None:
    """One alternation of every known value, longest first, so a line is scanned once for them all."""
    global _matcher, _stale
    if _stale:
        with _lock:
            values = sorted(_configured | set(_recent), key=len, reverse=True)
            _matcher = re.compile("|".join(map(re.escape, values))) if values else None
            _stale = False
    return _matcher


def _usable(values: Iterable[str]) -> list[str]:
    return [v for v in values if v and len(v) >= MIN_LENGTH]


def install_secrets(values: Iterable[str]) -> None:
    """Mask these configured values for the life of the process."""
    with _lock:
        new = set(_usable(values)) - _configured
        if new:
            _configured.update(new)
            _rebuild()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these run-time values (tokens fetched from a service); the oldest are forgotten past
    RECENT_LIMIT. Never pass anything a request carried."""
    with _lock:
        changed = False
        for value in _usable(values):
            if value in _configured:
                continue
            changed = changed or value not in _recent
            _recent[value] = None
            _recent.move_to_end(value)
        while len(_recent) > RECENT_LIMIT:
            _recent.popitem(last=False)
            changed = True
        if changed:
            _rebuild()


def known_count() -> int:
    """How many exact values are masked now (configured and recent)."""
    return len(_configured) + len(_recent)


def redact(text: str) -> str:
    matcher = _current_matcher()
    if matcher is not None:
        text = matcher.sub(MASK, text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _redacting_factory(base):  # type: ignore[no-untyped-def]
    """Records whose message is redacted and kept on one line (syncengine.log_lines), and whose traceback
    is redacted, when they are made."""

    def factory(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        record = base(*args, **kwargs)
        try:
            record.msg = one_line(redact(record.getMessage()))
            record.args = None
        except Exception:  # a broken format string must not lose the line
            record.msg = one_line(redact(str(record.msg)))
            record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(traceback_text(record.exc_info))
        if record.stack_info:
            record.stack_info = keep_lines(redact(record.stack_info))
        return record

    factory.syncengine_redacting = True  # type: ignore[attr-defined]
    return factory


def install(configured_secrets: Iterable[str] = ()) -> None:
    """Install the redacting record factory once per process (safe to call again) and mask the configured
    secrets given."""
    install_secrets(configured_secrets)
    current = logging.getLogRecordFactory()
    if not getattr(current, "syncengine_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))
