"""Keep secrets out of every log line, whoever logs it (our code, Celery, requests, gunicorn).

A LogRecord factory redacts the message and any traceback when the record is made, so no handler that
Celery or gunicorn installs later can print the raw text.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable

MASK = "[REDACTED]"

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
    # Signature values that travel without their header name.
    re.compile(r"(v1=)[0-9a-fA-F]{16,}"),
)

_known: set[str] = set()
_known_lock = threading.Lock()


def register_secrets(values: Iterable[str]) -> None:
    """Add exact values (configured secrets, tokens fetched at run time) to mask wherever they appear."""
    with _known_lock:
        _known.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _redacting_factory(base):  # type: ignore[no-untyped-def]
    def factory(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        record = base(*args, **kwargs)
        try:
            record.msg = redact(record.getMessage())
            record.args = None
        except Exception:  # a broken format string must not lose the line
            record.msg = redact(str(record.msg))
            record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    factory.syncengine_redacting = True  # type: ignore[attr-defined]
    return factory


def install(extra_secrets: Iterable[str] = ()) -> None:
    """Install the redacting record factory once per process; safe to call again."""
    register_secrets(extra_secrets)
    current = logging.getLogRecordFactory()
    if not getattr(current, "syncengine_redacting", False):
        logging.setLogRecordFactory(_redacting_factory(current))
