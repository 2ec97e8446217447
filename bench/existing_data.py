"""The data a new user already has, overlapping across systems (bench/backfill.py's first sync), seeded
through each simulator's seed control as a data import (no webhooks, month-old stamps), and what each
system holds at a given moment, by key (email, SKU), to find what is missing or there twice.

At full scale: 2,000 Invoice Ninja clients; 2,000 ERPNext Customers, 1,000 of them with an Invoice Ninja
client's email; 1,000 Mautic contacts; 500 Directus contacts; 200 products in Invoice Ninja and 200 ERPNext
Items, 100 of them the same SKUs; 500 open invoices in Invoice Ninja.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from syncengine.vendors.erpnext import ITEM_DEFAULTS

OLD = datetime.now(UTC) - timedelta(days=30)  # the existing data: a month old, before any cursor


@dataclass(frozen=True)
class Scale:
    clients: int = 2000  # Invoice Ninja
    customers: int = 2000  # ERPNext; half share an email with Invoice Ninja
    leads: int = 1000  # Mautic
    directus: int = 500
    products: int = 200  # Invoice Ninja, and as many ERPNext Items (half the same SKUs)
    invoices: int = 500  # open, in Invoice Ninja

    def times(self, factor: float) -> Scale:
        return Scale(*(max(2, round(v * factor)) for v in vars(self).values()))

    @property
    def contacts(self) -> int:
        return self.clients + self.customers - self.customers // 2 + self.leads + self.directus

    @property
    def product_count(self) -> int:
        return self.products + self.products - self.products // 2


def seed(sims: dict[str, Any], scale: Scale) -> None:
    """The existing data, imported through each simulator's seed control (no webhooks, old stamps)."""
    erp_at, unix = OLD.strftime("%Y-%m-%d %H:%M:%S.%f"), int(OLD.timestamp())
    iso, iso_ms = OLD.strftime("%Y-%m-%d %H:%M:%S"), OLD.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    shared = scale.customers // 2
    clients = sims["invoiceninja"].seed({
        "clients": [{"name": f"Client {i}", "created_at": unix, "updated_at": unix,
                     "contacts": [{"first_name": "In", "last_name": str(i), "email": f"in-{i}@example.test"}]}
                    for i in range(scale.clients)],
        "products": [{"product_key": f"SKU-{i}", "notes": f"Product {i}", "price": 10 + i, "created_at": unix,
                      "updated_at": unix} for i in range(scale.products)],
    })["clients"]  # fmt: skip
    sims["invoiceninja"].seed({"invoices": [
        {"client_id": clients[i % len(clients)], "mark_sent": True, "created_at": unix, "updated_at": unix,
         "line_items": [{"product_key": f"SKU-{i % scale.products}", "cost": 10 + i, "quantity": 1}]}
        for i in range(scale.invoices)
    ]})  # fmt: skip
    email = [
        f"in-{i}@example.test" if i < shared else f"erp-{i}@example.test" for i in range(scale.customers)
    ]
    sims["erpnext"].seed({
        "Customer": [{"customer_name": f"Customer {i}", "customer_type": "Company", "email_id": email[i],
                      "creation": erp_at, "modified": erp_at} for i in range(scale.customers)],
        "Item": [{**ITEM_DEFAULTS, "item_code": f"SKU-{i + scale.products // 2}", "item_name": f"Item {i}",
                  "standard_rate": 20 + i, "creation": erp_at, "modified": erp_at}
                 for i in range(scale.products)],
    })  # fmt: skip
    sims["mautic"].seed({"contacts": [
        {"email": f"mautic-{i}@example.test", "firstname": "Lead", "lastname": str(i), "date_added": iso,
         "date_modified": iso} for i in range(scale.leads)
    ]})  # fmt: skip
    sims["directus"].seed({"items": {"contacts": [
        {"email": f"dx-{i}@example.test", "name": f"Hub {i}", "date_created": iso_ms}
        for i in range(scale.directus)
    ]}})  # fmt: skip


# Where each (system, kind) keeps its objects in the simulator, and the key (email, SKU) it holds them by.
HELD = {
    ("invoiceninja", "contact"): ("clients", lambda c: ((c.get("contacts") or [{}])[0]).get("email")),
    ("erpnext", "contact"): ("Customer", lambda d: d.get("email_id")),
    ("mautic", "contact"): ("leads", lambda c: c.get("fields", {}).get("email")),
    ("directus", "contact"): ("contacts", lambda i: i.get("email")),
    ("invoiceninja", "product"): ("products", lambda p: p.get("product_key")),
    ("erpnext", "product"): ("Item", lambda d: d.get("item_code")),
    ("directus", "product"): ("products", lambda i: i.get("sku")),
}


def holdings(sims: dict[str, Any]) -> dict[tuple[str, str], Counter]:
    """(system, kind) -> how many objects each key has there: a count above 1 is a duplicate."""
    found = {}
    for (system, kind), (table, key) in HELD.items():
        rows = list(sims[system].db.get(table, {}).values())
        found[(system, kind)] = Counter(str(key(row) or "").lower() for row in rows)
    return found


def expected(scale: Scale) -> dict[str, int]:
    return {"contact": scale.contacts, "product": scale.product_count}


def check(sims: dict[str, Any], scale: Scale) -> tuple[int, int]:
    """(duplicates, missing) over every system and kind."""
    found = holdings(sims)
    duplicates = sum(n - 1 for held in found.values() for n in held.values() if n > 1)
    missing = sum(max(0, expected(scale)[kind] - len(held)) for (_, kind), held in found.items())
    return duplicates, missing


def missing(sims: dict[str, Any], scale: Scale) -> dict[tuple[str, str], int]:
    """(system, kind) -> how many objects it still lacks; empty once every system holds every object."""
    found = holdings(sims)
    return {key: expected(scale)[key[1]] - len(held) for key, held in found.items()
            if len(held) < expected(scale)[key[1]]}  # fmt: skip
