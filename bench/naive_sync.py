"""The yardstick of bench/backfill.py: the sync a user would write instead of syncengine. Plain `requests`,
no store, no queue, no idempotency: list contacts (by email) and products (by SKU) in every system, then
create in each system what it lacks, one request per object.

    python bench/naive_sync.py '{"invoiceninja": "http://127.0.0.1:8001", ...}'

Runs in a process of its own, as syncengine's workers do, so neither shares the simulators' interpreter.
Every answer must be 2xx; anything else ends the run with the request named (bench.checked).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.checked import ok

PAGE = 500
Row = dict[str, Any]


class Client:
    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base, self.session = base, requests.Session()
        self.session.headers.update(headers)

    def get(self, path: str, **params: Any) -> Any:
        return ok(self.session.get(self.base + path, params=params, timeout=30)).json()

    def post(self, path: str, body: Row) -> Any:
        return ok(self.session.post(self.base + path, json=body, timeout=30)).json()


def _pages(fetch: Callable[[int], list[Row]]) -> list[Row]:
    rows, page = [], 0
    while batch := fetch(page):
        rows += batch
        if len(batch) < PAGE:
            break
        page += 1
    return rows


class InvoiceNinja(Client):
    def listing(self, kind: str) -> list[Row]:
        return _pages(lambda p: self.get(f"/api/v1/{kind}", per_page=PAGE, page=p + 1)["data"])

    def contacts(self) -> dict[str, Row]:
        found = {}
        for client in self.listing("clients"):
            email = ((client.get("contacts") or [{}])[0]).get("email") or ""
            found[email.lower()] = {"name": client["name"], "email": email}
        return found

    def products(self) -> dict[str, Row]:
        rows = self.listing("products")
        return {
            p["product_key"]: {"sku": p["product_key"], "name": p["notes"], "price": p["price"]} for p in rows
        }

    def create_contact(self, r: Row) -> None:
        self.post("/api/v1/clients", {"name": r["name"], "contacts": [{"email": r["email"]}]})

    def create_product(self, r: Row) -> None:
        self.post("/api/v1/products", {"product_key": r["sku"], "notes": r["name"], "price": r["price"]})


class ERPNext(Client):
    def listing(self, doctype: str, *fields: str) -> list[Row]:
        path, columns = f"/api/v2/document/{doctype}", json.dumps(fields)
        return _pages(lambda p: self.get(path, fields=columns, limit=PAGE, start=p * PAGE)["data"])

    def contacts(self) -> dict[str, Row]:
        rows = self.listing("Customer", "customer_name", "email_id")
        return {d["email_id"].lower(): {"name": d["customer_name"], "email": d["email_id"]}
                for d in rows if d.get("email_id")}  # fmt: skip

    def products(self) -> dict[str, Row]:
        rows = self.listing("Item", "item_code", "item_name", "standard_rate")
        return {d["item_code"]: {"sku": d["item_code"], "name": d["item_name"], "price": d["standard_rate"]}
                for d in rows}  # fmt: skip

    def create_contact(self, r: Row) -> None:
        body = {"customer_name": r["name"], "customer_type": "Company", "email_id": r["email"]}
        self.post("/api/v2/document/Customer", body)

    def create_product(self, r: Row) -> None:
        body = {"item_code": r["sku"], "item_name": r["name"], "standard_rate": r["price"],
                "item_group": "Products", "stock_uom": "Nos", "is_stock_item": 0}  # fmt: skip
        self.post("/api/v2/document/Item", body)


class Mautic(Client):
    def contacts(self) -> dict[str, Row]:
        pages = _pages(
            lambda p: list(self.get("/api/contacts", limit=PAGE, start=p * PAGE)["contacts"].values())
        )
        found = {}
        for row in pages:
            fields = row["fields"]["all"]
            name = " ".join(filter(None, (fields.get("firstname"), fields.get("lastname"))))
            found[fields["email"].lower()] = {"name": name, "email": fields["email"]}
        return found

    def create_contact(self, r: Row) -> None:
        first, _, last = r["name"].partition(" ")
        self.post("/api/contacts/new", {"email": r["email"], "firstname": first, "lastname": last})


class Directus(Client):
    def listing(self, collection: str) -> list[Row]:
        return _pages(lambda p: self.get(f"/items/{collection}", limit=PAGE, page=p + 1)["data"])

    def contacts(self) -> dict[str, Row]:
        rows = self.listing("contacts")
        return {i["email"].lower(): {"name": i["name"], "email": i["email"]} for i in rows if i.get("email")}

    def products(self) -> dict[str, Row]:
        return {
            i["sku"]: {"sku": i["sku"], "name": i["name"], "price": i["price"]}
            for i in self.listing("products")
        }

    def create_contact(self, r: Row) -> None:
        self.post("/items/contacts", {"email": r["email"], "name": r["name"]})

    def create_product(self, r: Row) -> None:
        self.post("/items/products", {"sku": r["sku"], "name": r["name"], "price": r["price"]})


SYSTEMS: dict[str, tuple[type[Client], dict[str, str]]] = {
    "invoiceninja": (InvoiceNinja, {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}),
    "erpnext": (ERPNext, {"Authorization": "token erp-api-key:erp-api-secret"}),
    "mautic": (Mautic, {"Authorization": "Basic YWRtaW46c2ltLW1hdXRpYy1wYXNz"}),  # admin:sim-mautic-pass
    "directus": (Directus, {"Authorization": "Bearer directus-static-token"}),
}


def sync(urls: dict[str, str]) -> dict[str, int]:
    """List everything, then create what each system lacks; returns the creates per system."""
    systems = {name: kind(urls[name], headers) for name, (kind, headers) in SYSTEMS.items()}
    created = dict.fromkeys(systems, 0)
    for kind in ("contacts", "products"):
        holding = {name: getattr(api, kind)() for name, api in systems.items() if hasattr(api, kind)}
        every: dict[str, Row] = {}
        for held in holding.values():
            for key, row in held.items():
                every.setdefault(key, row)
        for name, held in holding.items():
            for key in every.keys() - held.keys():
                getattr(systems[name], f"create_{kind[:-1]}")(every[key])
                created[name] += 1
    return created


if __name__ == "__main__":
    print(json.dumps(sync(json.loads(sys.argv[1]))))
