"""The Invoice Ninja connector against its simulator over loopback HTTP, with the real store (idempotency
keys, marker locks) and Redis (breakers)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import requests

from connectors.adapters import adapter_for
from connectors.invoiceninja import InvoiceNinja
from syncengine.breaker import CLOSED, OPEN, BreakerPolicy
from syncengine.errors import CircuitOpen, Permanent, Retryable
from syncengine.http import RetryPolicy
from syncengine.settings import Settings
from tests.connectors import helpers
from tests.connectors.conftest import INVOICENINJA_TEST_TOKEN as TOKEN
from tests.connectors.helpers import Sleeps, run_together
from tests.simulators.contract import check, needs_specs

effect = partial(helpers.effect, "invoiceninja")
breaker = partial(helpers.breaker, "invoiceninja")


LOST = {"count": 1, "delay": 0.6}  # the effect lands; the answer comes after the client gave up (0.3 s)
SHORT_TIMEOUT = (2.0, 0.3)
SEEDED_AT = 1_700_000_000


@pytest.fixture()
def sim(invoiceninja_sim):
    return invoiceninja_sim[0]


@pytest.fixture()
def ninja(invoiceninja_sim) -> Callable[..., InvoiceNinja]:
    """`ninja(**kwargs)`: a connector to the simulator with its own breaker (same name = shared state)."""
    _, url = invoiceninja_sim
    name = f"invoiceninja-test-{uuid.uuid4().hex[:8]}"

    def make(token: str = TOKEN, policy: BreakerPolicy | None = None, **kwargs: Any) -> InvoiceNinja:
        kwargs.setdefault("sleep", Sleeps(real=True))
        return InvoiceNinja(url, token, breaker=breaker(policy, name), **kwargs)

    return make


def seed_client(sim) -> str:
    return sim.seed({"clients": [{"name": "Acme", "id_number": "REC-A"}]})["clients"][0]


def seed_sent_invoice(sim, client_id: str, cost: float = 100.0) -> str:
    body = {"client_id": client_id, "number": "INV-S", "mark_sent": True,
            "line_items": [{"product_key": "SKU1", "cost": cost, "quantity": 1}]}  # fmt: skip
    return sim.seed({"invoices": [body]})["invoices"][0]


def was_lost(sim, path: str) -> bool:
    """The first create really landed and had its answer dropped (the fault fired)."""
    return bool(sim.requests_log("POST", path)[0].get("lost"))


# --- paging and sweeps ---------------------------------------------------------------------------------


def test_many_clients_are_looked_up_by_one_listing_as_each_would_be_alone(sim, ninja, monkeypatch):
    """The look-up of a batch of creates (tasks.push_batch): Invoice Ninja filters one email at a time, so
    every client is listed once instead: the same answers as each alone (an email whatever its case, on any
    contact, of a deleted client too; the name where there is no email; a look-alike email not taken)."""
    ids = sim.seed({"clients": [
        {"name": "Ann", "contacts": [{"email": "Ann.Typed@X.io"}]},
        {"name": "Bob old", "contacts": [{"email": "other@x.io"}, {"email": "bob@x.io"}]},
        {"name": "Look-alike", "contacts": [{"email": "cy@x.io.example"}]},
        {"name": "No Mail Ltd", "contacts": [{"first_name": "Dee"}]},
    ]})["clients"]  # fmt: skip
    conn, adapter = ninja(), adapter_for("invoiceninja", "contact")
    conn.delete("clients", ids[1])
    many = [{"email": "ann.typed@x.io"}, {"email": "bob@x.io"}, {"name": "No Mail Ltd"},
            {"email": "cy@x.io"}, {"name": "Nobody"}]  # fmt: skip
    sent = helpers.requests_sent(monkeypatch, conn)
    found = adapter.find_many(conn, many)
    assert sent == [("GET", "/api/v1/clients")]
    assert [f and f["id"] for f in found] == [ids[0], ids[1], ids[3], None, None]
    assert [adapter.find(conn, fields) for fields in many] == found


def test_a_client_listing_longer_than_the_look_ups_it_saves_is_not_read_past_its_first_page(
    sim, ninja, monkeypatch
):
    """Five look-ups may cost one page: with more pages than that, or fewer than five look-ups, each client
    is looked up alone."""
    sim.seed({"clients": [{"name": f"C{i}", "contacts": [{"email": f"c{i}@x.io"}]} for i in range(3)]})
    monkeypatch.setattr("connectors.invoiceninja.LOOKUP_PAGE", 2)
    conn, adapter = ninja(), adapter_for("invoiceninja", "contact")
    sent = helpers.requests_sent(monkeypatch, conn)
    assert adapter.find_many(conn, [{"email": f"c{i}@x.io"} for i in range(4)]) is None  # not even a page
    assert sent == []
    assert adapter.find_many(conn, [{"email": f"c{i}@x.io"} for i in range(9)]) is None
    assert sent == [("GET", "/api/v1/clients")]
    found = adapter.find_many(conn, [{"email": f"c{i}@x.io"} for i in range(10)])  # two pages: listed
    assert [f and f["name"] for f in found] == ["C0", "C1", "C2", *[None] * 7]
    assert sent == [("GET", "/api/v1/clients")] * 3


def test_lists_every_page_and_the_sweep_returns_only_changes(sim, ninja):
    clients = [{"name": f"C{i}", "updated_at": SEEDED_AT + i, "created_at": SEEDED_AT} for i in range(45)]
    ids = sim.seed({"clients": clients})["clients"]
    conn = ninja(page_size=10)

    listed = [c["id"] for c in conn.paginate("clients")]
    assert listed == ids
    pages = sim.requests_log("GET", "/api/v1/clients")
    assert [p["query"]["page"] for p in pages] == ["1", "2", "3", "4", "5"]
    assert {p["query"]["per_page"] for p in pages} == {"10"}

    conn.archive("clients", ids[3])  # an old row whose archive is a change (updated_at = now)
    conn.delete("clients", ids[4])
    changed = [c["id"] for c in conn.changed_since("clients", SEEDED_AT + 40, page_size=2)]
    assert changed == [*ids[40:], ids[3], ids[4]]  # oldest change first, archived and deleted included
    sweep = sim.requests_log("GET", "/api/v1/clients")[-1]["query"]
    assert sweep["updated_at"] == str(SEEDED_AT + 40)
    assert sweep["sort"] == "updated_at|asc" and sweep["status"] == "active,archived,deleted"


def test_the_keyed_sweep_read_lists_each_change_once_through_shared_seconds_and_edits(sim, ninja):
    # 25 rows in one second (more than a page), then one per second: ties at a page boundary and a page
    # wholly inside one second.
    stamps = [SEEDED_AT] * 25 + [SEEDED_AT + i for i in range(1, 11)]
    rows = [{"name": f"K{i}", "updated_at": t, "created_at": t} for i, t in enumerate(stamps)]
    ids = sim.seed({"clients": rows})["clients"]
    conn = ninja()
    reader = conn.iter_modified("clients", SEEDED_AT, page_size=10)
    first = [next(reader)["id"] for _ in range(12)]
    conn.update("clients", ids[0], {"city": "Moved"})  # already listed: comes again at the end, as a change
    conn.update("clients", ids[20], {"city": "Moved"})  # not yet listed: no row is shifted out of reach
    rest = [row["id"] for row in reader]

    listed = first + rest
    assert sorted(set(listed)) == sorted(ids)
    assert listed.count(ids[0]) == 2 and len(listed) == len(ids) + 1
    queries = [e["query"] for e in sim.requests_log("GET", "/api/v1/clients")]
    assert {q["sort"] for q in queries} == {"updated_at|asc"} and int(queries[-1]["updated_at"]) > SEEDED_AT


# --- retries, Retry-After and the breaker -----------------------------------------------------------------


def test_a_429_waits_as_long_as_retry_after_says(sim, ninja):
    sleeps = Sleeps(real=False)
    conn = ninja(sleep=sleeps)
    sim.seed({"clients": 2})
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 7})
    assert len(list(conn.paginate("clients"))) == 2
    assert sleeps == [7.0]
    assert [e["status"] for e in sim.requests_log("GET")] == [429, 200]


def test_a_500_storm_opens_the_breaker_and_one_probe_per_cooldown_closes_it(sim, ninja):
    policy = BreakerPolicy(threshold=3, window=30, cooldown=1.0)
    client_id = seed_client(sim)
    sim.set_faults(fixed_status=500)
    first = ninja(policy=policy, sleep=Sleeps(real=False))
    with pytest.raises(Retryable):
        first.get_client(client_id)  # three attempts, three failures: open
    assert first.breaker.state() == OPEN
    with pytest.raises(CircuitOpen):
        first.get_client(client_id)
    assert sim.count("GET") == 3

    def race() -> list[Any]:
        """8 workers, each with its own connector (and breaker object), at once after the cool-down."""
        time.sleep(policy.cooldown + 0.05)
        workers = [ninja(policy=policy, sleep=Sleeps(real=False)) for _ in range(8)]
        before = sim.count("GET")
        results = run_together([lambda w=w: w.get_client(client_id) for w in workers])
        return [sim.count("GET") - before, results]

    sim.set_faults(latency_ms=300)  # the probe is still in flight when the others arrive
    sent, results = race()  # still failing: the one probe fails and the breaker opens again
    assert sent == 1
    assert all(isinstance(r, Retryable) for r in results) and first.breaker.state() == OPEN

    sim.clear_faults()
    sim.set_faults(latency_ms=300)
    sent, results = race()
    assert sent == 1
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, CircuitOpen) for r in results) == 7
    assert first.breaker.state() == CLOSED
    assert first.get_client(client_id)["id"] == client_id


# --- creates whose answer is lost --------------------------------------------------------------------------


def test_a_client_create_whose_answer_is_lost_happens_once(sim, ninja):
    conn = ninja(timeout=SHORT_TIMEOUT)
    body = {"name": "Acme", "id_number": "REC-42", "contacts": [{"first_name": "Ann", "email": "ann@x.io"}]}
    once = effect("create_client", body)
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/v1/clients")
    created = conn.create_client(once, body)
    assert len(sim.db["clients"]) == 1 and created["id_number"] == "REC-42"
    assert conn.create_client(once, body) == created  # the finished key answers; nothing is sent
    assert conn.create_client(effect("create_client", body), body)["id"] == created["id"]  # found
    assert sim.count("POST", "/api/v1/clients") == 1 and was_lost(sim, "/api/v1/clients")
    assert conn.find_client("email", "ANN@x.io")["id"] == created["id"]


def test_an_invoice_create_whose_answer_is_lost_happens_once(sim, ninja):
    conn = ninja(timeout=SHORT_TIMEOUT)
    client_id = seed_client(sim)
    body = {"client_id": client_id, "number": "INV-7", "date": "2024-05-01",
            "line_items": [{"product_key": "SKU1", "cost": 100, "quantity": 2, "type_id": "1"}]}  # fmt: skip
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/v1/invoices")
    created = conn.create_invoice(effect("create_invoice", body), body, mark_sent=True)
    assert len(sim.db["invoices"]) == 1 and sim.count("POST", "/api/v1/invoices") == 1
    assert was_lost(sim, "/api/v1/invoices")
    assert created["number"] == "INV-7" and created["status_id"] == "2" and created["amount"] == 200.0
    assert sim.requests_log("POST", "/api/v1/invoices")[0]["query"] == {"mark_sent": "true"}


def test_a_payment_whose_answer_is_lost_is_repeated_with_its_key_and_read_back(sim, ninja):
    conn = ninja(timeout=SHORT_TIMEOUT)
    client_id = seed_client(sim)
    invoice_id = seed_sent_invoice(sim, client_id)
    body = {
        "client_id": client_id,
        "amount": 60.0,
        "date": "2024-05-02",
        "type_id": "1",
        "transaction_reference": "REV-TX-1",
        "invoices": [{"invoice_id": invoice_id, "amount": 60.0}],
    }
    pay = effect("create_payment", body)
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/v1/payments")
    payment = conn.create_payment(pay, body)

    assert len(sim.db["payments"]) == 1
    assert payment["id"] in sim.db["payments"] and payment["transaction_reference"] == "REV-TX-1"
    posts = sim.requests_log("POST", "/api/v1/payments")
    keys = {p["json"]["idempotency_key"] for p in posts}
    assert len(posts) >= 2 and len(keys) == 1 and payment["idempotency_key"] in keys  # repeated, same key
    assert posts[0].get("lost") and posts[-1]["status"] == 422
    assert sim.db["invoices"][invoice_id]["balance"] == 40.0


def test_a_payment_retried_by_the_task_reads_back_before_sending(sim, ninja):
    conn = ninja(timeout=SHORT_TIMEOUT)
    conn.retry_policy = RetryPolicy(attempts=1)  # the lost answer escapes to the task
    client_id = seed_client(sim)
    invoice_id = seed_sent_invoice(sim, client_id)
    body = {"client_id": client_id, "amount": 100.0, "transaction_reference": "REV-TX-2",
            "invoices": [{"invoice_id": invoice_id, "amount": 100.0}]}  # fmt: skip
    pay = effect("create_payment", body)
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/v1/payments")
    with pytest.raises(Retryable):
        conn.create_payment(pay, body)
    payment = conn.create_payment(pay, body)  # recovering: read back first, nothing sent
    assert sim.count("POST", "/api/v1/payments") == 1 and len(sim.db["payments"]) == 1
    assert was_lost(sim, "/api/v1/payments")
    assert payment["id"] in sim.db["payments"]
    assert sim.db["invoices"][invoice_id]["status_id"] == "4"


# --- permanent failures ------------------------------------------------------------------------------------


def test_a_bad_token_is_permanent_and_never_opens_the_breaker(sim, ninja):
    conn = ninja(token="wrong-token", policy=BreakerPolicy(threshold=2, window=30, cooldown=30))
    for _ in range(4):
        with pytest.raises(Permanent) as err:
            list(conn.paginate("clients"))
        assert err.value.status == 403 and "INVOICENINJA_TOKEN" in str(err.value)
    assert sim.count("GET") == 4 and conn.breaker.state() == CLOSED


def test_validation_and_bad_requests_are_permanent_and_sent_once(sim, ninja):
    conn = ninja()
    body = {"client_id": "nobody", "number": "INV-9"}
    failing = effect("create_invoice", body)
    with pytest.raises(Permanent) as err:
        conn.create_invoice(failing, body)
    assert err.value.status == 422 and "client_id" in err.value.body["errors"]
    assert sim.count("POST", "/api/v1/invoices") == 1
    with pytest.raises(Permanent, match="failed before"):
        conn.create_invoice(failing, body)  # the key remembers the failure: nothing sent again
    assert sim.count("POST", "/api/v1/invoices") == 1

    with pytest.raises(Permanent) as err:
        conn.request("GET", "/api/v1/invoices/AAAA/not_an_action")  # a GET, and still not repeated
    assert err.value.status == 400 and sim.count("GET", "/api/v1/invoices/AAAA") == 1
    assert conn.get_invoice("NOSUCHID") is None  # 404 on a read by id is "absent"


# --- contract and hygiene ----------------------------------------------------------------------------------


@needs_specs
def test_requests_and_answers_follow_the_published_spec(invoiceninja_sim, ninja):
    sim, url = invoiceninja_sim
    sim.duplicate_payment_window = 0.0
    seen: list[requests.Response] = []
    conn = ninja()
    conn.session.hooks["response"].append(lambda r, *a, **k: seen.append(r))

    contacts = [{"first_name": "Ann", "email": "a@x.io"}]
    client = conn.create_client(effect("c"), {"name": "Acme", "id_number": "REC-1", "country_id": 840,
                                              "contacts": contacts})  # fmt: skip
    # the spec's PUT schema repeats the create's required fields (UpdateClientRequest does not require them)
    conn.update_client(client["id"], {"name": "Acme Ltd", "country_id": 840, "contacts": contacts})
    assert conn.get_client(client["id"])["name"] == "Acme Ltd"
    product = conn.create_product(effect("p"), {"product_key": "SKU1", "notes": "desc", "price": 100})
    line = {"product_key": product["product_key"], "notes": "n", "cost": 100, "quantity": 1, "type_id": "1"}
    invoice = conn.create_invoice(effect("i"), {"client_id": client["id"], "number": "INV-1",
                                                "date": "2024-05-01", "line_items": [line]})  # fmt: skip
    conn.update_invoice(invoice["id"], {"po_number": "PO-1"}, mark_sent=True)
    conn.mark_sent(invoice["id"])
    payment = {
        "client_id": client["id"],
        "amount": 50.0,
        "date": "2024-05-02",
        "type_id": "1",
        "transaction_reference": "REV-1",
        "invoices": [{"invoice_id": invoice["id"], "amount": "50.00"}],
    }
    conn.create_payment(effect("pay"), payment)
    vendor = conn.create_vendor(effect("v"), {"name": "Supplies", "number": "V-1"})
    conn.create_expense(effect("e"), {"vendor_id": vendor["id"], "amount": 42.5, "date": "2024-05-03",
                                      "number": "EXP-1", "public_notes": "paper"})  # fmt: skip
    for kind in ("clients", "invoices", "payments", "expenses", "vendors", "products"):
        list(conn.changed_since(kind, 0, page_size=1))
    conn.archive("clients", client["id"])
    conn.restore("clients", client["id"])
    conn.delete("products", product["id"])

    assert len(seen) > 20
    for response in seen:
        # the spec types the payments/expenses/vendors bulk body as an array of integers (see
        # tests/simulators/test_sim_contracts.py): only the answer is checked there
        bulk_quirk = response.request.path_url.split("?")[0] in {
            f"/api/v1/{k}/bulk" for k in ("payments", "expenses", "vendors")
        }
        check("invoiceninja", response, url, request=not bulk_quirk)


def test_the_token_never_reaches_the_logs(sim, ninja, caplog):
    caplog.set_level(logging.DEBUG)
    conn = ninja(timeout=SHORT_TIMEOUT)
    client_id = seed_client(sim)
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 0})
    conn.get_client(client_id)
    with pytest.raises(Permanent):
        conn.create_invoice(effect("i"), {"client_id": "nobody", "number": "X-1"})
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/api/v1/clients")
    conn.create_client(effect("c"), {"name": "B", "id_number": "REC-B"})
    with pytest.raises(Permanent):
        list(ninja(token=TOKEN + "-revoked").paginate("clients"))

    assert sim.requests_log()[0]["headers"]["X-Api-Token"] == TOKEN  # it was sent, and used
    assert "/api/v1/clients -> 200" in caplog.text  # the DEBUG lines were captured
    logged = caplog.text + "".join(str(r.exc_info) for r in caplog.records)
    assert TOKEN not in logged


def test_from_settings_reads_url_and_token(invoiceninja_sim):
    _, url = invoiceninja_sim
    settings = Settings.from_env({"INVOICENINJA_URL": url + "/", "INVOICENINJA_TOKEN": TOKEN})
    conn = InvoiceNinja.from_settings(settings, breaker=breaker())
    assert conn.base_url == url and TOKEN not in repr(vars(conn))
    assert list(conn.paginate("clients")) == []
    with pytest.raises(Permanent, match="INVOICENINJA_URL"):
        InvoiceNinja.from_settings(Settings.from_env({}))
