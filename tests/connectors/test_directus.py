"""The Directus connector over loopback HTTP, with the real store (idempotency keys, marker locks) and Redis
(breakers). Tests of what Directus answers run on both targets (tests.directus_target: the simulator and
the real Directus 11.17); those that need the simulator's powers (faults, its clock) run on it alone."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import requests

from connectors.adapters import adapter_for, from_iso
from connectors.directus import Directus, Refused
from syncengine.breaker import CLOSED, OPEN, Breaker, BreakerPolicy, RedisBreakerStore
from syncengine.canonical import SCHEMA
from syncengine.errors import CircuitOpen, Permanent, Retryable
from syncengine.settings import Settings
from syncengine.shared_state import get_redis
from syncengine.vendors import directus as directus_vendor
from tests.connectors import helpers
from tests.connectors.conftest import DIRECTUS_TEST_TOKEN as TOKEN
from tests.connectors.helpers import Sleeps, run_together
from tests.directus_target import TARGETS, DirectusTarget, serve
from tests.simulators.contract import check, needs_specs

effect = partial(helpers.effect, "directus")


LOST = {"count": 1, "delay": 0.6}  # the effect lands; the answer comes after the client gave up (0.3 s)
SHORT_TIMEOUT = (2.0, 0.3)


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[DirectusTarget]:
    yield from serve(request.param)


@pytest.fixture()
def sim(directus_sim):
    return directus_sim[0]


@pytest.fixture()
def directus(directus_sim) -> Callable[..., Directus]:
    """`directus(**kwargs)`: a connector to the simulator with its own breaker on a per-test name."""
    _, url = directus_sim
    name = f"directus-test-{uuid.uuid4().hex[:8]}"

    def make(token: str = TOKEN, policy: BreakerPolicy | None = None, **kwargs: Any) -> Directus:
        kwargs.setdefault("sleep", Sleeps(real=True))
        store = RedisBreakerStore(get_redis())
        return Directus(url, token, breaker=Breaker(name, store, policy or BreakerPolicy()), **kwargs)

    return make


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def contacts(target: DirectusTarget, n: int, tag: str) -> list[int]:
    """`n` contacts of this test (one batch POST), their ids in order."""
    rows = target.create("contacts", [{"email": f"{tag}-{i}@x.io", "name": f"C{i}"} for i in range(n)])
    return [row["id"] for row in rows]


# --- reading: paging, sweeps, deletes -----------------------------------------------------------------------


def test_lists_every_page_and_the_sweep_returns_only_changes(target):
    tag = target.unique()
    keys = contacts(target, 25, tag)
    conn = target.connector(page_size=10)
    mine = {"filter[email][_starts_with]": tag, "sort": "id"}
    assert [r["id"] for r in conn.items("contacts", mine)] == keys  # 10 + 10 + 5

    time.sleep(0.02)
    since = conn.update_item("contacts", keys[20], {"name": "edited"})["date_updated"]
    time.sleep(0.02)
    conn.update_item("contacts", keys[2], {"name": "changed"})
    late = contacts(target, 2, f"{tag}-late")
    changed = [r["id"] for r in conn.changed_since("contacts", since, page_size=2) if r["id"] in keys + late]
    assert changed == [keys[2], keys[20], *late]  # created or updated since, by id
    strict = [
        r["id"] for r in conn.changed_since("contacts", since, inclusive=False) if r["id"] in keys + late
    ]
    assert strict == [keys[2], *late]


def test_the_sweep_lists_each_item_whole_as_reading_it_alone_answers(target):
    """A sweep's event carries the item as listed and its handler merges it without a read-back
    (syncengine.vendors.directus.listed): the listing's row must be the whole item, as `get_item` has it."""
    tag = target.unique()
    [key] = contacts(target, 1, tag)
    conn = target.connector()
    conn.update_item("contacts", key, {"phone": "+33 1 00 00 00 09", "vat_number": "FR00000000009"})
    since = conn.get_item("contacts", key)["date_created"]
    [row] = [r for r in conn.changed_since("contacts", since) if r["id"] == key]
    assert row == conn.get_item("contacts", key)
    event = directus_vendor.swept("contacts", row)
    assert directus_vendor.listed(event.payload, "contacts") == [row]
    assert directus_vendor.listed(event.payload, "products") == []  # another collection's item is not taken


def test_the_sweep_lists_every_item_once_while_items_are_edited_during_it(target):
    # The first sync edits items while it lists them. Sorted by stamp with offset pages, each edit moved its
    # item to the end and shifted the next one past a page boundary, never listed.
    tag = target.unique()
    keys = contacts(target, 25, tag)
    conn = target.connector(page_size=10)
    since = conn.get_item("contacts", keys[0])["date_created"]
    sweep = (r["id"] for r in conn.changed_since("contacts", since) if r["id"] in keys)
    listed = [next(sweep) for _ in range(12)]
    conn.update_item("contacts", keys[3], {"name": "edited while listed"})  # listed already
    conn.update_item("contacts", keys[11], {"name": "edited while listed"})  # the last one listed
    listed += list(sweep)
    assert listed == keys  # each once, none skipped (the edits come from the next sweep, by the cursor)


def test_deletes_are_read_from_the_activity_log_paged_by_id(target):
    conn = target.connector(page_size=2)
    keys = contacts(target, 6, target.unique())
    product = target.create("products", {"sku": target.unique("sku")})["id"]
    assert conn.delete_item("contacts", keys[1]) is True
    time.sleep(0.02)
    since = conn.update_item("contacts", keys[0], {"name": "edited"})["date_updated"]  # the server's now
    time.sleep(0.02)
    target.call("DELETE", "/items/contacts", json=keys[2:5])  # one batch
    conn.delete_item("products", product)
    assert conn.delete_item("products", product) is False  # gone: not deleted (nor logged) again

    ours = {("contacts", str(k)) for k in keys} | {("products", str(product))}
    deleted = [
        r for r in conn.deleted_since(["contacts", "products"], since) if (r["collection"], r["item"]) in ours
    ]
    assert [(r["collection"], r["item"]) for r in deleted] == [
        *(("contacts", str(k)) for k in keys[2:5]),
        ("products", str(product)),
    ]  # one row per item of the batch, item always a string, the delete before `since` left out
    assert [r["id"] for r in deleted] == sorted(r["id"] for r in deleted)


def test_a_group_is_dated_by_the_revision_that_wrote_its_value_not_by_the_item(target):
    """An item read back carries the stamp of its newest write; its revisions say when each value came. A
    write that sends a value again (our pushes send every field) writes nothing new: the value keeps the
    date of the write that first set it."""
    conn = target.connector()
    adapter = adapter_for("directus", "contact")
    key = target.create("contacts", {"email": f"{target.unique()}@x.io", "phone": "+33 1 00 00 00 01"})["id"]
    time.sleep(0.05)
    phoned = conn.update_item("contacts", key, {"phone": "+33 1 00 00 00 02"})["date_updated"]
    time.sleep(0.05)
    conn.update_item("contacts", key, {"phone": "+33 1 00 00 00 02", "city": "Lyon"})  # the phone again
    time.sleep(0.05)
    item = conn.update_item("contacts", key, {"vat_number": "FR00000000001"})
    change = adapter.to_change(item)
    assert change.remote_updated_at > from_iso(phoned)
    groups = {group: {name: change.fields[name] for name in SCHEMA["contact"][group]}
              for group in ("identity", "address")}  # fmt: skip
    dates = adapter.dates(conn, str(key), groups)
    assert dates["identity"] == from_iso(phoned)  # not the later write that sent the same phone
    assert from_iso(phoned) < dates["address"] < change.remote_updated_at
    assert conn.revisions("contacts", key)[0]["delta"]["vat_number"] == "FR00000000001"  # newest first


def test_many_contacts_are_looked_up_in_one_request_as_each_would_be_alone(target, monkeypatch):
    """The look-up of a batch of creates (tasks.push_batch): one request, the same answers as each alone,
    an email whatever its case, a name for a contact without one, and a look-alike email not taken."""
    conn, adapter = target.connector(), adapter_for("directus", "contact")
    tag = target.unique()
    typed = target.create("contacts", {"email": f"Ann.{tag}@X.io"})  # typed by hand, capitals and all
    longer = target.create("contacts", {"email": f"bob.{tag}@x.io.example"})  # starts like bob's
    named = target.create("contacts", {"name": f"No Mail {tag}"})
    many = [{"email": f"ann.{tag}@x.io"}, {"email": f"bob.{tag}@x.io"}, {"name": f"No Mail {tag}"},
            {"email": f"cy.{tag}@x.io"}]  # fmt: skip
    sent = helpers.requests_sent(monkeypatch, conn)
    found = adapter.find_many(conn, many)
    assert sent == [("GET", "/items/contacts")] * 2  # one for the emails, one for the name
    assert [f and f["id"] for f in found] == [typed["id"], None, named["id"], None]
    assert [adapter.find(conn, fields) for fields in many] == found
    assert longer["id"] not in [f and f["id"] for f in found]


def test_without_read_on_revisions_a_change_keeps_the_items_stamp(target, caplog):
    limited = target.connector(target.limited)
    key = target.create("contacts", {"email": f"{target.unique()}@x.io", "phone": "+33 1 00 00 00 03"})["id"]
    with caplog.at_level(logging.WARNING, logger="connectors.directus"):
        assert adapter_for("directus", "contact").dates(limited, str(key), {"identity": {"phone": "x"}}) == {}
        assert limited.revisions("contacts", key) == []
    assert sum("grant read on directus_revisions" in r.getMessage() for r in caplog.records) <= 1


def test_an_item_that_is_not_there_is_none_and_a_refused_read_is_a_permission(target):
    conn, limited = target.connector(), target.connector(target.limited)
    tag = target.unique()
    key = target.create("contacts", {"email": f"{tag}@x.io"})["id"]
    assert conn.get_item("contacts", key)["email"] == f"{tag}@x.io"
    assert conn.get_item("contacts", 987654321) is None  # Directus: 403 FORBIDDEN for a missing item
    assert limited.get_item("contacts", 987654321) is None
    assert conn.find_item("contacts", "email", f"{tag}@x.io")["id"] == key
    assert conn.find_item("contacts", "email", f"{tag}-no@x.io") is None
    target.create("contacts", {"email": f"Ann.{tag}@X.io"})  # typed by hand, capitals and all
    assert conn.find_item("contacts", "email", f"ann.{tag}@x.io") is None  # `_eq` minds the case
    assert (
        conn.find_item("contacts", "email", f"ann.{tag}@x.io", ignore_case=True)["email"] == f"Ann.{tag}@X.io"
    )
    with pytest.raises(
        Refused, match=r"refused read on directus_files \(uploads are read for OCR\): grant read"
    ):
        limited.file(str(uuid.uuid4()))  # the same 403 as a missing file, told apart
    assert conn.file(str(uuid.uuid4())) is None
    with pytest.raises(
        Refused, match=r"refused read on directus_activity .* grant read on directus_activity"
    ):
        list(limited.deleted_since(["contacts"], "2000-01-01T00:00:00.000Z"))
    with pytest.raises(Refused, match=r"refused read on no_such_collection .*setup --system directus"):
        conn.get_item("no_such_collection", 1)
    assert conn.breaker.state() == CLOSED


# --- writing: what Directus answers must be what we sent ----------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "limited"])
def test_an_update_of_an_item_that_is_gone_is_an_error_not_an_update(target, who):
    """Directus answers the admin's PATCH of a missing item with 204 and no body (a least-privilege token
    gets a 403): either way the update did not happen, and says so."""
    conn = target.connector(target.token if who == "admin" else target.limited)
    key = target.create("contacts", {"email": f"{target.unique()}@x.io"})["id"]
    assert conn.delete_item("contacts", key) is True
    with pytest.raises(Permanent, match=f"contacts {key}: no such item to update") as err:
        conn.update_item("contacts", key, {"name": "late edit"})
    assert err.value.status == 404


def test_a_field_the_collection_lacks_is_an_error_not_a_silent_no_op(target):
    conn, limited = target.connector(), target.connector(target.limited)
    tag = target.unique()
    with pytest.raises(Permanent, match=r"contacts has no field nickname .*setup --system directus") as err:
        conn.insert_item("contacts", {"email": f"{tag}@x.io", "nickname": "Al"}, unique_field="email")
    assert err.value.status == 422  # Directus created the item without it (admin and limited alike)
    key = conn.find_item("contacts", "email", f"{tag}@x.io")["id"]
    with pytest.raises(Permanent, match="contacts has no field nickname"):
        conn.update_item("contacts", key, {"nickname": "Al"})  # the admin's PATCH drops it: 200
    with pytest.raises(Refused, match=r"refused update on contacts .*nickname"):
        limited.update_item("contacts", key, {"nickname": "Al"})  # a limited token's PATCH: 403


def test_values_come_back_as_directus_stores_them(target):
    """SQLite: decimals as JSON numbers, booleans with cast-boolean as true/false, dates as days, JSON as
    given; an invalid date is 400 INVALID_PAYLOAD."""
    conn = target.connector()
    number = target.unique("INV")
    lines = [{"sku": "A", "quantity": 2.0}]
    body = {"number": number, "total": "120.50", "date": "2024-05-01T23:30:00Z", "lines": lines}
    invoice = conn.insert_item("invoices", body, unique_field="number")
    assert (invoice["total"], invoice["date"], invoice["lines"]) == (120.5, "2024-05-01", lines)
    assert invoice["date_updated"] is None and invoice["date_created"].endswith("Z")
    product = conn.insert_item("products", {"sku": target.unique("sku"), "price": 12}, unique_field="sku")
    assert product["archived"] is False and product["price"] == 12
    archived = conn.update_item("products", product["id"], {"archived": True})
    assert archived["archived"] is True and archived["date_updated"] is not None
    with pytest.raises(Permanent, match="Invalid Date format") as err:
        conn.update_item("invoices", invoice["id"], {"due_date": "2024-13-45"})
    assert err.value.status == 400


def test_a_conflict_on_our_unique_field_is_read_back(target):
    """Another writer (outside our lock) created it between our look-up and our create."""
    conn = target.connector()
    ext = target.unique("review")
    existing = target.create("reviews", {"ext_id": ext, "title": "first"})["id"]
    review = {"ext_id": ext, "kind": "payment", "title": "Unmatched payment"}
    assert conn.insert_item("reviews", review)["id"] == existing
    created = conn.create_review(effect("review", review), {**review, "ext_id": target.unique("review")})
    assert created["kind"] == "payment" and created["id"] != existing


def test_client_errors_are_permanent_sent_once_and_never_open_the_breaker(target):
    people = target.scratch_collection("ext_id", "email", unique=("ext_id", "email"))
    target.create(people, {"ext_id": "rec-1", "email": "taken@x.io"})
    conn = target.connector()
    item = {"ext_id": "rec-2", "email": "taken@x.io"}
    with pytest.raises(Permanent) as err:
        conn.create_item(effect("person", item), people, item)  # unique conflict on someone else's field
    assert err.value.status == 400 and "RECORD_NOT_UNIQUE" in str(err.value)
    with pytest.raises(Refused):
        conn.create_item(effect("x"), "no_such_collection", {"ext_id": "rec-3"})
    with pytest.raises(Permanent) as err:
        list(target.connector("wrong-token").items(people))
    assert err.value.status == 401 and "DIRECTUS_TOKEN" in str(err.value)
    assert conn.breaker.state() == CLOSED


# --- the simulator's powers: faults, lost answers, its clock ------------------------------------------------


def test_a_429_waits_as_long_as_retry_after_says(sim, directus):
    sleeps = Sleeps(real=False)
    conn = directus(sleep=sleeps)
    sim.seed({"items": {"contacts": [{"email": "a@x.io"}, {"email": "b@x.io"}]}})
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 4})
    assert len(list(conn.items("contacts"))) == 2
    assert sleeps == [4.0]
    assert [e["status"] for e in sim.requests_log("GET")] == [429, 200]


def test_a_500_storm_opens_the_breaker_and_one_probe_per_cooldown_closes_it(sim, directus):
    policy = BreakerPolicy(threshold=3, window=30, cooldown=1.0)
    key = sim.seed({"items": {"contacts": [{"email": "a@x.io"}]}})["contacts"][0]
    sim.set_faults(fixed_status=500)
    first = directus(policy=policy, sleep=Sleeps(real=False))
    with pytest.raises(Retryable):
        first.get_item("contacts", key)
    assert first.breaker.state() == OPEN
    with pytest.raises(CircuitOpen):
        first.get_item("contacts", key)
    assert sim.count("GET") == 3

    def race() -> tuple[int, list[Any]]:
        time.sleep(policy.cooldown + 0.05)
        workers = [directus(policy=policy, sleep=Sleeps(real=False)) for _ in range(8)]
        before = sim.count("GET")
        results = run_together([lambda w=w: w.get_item("contacts", key) for w in workers])
        return sim.count("GET") - before, results

    sim.set_faults(latency_ms=300)  # the probe is still in flight when the others arrive
    sent, results = race()
    assert sent == 1 and all(isinstance(r, Retryable) for r in results)
    assert first.breaker.state() == OPEN  # the failed probe started a new cool-down

    sim.clear_faults()
    sim.set_faults(latency_ms=300)
    sent, results = race()
    assert sent == 1
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, CircuitOpen) for r in results) == 7
    assert first.breaker.state() == CLOSED
    assert first.get_item("contacts", key)["email"] == "a@x.io"


def test_an_item_create_whose_answer_is_lost_happens_once(sim, directus):
    conn = directus(timeout=SHORT_TIMEOUT)
    item = {"ext_id": "review:9", "title": "Ann"}
    once = effect("create_review", item)
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/items/reviews")
    created = conn.create_item(once, "reviews", item)
    assert len(sim.db["reviews"]) == 1 and created["ext_id"] == "review:9"
    assert sim.requests_log("POST", "/items/reviews")[0].get("lost")
    assert conn.create_item(once, "reviews", item) == created  # finished: nothing sent
    assert conn.create_item(effect("create_review", item), "reviews", item)["id"] == created["id"]  # found
    assert sim.count("POST", "/items/reviews") == 1


def test_the_sweep_pages_on_the_simulators_clock(sim, directus):
    """Many rows with stamps of the past (only a seed can set `date_created`)."""
    stamp = "2024-05-01T10:{:02d}:00.000Z".format
    rows = [{"email": f"c{i}@x.io", "date_created": stamp(i)} for i in range(45)]
    keys = sim.seed({"items": {"contacts": rows}})["contacts"]
    conn = directus(page_size=10)
    assert [r["id"] for r in conn.items("contacts", {"sort": "id"})] == keys
    pages = sim.requests_log("GET", "/items/contacts")
    assert [(p["query"]["limit"], p["query"]["page"]) for p in pages] == [("10", str(n)) for n in range(1, 6)]
    assert [r["id"] for r in conn.changed_since("contacts", stamp(40), page_size=2)] == keys[40:]
    sweep = sim.requests_log("GET", "/items/contacts")[-1]["query"]
    assert sweep["filter[_or][0][date_updated][_gte]"] == stamp(40)


# --- contract and hygiene -----------------------------------------------------------------------------------


@needs_specs
def test_requests_and_answers_follow_the_published_spec(target):
    seen: list[requests.Response] = []
    conn = target.connector()
    conn.session.hooks["response"].append(lambda r, *a, **k: seen.append(r))

    number = target.unique("INV")
    item = conn.create_item(
        effect("c"), "invoices", {"number": number, "total": "120.50"}, unique_field="number"
    )
    conn.update_item("invoices", item["id"], {"status": "paid"})
    conn.get_item("invoices", item["id"])
    conn.create_review(effect("r"), {"ext_id": target.unique("review"), "title": "check me"})
    list(conn.changed_since("invoices", "2100-01-01T00:00:00.000Z", page_size=1))
    list(conn.items("reviews", {"sort": "id", "fields": "*", "filter[ext_id][_eq]": "none"}))
    since = item["date_created"]
    target.call("DELETE", f"/items/invoices/{item['id']}")  # 204: not in the spec
    assert [r["item"] for r in conn.deleted_since(["invoices"], since)][-1:] == [str(item["id"])]

    assert len(seen) >= 8
    for response in seen:
        check("directus", response, target.url)
    # Directus answers a missing item with 403 and DELETE with 204; the spec lists 404 and 200, so those
    # answers are not validated (as in tests/simulators/test_sim_contracts.py).


def test_the_token_never_reaches_the_logs(sim, directus, caplog):
    caplog.set_level(logging.DEBUG)
    conn = directus(timeout=SHORT_TIMEOUT)
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 0})
    conn.create_item(effect("c"), "reviews", {"ext_id": "rec-1"})
    assert conn.get_item("reviews", 404) is None
    with pytest.raises(Permanent):
        conn.create_item(effect("x"), "no_such_collection", {"ext_id": "rec-2"})
    sim.set_faults(lose_response=LOST, match_method="POST", match_path="/items/reviews")
    conn.create_item(effect("c2"), "reviews", {"ext_id": "rec-3"})
    with pytest.raises(Permanent):
        list(directus(token=TOKEN + "-revoked").items("reviews"))

    assert sim.requests_log()[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"  # sent, and used
    assert "/items/reviews -> 200" in caplog.text  # the DEBUG lines were captured
    logged = caplog.text + "".join(str(r.exc_info) for r in caplog.records)
    assert TOKEN not in logged


def test_from_settings_reads_url_and_token(target):
    settings = Settings.from_env({"DIRECTUS_URL": target.url, "DIRECTUS_TOKEN": target.limited})
    store = RedisBreakerStore(get_redis())
    conn = Directus.from_settings(settings, breaker=Breaker(f"directus-test-{uuid.uuid4().hex[:8]}", store))
    assert list(conn.items("contacts", {"filter[email][_eq]": f"{target.unique()}@x.io"})) == []
    with pytest.raises(Permanent, match="DIRECTUS_URL"):
        Directus.from_settings(Settings.from_env({}))
