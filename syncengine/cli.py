"""`syncengine` on the command line: run the parts, look at the inbox, replay events."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from .settings import get_settings

QUEUES = "intake,sync,sweeps,ocr"


def _celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "syncengine.celery_app", *args]


def bind_host() -> str:
    """All interfaces (the PaaS contract); SYNCENGINE_BIND_HOST=127.0.0.1 keeps a local run on loopback."""
    return get_settings().bind_host


def web_command(port: int | None = None) -> list[str]:
    port = port or int(os.environ.get("PORT", 8000))
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    return [
        sys.executable, "-m", "gunicorn", "webhooks.app:create_app()",
        "--bind", f"{bind_host()}:{port}", "--workers", workers,
        "--timeout", "30", "--graceful-timeout", "20", "--access-logfile", "-",
    ]  # fmt: skip


def worker_command(queues: str = QUEUES, concurrency: str | None = None) -> list[str]:
    concurrency = concurrency or os.environ.get("WORKER_CONCURRENCY", "2")
    # The node is named after its first queue (intake@host, ocr@host): two roles on one host stay apart
    # in Flower and in remote control replies.
    name = f"{queues.split(',')[0]}@%h"
    level = get_settings().log_level
    return _celery("worker", "-Q", queues, "-n", name, "--concurrency", concurrency, "--loglevel", level)


def beat_command() -> list[str]:
    settings = get_settings()
    scheduler = [] if settings.embedded else ["-S", "redbeat.RedBeatScheduler"]
    return _celery("beat", *scheduler, "--loglevel", settings.log_level)


def cmd_db(args: argparse.Namespace) -> int:
    from . import migrate

    if args.action == "upgrade":
        migrate.upgrade(revision=args.revision)
    else:
        migrate.downgrade(revision=args.revision)
    print(f"database {args.action}d to {args.revision}: {_safe_url()}")
    return 0


def _safe_url() -> str:
    from sqlalchemy.engine import make_url

    return make_url(get_settings().database_url).render_as_string(hide_password=True)


def _redis_keeps_its_keys(role: str) -> bool:
    """A Redis that may evict keys loses tasks and locks: refuse to start on it (syncengine.redis_policy)."""
    from .redis_policy import check_at_start

    return check_at_start(role)


def cmd_serve(args: argparse.Namespace) -> int:
    if os.environ.get("SYNCENGINE_WEB_ROLE") == "flower":  # a second app whose routed `web` is Flower
        from .ops_cli import cmd_flower

        return cmd_flower(args)
    if not _redis_keeps_its_keys("web"):
        return 2
    os.execv(sys.executable, web_command(args.port))


def cmd_worker(args: argparse.Namespace) -> int:
    if not _redis_keeps_its_keys("worker"):
        return 2
    os.execv(sys.executable, worker_command(args.queues, args.concurrency))


def cmd_beat(_args: argparse.Namespace) -> int:
    if not _redis_keeps_its_keys("beat"):
        return 2
    os.execv(sys.executable, beat_command())


def cmd_up(args: argparse.Namespace) -> int:
    """web + worker + beat in one terminal, stopped together by Ctrl-C."""
    from . import migrate

    settings = get_settings()
    if not _redis_keeps_its_keys("up"):
        return 2
    settings.home.mkdir(parents=True, exist_ok=True)
    migrate.upgrade()
    mode = "embedded (SQLite file + SQLite broker)" if settings.embedded else "Postgres + Redis"
    print(f"syncengine up on {mode}; receiver on http://127.0.0.1:{args.port}; Ctrl-C stops everything")
    roles = {"web": web_command(args.port), "worker": worker_command(), "beat": beat_command()}
    return supervise(roles)


def supervise(roles: dict[str, list[str]]) -> int:
    children = {name: subprocess.Popen(cmd) for name, cmd in roles.items()}
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the others", file=sys.stderr)
                exit_code, stopping = child.returncode or 1, True
        time.sleep(0.2)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def cmd_status(args: argparse.Namespace) -> int:
    from .status import collect, render

    if getattr(args, "drift", False):
        from . import drift

        report = drift.last_report()
        print(json.dumps(report, indent=2, default=str) if args.json else drift.render(report))
        return 0
    report = collect()
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay

    done = replay(args.event, failed=args.failed, source=args.source, event_type=args.type, task=args.push)
    events, tasks = (", ".join(map(str, ids)) or "none" for ids in (done.events, done.tasks))
    print(f"replayed {len(done.events)} event(s): {events}; {len(done.tasks)} push(es) and task(s): {tasks}")
    return 0 if done or args.failed else 1


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run sweeps here and now (the beat runs them on the sweeps queue); new events go to the broker."""
    from tasks.reconcile import kinds_for, sweep

    from .errors import Permanent
    from .redaction import redact

    targets = kinds_for(args.system, args.kind)
    if not targets:
        print(f"no sweep for {args.system or 'any system'} {args.kind or ''}".rstrip(), file=sys.stderr)
        return 1
    since = _aware(datetime.fromisoformat(args.since)) if args.since else None
    failed = 0
    for system, kind in targets:
        try:
            result = sweep(system, kind, since=since)
        except Permanent as exc:  # a permission or a setting: one line that says what to do, no traceback
            print(f"{system} {kind}: {redact(str(exc))}", file=sys.stderr)
            failed += 1
            continue
        print(f"{system} {kind}: {result.listed} listed, {result.new} new, cursor {result.cursor}")
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run()


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators import run

    run(args.vendor, args.port, args.host)
    return 0


def cmd_revolut(args: argparse.Namespace) -> int:
    """Print the consent URL (with a signed state the callback requires); Revolut then redirects to the
    receiver's /oauth/revolut/callback."""
    from .oauth_state import LIFETIME
    from .tokens import NotConfigured, consent_url

    try:
        url = consent_url(scope=args.scope)
    except NotConfigured as exc:
        print(exc, file=sys.stderr)
        return 1
    print(url)
    print(
        f"open it within {LIFETIME // 60} minutes and approve; GET /oauth/revolut/callback "
        "(REVOLUT_REDIRECT_URI) then stores the tokens",
        file=sys.stderr,
    )
    return 0


def cmd_ocr(args: argparse.Namespace) -> int:
    """Read one receipt or invoice by hand; nothing is stored or booked."""
    from .ocr_command import run

    return run(args.file, args.engine, args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="apply or roll back the store's migrations")
    db.add_argument("action", choices=["upgrade", "downgrade"])
    db.add_argument("revision", nargs="?", default=None)
    db.set_defaults(func=cmd_db)

    serve = sub.add_parser("serve", help="run the webhook receiver under gunicorn")
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default=QUEUES)
    worker.add_argument("--concurrency", default=None)
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("beat", help="run the scheduler (redbeat when REDIS_URL is set)").set_defaults(
        func=cmd_beat
    )

    up = sub.add_parser("up", help="web + worker + beat together; Ctrl-C stops all")
    up.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    up.set_defaults(func=cmd_up)

    status = sub.add_parser("status", help="failures first (pushes, effects, events), then queues and sweeps")
    status.add_argument("--json", action="store_true")
    status.add_argument("--drift", action="store_true", help="the last daily drift report's differences")
    status.set_defaults(func=cmd_status)

    replay = sub.add_parser(
        "replay", help="process an event again (inbox id or source:event_id), with its failed pushes"
    )
    replay.add_argument("event", nargs="?")
    replay.add_argument("--failed", action="store_true", help="replay every failed event, push and task")
    replay.add_argument("--push", type=int, metavar="ID", help="run one push or task again (its outbox id)")
    replay.add_argument("--source", help="with --failed: only this sender's events")
    replay.add_argument("--type", help="with --failed: only events of this type")
    replay.set_defaults(func=cmd_replay)

    sweep = sub.add_parser("sweep", help="list changes since the cursor; feed missed ones to the inbox")
    sweep.add_argument("system", nargs="?", help="one system (default: every one with a sweep)")
    sweep.add_argument("kind", nargs="?", help="one kind, e.g. contact (default: all)")
    sweep.add_argument(
        "--since", help="list from this ISO time instead of the cursor (a backfill; UTC if naive)"
    )
    sweep.set_defaults(func=cmd_sweep)

    revolut = sub.add_parser("revolut", help="Revolut OAuth: print the consent URL")
    revolut.add_argument("action", choices=["consent"])
    revolut.add_argument("--scope", help="narrow the grant, e.g. READ,WRITE (default: the certificate's)")
    revolut.set_defaults(func=cmd_revolut)

    sub.add_parser("demo", help="a day of a small business against the simulators, live").set_defaults(
        func=cmd_demo
    )

    simulate = sub.add_parser("simulate", help="run one vendor simulator on loopback")
    simulate.add_argument("vendor")
    simulate.add_argument("--port", type=int, default=0)
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.set_defaults(func=cmd_simulate)

    ocr = sub.add_parser("ocr", help="read one receipt or invoice by hand (nothing is booked)")
    ocr.add_argument("file")
    ocr.add_argument("--engine", choices=["openai", "tesseract"], default=None, help="default: auto")
    ocr.add_argument("--json", action="store_true", help="supplier, number, date, …, lines, confidence")
    ocr.set_defaults(func=cmd_ocr)

    from .ops_cli import add_commands

    add_commands(sub)  # flower, webhooks install|check
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "db" and args.revision is None:
        args.revision = "head" if args.action == "upgrade" else "-1"
    if args.command == "replay" and not (args.event or args.failed or args.push):
        build_parser().error("replay needs an event id, --push ID or --failed")
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
