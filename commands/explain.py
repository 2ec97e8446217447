"""An operator's mistake as one line that says what is wrong and what to do, never a traceback.

`Mistake` (syncengine.mistakes) is raised by the checks a command makes before it starts
(commands.preflight) and by commands that find their input wrong; `explain` turns the failures the
environment causes later (a database or Redis that went away, a table that is not there) into the same
kind of line. Anything else is a bug: one line too, with the way to see its traceback (`--debug`).
"""

from __future__ import annotations

import errno
import re

from syncengine.mistakes import PROBLEMS, USAGE, Mistake
from syncengine.vendors import REGISTRY

__all__ = ["DEBUG", "PROBLEMS", "USAGE", "Mistake", "bug", "explain", "safe_url", "vendor_failure"]

DEBUG = {"on": False}  # --debug or LOG_LEVEL=DEBUG: failures keep their traceback (set by the CLI)


def safe_url(url: str) -> str:
    """A URL as it may be shown: its password masked; what cannot be parsed shown up to its scheme."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True).replace("+psycopg2://", "://", 1)
    except ArgumentError:
        scheme, sep, _rest = url.partition("://")
        return f"{scheme}{sep}…" if sep else "(not a URL)"


def database_unreachable(url: str, driver_message: str) -> Mistake:
    """The database refused the connection or could not be found; the driver's first line says which."""
    first = driver_message.strip().splitlines()[0] if driver_message.strip() else "no answer"
    # psycopg2: 'connection to server at "h", port 5432 failed: FATAL:  database "x" does not exist'
    reason = re.sub(r"\s+", " ", first.rsplit(" failed: ", 1)[-1]).replace("FATAL: ", "")
    where = f"cannot reach the database at {safe_url(url)} ({reason})"
    if "does not exist" in reason and "database" in reason:
        return Mistake(where, "create that database, or correct DATABASE_URL")
    if "password" in reason or "role" in reason or "authentication" in reason:
        return Mistake(where, "correct the user or password in DATABASE_URL")
    return Mistake(where, "start Postgres there, or correct DATABASE_URL")


def redis_unreachable(url: str, exc: BaseException) -> Mistake:
    where = f"cannot reach Redis at {safe_url(url)} ({_first_line(exc)})"
    if "auth" in type(exc).__name__.lower() or "password" in str(exc).lower():
        return Mistake(where, "correct the password in REDIS_URL")
    return Mistake(where, "start Redis there, or correct REDIS_URL")


def explain(exc: BaseException) -> Mistake | None:
    """A failure of the environment as a Mistake; None for anything else."""
    if isinstance(exc, Mistake):
        return exc
    from syncengine.settings import get_settings

    settings = get_settings()
    for kind in (_database, _redis, _port):
        found = kind(exc, settings)
        if found is not None:
            return found
    return None


def _database(exc: BaseException, settings) -> Mistake | None:  # type: ignore[no-untyped-def]
    from sqlalchemy import exc as sa

    if isinstance(exc, sa.NoSuchModuleError | sa.ArgumentError):
        from .preflight import database_url

        try:
            database_url()
        except Mistake as mistake:  # the one that names the scheme
            return mistake
    if isinstance(exc, sa.OperationalError) and exc.statement is None:  # failed to connect
        return database_unreachable(settings.database_url, str(exc.orig))
    if isinstance(exc, sa.ProgrammingError | sa.OperationalError) and _missing_table(str(exc.orig)):
        return Mistake("the database lacks syncengine's tables", "run `syncengine db upgrade`")
    return None


def _missing_table(message: str) -> bool:
    return "no such table" in message or ("relation" in message and "does not exist" in message)


def _redis(exc: BaseException, settings) -> Mistake | None:  # type: ignore[no-untyped-def]
    import redis
    from kombu.exceptions import OperationalError as BrokerError

    if settings.redis_url and isinstance(exc, redis.ConnectionError | redis.TimeoutError | BrokerError):
        return redis_unreachable(settings.redis_url, exc)
    return None


def _port(exc: BaseException, _settings) -> Mistake | None:  # type: ignore[no-untyped-def]
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return Mistake("the port is already in use", "stop what holds it, or choose another with --port")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def bug(command: str, exc: BaseException) -> str:
    """The one line for a failure nobody foresaw."""
    return (
        f"syncengine {command} failed: {type(exc).__name__}: {_first_line(exc)[:200]} "
        f"(a bug? run it again with --debug for the traceback, and report it)"
    )


# How the connectors name a call that got no answer (connectors.base), said as a person would.
TRANSPORT = {
    "ConnectionError": "connection refused, or no such host",
    "ConnectTimeout": "no answer within the connect timeout",
    "ReadTimeout": "it stopped answering",
}


def vendor_failure(system: str, exc: BaseException) -> Mistake:
    """A vendor call that failed, as one line: not configured, unreachable (a mistyped URL, a server down),
    credentials refused, a call refused, or an answer we did not expect."""
    from syncengine.errors import AuthExpired, CircuitOpen, Permanent, Retryable, SyncError
    from syncengine.redaction import redact
    from syncengine.settings import get_settings

    name, status = _label(system), getattr(exc, "status", None)
    url = get_settings().services[system].url if system in get_settings().services else None
    credentials = _credentials(system)
    if url is None or "not configured" in str(exc) or isinstance(exc, ValueError):
        return Mistake(f"{name} is not configured", f"set {system.upper()}_URL and {credentials}")
    if isinstance(exc, Permanent) and " answered " not in str(exc):
        # The connector's own words, which name the grant or setting to fix (Directus's Refused).
        return Mistake(redact(str(exc)).split(": ", 1)[0], redact(str(exc)).split(": ", 1)[-1], PROBLEMS)
    said = redact(str(exc).split(f"answered {status}: ", 1)[-1])[:120] if status else ""
    if isinstance(exc, AuthExpired) or status == 401:
        return Mistake(f"{name} refused our credentials ({status or 401})", f"check {credentials}")
    if status == 403:  # Invoice Ninja refuses a wrong token so too
        return Mistake(f"{name} refused us (403: {said})", f"check {credentials} and what its user may do "
                       "(`syncengine setup --check` says which rights are missing)")  # fmt: skip
    if isinstance(exc, CircuitOpen):
        return Mistake(f"{name} failed too often just now", "try again in a minute", PROBLEMS)
    if isinstance(exc, Retryable) and status is None:
        reason = TRANSPORT.get(str(exc).rsplit(": ", 1)[-1], str(exc).rsplit(": ", 1)[-1])
        return Mistake(f"cannot reach {name} at {url} ({reason})", f"check {system.upper()}_URL and that "
                       f"{name} answers there")  # fmt: skip
    detail = redact(str(exc))[:200] if isinstance(exc, SyncError) else f"{type(exc).__name__}: {exc}"
    return Mistake(f"{name} answered with an error ({detail})", "try again later; if it persists, check "
                   f"{name}'s own logs", PROBLEMS)  # fmt: skip


def _label(system: str) -> str:
    """The vendor's name as a person knows it (its REGISTRY line), else the system as named."""
    vendor = REGISTRY.get(system)
    return vendor.label if vendor is not None else system


def _credentials(system: str) -> str:
    from connectors.subscriptions import hooks

    vendor = hooks().get(system)
    return vendor.credentials if vendor is not None else f"{system.upper()}_* credentials"
