"""F5 under duress: a payment announced 8 times while the pool process booking it is SIGKILLed at each
recovery point that matters (after the Invoice Ninja payment call, after the ERPNext Payment Entry call and
after the Mautic receipt send, each before its key is committed). The killed task is requeued (acks_late,
reject_on_worker_lost), waits out the effect lease (3 s in the flow deployment) and recovers: still one
Invoice Ninja payment, one Payment Entry, one Directus item and one receipt email."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.flows.conftest import CRASH_DIR, CRASH_POINTS
from tests.flows.test_payments import counts, deliver, directus_rows, in_payments, seed_invoice
from tests.support import wait_until


def fired() -> set[str]:
    return {point for point in CRASH_POINTS if (CRASH_DIR / point).exists()}


@pytest.mark.faults  # fault suite item 5: `pytest -m faults` runs it with tests/faults
def test_a_payment_announced_8_times_survives_a_worker_killed_at_each_recovery_point(deployment):
    deployment.settle()
    CRASH_DIR.mkdir(parents=True, exist_ok=True)  # arms the crash points (each fires once)
    for point in CRASH_POINTS:
        (CRASH_DIR / point).unlink(missing_ok=True)
    seeded = seed_invoice(deployment, 420.0)
    started = time.monotonic()
    tx = deployment.sims["revolut"].receive_payment(420.0, reference=seeded["number"], payer=seeded["name"])
    created = {"event": "TransactionCreated", "timestamp": "2026-01-01T00:00:00Z", "data": tx}
    changed = {"event": "TransactionStateChanged", "timestamp": "2026-01-01T00:00:01Z",
               "data": {"id": tx["id"], "old_state": "pending", "new_state": "completed"}}  # fmt: skip
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda p: deliver(deployment, p), [created] * 5 + [changed] * 3))
    assert all(s in (200, 202) for s in statuses), statuses

    wait_until(lambda: fired() == set(CRASH_POINTS), timeout=45, interval=0.2)
    wait_until(lambda: counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1), timeout=45)
    deployment.settle()
    assert time.monotonic() - started < 60

    assert counts(deployment, tx["id"], seeded["email"]) == (1, 1, 1, 1)
    assert fired() == set(CRASH_POINTS)  # every kill really happened
    assert deployment.worker.popen.poll() is None  # only pool processes died
    (payment,) = in_payments(deployment, tx["id"])
    assert float(payment["amount"]) == 420.0
    invoice = deployment.sims["invoiceninja"].db["invoices"][seeded["invoice_id"]]
    assert invoice["balance"] == 0 and invoice["status_id"] == "4"
    assert deployment.sims["erpnext"].db["Sales Invoice"][seeded["sinv"]]["status"] == "Paid"
    assert directus_rows(deployment, "reviews", tx["id"]) == []  # recovered, not handed to a human
