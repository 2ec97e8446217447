"""ERPNext answering 500 for "2 minutes" on the accelerated clock (the breaker's 30 s cool-down is 3 s in
this deployment, so 2 minutes are 12 s) while new clients keep arriving from Invoice Ninja: ERPNext's
breaker opens, exactly one probe goes through per cool-down, Mautic and Directus get every client during
the outage, and ERPNext gets each one exactly once after it recovers.

The breaker's state is read from Redis while it happens: each value of `opened_at` starts a cool-down,
and the simulator's request log (same host clock) says what reached ERPNext in it."""

from __future__ import annotations

import itertools
import time

from tests.faults.conftest import BREAKER_COOLDOWN, Stack, client_body, post_client, unique
from tests.flows.test_contacts import clients_with, customers_with, directus_contacts_with
from tests.flows.test_sweeps import mautic_contacts_with
from tests.support import wait_until

OUTAGE = 4 * BREAKER_COOLDOWN  # "2 minutes" of 30 s cool-downs
CLIENTS = 6


def test_erpnext_500s_open_its_breaker_one_probe_per_cooldown_others_unaffected(stack: Stack):
    stack.settle()
    erp, sims = stack.sims["erpnext"], stack.sims
    state = stack.redis.client()
    opened_key = "syncengine:breaker:erpnext:opened_at"
    assert state.get(opened_key) is None  # closed before the outage

    erp.set_faults(fixed_status=500)
    started = time.time()
    emails = []
    for n in range(CLIENTS):
        email, body = client_body(f"breaker-{unique()}-{n}")
        assert post_client(stack, body).status_code == 202
        emails.append(email)
    openings: list[float] = []
    deadline = time.monotonic() + OUTAGE
    while time.monotonic() < deadline:  # bounded: the outage lasts OUTAGE seconds
        value = state.get(opened_key)
        if value is not None and (not openings or float(value) != openings[-1]):
            openings.append(float(value))
        time.sleep(0.02)
    # Other services were not held up by ERPNext's outage.
    for email in emails:
        assert len(mautic_contacts_with(sims["mautic"], email)) == 1
        assert len(directus_contacts_with(sims["directus"], email)) == 1
        assert len(clients_with(sims["invoiceninja"], email)) == 0  # the source is not written back
    assert not any(customers_with(erp, e) for e in emails)
    erp.clear_faults()
    ended = time.time()

    wait_until(lambda: all(customers_with(erp, e) for e in emails), timeout=60, interval=0.3)
    stack.settle()
    assert state.get(opened_key) is None  # the successful probe closed it

    during = sorted(e["time"] for e in erp.requests_log() if started <= e["time"] < ended)
    # A failure landing while open (a request already on the wire when it opened) restarts the cool-down;
    # that may only happen in the first cool-down, before any probe.
    cooldowns: list[float] = []
    for opened in openings:
        if cooldowns and opened < cooldowns[-1] + BREAKER_COOLDOWN:
            assert opened < openings[0] + BREAKER_COOLDOWN, (openings, during)
            cooldowns[-1] = opened
        else:
            cooldowns.append(opened)
    assert len(cooldowns) >= 3, openings  # it opened, and failed probes re-opened it
    for opened, reopened in itertools.pairwise(cooldowns):
        probes = [t for t in during if opened < t < reopened]
        assert len(probes) == 1 and probes[0] >= opened + BREAKER_COOLDOWN, (opened, reopened, probes)
    for email in emails:
        assert len(customers_with(erp, email)) == 1
        assert len(mautic_contacts_with(sims["mautic"], email)) == 1
        assert len(directus_contacts_with(sims["directus"], email)) == 1
