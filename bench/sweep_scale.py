"""Simulators with many records for sweeps to list (tests/tasks/test_reconcile_scale.py, bench/reconcile.py):
each seeded in bulk through its seed control (a data import: no webhooks, old stamps kept), one edit at a
time made through the vendor's API, and the production connector pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.directus import Directus
from connectors.erpnext import ERPNextConnector
from connectors.invoiceninja import InvoiceNinja
from connectors.mautic import MauticConnector
from connectors.revolut import RevolutConnector
from simulators import REGISTRY

OLD = datetime.now(UTC) - timedelta(days=3)
LIST_PATHS = {
    ("invoiceninja", "contact"): "/api/v1/clients",
    ("erpnext", "contact"): "/api/v2/document/Customer",
    ("mautic", "contact"): "/api/contacts",
    ("directus", "contact"): "/items/contacts",
    ("revolut", "payment"): "/api/1.0/transactions",
}
ACCESS_TOKEN = "oa_sand_scale-test"


class SeededToken:
    """Revolut's token provider for a grant seeded in the simulator (no consent flow in this test)."""

    def access_token(self) -> str:
        return ACCESS_TOKEN

    def on_unauthorized(self, stale_token: str) -> str | None:
        return None


@dataclass
class Vendor:
    sim: Any
    url: str
    connector: Any


def erp_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


def seeded(system: str, sim: Any, n: int) -> list[Any]:
    """n records changed three days ago, by the vendor's own seeding; returns their ids."""
    email = [f"scale-{i}@example.test" for i in range(n)]
    if system == "invoiceninja":
        stamp = int(OLD.timestamp())
        rows = [{"name": f"Scale {i}", "contacts": [{"email": email[i]}], "created_at": stamp,
                 "updated_at": stamp} for i in range(n)]  # fmt: skip
        return sim.seed({"clients": rows})["clients"]
    if system == "erpnext":
        rows = [{"customer_name": f"Scale {i}", "customer_type": "Company", "email_id": email[i],
                 "creation": erp_time(OLD), "modified": erp_time(OLD)} for i in range(n)]  # fmt: skip
        return sim.seed({"Customer": rows})["Customer"]
    if system == "mautic":
        at = OLD.strftime("%Y-%m-%d %H:%M:%S")
        rows = [
            {"email": email[i], "firstname": "Scale", "date_added": at, "date_modified": at} for i in range(n)
        ]
        return sim.seed({"contacts": rows})["contacts"]
    if system == "directus":
        at = OLD.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        rows = [{"email": email[i], "name": f"Scale {i}", "date_created": at} for i in range(n)]
        return sim.seed({"items": {"contacts": rows}})["contacts"]
    rows = [
        {"created_at": OLD.strftime("%Y-%m-%dT%H:%M:%S.000000Z"), "legs": [{"amount": 5}]} for _ in range(n)
    ]
    sim.seed({"tokens": [{"access_token": ACCESS_TOKEN}]})
    return sim.seed({"transactions": rows})["transactions"]


def change(system: str, vendor: Vendor, record_id: Any, n: int) -> Any:
    """One edit through the vendor's API, as a person would make it; returns the id a sweep lists."""
    c = vendor.connector
    if system == "invoiceninja":
        c.update("clients", record_id, {"city": f"Lyon {n}"})
    elif system == "erpnext":
        c.update("Customer", record_id, {"customer_details": f"edit {n}"})
    elif system == "mautic":
        c.update_contact(int(record_id), {"city": f"Lyon {n}"})
    elif system == "directus":
        c.update_item("contacts", record_id, {"city": f"Lyon {n}"})
    else:  # a new incoming payment: Revolut transactions never change but by state
        return vendor.sim.seed({"transactions": [{"legs": [{"amount": 10 + n}]}]})["transactions"][0]
    return record_id


def connector_for(system: str, url: str) -> Any:
    if system == "invoiceninja":
        return InvoiceNinja(url, "TOKEN")
    if system == "erpnext":
        return ERPNextConnector(url, api_key="erp-api-key", api_secret="erp-api-secret")
    if system == "mautic":
        return MauticConnector(url, username="admin", password="sim-mautic-pass")
    if system == "directus":
        return Directus(url, "directus-static-token")
    return RevolutConnector(f"{url}/api/1.0", tokens=SeededToken())


@contextmanager
def vendors() -> Iterator[dict[tuple[str, str], Vendor]]:
    """A fresh simulator per (system, kind) of LIST_PATHS, served on loopback, with its connector."""
    out, servers = {}, []
    try:
        for system, kind in LIST_PATHS:
            sim = REGISTRY[system]()
            server = sim.serve()
            servers.append(server)
            out[(system, kind)] = Vendor(sim, server.url, connector_for(system, server.url))
        yield out
    finally:
        for server in servers:
            server.stop()


def list_requests(vendor: Vendor, path: str) -> int:
    return len(vendor.sim.requests_log("GET", path=path))
