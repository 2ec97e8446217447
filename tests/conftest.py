"""The test session runs against the real Postgres and Redis of this machine and a real Celery worker.

The environment is set before any project module is imported, because the settings and the Celery app
are read once per process, exactly as in production.
"""

from __future__ import annotations

import atexit
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis as redis_lib

from tests.servers import claim_redis_db, postgres_admin_url, redis_base_url, runtime_dir, with_database
from tests.support import SECRETS, Proc, celery_worker_cmd, wait_until

WORK = runtime_dir()
KEEP = {"work": False}  # --keep: leave WORK (logs, embedded servers' data) behind for a look


def _remove_work() -> None:
    """Registered before any server that lives in WORK, so it runs after they stopped (atexit is LIFO)."""
    if not KEEP["work"]:
        shutil.rmtree(WORK, ignore_errors=True)


atexit.register(_remove_work)
ADMIN_URL = postgres_admin_url(WORK)
REDIS_BASE = redis_base_url()
DB_NAME = f"syncengine_test_{uuid.uuid4().hex[:8]}"
REDIS_DB = claim_redis_db(REDIS_BASE)

TEST_ENV = {
    "DATABASE_URL": with_database(ADMIN_URL, DB_NAME),
    "REDIS_URL": f"{REDIS_BASE}/{REDIS_DB}",
    "SYNCENGINE_HOME": str(WORK / "home"),
    "SYNCENGINE_PLUGINS": "tests.plugins.recording,tests.plugins.crash_points",
    "SYNCENGINE_TEST_RECORD": str(WORK / "record.log"),
    "SYNCENGINE_INBOX_LEASE": "6",
    "SYNCENGINE_SECRET_KEY": "test-fernet-key-not-real",
    "INVOICENINJA_TOKEN": "in-api-token-9911",
    "LOG_LEVEL": "INFO",
    "SYNCENGINE_BIND_HOST": "127.0.0.1",  # every server a test starts binds loopback
    **{f"{name.upper()}_WEBHOOK_SECRET": secret for name, secret in SECRETS.items()},
}
for _var in [v for v in os.environ if v.endswith(("_URL", "_WEBHOOK_SECRET", "_TOKEN"))]:
    os.environ.pop(_var, None)
os.environ.update(TEST_ENV)


def pytest_addoption(parser: pytest.Parser) -> None:
    help_ = "keep the session's temporary folder (worker and receiver logs) instead of removing it"
    parser.addoption("--keep", action="store_true", help=help_)
    parser.addoption("--seeds", type=int, default=20, help="convergence runs: how many seeds (1..N)")
    parser.addoption("--seed", type=int, default=None, help="convergence runs: replay this one seed")


def pytest_configure(config: pytest.Config) -> None:
    KEEP["work"] = bool(config.getoption("--keep", default=False))


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    if KEEP["work"]:
        terminalreporter.write_line(f"kept the session's folder (--keep): {WORK}")
    elif exitstatus:
        terminalreporter.write_line(
            "the session's logs (worker, receiver) are removed at exit: rerun with --keep"
        )


def _create_database() -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    conn.close()


def _drop_database() -> None:
    conn = psycopg2.connect(ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    conn.close()


@pytest.fixture(scope="session", autouse=True)
def store() -> Iterator[str]:
    """A fresh Postgres database with the migrations applied, and a clean Redis database."""
    _create_database()
    redis_lib.Redis.from_url(TEST_ENV["REDIS_URL"]).flushdb()
    from syncengine import migrate

    migrate.upgrade()
    yield TEST_ENV["DATABASE_URL"]
    from syncengine.db import reset_engines

    reset_engines()
    _drop_database()


@pytest.fixture(scope="session")
def worker(store: str) -> Iterator[Proc]:
    """A real Celery worker process consuming the intake, sync and sweeps queues."""
    proc = Proc(celery_worker_cmd(concurrency=2), dict(os.environ), WORK / "worker.log")
    wait_until(lambda: "ready." in proc.output(), timeout=60)
    yield proc
    proc.stop()


# A database of a test's own beside the session's: empty (before `db upgrade`), or migrated.
from tests.databases import empty_database, own_database  # noqa: E402, F401


@pytest.fixture()
def record() -> Path:
    return Path(TEST_ENV["SYNCENGINE_TEST_RECORD"])


def record_lines(kind: str, inbox_id: int) -> list[str]:
    path = Path(TEST_ENV["SYNCENGINE_TEST_RECORD"])
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.startswith(f"{kind} {inbox_id} ")]


@pytest.fixture()
def client():
    from webhooks.app import create_app

    return create_app().test_client()


@pytest.fixture(scope="session")
def receiver(store: str) -> Iterator[str]:
    """The receiver under gunicorn, as in production; yields its base URL."""
    from tests.support import free_port, gunicorn_cmd, wait_for_port

    port = free_port()
    proc = Proc(gunicorn_cmd(port, workers=2), dict(os.environ), WORK / "gunicorn.log")
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    proc.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of a peer that runs on demand (`@pytest.mark.peers("erpnext")`) are left out unless asked for
    with `-m peers` or SYNCENGINE_TEST_PEERS; the Directus peer's run always (tests.peers).

    The default run (a bare `pytest`: no paths, no `-m`) also leaves out the `slow` tests, so that it stays
    under 15 minutes; `pytest -m slow` runs them (CI does, as its second step), and naming a test's file or
    folder runs it whatever its marks."""
    from tests.peers import ALWAYS, requested

    markexpr = config.option.markexpr or ""
    asked = requested() | ({"directus", "erpnext"} if "peers" in markexpr else set())
    default_run = not markexpr and config.args_source == pytest.Config.ArgsSource.TESTPATHS
    keep, left_out = [], []
    for item in items:
        marker = item.get_closest_marker("peers")
        on_demand = set(marker.args if marker else ()) - ALWAYS - asked
        slow = default_run and item.get_closest_marker("slow") is not None
        (left_out if on_demand or slow else keep).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep


@pytest.fixture()
def vendor_specs() -> Path:
    """The vendors' OpenAPI documents for the contract tests; the test fails when they are missing."""
    from tests.simulators.contract import require_specs

    return require_specs()
