"""Each external effect once: retried, duplicated, or killed between the call and the commit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import pytest
from sqlalchemy import select

from syncengine.db import session_scope
from syncengine.errors import Permanent, Retryable
from syncengine.idempotency import Effect, once, vendor_key
from syncengine.models import IdempotencyKey, Link, Record
from tests.support import ROOT


def effect(request=None) -> Effect:
    return Effect(f"create_client:test:{uuid.uuid4().hex}", "test", "create_client", request or {"n": 1})


def test_vendor_key_is_stable_and_short():
    assert vendor_key("pay:revolut:1:v1") == vendor_key("pay:revolut:1:v1")
    assert vendor_key("pay:revolut:1:v1") != vendor_key("pay:revolut:1:v2")
    assert len(vendor_key("x" * 500)) == 36


def test_second_run_returns_the_stored_response_without_calling():
    calls = []
    e = effect()
    first = once(e, lambda attempt: calls.append(attempt) or {"id": "c1"})
    second = once(e, lambda attempt: calls.append(attempt) or {"id": "c2"})
    assert first == second == {"id": "c1"}
    assert len(calls) == 1 and calls[0].recovering is False


def test_finish_bookkeeping_commits_with_the_key():
    e = effect()

    def link(session, response):
        record = Record(kind="contact", data={"email": "a@b.c"})
        session.add(record)
        session.flush()
        session.add(Link(record_id=record.id, system="test", kind="contact", external_id=response["id"]))

    once(e, lambda attempt: {"id": f"ext-{e.key}"}, on_finish=link)
    with session_scope() as s:
        assert s.execute(select(Link).where(Link.external_id == f"ext-{e.key}")).scalar_one()
        assert (
            s.execute(select(IdempotencyKey.phase).where(IdempotencyKey.key == e.key)).scalar_one()
            == "finished"
        )


def test_a_failed_call_leaves_the_next_try_recovering():
    e = effect()
    with pytest.raises(TimeoutError):
        once(e, lambda attempt: (_ for _ in ()).throw(TimeoutError("read timeout after sending")))
    seen = []
    once(e, lambda attempt: seen.append(attempt.recovering) or {"id": "x"})
    assert seen == [True]


def test_permanent_failure_is_remembered():
    e = effect()
    with pytest.raises(Permanent):
        once(e, lambda attempt: (_ for _ in ()).throw(Permanent("422 invalid", 422)))
    with pytest.raises(Permanent, match="failed before"):
        once(e, lambda attempt: {"id": "never"})


def test_same_key_with_another_request_is_refused():
    e = effect({"amount": 10})
    once(e, lambda attempt: {"ok": True})
    with pytest.raises(Permanent, match="different request"):
        once(Effect(e.key, e.system, e.operation, {"amount": 11}), lambda attempt: {"ok": True})


def test_concurrent_duplicates_call_once():
    e = effect()
    calls, results, errors = [], [], []
    gate = threading.Event()

    def slow_call(attempt):
        calls.append(1)
        gate.wait(5)
        return {"id": "one"}

    def run():
        try:
            results.append(once(e, slow_call))
        except Retryable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    threading.Event().wait(0.5)
    gate.set()
    for t in threads:
        t.join(10)
    assert len(calls) == 1
    assert results == [{"id": "one"}]
    assert len(errors) == 4 and all(err.retry_after > 0 for err in errors)
    assert once(e, slow_call) == {"id": "one"}


def test_worker_killed_between_call_and_commit_recovers_with_the_vendor_key(tmp_path):
    """A process makes the call (records it in a file, as a vendor would) and is SIGKILLed before it can
    commit; the next attempt sees it is recovering and reuses the same vendor key."""
    e = effect()
    vendor_log = tmp_path / "vendor.log"
    script = f"""
import os, signal
from syncengine.idempotency import Effect, once
def call(attempt):
    with open({str(vendor_log)!r}, "a") as f:
        f.write(attempt.vendor_key + "\\n")
    os.kill(os.getpid(), signal.SIGKILL)
once(Effect({e.key!r}, "test", "create_client", {{"n": 1}}), call)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=dict(os.environ), timeout=60)
    assert proc.returncode == -9
    with session_scope() as s:
        row = s.execute(select(IdempotencyKey).where(IdempotencyKey.key == e.key)).scalar_one()
        assert row.phase == "called"
        row.locked_at = None  # the lease of the dead worker has run out

    def vendor(attempt):
        keys = vendor_log.read_text().split()
        # A vendor with idempotency keys answers the original object for a key it has seen.
        assert attempt.recovering and attempt.vendor_key in keys
        return {"id": "created-once"}

    assert once(e, vendor) == {"id": "created-once"}
    assert len(vendor_log.read_text().split()) == 1
