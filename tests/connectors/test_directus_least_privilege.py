"""What the engine does with a least-privilege Directus token (CRUD on its collections, nothing else), and
with an item holding a bad value, on the simulator and on the real Directus 11.17 (tests.directus_target).

The delete sweep needs read on `directus_activity` and the OCR intake read on `directus_files`: without
them, the manual sweep says so in one line and exits 1, the beat's sweep logs that line and goes on, and an
upload is a failure to fix (never "the file is gone")."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

import tasks.document_intake as intake
import tasks.products  # noqa: F401 - registers the Directus products handlers
from connectors.directus import Refused
from syncengine.db import session_scope
from syncengine.errors import Permanent
from syncengine.models import Link, Record
from syncengine.settings import get_settings
from tasks.dispatch import HANDLERS, HandlerContext
from tests import directus_target as targets
from tests.directus_target import TARGETS, DirectusTarget
from tests.support import ROOT


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[DirectusTarget]:
    yield from targets.serve(request.param)


@pytest.fixture()
def engine_on(target, monkeypatch):
    """`engine_on(token)`: the engine's settings and connector point at the target with that token."""

    def point(token: str) -> None:
        from connectors import connector_for

        monkeypatch.setenv("DIRECTUS_URL", target.url)
        monkeypatch.setenv("DIRECTUS_TOKEN", token)
        get_settings.cache_clear()
        connector_for.cache_clear()

    yield point
    get_settings.cache_clear()
    from connectors import connector_for

    connector_for.cache_clear()


def test_the_manual_delete_sweep_names_the_permission_and_exits_1(target):
    env = dict(os.environ, DIRECTUS_URL=target.url, DIRECTUS_TOKEN=target.limited)
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "sweep", "directus", "deleted"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("directus deleted: directus refused read on directus_activity")
    assert "grant read on directus_activity to the policy of DIRECTUS_TOKEN's user" in line
    assert "Traceback" not in done.stderr and target.limited not in done.stderr


def test_the_beat_sweep_logs_the_one_line_and_goes_on(target, engine_on, caplog):
    from tasks.reconcile import sweep_task

    engine_on(target.limited)
    caplog.set_level(logging.ERROR, logger="tasks.reconcile")
    outcome = sweep_task.run("directus", "deleted")
    assert "refused read on directus_activity" in outcome["failed"]
    [record] = [r for r in caplog.records if r.name == "tasks.reconcile"]
    assert record.getMessage().startswith(
        "sweep directus deleted: directus refused read on directus_activity"
    )
    assert record.exc_info is None  # one line, no traceback; the task returned, so the beat goes on


def test_an_upload_the_token_may_not_read_is_a_permission_failure_not_a_gone_file(target, engine_on, caplog):
    answer = target.call(
        "POST", "/files", files={"file": ("scan.pdf", b"%PDF-1.7 receipt", "application/pdf")}
    )
    key = answer.json()["data"]["id"]
    handler = HANDLERS[("directus", "files.upload")]
    event = SimpleNamespace(payload={"event": "files.upload", "key": key, "collection": "directus_files"})
    engine_on(target.limited)
    with pytest.raises(Refused, match=r"refused read on directus_files \(uploads are read for OCR\)"):
        handler(HandlerContext(None, event))  # type: ignore[arg-type]
    engine_on(target.token)
    caplog.set_level(logging.INFO, logger=intake.__name__)
    gone = SimpleNamespace(payload={"event": "files.upload", "key": str(uuid.uuid4())})
    handler(HandlerContext(None, gone))  # type: ignore[arg-type]
    assert "is gone: nothing to read" in caplog.text


def test_an_item_corrected_after_its_event_is_read_as_it_is_now(target, engine_on):
    """The create's payload held a bad price; the item was corrected since: the event merges the item as
    it is now, instead of failing on the payload on every attempt."""
    engine_on(target.token)
    sku = target.unique("sku")
    item = target.create("products", {"sku": sku, "name": "Widget", "price": "abc"})  # SQLite keeps it
    event = SimpleNamespace(
        source="directus", event_type="products.items.create",
        payload={"event": "products.items.create", "payload": {"sku": sku, "name": "Widget", "price": "abc"},
                 "key": item["id"], "collection": "products"},
    )  # fmt: skip
    handler = HANDLERS[("directus", "products.items.create")]
    with (
        session_scope() as session,
        pytest.raises(Permanent, match=r"products \d+: price 'abc' is not a valid"),
    ):
        handler(HandlerContext(session, event))  # type: ignore[arg-type]
    target.call("PATCH", f"/items/products/{item['id']}", json={"price": 12.5})
    try:
        with session_scope() as session:
            handler(HandlerContext(session, event))  # type: ignore[arg-type]
        with session_scope() as session:
            record = session.execute(_linked(item["id"])).scalar_one()
            assert (record.data["sku"], record.data["price"]) == (sku, 12.5)
    finally:  # the hub of this session is shared: leave no link to a real item behind
        with session_scope() as session:
            for record in session.execute(_linked(item["id"])).scalars():
                session.delete(record)


def _linked(key: int) -> Any:
    return (
        select(Record)
        .join(Link, Link.record_id == Record.id)
        .where(Link.system == "directus", Link.kind == "product", Link.external_id == str(key))
    )
