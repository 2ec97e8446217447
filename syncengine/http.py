"""HTTP plumbing shared by every connector: sessions with timeouts, backoff, Retry-After."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

# Connect fast (a dead host should not hold a worker), read patiently (vendors can be slow).
DEFAULT_TIMEOUT = (3.05, 30.0)
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class RetryPolicy:
    # Attempts within one call; past them the task retries later with its own countdown.
    attempts: int = 3
    base: float = 0.5
    cap: float = 8.0
    # A longer wait (a Retry-After of minutes, an open breaker) is handed back to the task instead of
    # holding a worker.
    max_inline_wait: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Retry-After when the service gave one, else exponential backoff with full jitter."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header, in either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def new_session(pool_size: int = 10) -> requests.Session:
    """A session without urllib3's own retries: every retry decision is ours, made once."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "syncengine/0.1"
    return session
