"""Beat when Redis goes away: redbeat can no longer renew its lock, so beat must stop (it may have lost the
lock to a standby), and whoever supervises it starts it again: the platform, or `syncengine up`. Once Redis
answers, it takes the lock back. Celery logs that end as a traceback of some 40 lines, and Python printed
the same traceback again at exit, one token per log line (Celery hands stderr to the log a write at a time).
It is now one line saying what happened; the traceback stays for LOG_LEVEL=DEBUG.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

LINE = (
    "beat stopped: Redis is unreachable ({reason}); started again, it takes its lock back once Redis answers"
)


def redis_gone(exc: BaseException | None) -> bool:
    import redis
    from kombu.exceptions import OperationalError

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OperationalError)


class OneLine(logging.Filter):
    """Beat's 'beat raised exception' record, for a lost Redis, as one line without its traceback; and no
    second traceback when the process ends."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if redis_gone(exc):
            record.msg, record.args = LINE.format(reason=str(exc).strip().rstrip(".")), ()
            record.exc_info, record.exc_text = None, None
            sys.excepthook = _excepthook
        return True


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if redis_gone(exc):
        return  # already said in one line by the log
    sys.__excepthook__(kind, exc, tb)


def install() -> None:
    """On the logger only beat uses, from the start: beat may lose Redis before it is even set up."""
    from .settings import get_settings

    if get_settings().log_level != "DEBUG":
        logging.getLogger("celery.beat").addFilter(OneLine())
