"""F7: a submitted ERPNext Purchase Invoice paid once to the supplier through Revolut (tasks.transfers),
against the Revolut, ERPNext and Directus simulators on loopback, with the session's real store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from connectors.directus import Directus
from connectors.erpnext import ERPNextConnector
from connectors.revolut import RevolutConnector
from connectors.revolut_rate import RateLimiter
from syncengine.breaker import Breaker, RedisBreakerStore
from syncengine.db import session_scope
from syncengine.errors import Ambiguous
from syncengine.idempotency import vendor_key
from syncengine.models import Record
from syncengine.settings import get_settings
from syncengine.shared_state import get_redis
from tasks import transfers
from tasks.dispatch import HandlerContext
from tests.revolut_keys import SimTokens

IBAN = "FR1420041010050500013M02606"
KEY, SECRET = "erp-f7-key-2c9d", "erp-f7-secret-8e41b7a0d3"
DIRECTUS_TOKEN = "dx-f7-token-41c7be90"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def world(monkeypatch) -> Iterator[SimpleNamespace]:
    """The three simulators, connectors to them behind `connector_for`, and F7's settings (off)."""
    from simulators.directus import DirectusSimulator
    from simulators.erpnext import ERPNextSimulator
    from simulators.revolut import RevolutSimulator

    revolut = RevolutSimulator(rate_limit_per_minute=None)
    erpnext = ERPNextSimulator(api_key=KEY, api_secret=SECRET, custom_fields={"Supplier": ["custom_iban"]})
    directus = DirectusSimulator(token=DIRECTUS_TOKEN)
    erpnext.seed({"Item": [{"item_code": "SKU1", "item_group": "Products", "stock_uom": "Nos"}]})
    with revolut.serve() as rv, erpnext.serve() as erp, directus.serve() as dx:
        account = next(a["id"] for a in revolut.db["accounts"].values() if a["currency"] == "EUR")
        connectors = {
            "revolut": RevolutConnector(
                f"{rv.url}/api/1.0",
                tokens=SimTokens(revolut),
                breaker=Breaker(unique("revolut-f7"), RedisBreakerStore(get_redis())),
                limiter=RateLimiter(unique("test:ratelimit:revolut-f7"), redis=get_redis()),
                sleep=lambda _s: None,
            ),
            "erpnext": ERPNextConnector(erp.url, api_key=KEY, api_secret=SECRET, sleep=lambda _s: None),
            "directus": Directus(dx.url, DIRECTUS_TOKEN, sleep=lambda _s: None),
        }
        monkeypatch.setattr(transfers, "connector_for", connectors.__getitem__)
        monkeypatch.setenv("REVOLUT_URL", f"{rv.url}/api/1.0")
        monkeypatch.setenv("REVOLUT_ACCOUNT_ID", account)
        monkeypatch.delenv("SYNCENGINE_PAY_SUPPLIERS", raising=False)
        get_settings.cache_clear()
        try:
            yield SimpleNamespace(
                revolut=revolut, erpnext=erpnext, directus=directus, account=account, conn=connectors
            )
        finally:
            get_settings.cache_clear()


def enable(monkeypatch) -> None:
    monkeypatch.setenv("SYNCENGINE_PAY_SUPPLIERS", "true")
    get_settings.cache_clear()


def invoice(
    w: SimpleNamespace, *, iban: str | None = IBAN, amount: float = 42.5, currency: str = "EUR"
) -> str:
    """A submitted Purchase Invoice of a new supplier (unique names: the store outlives the simulators)."""
    supplier = unique("Paper Co")
    w.erpnext.seed({"Supplier": [{"supplier_name": supplier, **({"custom_iban": iban} if iban else {})}]})
    name = unique("PINV")
    w.erpnext.create(
        "Purchase Invoice",
        {"name": name, "supplier": supplier, "bill_no": f"B-{name[-4:]}", "currency": currency,
         "items": [{"item_code": "SKU1", "qty": 1, "rate": amount}]},
    )  # fmt: skip
    w.erpnext.act_on("Purchase Invoice", name, "submit")
    return name


def pays(w: SimpleNamespace) -> list[dict[str, Any]]:
    return w.revolut.requests_log("POST", "/api/1.0/pay")


def reviews(w: SimpleNamespace, name: str) -> list[dict[str, Any]]:
    items = w.directus.db.get("reviews", {}).values()
    return [r for r in items if str(r.get("ext_id", "")).startswith(f"transfer:{name}:")]


def test_off_by_default_nothing_is_sent(world):
    name = invoice(world)
    assert transfers.pay(name) == "disabled"
    ctx = HandlerContext(None, SimpleNamespace(payload={"name": name}))  # type: ignore[arg-type]
    transfers.on_purchase_invoice(ctx)
    assert ctx.deferred == []
    assert pays(world) == [] and world.revolut.count("POST", "/api/1.0/counterparty") == 0


def test_on_pays_the_outstanding_amount_once(world, monkeypatch):
    enable(monkeypatch)
    name = invoice(world, amount=42.5)
    ctx = HandlerContext(None, SimpleNamespace(payload={"name": name}))  # type: ignore[arg-type]
    transfers.on_purchase_invoice(ctx)
    assert [s.args for s in ctx.deferred] == [(name,)]

    assert transfers.pay(name) == "sent"
    assert transfers.pay(name) == "sent"  # the same trigger again: stored answers, no second /pay
    [sent] = pays(world)
    body = sent["json"]
    [cpty] = world.revolut.db["counterparties"].values()
    assert cpty["accounts"][0]["iban"] == IBAN
    assert body["request_id"] == vendor_key(f"transfer:revolut:{name}")
    assert body["receiver"] == {"counterparty_id": cpty["id"]} and body["account_id"] == world.account
    assert body["amount"] == 42.5 and body["currency"] == "EUR" and body["reference"] == f"B-{name[-4:]}"
    [tx] = [t for t in world.revolut.db["transactions"].values() if t.get("request_id") == body["request_id"]]
    assert world.revolut.count("POST", "/api/1.0/counterparty") == 1

    with session_scope() as session:
        record = session.execute(
            select(Record).where(Record.kind == "transfer", Record.match_key == tx["id"])
        ).scalar_one()
        assert record.data["amount"] == 42.5 and record.data["request_id"] == body["request_id"]
    [item] = world.directus.db["transfers"].values()
    assert item["ext_id"] == f"transfer:{name}" and item["bank_transaction_id"] == tx["id"]
    # ERPNext is not marked paid by us: the bank line books it.
    assert not world.erpnext.db["Payment Entry"]
    assert reviews(world, name) == []


def test_a_lost_answer_is_read_back_not_paid_again(world, monkeypatch):
    enable(monkeypatch)
    name = invoice(world, amount=19.99)
    world.conn["revolut"].timeout = (2.0, 0.3)
    world.revolut.set_faults(lose_response={"count": 1, "delay": 0.6}, match_path="/api/1.0/pay")
    with pytest.raises(Ambiguous):
        transfers.pay(name)
    world.revolut.clear_faults()
    assert transfers.pay(name) == "sent"  # recovering: read back by request_id first
    request_id = vendor_key(f"transfer:revolut:{name}")
    assert len(pays(world)) == 1
    assert (
        len([t for t in world.revolut.db["transactions"].values() if t.get("request_id") == request_id]) == 1
    )
    lookups = world.revolut.requests_log("GET", "/api/1.0/transactions")
    assert lookups and lookups[-1]["query"]["request_id"] == request_id
    assert len(world.directus.db["transfers"]) == 1


def test_no_iban_is_a_review_and_no_money_moves(world, monkeypatch):
    enable(monkeypatch)
    name = invoice(world, iban=None)
    assert transfers.pay(name) == "review"
    assert transfers.pay(name) == "review"
    [review] = reviews(world, name)
    assert "no IBAN" in review["details"]
    assert pays(world) == [] and world.revolut.count("POST", "/api/1.0/counterparty") == 0


def test_wrong_currency_is_a_review_and_no_money_moves(world, monkeypatch):
    enable(monkeypatch)
    name = invoice(world, currency="USD")
    assert transfers.pay(name) == "review"
    [review] = reviews(world, name)
    assert "USD" in review["details"] and pays(world) == []


def test_a_draft_or_cancelled_invoice_is_not_deferred(world, monkeypatch):
    enable(monkeypatch)
    name = invoice(world)
    world.erpnext.act_on("Purchase Invoice", name, "cancel")
    with session_scope() as session:
        ctx = HandlerContext(session, SimpleNamespace(payload={"name": name}))  # type: ignore[arg-type]
        transfers.on_purchase_invoice(ctx)
    assert ctx.deferred == []
    assert transfers.pay(name) == "not due" and pays(world) == [] and reviews(world, name) == []
