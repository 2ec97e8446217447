"""The same change announced 8 times on 3 worker processes: 5 identical deliveries at once (Invoice Ninja
retrying a webhook) and 3 more at once that re-announce the same client with later stamps (new event ids:
each is claimed and merged by a different worker). Each system gets the client once, created by one call.
(The payment flow's version, 8 announcements with a worker killed at each recovery point, is
tests/flows/test_payment_crash.py.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.faults.conftest import WORKER_PROCESSES, Stack, client_body, post_client, unique
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with
from tests.flows.test_sweeps import mautic_contacts_with
from tests.support import wait_until


def creates(sim, path_part: str, email: str) -> int:
    """POST requests that created something carrying this email (the effect, as the vendor saw it)."""
    return sum(1 for r in sim.requests_log("POST") if path_part in r["path"] and email in str(r["json"]))


def test_the_same_change_8_times_5_at_once_on_3_workers_one_effect_per_system(stack: Stack):
    assert WORKER_PROCESSES == 3
    stack.settle()
    tag = f"dup-{unique()}"
    email, body = client_body(tag)
    again = [client_body(tag, updated_at=1732000000 + n)[1] for n in (1, 2, 3)]
    with ThreadPoolExecutor(max_workers=5) as pool:
        first = list(pool.map(lambda b: post_client(stack, b).status_code, [body] * 5))
    assert sorted(first) == [200, 200, 200, 200, 202]  # stored once; four duplicates
    with ThreadPoolExecutor(max_workers=3) as pool:
        later = list(pool.map(lambda b: post_client(stack, b, "update_client").status_code, again))
    assert later == [202, 202, 202]

    sims = stack.sims
    erp, directus, mautic = sims["erpnext"], sims["directus"], sims["mautic"]
    wait_until(lambda: customers_with(erp, email) and directus_contacts_with(directus, email)
               and mautic_contacts_with(mautic, email), timeout=60)  # fmt: skip
    stack.settle()
    assert len(customers_with(sims["erpnext"], email)) == 1
    assert len(directus_contacts_with(sims["directus"], email)) == 1
    assert len(mautic_contacts_with(sims["mautic"], email)) == 1
    assert len(clients_with(sims["invoiceninja"], email)) == 0  # the source is not written back
    assert creates(sims["erpnext"], "/Customer", email) == 1
    assert creates(sims["directus"], "/items/contacts", email) == 1
    assert creates(sims["mautic"], "/api/contacts/new", email) == 1
