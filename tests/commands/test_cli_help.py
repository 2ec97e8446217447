"""The CLI explains itself: a description and examples for every command, help for every option with its
default, the valid choices listed, `--version`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import version

import pytest

from commands.cli import build_parser
from tests.support import ROOT


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def helps(name: str) -> str:
    return " ".join(commands()[name].format_help().split())  # as one line: wrapping does not matter


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_has_a_description_examples_and_help_for_each_option(name: str):
    parser = commands()[name]
    assert parser.description and len(parser.description) > 60, name
    assert parser.epilog and "syncengine " in parser.epilog and "example" in parser.epilog, name
    for action in parser._actions:
        assert action.help, (name, action.dest)


def test_defaults_are_shown():
    assert "how long to wait for the outcome (default: 300.0)" in helps("replay")
    assert "with --watch (default: 2.0)" in helps("status")
    assert "comma-separated, among intake, sync, sweeps, ocr (default: intake,sync,sweeps,ocr)" in helps(
        "worker"
    )
    assert "processes; default: WORKER_CONCURRENCY, else 2 (4 embedded)" in helps("worker")
    assert "the receiver's port (PORT) (default: " in helps("up")
    assert "upgrade: default head; downgrade: default -1 (one step back)" in helps("db")


def test_choices_are_listed():
    sweep = helps("sweep")
    assert "one of invoiceninja, revolut, erpnext, mautic, directus" in sweep
    assert "contact, product, invoice, payment, transfer, activity or deleted" in sweep
    assert "invoiceninja, erpnext, mautic, directus, revolut or openai" in helps("simulate")
    assert "{invoiceninja,revolut,erpnext,mautic,directus}" in helps("replay")
    assert "{upgrade,downgrade,current,history}" in helps("db")
    assert "{invoiceninja,erpnext,mautic,directus,revolut}" in helps("setup")


def test_the_kinds_the_help_lists_are_the_sweeps_there_are():
    from tasks.sweep_sources import SOURCES

    assert {kind for _system, kind in SOURCES} == {
        "contact", "product", "invoice", "payment", "transfer", "activity", "deleted",
    }  # fmt: skip


def test_version_and_top_level_help():
    done = subprocess.run([sys.executable, "-m", "syncengine", "--version"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == f"syncengine {version('syncengine')}"
    top = subprocess.run([sys.executable, "-m", "syncengine", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60).stdout  # fmt: skip
    for name in commands():
        assert f"\n    {name} " in top, name
    assert "exit codes: 0 done; 1 it ran and something is wrong" in " ".join(top.split())


def test_a_worker_runs_four_pool_processes_embedded_and_two_on_redis_unless_told(monkeypatch, tmp_path):
    """The embedded default's pool processes wait on the SQLite broker and file lock: it runs 4 (processes.
    default_concurrency); a dyno on Redis keeps 2 for its memory; WORKER_CONCURRENCY decides when set."""
    from commands.processes import worker_command
    from syncengine.settings import get_settings

    def processes() -> str:
        get_settings.cache_clear()
        cmd = worker_command()
        return cmd[cmd.index("--concurrency") + 1]

    monkeypatch.setenv("SYNCENGINE_HOME", str(tmp_path))
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    try:
        assert processes() == "4"
        monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:5432/test")
        monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
        assert processes() == "2"
        monkeypatch.setenv("WORKER_CONCURRENCY", "3")
        assert processes() == "3"
    finally:
        get_settings.cache_clear()
