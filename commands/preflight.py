"""What a command needs from its environment, checked before it does anything: a database URL we can use,
a database that answers, a schema at this release's head, a Redis that answers, a free port. Each check
raises a Mistake (one line: what is wrong, what to do) instead of letting the command start and fail later
in a traceback, or start and fail on every task (a worker on a schema not at head)."""

from __future__ import annotations

import difflib
import errno
import socket
from collections.abc import Iterable

from syncengine.settings import get_settings

from .explain import Mistake, database_unreachable, redis_unreachable, safe_url

# The databases syncengine runs on, as SQLAlchemy names their dialect and driver.
SUPPORTED = {("postgresql", "psycopg2"), ("sqlite", "pysqlite")}
DEFAULT_DRIVER = {"sqlite": "pysqlite"}  # postgresql:// is made postgresql+psycopg2:// by the settings
DATABASE_FORMS = "postgresql://user:password@host:5432/database (postgres:// too)"


def database_url() -> None:
    """DATABASE_URL parses and names a database we support."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = get_settings().database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise Mistake("DATABASE_URL is not a URL", f"write {DATABASE_FORMS}") from None
    backend, _, driver = parsed.drivername.partition("+")  # naming the dialect loads nothing yet
    if (backend, driver or DEFAULT_DRIVER.get(backend)) in SUPPORTED:
        return
    guess = difflib.get_close_matches(parsed.drivername, ["postgres", "postgresql"], n=1, cutoff=0.6)
    hint = f" (did you mean {guess[0]}://?)" if guess else ""
    raise Mistake(
        f"DATABASE_URL starts with {parsed.drivername}://, a database syncengine does not run on{hint}",
        f"use {DATABASE_FORMS}, or leave it unset for the embedded SQLite file",
    )


def database() -> None:
    """The database answers (Postgres's connect timeout is 3 s)."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from syncengine.db import get_engine

    database_url()
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise database_unreachable(get_settings().database_url, str(exc.orig)) from None


def schema() -> None:
    """The database is migrated to this release's head."""
    from syncengine import migrate

    database()
    problem = migrate.behind(migrate.current(), f"the database {safe_url(get_settings().database_url)}")
    if problem:
        what, _, fix = problem.partition(": ")
        raise Mistake(what, fix)


def redis() -> None:
    """Redis answers, when one is configured (the embedded default has none)."""
    url = get_settings().redis_url
    if not url:
        return
    import redis as redis_lib

    from syncengine.shared_state import get_redis

    try:
        client = get_redis()
    except ValueError:
        raise Mistake(
            f"REDIS_URL is not a Redis URL ({safe_url(url)})", "write redis://host:6379/0 (rediss:// for TLS)"
        ) from None
    try:
        client.ping()  # type: ignore[union-attr]
    except redis_lib.RedisError as exc:
        raise redis_unreachable(url, exc) from None


def port_free(host: str, port: int) -> None:
    """Nothing listens on host:port yet (bound as gunicorn binds, so a port in TIME_WAIT is free)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            raise _bind_mistake(host, port, exc) from None


def _bind_mistake(host: str, port: int, exc: OSError) -> Mistake:
    if exc.errno == errno.EADDRINUSE:
        return Mistake(
            f"port {port} on {host} is already in use",
            "stop what listens there (another `syncengine up`?), or choose another with --port N (or PORT)",
        )
    if exc.errno == errno.EACCES:
        return Mistake(f"not allowed to listen on port {port}", "below 1024 needs root: choose --port 8000")
    return Mistake(f"cannot listen on {host}:{port} ({exc.strerror})", "SYNCENGINE_BIND_HOST must be an "
                   "address of this machine (0.0.0.0 for all, 127.0.0.1 for this machine only)")  # fmt: skip


CHECKS = {"database": database, "schema": schema, "redis": redis}


def check(needs: Iterable[str]) -> None:
    """The checks a command declared, in the order a person would fix them."""
    for name in CHECKS:
        if name in needs:
            CHECKS[name]()
