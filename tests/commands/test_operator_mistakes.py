"""The mistakes a new operator makes, each run as the real command: one line on stderr saying what is wrong
and what to do, exit 2 (a configuration or environment mistake), never a traceback; tracebacks only with
--debug or LOG_LEVEL=DEBUG. Workers, beat and the receiver refuse to start on a schema not at head, and
/readyz fails then. A manual sweep against a mistyped vendor URL says so without opening the breaker the
workers share."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from syncengine import migrate
from tests.conftest import ADMIN_URL, WORK
from tests.servers import with_database
from tests.support import ROOT, Proc, dumps, free_port, sample, sign, wait_for_port


def run(*args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "syncengine", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The command failed with `code`, printed nothing on stdout and exactly one line on stderr."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout.strip() == "", result.stdout
    return lines[0]


def shown(url: str) -> str:
    """A URL as the line shows it: no password, no driver."""
    from commands.explain import safe_url

    return safe_url(url)


# --- DATABASE_URL ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "db upgrade", "up --port {port}", "replay --failed", "worker"])
def test_an_unreachable_database_is_one_line(command: str):
    """Before: 130 to 136 lines of traceback."""
    nobody = f"postgresql://postgres@127.0.0.1:{free_port()}/syncengine"
    line = one_line(run(*command.format(port=free_port()).split(), DATABASE_URL=nobody))
    assert line.startswith(f"cannot reach the database at {nobody} (Connection refused")
    assert line.endswith("start Postgres there, or correct DATABASE_URL")


def test_a_missing_database_and_a_wrong_user_say_which():
    base = ADMIN_URL.rsplit("/", 1)[0]
    line = one_line(run("status", DATABASE_URL=f"{base}/no_such_db_{uuid.uuid4().hex[:6]}"))
    assert "does not exist): create that database, or correct DATABASE_URL" in line
    nobody = with_database(ADMIN_URL, "test").replace("postgres@", "no_such_role@", 1)
    line = one_line(run("status", DATABASE_URL=nobody))
    assert 'role "no_such_role" does not exist' in line and line.endswith(
        "correct the user or password in DATABASE_URL"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgress://me@127.0.0.1:5432/sync", "DATABASE_URL starts with postgress://, a database syncengine "
         "does not run on (did you mean postgres://?): use postgresql://user:password@host:5432/database"),
        ("mysql://root@127.0.0.1/sync", "DATABASE_URL starts with mysql://, a database syncengine does not "
         "run on: use postgresql://"),
        ("not a url", "DATABASE_URL is not a URL: write postgresql://user:password@host:5432/database"),
    ],
)  # fmt: skip
def test_an_unsupported_database_url_is_one_line(url: str, expected: str):
    for command in (["status"], ["db", "upgrade"], ["worker"]):
        assert one_line(run(*command, DATABASE_URL=url)).startswith(expected)


def test_a_password_in_the_url_is_never_shown():
    line = one_line(run("status", DATABASE_URL=f"postgresql://me:hunter2-secret@127.0.0.1:{free_port()}/x"))
    assert "hunter2" not in line and "me:***@127.0.0.1" in line


# --- the schema ------------------------------------------------------------------------------------------


def test_status_before_db_upgrade_says_to_run_it(empty_database: str):
    line = one_line(run("status", DATABASE_URL=empty_database))
    assert (
        line
        == f"the database {shown(empty_database)} has no syncengine tables yet: run `syncengine db upgrade`"
    )


@pytest.mark.parametrize("role", ["worker", "beat", "serve"])
def test_a_role_refuses_to_start_on_a_schema_not_at_head(empty_database: str, role: str):
    """Before: the worker started, then failed every task it took; the receiver said ready and answered 503
    to every webhook. Now none of them starts, and `db upgrade` then lets them."""
    line = one_line(run(role, DATABASE_URL=empty_database, PORT=str(free_port())))
    assert (
        line
        == f"the database {shown(empty_database)} has no syncengine tables yet: run `syncengine db upgrade`"
    )
    previous = migrate.history()[-2].revision
    migrate.upgrade(empty_database, previous)
    line = one_line(run(role, DATABASE_URL=empty_database, PORT=str(free_port())))
    assert f"is at migration {previous}, not {migrate.head()}: run `syncengine db upgrade`" in line


def test_db_current_and_history_say_where_the_database_stands(empty_database: str):
    before = run("db", "current", DATABASE_URL=empty_database)
    assert before.returncode == 1 and before.stdout.startswith(f"none: {shown(empty_database)}")
    assert "has no syncengine tables yet: run `syncengine db upgrade`" in before.stdout
    assert run("db", "upgrade", DATABASE_URL=empty_database).returncode == 0
    after = run("db", "current", DATABASE_URL=empty_database)
    assert (
        after.returncode == 0 and after.stdout.strip() == f"{migrate.head()} (head): {shown(empty_database)}"
    )
    history = run("db", "history", DATABASE_URL=empty_database).stdout.splitlines()
    assert [line.split()[0] for line in history] == [m.revision for m in reversed(migrate.history())]
    assert history[0].startswith(f"{migrate.head()} (current)  ")


def test_readyz_fails_on_a_schema_not_at_head(empty_database: str):
    """The receiver started some other way (gunicorn by hand) on an old schema is not ready."""
    from tests.support import gunicorn_cmd

    port = free_port()
    env = dict(os.environ, DATABASE_URL=empty_database, SYNCENGINE_METRICS_TOKEN="readyz-token")
    proc = Proc(gunicorn_cmd(port, workers=1), env, WORK / "readyz-schema.log")
    try:
        wait_for_port(port, timeout=60)
        public = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert public.status_code == 503 and public.json() == {"status": "unavailable"}
        details = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10,
                               headers={"Authorization": "Bearer readyz-token"}).json()  # fmt: skip
        assert details["store"] is True and details["schema"] is False
        migrate.upgrade(empty_database)
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    finally:
        proc.stop()


# --- Redis, ports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["up", "worker", "beat", "serve", "sweep"])
def test_an_unreachable_redis_is_one_line(command: str):
    """Before, `up` started and beat died logging its traceback one token per line (about 1,200 lines),
    taking the others down with it."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    args = [command, "--port", str(free_port())] if command in ("up", "serve") else [command]
    line = one_line(run(*args, REDIS_URL=dead, INVOICENINJA_URL="http://127.0.0.1:9", INVOICENINJA_TOKEN="t"))
    assert line.startswith(f"cannot reach Redis at {dead} (Error 111 connecting to")
    assert line.endswith("start Redis there, or correct REDIS_URL")


def test_a_redis_url_that_is_not_one_is_one_line():
    line = one_line(run("worker", REDIS_URL="http://127.0.0.1:6379"))
    assert line == (
        "REDIS_URL is not a Redis URL (http://127.0.0.1:6379): write redis://host:6379/0 (rediss:// for TLS)"
    )


@pytest.mark.parametrize("command", ["up", "serve"])
def test_a_port_in_use_is_one_line(command: str):
    """Before: gunicorn retried for 5 s, then `up` stopped with no hint."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        line = one_line(run(command, "--port", str(port)))
    assert line == (
        f"port {port} on 127.0.0.1 is already in use: stop what listens there (another `syncengine up`?), "
        "or choose another with --port N (or PORT)"
    )
    assert time.monotonic() - started < 30  # no waiting on gunicorn's retries


def test_a_setting_that_is_not_a_number_names_the_variable():
    line = one_line(run("status", SYNCENGINE_INBOX_LEASE="five minutes"))
    assert line == "SYNCENGINE_INBOX_LEASE='five minutes' is not a whole number: set it to one, e.g. 300"


def test_a_usage_mistake_exits_2_with_the_choices():
    done = run("worker", "--queues", "intake,synk")
    assert one_line(done) == "unknown queue synk: choose among intake,sync,sweeps,ocr (comma-separated)"
    wrong = run("sweep", "mautic", "invoice")
    assert one_line(wrong) == "mautic has no invoice sweep: its sweeps: activity, contact, deleted"
    typo = run("sweep", "invoicenija")
    assert typo.returncode == 2 and "invalid choice: 'invoicenija'" in typo.stderr


# --- vendors ---------------------------------------------------------------------------------------------


def shared_breaker(service: str) -> tuple[str, int]:
    """The breaker every worker shares: its state, and the failures it counts now."""
    from syncengine.breaker import breaker_for

    breaker = breaker_for(service)
    return breaker.state(), int(breaker.store.redis.zcard(f"syncengine:breaker:{service}:failures"))


def test_a_sweep_against_a_mistyped_vendor_url_is_one_line_and_leaves_the_shared_breaker_alone():
    """Before: a 30-line traceback ending in CircuitOpen, and the production breaker of that vendor open for
    every worker."""
    typo = f"http://127.0.0.1:{free_port()}"
    env = {"INVOICENINJA_URL": typo, "INVOICENINJA_TOKEN": "t"}
    for _ in range(3):  # 3 retries a run: twice the breaker's threshold of failures
        line = one_line(run("sweep", "invoiceninja", "contact", **env))
        assert line == (
            f"invoiceninja contact: cannot reach Invoice Ninja at {typo} (connection refused, or no "
            "such host): check INVOICENINJA_URL and that Invoice Ninja answers there"
        )
    assert shared_breaker("invoiceninja") == ("closed", 0)
    every = run("sweep", **env)  # every configured system: the vendor's other sweeps are skipped
    assert every.returncode == 2 and "Traceback" not in every.stderr
    assert every.stderr.count("cannot reach Invoice Ninja") == 1
    assert "invoiceninja's other sweeps skipped" in every.stderr


def test_refused_credentials_are_one_line(invoiceninja_sim: str):
    line = one_line(run("sweep", "invoiceninja", "contact", INVOICENINJA_URL=invoiceninja_sim,
                        INVOICENINJA_TOKEN="not-the-token"))  # fmt: skip
    assert (
        line.startswith("invoiceninja contact: Invoice Ninja refused us (403: ") and "Invalid token" in line
    )
    assert line.endswith("check INVOICENINJA_TOKEN and what its user may do (`syncengine setup --check` says "
                         "which rights are missing)")  # fmt: skip
    assert shared_breaker("invoiceninja")[0] == "closed"


@pytest.fixture()
def invoiceninja_sim() -> Iterator[str]:
    from simulators import REGISTRY

    server = REGISTRY["invoiceninja"]().serve()
    yield server.url
    server.stop()


# --- tracebacks on demand --------------------------------------------------------------------------------


def test_a_traceback_only_when_asked_for():
    typo = {"INVOICENINJA_URL": f"http://127.0.0.1:{free_port()}", "INVOICENINJA_TOKEN": "t"}
    assert "Traceback" not in run("sweep", "invoiceninja", "contact", **typo).stderr
    for loud in (run("--debug", "sweep", "invoiceninja", "contact", **typo),
                 run("sweep", "invoiceninja", "contact", LOG_LEVEL="DEBUG", **typo)):  # fmt: skip
        assert loud.returncode == 1 and "Traceback (most recent call last)" in loud.stderr
        assert "syncengine.errors.Retryable: invoiceninja GET /api/v1/clients: ConnectionError" in loud.stderr
    # A mistake found before the command started stays one line even then: there is nothing to debug.
    nobody = run("--debug", "status", DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert nobody.returncode == 2 and "Traceback" not in nobody.stderr
    assert nobody.stderr.strip().splitlines()[-1].startswith("cannot reach the database")


# --- Revolut's timestamp ---------------------------------------------------------------------------------


def test_a_revolut_timestamp_in_seconds_is_told_apart_in_the_log(client, caplog):
    """Revolut signs milliseconds since the epoch; a hand-made test request with seconds is refused (401,
    as any bad signature) and the receiver's log says why."""
    path, payload = sample("revolut", f"secs-{time.time_ns()}")
    body = dumps(payload)
    headers = sign("revolut", body, timestamp_ms=int(time.time()))  # seconds, by mistake
    with caplog.at_level("WARNING"):
        answer = client.post(path, data=body, headers=headers)
    assert answer.status_code == 401
    assert (
        "Revolut-Request-Timestamp is in seconds: Revolut sends milliseconds since the epoch" in caplog.text
    )


@pytest.mark.slow  # 40 s: `pytest -m slow` (CI's second step) or naming this file runs it
def test_redis_going_away_under_up_is_one_line_and_beat_comes_back(tmp_path):
    """Before: beat's traceback came out one token per line (about 1,200 lines), then `up` stopped
    everything. Now beat says it in one line, `up` starts it again once Redis answers, and beat takes its
    lock back; Ctrl-C still stops everything."""
    import signal

    from tests.servers import PrivateRedis
    from tests.support import wait_until

    server = PrivateRedis()
    env = dict(os.environ, REDIS_URL=server.url)
    up = Proc(
        [sys.executable, "-m", "syncengine", "up", "--port", str(free_port())], env, tmp_path / "up.log"
    )
    try:
        wait_until(lambda: "beat: Acquired lock" in up.output(), timeout=120)
        server.kill()
        wait_until(
            lambda: "beat exited with 1; starting it again once Redis answers" in up.output(), timeout=90
        )
        said = [line for line in up.output().splitlines() if "beat stopped" in line]
        assert len(said) == 1 and said[0].endswith(
            "beat stopped: Redis is unreachable (Error 111 connecting to 127.0.0.1:"
            f"{server.port}. Connection refused); started again, it takes its lock back once Redis answers"
        )
        server.start()
        wait_until(lambda: up.output().count("beat: Acquired lock") == 2, timeout=120)
        assert up.popen.poll() is None  # web and worker never stopped
        output = up.output()
        assert "Traceback" not in output and len(output.splitlines()) < 200
        up.signal(signal.SIGINT)
        assert up.popen.wait(timeout=60) == 0
    finally:
        up.stop()
        server.kill()
