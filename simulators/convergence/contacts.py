"""A person's contact in the four systems that carry contacts, edited as a user edits it there (through each
simulator's own API, never the engine's connectors) and read back from the simulator's store.

Only three fields vary, one per canonical field group, each carried by a different set of systems: `phone`
(identity: all four), `city` (address: not ERPNext) and `vat` (tax: not Mautic). Names and the email never
change, so a group's value is decided by its one varying field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

SYSTEMS = ("invoiceninja", "erpnext", "mautic", "directus")
FIELDS = ("phone", "city", "vat")
CARRIES: dict[str, tuple[str, ...]] = {
    "invoiceninja": ("phone", "city", "vat"),
    "erpnext": ("phone", "vat"),
    "mautic": ("phone", "city"),
    "directus": ("phone", "city", "vat"),
}
AUTH: dict[str, dict[str, Any]] = {
    "invoiceninja": {"headers": {"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}},
    "erpnext": {"headers": {"Authorization": "token erp-api-key:erp-api-secret"}},
    "mautic": {"auth": ("admin", "sim-mautic-pass")},
    "directus": {"headers": {"Authorization": "Bearer directus-static-token"}},
}
STORES = {"invoiceninja": "clients", "erpnext": "Customer", "mautic": "leads", "directus": "contacts"}
TIMEOUT = 15


@dataclass(frozen=True)
class Copy:
    """One system's object for a person, as its store holds it now."""

    system: str
    id: str
    live: bool  # not archived, disabled or deleted there
    values: dict[str, str | None]  # FIELDS it carries


def text(value: Any) -> str | None:
    stripped = str(value).strip() if value is not None else ""
    return stripped or None


class Contacts:
    """Calls and reads on the running simulators: `sims` (name -> simulator), `urls` (name -> base URL)."""

    def __init__(self, sims: dict[str, Any], urls: dict[str, str]) -> None:
        self.sims, self.urls = sims, urls
        self.http = requests.Session()

    def call(self, system: str, method: str, path: str, body: Any = None) -> Any:
        url = self.urls[system] + path
        answer = self.http.request(method, url, json=body, timeout=TIMEOUT, **AUTH[system])
        if answer.status_code >= 300:
            raise RuntimeError(f"{system} {method} {path}: {answer.status_code} {answer.text[:200]}")
        return answer.json() if answer.content else None

    def create(self, system: str, email: str, last_name: str, values: dict[str, str]) -> None:
        phone, city, vat = values.get("phone"), values.get("city"), values.get("vat")
        if system == "invoiceninja":
            person = {"first_name": "Conv", "last_name": last_name, "email": email, "phone": phone}
            body = {"contacts": [person], "city": city, "vat_number": vat}
            self.call(system, "POST", "/api/v1/clients", body)
        elif system == "erpnext":
            body = {"customer_name": f"Conv {last_name}", "customer_type": "Individual", "email_id": email,
                    "mobile_no": phone, "tax_id": vat}  # fmt: skip
            self.call(system, "POST", "/api/v2/document/Customer", body)
        elif system == "mautic":
            body = {"firstname": "Conv", "lastname": last_name, "email": email, "phone": phone, "city": city}
            self.call(system, "POST", "/api/contacts/new", body)
        else:
            body = {"first_name": "Conv", "last_name": last_name, "email": email, "phone": phone,
                    "city": city, "vat_number": vat}  # fmt: skip
            self.call(system, "POST", "/items/contacts", body)

    def edit(self, system: str, email: str, field: str, value: str) -> None:
        copy = self.one(system, email)
        if copy is None:
            raise LookupError(f"no {system} copy of {email}")
        if system == "invoiceninja":
            self._edit_client(copy.id, field, value)
        elif system == "erpnext":
            self._edit_customer(copy.id, field, value)
        elif system == "mautic":
            self.call(system, "PATCH", f"/api/contacts/{copy.id}/edit", {field: value})
        else:
            name = "vat_number" if field == "vat" else field
            self.call(system, "PATCH", f"/items/contacts/{copy.id}", {name: value})

    def _edit_client(self, client_id: str, field: str, value: str) -> None:
        if field != "phone":
            self.call("invoiceninja", "PUT", f"/api/v1/clients/{client_id}",
                      {"city" if field == "city" else "vat_number": value})  # fmt: skip
            return
        # Invoice Ninja replaces the contact list on update: the people go along, with their ids.
        client = self._stored("invoiceninja", client_id)
        keep = ("id", "first_name", "last_name", "email", "phone")
        people = [{k: c.get(k) for k in keep} for c in client["contacts"]]
        people[0]["phone"] = value
        self.call("invoiceninja", "PUT", f"/api/v1/clients/{client_id}", {"contacts": people})

    def _edit_customer(self, name: str, field: str, value: str) -> None:
        if field == "vat":
            self.call("erpnext", "PUT", f"/api/v2/document/Customer/{name}", {"tax_id": value})
            return
        # A Customer's mobile is its primary Contact's, fetched when the Customer is saved (as in ERPNext).
        contact = self.sims["erpnext"].db["Customer"][name]["customer_primary_contact"]
        phones = {"phone_nos": [{"phone": value, "is_primary_mobile_no": 1}]}
        self.call("erpnext", "PUT", f"/api/v2/document/Contact/{contact}", phones)
        self.call("erpnext", "PUT", f"/api/v2/document/Customer/{name}", {})

    def delete(self, system: str, email: str) -> str:
        """Delete the person's object there; returns its id."""
        copy = self.one(system, email)
        if copy is None:
            raise LookupError(f"no {system} copy of {email}")
        path = {
            "invoiceninja": f"/api/v1/clients/{copy.id}",
            "erpnext": f"/api/v2/document/Customer/{copy.id}",
            "mautic": f"/api/contacts/{copy.id}/delete",
            "directus": f"/items/contacts/{copy.id}",
        }[system]
        self.call(system, "DELETE", path)
        return copy.id

    def one(self, system: str, email: str) -> Copy | None:
        found = self.copies(system, email)
        return found[0] if found else None

    def copies(self, system: str, email: str) -> list[Copy]:
        """Every object there for this email, live first."""
        sim = self.sims[system]
        with sim.lock:
            stored = sim.db[STORES[system]].values()
            out = [READERS[system](o) for o in stored if (self._email(system, o) or "").lower() == email]
        return sorted(out, key=lambda c: not c.live)

    @staticmethod
    def _client(client: dict[str, Any]) -> Copy:
        person = client["contacts"][0] if client.get("contacts") else {}
        values = {"phone": text(person.get("phone") or client.get("phone")), "city": text(client.get("city")),
                  "vat": text(client.get("vat_number"))}  # fmt: skip
        live = not (client.get("archived_at") or client.get("is_deleted"))
        return Copy("invoiceninja", str(client["id"]), live, values)

    @staticmethod
    def _customer(doc: dict[str, Any]) -> Copy:
        values = {"phone": text(doc.get("mobile_no")), "vat": text(doc.get("tax_id"))}
        return Copy("erpnext", str(doc["name"]), not doc.get("disabled"), values)

    @staticmethod
    def _lead(lead: dict[str, Any]) -> Copy:
        fields = lead.get("fields", {})
        return Copy("mautic", str(lead["id"]), True, {"phone": text(fields.get("phone")),
                                                       "city": text(fields.get("city"))})  # fmt: skip

    @staticmethod
    def _item(item: dict[str, Any]) -> Copy:
        values = {"phone": text(item.get("phone")), "city": text(item.get("city")),
                  "vat": text(item.get("vat_number"))}  # fmt: skip
        return Copy("directus", str(item["id"]), not item.get("archived"), values)

    def _stored(self, system: str, key: str) -> dict[str, Any]:
        """A system's object by id as its store keeps it (ids are ints in some stores, text in others)."""
        sim = self.sims[system]
        with sim.lock:
            return next(o for k, o in sim.db[STORES[system]].items() if str(k) == str(key))

    def email_of(self, system: str, key: str) -> str | None:
        """The email of a system's object by id, while it exists (a Directus event names only its keys)."""
        try:
            return self._email(system, self._stored(system, key))
        except StopIteration:
            return None

    @staticmethod
    def _email(system: str, obj: dict[str, Any]) -> str | None:
        if system == "invoiceninja":
            return next((p.get("email") for p in obj.get("contacts", [])), None)
        if system == "erpnext":
            return obj.get("email_id")
        if system == "mautic":
            return obj.get("fields", {}).get("email")
        return obj.get("email")


READERS = {"invoiceninja": Contacts._client, "erpnext": Contacts._customer, "mautic": Contacts._lead,
           "directus": Contacts._item}  # fmt: skip
