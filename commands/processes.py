"""The engine's processes on the command line: `serve`, `worker`, `beat`, and `up` (all three together).

Each checks what it needs before it starts (commands.preflight): the database answers and is at this
release's head, Redis answers and keeps its keys, the port is free. A worker started on an old schema would
otherwise fail on every task it takes, and a receiver would answer 503 to every webhook while /readyz said
ready.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from syncengine.settings import env_value, get_settings

from . import preflight
from .explain import Mistake

QUEUES = ("intake", "sync", "sweeps", "ocr")
DEFAULT_QUEUES = ",".join(QUEUES)


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "syncengine.celery_app", *args]


def default_port() -> int:
    return int(env_value("PORT", "8000"))


def web_command(port: int | None = None) -> list[str]:
    port = port or default_port()
    workers = env_value("WEB_CONCURRENCY", "2")
    return [
        sys.executable, "-m", "gunicorn", "webhooks.app:create_app()",
        "--bind", f"{get_settings().bind_host}:{port}", "--workers", workers,
        "--timeout", "30", "--graceful-timeout", "20", "--access-logfile", "-",
    ]  # fmt: skip


def default_concurrency(embedded: bool) -> int:
    """A worker's pool processes when WORKER_CONCURRENCY is not set: 2 on Postgres + Redis (a 512 MB dyno
    holds the main process and two pool processes), 4 on the embedded default. There a pool process spends
    much of its time waiting (on the SQLite broker's next poll, on the store file's write lock) and two left
    a 2-core machine half idle: `bench/backfill.py --store embedded` synced 1.5x as fast with 4 (0.95 ->
    1.37 cores busy), 1.6x with 6 and 1.9x with 8, and `bench/flows.py`'s burst of 150 landed with p99
    9.3-10.0 s with 4 (15.9 s with 2), 7.3-7.6 s with 6. Each pool process holds about 85 MB once busy:
    4 keep the worker near 430 MB; 6 (WORKER_CONCURRENCY=6) cost about 170 MB more."""
    return 4 if embedded else 2


def worker_command(queues: str = DEFAULT_QUEUES, concurrency: str | None = None) -> list[str]:
    concurrency = concurrency or env_value("WORKER_CONCURRENCY") or str(
        default_concurrency(get_settings().embedded)
    )
    # The node is named after its first queue (intake@host, ocr@host): two roles on one host stay apart
    # in Flower and in remote control replies.
    name = f"{queues.split(',')[0]}@%h"
    level = get_settings().log_level
    return _celery("worker", "-Q", queues, "-n", name, "--concurrency", concurrency, "--loglevel", level)


def beat_command() -> list[str]:
    settings = get_settings()
    scheduler = [] if settings.embedded else ["-S", "redbeat.RedBeatScheduler"]
    return _celery("beat", *scheduler, "--loglevel", settings.log_level)


def _ready_to_start(role: str) -> bool:
    """The schema at head and Redis reachable (a Mistake otherwise), and a Redis that keeps its keys: a
    Redis that may evict loses tasks and locks (syncengine.redis_policy)."""
    from syncengine.redis_policy import check_at_start

    preflight.check(("schema", "redis"))
    return check_at_start(role)


def cmd_serve(args: argparse.Namespace) -> int:
    if env_value("SYNCENGINE_WEB_ROLE") == "flower":  # a second app whose routed `web` is Flower
        from .ops_cli import cmd_flower

        return cmd_flower(args)
    port = args.port or default_port()
    preflight.port_free(get_settings().bind_host, port)
    if not _ready_to_start("web"):
        return 2
    os.execv(sys.executable, web_command(port))


def cmd_worker(args: argparse.Namespace) -> int:
    unknown = [q for q in args.queues.split(",") if q not in QUEUES]
    if unknown:
        raise Mistake(
            f"unknown queue {', '.join(unknown)}", f"choose among {DEFAULT_QUEUES} (comma-separated)"
        )
    if not _ready_to_start("worker"):
        return 2
    os.execv(sys.executable, worker_command(args.queues, args.concurrency))


def cmd_beat(_args: argparse.Namespace) -> int:
    if not _ready_to_start("beat"):
        return 2
    os.execv(sys.executable, beat_command())


def cmd_up(args: argparse.Namespace) -> int:
    """web + worker + beat in one terminal, stopped together by Ctrl-C."""
    from syncengine import migrate
    from syncengine.redis_policy import check_at_start

    settings = get_settings()
    preflight.check(("database", "redis"))
    preflight.port_free(settings.bind_host, args.port)
    if not check_at_start("up"):
        return 2
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade()
    mode = "embedded (SQLite file + SQLite broker)" if settings.embedded else "Postgres + Redis"
    print(f"syncengine up on {mode}; receiver on http://127.0.0.1:{args.port}; Ctrl-C stops everything")
    roles = {"web": web_command(args.port), "worker": worker_command(), "beat": beat_command()}
    return supervise(roles)


# Beat stops when it cannot renew its lock in Redis (it may have lost it to a standby): `up` starts it again,
# as a platform would, and it takes the lock back once Redis answers. Any other role ending ends `up`.
RESTARTED = ("beat",)
RESTART_AFTER = 10.0


def supervise(roles: dict[str, list[str]], restart_after: float = RESTART_AFTER) -> int:
    children = {name: subprocess.Popen(cmd) for name, cmd in roles.items()}
    stopping, due = False, dict[str, float]()

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in list(children.items()):
            if child.poll() is None:
                continue
            if name not in RESTARTED:
                print(f"{name} exited with {child.returncode}; stopping the others", file=sys.stderr)
                exit_code, stopping = child.returncode or 1, True
            elif name not in due:
                print(f"{name} exited with {child.returncode}; starting it again once Redis answers",
                      file=sys.stderr)  # fmt: skip
                due[name] = time.monotonic() + restart_after
            elif time.monotonic() >= due[name] and not stopping:
                if _redis_answers():
                    children[name] = subprocess.Popen(roles[name])
                    del due[name]
                else:  # it would only stop again: wait for Redis, quietly
                    due[name] = time.monotonic() + restart_after
        time.sleep(0.2)
    _stop_all(children.values())
    return exit_code


def _redis_answers() -> bool:
    try:
        preflight.redis()
    except Mistake:
        return False
    return True


def _stop_all(children: Any) -> None:
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """`command(name, help, description, epilog)` adds one subcommand the way the CLI formats them."""
    up = command(
        "up", "web + worker + beat in one terminal; Ctrl-C stops all",
        "Migrate the database to head, then run the webhook receiver, a Celery worker on every queue and "
        "the scheduler together, in this terminal. Without DATABASE_URL and REDIS_URL: one SQLite file and "
        "a SQLite broker in SYNCENGINE_HOME (./var).",
        "examples:\n  syncengine up\n  syncengine up --port 9000\n"
        "  DATABASE_URL=postgresql://me@localhost/sync REDIS_URL=redis://localhost:6379/0 syncengine up",
    )  # fmt: skip
    up.add_argument("--port", type=int, default=default_port(), help="the receiver's port (PORT)")
    up.set_defaults(func=cmd_up)

    serve = command(
        "serve", "the webhook receiver under gunicorn (Procfile: web)",
        "Run the webhook receiver (POST /webhooks/<sender>, /documents, /healthz, /readyz, /metrics) under "
        "gunicorn with WEB_CONCURRENCY workers, on SYNCENGINE_BIND_HOST. Refuses to start on a database not "
        "at head, or a Redis that is unreachable or may evict keys.",
        "example:\n  PORT=8000 WEB_CONCURRENCY=2 syncengine serve",
    )  # fmt: skip
    serve.add_argument("--port", type=int, default=None, help="default: PORT, else 8000")
    serve.set_defaults(func=cmd_serve)

    worker = command(
        "worker", "a Celery worker (Procfile: worker, ocr)",
        "Run a Celery worker on the given queues: intake (webhooks and swept changes), sync (pushes, "
        "bookings, emails), sweeps (sweeps, redelivery, token refresh) and ocr (reading documents, kept "
        "apart so slow OCR never delays a payment). Refuses to start on a database not at head.",
        "examples:\n  syncengine worker --queues intake,sync,sweeps\n"
        "  syncengine worker --queues ocr --concurrency 1",
    )  # fmt: skip
    worker.add_argument("--queues", default=DEFAULT_QUEUES, metavar="Q1,Q2",
                        help=f"comma-separated, among {', '.join(QUEUES)}")  # fmt: skip
    worker.add_argument("--concurrency", default=None, metavar="N",
                        help="processes; default: WORKER_CONCURRENCY, else 2 (4 embedded)")  # fmt: skip
    worker.set_defaults(func=cmd_worker)

    command(
        "beat",
        "the scheduler (Procfile: beat): sweeps, redelivery, tokens",
        "Run the scheduler: redbeat on Redis when REDIS_URL is set (run exactly one; a standby takes over "
        "within a minute), Celery's own on the embedded default. Refuses to start on a database not at head.",
        "example:\n  REDIS_URL=redis://localhost:6379/0 syncengine beat",
    ).set_defaults(func=cmd_beat)
