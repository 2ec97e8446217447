"""The Mautic connector against its simulator over loopback HTTP, with the real store (idempotency keys,
marker locks) and Redis (breakers)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select, update

from connectors.adapters import adapter_for
from connectors.mautic import EmailMaybeSent, MauticConnector, email_effect, forget_tokens
from syncengine.breaker import CLOSED, OPEN, BreakerPolicy
from syncengine.db import session_scope
from syncengine.errors import Ambiguous, CircuitOpen, Permanent, Retryable
from syncengine.models import IdempotencyKey
from tests.connectors import helpers
from tests.connectors.conftest import MAUTIC_TEST_CLIENT_ID as CLIENT_ID
from tests.connectors.conftest import MAUTIC_TEST_CLIENT_SECRET as CLIENT_SECRET
from tests.connectors.conftest import MAUTIC_TEST_PASSWORD as PASSWORD
from tests.connectors.conftest import MAUTIC_TEST_USER as USER
from tests.connectors.helpers import Sleeps, count, run_concurrently

effect = partial(helpers.effect, "mautic")
breaker = partial(helpers.breaker, "mautic")


LOST = {"count": 1, "delay": 0.6}  # the effect lands; the answer would come after the client gave up
SHORT_TIMEOUT = (2.0, 0.3)


def key_row(key: str) -> IdempotencyKey:
    with session_scope() as session:
        row = session.execute(select(IdempotencyKey).where(IdempotencyKey.key == key)).scalar_one()
        session.expunge(row)
        return row


@pytest.fixture()
def sim(mautic_sim):
    forget_tokens()
    return mautic_sim[0]


@pytest.fixture()
def mautic(mautic_sim) -> Callable[..., MauticConnector]:
    """`mautic(**kwargs)`: a Basic-auth connector (OAuth2 with oauth=True), own breaker, recording sleep."""

    def make(oauth: bool = False, **kwargs: Any) -> MauticConnector:
        kwargs.setdefault("breaker", breaker())
        kwargs.setdefault("sleep", Sleeps())
        if oauth:
            kwargs = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **kwargs}
        else:
            kwargs = {"username": USER, "password": PASSWORD, **kwargs}
        return MauticConnector(mautic_sim[1], **kwargs)

    return make


def seed_contacts(sim, n: int, modified: Callable[[int], str] | None = None) -> list[int]:
    contacts = []
    for i in range(1, n + 1):
        contact = {"email": f"c{i}@example.test", "firstname": f"C{i}"}
        if modified:
            contact.update(date_added=modified(i), date_modified=modified(i))
        contacts.append(contact)
    return sim.seed({"contacts": contacts})["contacts"]


def email_of(contact: dict[str, Any]) -> str:
    return contact["fields"]["all"]["email"]


# --- listing -----------------------------------------------------------------------------------------


def test_lists_three_pages_of_the_id_keyed_envelope_in_order(sim, mautic):
    ids = seed_contacts(sim, 7)
    rows = list(mautic().iter_contacts(page_size=3))
    assert [r["id"] for r in rows] == ids
    assert [int(e["query"]["start"]) for e in sim.requests_log("GET", "/api/contacts")] == [0, 3, 6]
    assert sim.requests_log("GET")[0]["query"]["limit"] == "3"


def test_sweep_returns_only_changed_contacts_and_skips_none_when_one_changes_meanwhile(sim, mautic):
    seed_contacts(sim, 8, lambda i: f"2024-0{4 if i <= 3 else 5}-0{i} 09:00:00")  # c1-c3 old, c4-c8 new
    conn = mautic()
    sweep = conn.iter_modified_contacts("2024-05-01 00:00:00", page_size=2)
    seen = [email_of(next(sweep)), email_of(next(sweep))]
    first = conn.find_contact("c4@example.test")
    conn.update_contact(first["id"], {"lastname": "Changed"})  # edited mid-sweep
    seen += [email_of(c) for c in sweep]
    assert seen == [f"c{i}@example.test" for i in range(4, 9)]
    query = sim.requests_log("GET", "/api/contacts")[0]["query"]
    assert query["where[0][col]"] == "date_modified" and query["where[0][expr]"] == "gte"
    assert query["where[0][val]"] == "2024-05-01 00:00:00"
    assert query["where[1][col]"] == "id" and query["where[1][expr]"] == "gt"
    sweeps = [e for e in sim.requests_log("GET", "/api/contacts") if e["query"].get("where[1][col]") == "id"]
    assert len(sweeps) == 3


def test_deleted_contacts_come_from_the_audit_log_by_id(sim, mautic):
    conn = mautic()
    ids = [conn.create_contact({"email": f"d{i}@example.test"})["id"] for i in range(5)]
    conn.delete_contact(ids[0])  # before `since`: not listed
    sim.clock.advance(60)
    since = sim.db_now()
    conn.update_contact(ids[1], {"lastname": "Edited"})  # an audit row, but no delete
    for contact_id in ids[2:]:
        conn.delete_contact(contact_id)

    deleted = list(conn.iter_deleted_contacts(since, page_size=2))
    assert [row["object_id"] for row in deleted] == ids[2:]
    assert {row["action"] for row in deleted} == {"delete"}
    pages = sim.requests_log("GET", "/api/stats/audit_log")
    assert len(pages) == 2  # a full page of 2, then a short one: keyed on the audit row id
    assert pages[1]["query"]["where[4][col]"] == "id" and pages[1]["query"]["where[4][val]"] == str(
        deleted[1]["id"]
    )
    assert pages[0]["query"]["where[3][col]"] == "date_added" and pages[0]["query"]["where[3][val]"] == since


def test_a_contacts_group_is_dated_by_the_audited_save_that_set_its_value(sim, mautic):
    """A contact's payload carries the dateModified of its newest save; the audit log (Lead::$changes of
    each save) says when each value came, so a phone set before a later city edit keeps its own date."""
    conn = mautic()
    adapter = adapter_for("mautic", "contact")
    contact_id = conn.create_contact({"email": "dated@example.test", "phone": "+33 1 00 00 00 01"})["id"]
    sim.clock.advance(60)
    phoned = adapter.to_change(conn.update_contact(contact_id, {"phone": "+33 1 00 00 00 02"}))
    sim.clock.advance(60)
    conn.update_contact(contact_id, {"phone": "+33 1 00 00 00 02", "city": "Brest"})  # the phone again
    sim.clock.advance(60)
    later = adapter.to_change(conn.update_contact(contact_id, {"city": "Lyon"}))
    groups = {"identity": {n: later.fields[n] for n in ("email", "phone")}, "address": {"city": "Lyon"}}
    dates = adapter.dates(conn, str(contact_id), groups)
    assert dates == {"identity": phoned.remote_updated_at, "address": later.remote_updated_at}


def test_without_the_audit_log_a_contact_change_keeps_its_stamp(sim, mautic, caplog):
    """The audit log is served to administrators only: another API user dates by dateModified, warned."""
    user = f"clerk-{uuid.uuid4().hex[:6]}"
    sim.seed({"users": {user: "clerk-pass"}, "roles": {user: ["lead:leads:full"]}})
    clerk = mautic(username=user, password="clerk-pass")
    contact_id = clerk.create_contact({"email": f"{user}@example.test", "phone": "+33 1 00 00 00 09"})["id"]
    adapter = adapter_for("mautic", "contact")
    with caplog.at_level(logging.WARNING, logger="connectors.mautic"):
        assert adapter.dates(clerk, str(contact_id), {"identity": {"phone": "x"}}) == {}
    assert clerk.contact_changes(contact_id) == []


# --- retries, breaker, classification ----------------------------------------------------------------


def test_429_retry_after_is_waited_out(sim, mautic):
    sleeps = Sleeps()
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 2})
    assert list(mautic(sleep=sleeps).iter_contacts()) == []
    assert sleeps == [2.0]
    assert count(sim, "GET", "/api/contacts") == 2


def test_500_storm_opens_the_breaker_then_one_probe_among_8_workers_closes_it(sim, mautic):
    policy = BreakerPolicy(threshold=3, window=30, cooldown=0.5)
    name = f"mautic-test-{uuid.uuid4().hex}"
    (contact_id,) = seed_contacts(sim, 1)
    sim.set_faults(fixed_status=500)
    conn = mautic(breaker=breaker(policy, name))
    with pytest.raises(Retryable):
        conn.get_contact(contact_id)
    with pytest.raises(CircuitOpen):
        conn.get_contact(contact_id)
    assert conn.breaker.state() == OPEN and count(sim, "GET") == 3

    sim.clear_faults()
    sim.set_faults(latency_ms=300)  # the probe is still in flight while the others try
    time.sleep(0.6)
    before = len(sim.requests_log())
    outcomes = run_concurrently(8, lambda: mautic(breaker=breaker(policy, name)).get_contact(contact_id))
    assert sorted(outcomes) == ["CircuitOpen"] * 7 + ["ok"]
    assert len(sim.requests_log()) - before == 1
    assert conn.breaker.state() == CLOSED
    assert conn.get_contact(contact_id)["id"] == contact_id


def test_invalid_contact_is_permanent_and_not_retried(sim, mautic):
    eff = effect("create_contact")
    with pytest.raises(Permanent) as caught:
        mautic().ensure_contact(eff, {"email": "not-an-email@", "firstname": "X"})
    assert caught.value.status == 400 and "A valid email is required" in str(caught.value)
    assert count(sim, "POST") == 1
    assert key_row(eff.key).phase == "failed"


# --- contacts, segments, companies, hooks ---------------------------------------------------------------


def test_contact_create_answers_201_new_and_200_matched_both_as_the_contact(sim, mautic):
    conn = mautic()
    new = conn.create_contact({"email": "ann@example.test", "firstname": "Ann"})
    matched = conn.create_contact({"email": "ANN@example.test", "lastname": "Lee"})
    assert new["id"] == matched["id"] and email_of(matched).lower() == "ann@example.test"
    assert [e["status"] for e in sim.requests_log("POST")] == [201, 200]
    assert conn.find_contact("ann@example.test")["fields"]["all"]["lastname"] == "Lee"
    assert conn.delete_contact(new["id"]) is True and conn.delete_contact(new["id"]) is False


def test_contact_create_with_a_lost_answer_is_not_duplicated(sim, mautic):
    conn = mautic()
    conn.timeout = SHORT_TIMEOUT
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/contacts/new")
    eff, fields = effect("create_contact"), {"email": "bob@example.test", "firstname": "Bob"}
    # The answer is lost; the marker look-up right after finds what the create made.
    contact = conn.ensure_contact(eff, fields)
    assert email_of(contact) == "bob@example.test"
    assert len(sim.db["leads"]) == 1 and count(sim, "POST") == 1  # found by email, not posted again
    assert key_row(eff.key).phase == "finished"


def test_segments_companies_and_hooks(sim, mautic):
    sim.seed({"segments": [{"name": "Customers"}]})
    conn = mautic()
    contact = conn.create_contact({"email": "cy@example.test"})
    (segment,) = list(conn.iter_segments())
    conn.add_to_segment(segment["id"], contact["id"])
    conn.add_to_segment(segment["id"], contact["id"])
    assert len(sim.db["segment_leads"]) == 1
    company = conn.create_company({"companyname": "Acme"})
    assert conn.create_company({"companyname": "acme"})["id"] == company["id"]
    conn.add_company_contact(company["id"], contact["id"])
    assert [c["id"] for c in conn.iter_companies()] == [company["id"]]
    url, triggers = "http://127.0.0.1:9/webhooks/mautic", ["mautic.lead_post_save_new"]
    hook = conn.ensure_hook(name="syncengine", url=url, triggers=triggers, secret="hook-secret")
    again = conn.ensure_hook(name="syncengine", url=url, triggers=[*triggers, "mautic.form_on_submit"])
    assert again["id"] == hook["id"] and len(again["triggers"]) == 2
    assert [h["id"] for h in conn.iter_hooks()] == [hook["id"]]
    assert conn.delete_hook(hook["id"]) is True


# --- transactional email, at most once ----------------------------------------------------------------


@pytest.fixture()
def mail(sim) -> tuple[int, int]:
    """(email template id, contact id) with a fresh business reference per test."""
    seeded = sim.seed({"emails": [{"name": "Invoice"}], "contacts": [{"email": "pay@example.test"}]})
    sim.log.clear()
    return seeded["emails"][0], seeded["contacts"][0]


def test_email_is_sent_once_when_the_task_runs_twice(sim, mautic, mail):
    ref = f"invoice:{uuid.uuid4().hex}"
    first = mautic().send_email(*mail, ref=ref, tokens={"{invoice_number}": "INV-7"})
    second = mautic().send_email(*mail, ref=ref, tokens={"{invoice_number}": "INV-7"})
    assert first == second == {"success": True, "email_id": mail[0], "contact_id": mail[1]}
    assert len(sim.sent_emails()) == 1 and count(sim, "POST") == 1
    assert sim.sent_emails()[0]["tokens"] == {"{invoice_number}": "INV-7"}


def test_email_with_a_lost_answer_is_not_sent_again_and_fails_with_the_reason(sim, mautic, mail, caplog):
    conn = mautic()
    conn.timeout = SHORT_TIMEOUT
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/emails/")
    ref = f"receipt:{uuid.uuid4().hex}"
    with pytest.raises(EmailMaybeSent):
        conn.send_email(*mail, ref=ref)
    with pytest.raises(Permanent):
        conn.send_email(*mail, ref=ref)  # the retried task
    assert len(sim.sent_emails()) == 1 and count(sim, "POST") == 1
    row = key_row(email_effect(*mail, ref).key)
    assert row.phase == "failed" and "may have been sent" in row.response["error"]
    assert any(r.levelno == logging.ERROR and "may have been sent" in r.getMessage() for r in caplog.records)
    resent = conn.send_email(*mail, ref=ref, resend=1)  # the operator's deliberate resend
    assert resent["success"] and len(sim.sent_emails()) == 2


def test_email_is_not_sent_again_after_the_worker_died_after_the_call(sim, mautic, mail, monkeypatch):
    ref = f"receipt:{uuid.uuid4().hex}"
    real = MauticConnector._send_email

    def dies_after_the_call(self: MauticConnector, *args: Any) -> Any:
        real(self, *args)
        raise SystemExit("worker killed")  # not an Exception: no clean-up runs, as with SIGKILL

    monkeypatch.setattr(MauticConnector, "_send_email", dies_after_the_call)
    with pytest.raises(SystemExit):
        mautic().send_email(*mail, ref=ref)
    monkeypatch.undo()
    key = email_effect(*mail, ref).key
    with session_scope() as session:  # the dead worker's lease runs out
        session.execute(update(IdempotencyKey).where(IdempotencyKey.key == key).values(locked_at=None))
    with pytest.raises(EmailMaybeSent):
        mautic().send_email(*mail, ref=ref)
    assert len(sim.sent_emails()) == 1 and key_row(key).phase == "failed"


def test_email_refused_before_sending_is_sent_by_the_retry(sim, mautic, mail):
    ref = f"invoice:{uuid.uuid4().hex}"
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 30})  # too long to wait inline
    with pytest.raises(Retryable) as caught:
        mautic().send_email(*mail, ref=ref)
    assert not isinstance(caught.value, Ambiguous) and caught.value.retry_after == 30
    assert mautic().send_email(*mail, ref=ref)["success"]
    assert len(sim.sent_emails()) == 1 and key_row(email_effect(*mail, ref).key).phase == "finished"


def test_email_mautic_refuses_is_permanent(sim, mautic):
    seeded = sim.seed({"emails": [{"name": "Invoice"}], "contacts": [{"firstname": "NoEmail"}]})
    with pytest.raises(Permanent, match="refused"):
        mautic().send_email(seeded["emails"][0], seeded["contacts"][0], ref=f"x:{uuid.uuid4().hex}")
    assert sim.sent_emails() == []


# --- OAuth2 ----------------------------------------------------------------------------------------------


def test_oauth_token_is_cached_and_fetched_again_after_a_401(sim, mautic):
    mautic(oauth=True).create_contact({"email": "o@example.test"})
    assert len(list(mautic(oauth=True).iter_contacts())) == 1  # a new instance reuses the token
    assert count(sim, "POST", "/oauth/v2/token") == 1
    sim.clock.advance(3700)  # Mautic says the token expired; our cache does not know yet
    assert len(list(mautic(oauth=True).iter_contacts())) == 1
    assert count(sim, "POST", "/oauth/v2/token") == 2
    assert [e["status"] for e in sim.requests_log("GET", "/api/contacts")] == [200, 401, 200]


# --- secrets --------------------------------------------------------------------------------------------


def test_no_secret_in_logs_or_errors(sim, mautic, mail, raw_logs):
    basic, oauth = mautic(), mautic(oauth=True)
    basic.ensure_contact(effect("create_contact"), {"email": "s@example.test"})
    list(oauth.iter_contacts(page_size=1))
    oauth.send_email(*mail, ref=f"x:{uuid.uuid4().hex}")
    sim.clock.advance(3700)
    list(oauth.iter_contacts())  # a refresh after a 401
    errors = []
    for call in (
        lambda: basic.get_contact(999),
        lambda: mautic(password="x" + PASSWORD).get_contact(1),
        lambda: mautic(client_secret="x" + CLIENT_SECRET, client_id="other").get_contact(1),
    ):
        with pytest.raises(Exception) as caught:
            call()
        errors.append(f"{caught.value!s} {caught.value!r}")
    tokens = list(sim.db["oauth_tokens"])
    assert len(tokens) == 2 and any("mautic GET" in r.getMessage() for r in raw_logs.records)
    for text in (raw_logs.text, *errors, repr(basic.__dict__), repr(oauth.__dict__)):
        for secret in (PASSWORD, CLIENT_SECRET, *tokens):
            assert secret not in text
