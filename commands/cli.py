"""`syncengine` on the command line: run the parts, set up the vendors, look at the work, replay it.

Every mistake of configuration or environment ends in one line that says what is wrong and what to do, and
exit 2 (commands.explain); a command that ran and found something wrong exits 1. Tracebacks only with
`--debug` or LOG_LEVEL=DEBUG.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from syncengine.settings import SERVICES, get_settings

from . import preflight
from .explain import DEBUG, PROBLEMS, Mistake, bug, explain

SUMMARY = (
    "Keeps Invoice Ninja, Revolut Business, ERPNext, Mautic and Directus in sync, both ways, without losing "
    "or duplicating anything."
)
EXAMPLES = """\
examples:
  syncengine demo                   a day of a small business against the simulators, live
  syncengine db upgrade             create or migrate the store (DATABASE_URL; else a SQLite file)
  syncengine up                     receiver, worker and scheduler in this terminal
  syncengine setup --check          what each configured vendor still lacks, one line each
  syncengine status --watch         problems first; refreshed until the backlog is drained
  syncengine <command> --help       what a command does, its options and their defaults

exit codes: 0 done; 1 it ran and something is wrong (failed events, a vendor refused); 2 a usage,
configuration or environment mistake (nothing was done). Tracebacks: --debug or LOG_LEVEL=DEBUG."""


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs wrapped to the terminal, example blocks kept as written, and each option's default shown
    where it has one worth showing."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in text.split("\n\n"):
            if "\n  " in block or block.endswith(":"):  # an indented block: examples, a table
                blocks.append(textwrap.indent(block, indent))
            else:
                blocks.append(textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                            subsequent_indent=indent))  # fmt: skip
        return "\n\n".join(blocks)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            # argparse measures the command names at their parent's indent, not at their own, so the
            # longest (`reconcile`) would be pushed onto a line of its own.
            self._action_max_length += self._indent_increment

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs != "?":
            return text
        return f"{text} (default: %(default)s)"


class Lazy(Sequence[str]):
    """Choices read when first needed (argparse checks or lists them), so `--help` stays fast."""

    def __init__(self, load: Any) -> None:
        self._load, self._items = load, None

    def _all(self) -> list[str]:
        if self._items is None:
            self._items = list(self._load())
        return self._items

    def __getitem__(self, i: Any) -> Any:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __contains__(self, item: object) -> bool:
        return item in self._all()


def _sweep_kinds() -> list[str]:
    from tasks.sweep_sources import SOURCES

    return sorted({kind for _system, kind in SOURCES})


def _simulators() -> list[str]:
    from simulators import REGISTRY

    return sorted(REGISTRY)


# --- db -------------------------------------------------------------------------------------------------


def cmd_db(args: argparse.Namespace) -> int:
    from syncengine import migrate

    from .explain import safe_url

    if args.action == "history":
        return _db_history()
    preflight.check(("database",))
    if args.action == "current":
        revision = migrate.current()
        print(f"{revision or 'none'}{' (head)' if revision == migrate.head() else ''}: {safe_url(_url())}")
        problem = migrate.behind(revision)
        if problem:
            print(problem)
        return PROBLEMS if problem else 0
    revision = args.revision or ("head" if args.action == "upgrade" else "-1")
    (migrate.upgrade if args.action == "upgrade" else migrate.downgrade)(revision=revision)
    print(f"database {args.action}d to {revision} (now at {migrate.current() or 'none'}): {safe_url(_url())}")
    return 0


def _db_history() -> int:
    from syncengine import migrate

    try:
        current = migrate.current()
    except Exception:  # history is the release's own list: it needs no database
        current = None
    for migration in reversed(migrate.history()):
        mark = " (current)" if migration.revision == current else ""
        print(f"{migration.revision}{mark}  {migration.title.splitlines()[0] if migration.title else ''}")
    return 0


def _url() -> str:
    return get_settings().database_url


# --- status, replay, sweep ---------------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    preflight.check(("schema",))
    if args.drift:
        from tasks import drift, repair

        report, repaired = drift.last_report(), repair.last_run()
        if args.json:
            print(json.dumps({**(report or {}), "repair": repaired}, indent=2, default=str))
        else:
            print(drift.render(report) + "\n" + repair.render(repaired))
        return 0
    if args.watch:
        from .status_watch import watch

        return watch(args.interval, as_json=args.json)
    from .status import collect, render

    report = collect()
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay, report, wait

    if not (args.event or args.failed or args.push):
        raise Mistake("replay needs something to replay", "give an event id, --push ID or --failed")
    preflight.check(("schema", "redis"))
    done = replay(args.event, failed=args.failed, source=args.source, event_type=args.type, task=args.push)
    if not done:
        return _nothing_replayed(args)
    print(f"replaying {len(done.events)} event(s): {_ids(done.events)}; "
          f"{len(done.tasks)} push(es) and task(s): {_ids(done.tasks)}")  # fmt: skip
    if args.no_wait:
        print("queued: follow them with `syncengine status --watch`")
        return 0
    outcome = wait(done, timeout=args.timeout)
    for line in report(outcome):
        print(line)
    return 0 if outcome.all_done else PROBLEMS


def _nothing_replayed(args: argparse.Namespace) -> int:
    if args.failed:
        print("nothing has failed: nothing to replay")
        return 0
    if args.push:
        raise Mistake(f"no push or task #{args.push} to replay (done already, or running now)",
                      "see `syncengine status` for the failed ones", PROBLEMS)  # fmt: skip
    raise Mistake(
        f"no event {args.event!r} in the inbox",
        "give its inbox id (#123 in `syncengine status`) or its event_id as a log line prints it",
        PROBLEMS,
    )


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Compare every linked object with the hub and repair what differs (tasks.repair)."""
    from .repair_command import run

    if args.dry_run and not args.repair:
        raise Mistake("--dry-run goes with --repair", "syncengine reconcile --repair --dry-run")
    preflight.check(("schema", "redis"))
    return run(args.system, args.kind, repair=args.repair and not args.dry_run)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run sweeps here and now (the beat runs them on the sweeps queue); new events go to the broker."""
    from .sweep_command import run

    preflight.check(("schema", "redis"))
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise Mistake(
                f"--since {args.since!r} is not an ISO time", "write e.g. 2026-05-01T08:00"
            ) from None
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return run(args.system, args.kind, since)


# --- the rest ---------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run

    return run(keep=args.keep)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators import run

    run(args.vendor, args.port, args.host)
    return 0


def cmd_revolut(args: argparse.Namespace) -> int:
    """Print the consent URL (with a signed state the callback requires); Revolut then redirects to the
    receiver's /oauth/revolut/callback."""
    from connectors.revolut_tokens import NotConfigured, consent_url
    from syncengine.oauth_state import LIFETIME

    try:
        url = consent_url(scope=args.scope)
    except NotConfigured as exc:
        raise Mistake("Revolut is not configured", str(exc)) from None
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


# --- the parser -------------------------------------------------------------------------------------------


def _command(sub: Any, name: str, help_: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help_, description=description, epilog=epilog, formatter_class=HelpFormatter
    )


def _add_db(sub: Any) -> None:
    db = _command(
        sub, "db", "migrate the store; say where it stands",
        "upgrade applies this release's migrations (Procfile: release), downgrade rolls back, current says "
        "where the database stands (exit 1 when not at head: worker, beat and serve refuse to start then), "
        "history lists the migrations.",
        "examples:\n  syncengine db upgrade\n  syncengine db current\n  syncengine db downgrade 0005",
    )  # fmt: skip
    db.add_argument("action", choices=["upgrade", "downgrade", "current", "history"], help="what to do")
    db.add_argument("revision", nargs="?", default=None,
                    help="upgrade: default head; downgrade: default -1 (one step back)")  # fmt: skip
    db.set_defaults(func=cmd_db)


def _add_status(sub: Any) -> None:
    status = _command(
        sub, "status", "problems first, then the healthy summary; --watch until drained",
        "Problems first: failed and stuck pushes and tasks with their reasons, failed and retrying events "
        "with their last error and next attempt, open circuit breakers, stale sweeps, an expiring Revolut "
        "token. Then the summary: events and tasks by state, queues, breakers, sweeps, tokens.",
        "examples:\n  syncengine status\n  syncengine status --watch\n"
        "  syncengine status --json | jq .problems",
    )  # fmt: skip
    status.add_argument("--json", action="store_true", help="the same report as JSON")
    status.add_argument("--drift", action="store_true", help="the last daily drift report's differences")
    status.add_argument("--watch", action="store_true",
                        help="refresh until no event, push or task is waiting, then say so")  # fmt: skip
    status.add_argument("--interval", type=float, default=2.0, metavar="SECONDS", help="with --watch")
    status.set_defaults(func=cmd_status)


def _add_replay(sub: Any) -> None:
    replay = _command(
        sub, "replay", "run failed events and pushes again, and wait for the outcome",
        "Run an event again, with the pushes it set off that failed; one push or task by its outbox id; or "
        "everything failed (of one sender, of one type). Waits for the outcome and prints it; effects are "
        "idempotent, so a replay never charges, books or emails twice.",
        "examples:\n  syncengine replay 123\n  syncengine replay invoiceninja:client:42:1732000000:9f2c\n"
        "  syncengine replay --push 45\n  syncengine replay --failed --source mautic",
    )  # fmt: skip
    replay.add_argument(
        "event", nargs="?", metavar="EVENT",
        help="inbox id, or the event_id as a log line prints it (or sender:event_id)",
    )  # fmt: skip
    replay.add_argument("--failed", action="store_true", help="every failed event, push and task")
    replay.add_argument("--push", type=int, metavar="ID", help="one push or task (its outbox id in `status`)")
    replay.add_argument("--source", choices=SERVICES, help="with --failed: only this sender's events")
    replay.add_argument("--type", metavar="TYPE", help="with --failed: only events of this type")
    replay.add_argument("--no-wait", action="store_true", help="queue them and return at once")
    replay.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                        help="how long to wait for the outcome")  # fmt: skip
    replay.set_defaults(func=cmd_replay)


def _add_sweep(sub: Any) -> None:
    sweep = _command(
        sub, "sweep", "list changes since the cursor; feed the missed ones in",
        "List what changed since the cursor in one system (or every configured one) and feed the changes "
        "whose webhooks were lost into the inbox. A vendor that is down or refuses us is one line, and this "
        "run's failures never open the circuit breaker the workers share.",
        "examples:\n  syncengine sweep\n  syncengine sweep invoiceninja contact\n"
        "  syncengine sweep erpnext invoice --since 2026-05-01",
    )  # fmt: skip
    sweep.add_argument("system", nargs="?", choices=SERVICES, metavar="SYSTEM",
                       help=f"one of {', '.join(SERVICES)}; default: every configured one")  # fmt: skip
    kinds = Lazy(_sweep_kinds)
    sweep.add_argument(
        "kind", nargs="?", choices=kinds, metavar="KIND",
        help="contact, product, invoice, payment, transfer, activity or deleted; default: all",
    )  # fmt: skip
    sweep.add_argument(
        "--since", metavar="ISO-TIME",
        help="list from this time instead of the cursor (a backfill; UTC if no zone)",
    )  # fmt: skip
    sweep.set_defaults(func=cmd_sweep)


def _add_reconcile(sub: Any) -> None:
    reconcile = _command(
        sub, "reconcile", "compare every linked object with the hub; --repair what differs",
        "List every object each system carries (paged), compare its carried fields with the hub by hash, and "
        "with --repair settle each difference by the conflict policy: a state the hub never saw is merged "
        "as a change from that system, a change the hub holds is pushed where it is missing. What was "
        "repaired is recorded (`syncengine status --drift`). Exit 1 when a repair failed.",
        "examples:\n  syncengine reconcile --repair --dry-run\n  syncengine reconcile --repair\n"
        "  syncengine reconcile --repair mautic contact",
    )  # fmt: skip
    reconcile.add_argument("system", nargs="?", choices=SERVICES, metavar="SYSTEM",
                           help=f"one of {', '.join(SERVICES)}; default: every configured one")  # fmt: skip
    reconcile.add_argument("kind", nargs="?", choices=["contact", "product", "invoice"], metavar="KIND",
                           help="contact, product or invoice; default: all")  # fmt: skip
    reconcile.add_argument("--repair", action="store_true", help="repair each difference")
    reconcile.add_argument("--dry-run", action="store_true", help="with --repair: say what it would repair")
    reconcile.set_defaults(func=cmd_reconcile)


def _add_try(sub: Any) -> None:
    demo = _command(
        sub, "demo", "a day of a small business against the simulators, live",
        "Start the vendor simulators, the receiver and a worker on the embedded default in a temporary "
        "folder, and play a day: a lead, an address change, a product, a conflict, an invoice sent, a "
        "payment received. The folder is removed at the end unless --keep.",
        "examples:\n  syncengine demo\n  syncengine demo --keep     then read engine.log in the folder named",
    )  # fmt: skip
    demo.add_argument("--keep", action="store_true", help="keep the folder (its engine.log, the store)")
    demo.set_defaults(func=cmd_demo)

    simulate = _command(
        sub, "simulate", "one vendor simulator; prints its URL, credentials, exports",
        "Serve one vendor's simulator on loopback until Ctrl-C, and print its URL, the credentials it "
        "accepts and the `export` lines that point the engine at it.",
        "example:\n  syncengine simulate invoiceninja --port 9001",
    )  # fmt: skip
    simulate.add_argument("vendor", choices=Lazy(_simulators), metavar="VENDOR",
                          help="invoiceninja, erpnext, mautic, directus, revolut or openai")  # fmt: skip
    simulate.add_argument("--port", type=int, default=0, help="0: a free one")
    simulate.add_argument("--host", default="127.0.0.1", help="the interface to listen on")
    simulate.set_defaults(func=cmd_simulate)

    ocr = _command(
        sub, "ocr", "read one receipt or invoice by hand (nothing is booked)",
        "Read one document with OpenAI vision or Tesseract and show the fields and the checks the engine "
        "would apply; nothing is stored or booked.",
        "example:\n  syncengine ocr receipt.jpg --engine tesseract --json",
    )  # fmt: skip
    ocr.add_argument("file", help="a JPEG, PNG, WebP or PDF file")
    ocr.add_argument("--engine", choices=["openai", "tesseract"], default=None,
                     help="default: SYNCENGINE_OCR_ENGINE (auto: OpenAI when configured)")  # fmt: skip
    ocr.add_argument("--json", action="store_true", help="supplier, number, date, …, lines, confidence")
    ocr.set_defaults(func=cmd_ocr)


def _add_revolut(sub: Any) -> None:
    revolut = _command(
        sub, "revolut", "Revolut OAuth: print the consent URL",
        "Print Revolut's consent URL with a signed state, valid 15 minutes; after approval Revolut redirects "
        "to the receiver's /oauth/revolut/callback, which stores the tokens encrypted.",
        "example:\n  syncengine revolut consent --scope READ,WRITE",
    )  # fmt: skip
    revolut.add_argument("action", choices=["consent"], help="print the consent URL")
    revolut.add_argument("--scope", help="narrow the grant, e.g. READ,WRITE (default: the certificate's)")
    revolut.set_defaults(func=cmd_revolut)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("syncengine")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from .ops_cli import add_commands as add_ops
    from .processes import add_commands as add_processes

    parser = argparse.ArgumentParser(prog="syncengine", description=SUMMARY, epilog=EXAMPLES,
                                     formatter_class=HelpFormatter)  # fmt: skip
    parser.add_argument("--version", action="version", version=f"syncengine {version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_processes(partial(_command, sub))  # up, serve, worker, beat
    _add_db(sub)
    add_ops(partial(_command, sub))  # setup, webhooks, flower
    _add_status(sub)
    _add_replay(sub)
    _add_sweep(sub)
    _add_reconcile(sub)
    _add_revolut(sub)
    _add_try(sub)  # demo, simulate, ocr
    return parser


def _configure_logging(debug: bool) -> None:
    """The command's own log lines (warnings; progress when not on a terminal), redacted like every line."""
    from syncengine import redaction

    settings = get_settings()
    redaction.install(s.reveal() for s in settings.all_secrets())
    level = logging.DEBUG if debug else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("syncengine.progress").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug
    try:
        debug = debug or get_settings().log_level == "DEBUG"
        DEBUG["on"] = debug
        _configure_logging(debug)
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `syncengine status | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 0
    except Exception as exc:
        return _failed(args.command, exc, debug)


def _failed(command: str, exc: Exception, debug: bool) -> int:
    """One line for the operator; the traceback only when asked for (a Mistake never has one)."""
    mistake = explain(exc)
    if mistake is not None and (isinstance(exc, Mistake) or not debug):
        print(mistake, file=sys.stderr)
        return mistake.code
    if debug:
        raise exc
    print(bug(command, exc), file=sys.stderr)
    return PROBLEMS


if __name__ == "__main__":
    sys.exit(main())
