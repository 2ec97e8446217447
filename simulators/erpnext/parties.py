"""A Customer and its primary Contact, as ERPNext keeps them (erpnext/selling/doctype/customer/customer.py,
frappe/contacts/doctype/contact/contact.py).

- A Contact's `email_id`, `phone` and `mobile_no` are its primary rows' (`email_ids`, `phone_nos`).
- A Customer's `email_id` and `mobile_no` are read-only copies of its primary Contact's (`fetch_from`), set
  again on every save: a save that changes them keeps the Contact's values.
- A Customer saved without a primary Contact but with an email or a mobile gets one made from them
  (`create_primary_contact`, in `on_update`, written with `db_set`, which moves `modified` on an insert
  only).
- Deleting a Customer deletes the Contacts linked to it alone, and unlinks the others
  (`delete_contact_and_address`); its `on_trash` first clears the primary contact with `db_set`.
"""

from __future__ import annotations

from typing import Any

from simulators.erpnext.documents import Doc, FrappeBase
from simulators.erpnext.errors import invalid

CUSTOMER_FETCHES = {"email_id": "email_id", "mobile_no": "mobile_no"}  # Customer field <- Contact field


class PartyRules(FrappeBase):
    def _validate_customer(self, doc: Doc) -> None:
        contact = self.db["Contact"].get(doc.get("customer_primary_contact") or "")
        if contact is not None:
            doc.update({mine: contact.get(theirs) for mine, theirs in CUSTOMER_FETCHES.items()})

    def _validate_contact(self, doc: Doc) -> None:
        doc["full_name"] = self._full_name(doc)
        doc["email_id"] = self._primary(doc["email_ids"], "is_primary", "email_id", "Email ID")
        doc["phone"] = self._primary(doc["phone_nos"], "is_primary_phone", "phone", "Phone")
        doc["mobile_no"] = self._primary(doc["phone_nos"], "is_primary_mobile_no", "phone", "Mobile No")

    @staticmethod
    def _primary(rows: list[Doc], flag: str, key: str, what: str) -> str:
        """``Contact.set_primary_email`` / ``set_primary``: a single email row is primary by itself."""
        if not rows:
            return ""
        if sum(1 for r in rows if r.get(flag)) > 1:
            raise invalid(f"Only one <strong>{what}</strong> can be set as primary.")
        if len(rows) == 1 and flag == "is_primary":
            rows[0][flag] = 1
        return next((str(r.get(key) or "").strip() for r in rows if r.get(flag)), "")

    def _create_primary_contact(self, customer: Doc, user: str, in_insert: bool = False) -> None:
        """``db_set`` moves `modified` in an insert only: in a save the document is in
        ``frappe.flags.currently_saving`` (seen on the peer: the Contact is newer than the Customer)."""
        email, mobile = customer.get("email_id"), customer.get("mobile_no")
        if customer.get("customer_primary_contact") or not (email or mobile):
            return
        name, title = customer["name"], customer["customer_name"]
        link = {"link_doctype": "Customer", "link_name": name, "link_title": title}
        contact: dict[str, Any] = {
            "is_primary_contact": 1, "links": [link],
            "email_ids": [{"email_id": email, "is_primary": 1}] if email else [],
            "phone_nos": [{"phone": mobile, "is_primary_mobile_no": 1}] if mobile else [],
        }  # fmt: skip
        if customer.get("customer_type") == "Individual":
            first, _, last = str(customer.get("customer_name") or "").partition(" ")
            contact.update(first_name=first, last_name=last or None)
        else:
            contact["company_name"] = customer.get("customer_name")
        made = self.insert("Contact", contact, user)
        customer["customer_primary_contact"] = made["name"]  # email and mobile db_set to their own values
        if in_insert:
            customer["modified"] = self.later(made["creation"])

    def _trash_customer(self, customer: Doc, user: str) -> None:
        if customer.get("customer_primary_contact"):
            customer.update(customer_primary_contact=None, modified=self.later(customer["modified"]))
        for contact in list(self.db["Contact"].values()):
            mine = ("Customer", customer["name"])
            links = [r for r in contact["links"] if (r.get("link_doctype"), r.get("link_name")) == mine]
            if not links:
                continue
            if len(contact["links"]) == 1:
                self.delete(contact, user)
            else:
                self.save(contact, {"links": [r for r in contact["links"] if r not in links]}, user)
