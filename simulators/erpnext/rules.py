"""ERPNext's rules on top of Frappe's lifecycle: invoice totals and status, accounts, payments against
invoices, a Customer's primary Contact (parties.py), the site's masters (site.py).

Also the Webhook doctype's own validation and the whitelisted ``get_payment_entry`` that builds a defaulted
Payment Entry from an invoice (``erpnext/accounts/doctype/payment_entry/payment_entry.py``).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from simulators.erpnext import site
from simulators.erpnext.doctypes import DOCTYPES, DocType
from simulators.erpnext.documents import Doc
from simulators.erpnext.errors import FrappeError, invalid, not_found, printed
from simulators.erpnext.money import compute_invoice, compute_payment, invoice_status
from simulators.erpnext.parties import PartyRules

INVOICES = ("Sales Invoice", "Purchase Invoice")
DOCEVENTS = (
    "after_insert",
    "on_update",
    "on_submit",
    "on_cancel",
    "on_trash",
    "on_update_after_submit",
    "on_change",
)


class ERPNextRules(PartyRules):
    """What the ERPNext app adds to the framework for the doctypes in ``doctypes.py``."""

    setup_accounts = site.SETUP_ACCOUNTS  # the simulator's `accounts=` replaces them

    def _site_masters(self) -> None:
        """One company with the Standard chart (and the accounts a site set up for us has), item groups,
        UOMs: inserted like a data import, before anything else."""
        self.insert("Company", site.company(self.company, self.abbr), seeding=True)
        rows = (*site.STANDARD_CHART, *self.setup_accounts)
        for account in site.accounts(self.company, self.abbr, rows):
            self.insert("Account", account, seeding=True)
        for doctype, docs in (("Item Group", site.ITEM_GROUPS), ("UOM", site.UOMS)):
            for doc in docs:
                self.insert(doctype, dict(doc), seeding=True)

    def _validate(self, doc: Doc, meta: DocType) -> None:
        self._defaults(doc)
        kind = doc["doctype"]
        if kind in INVOICES and not doc.get("items"):
            raise printed("TypeError")  # ERPNext fails on the missing rows before its own checks (500)
        if kind == "Sales Invoice":
            self._add_missing_prices(doc)
        super()._validate(doc, meta)
        if kind in INVOICES:
            self._validate_invoice(doc)
        elif kind == "Payment Entry":
            self._validate_payment(doc)
        elif kind == "Webhook":
            self._validate_webhook(doc)
        elif kind == "Contact":
            self._validate_contact(doc)
        elif kind == "Customer":
            self._validate_customer(doc)

    def _validate_invoice(self, doc: Doc) -> None:
        for row in doc["items"]:
            item = self.db["Item"].get(row.get("item_code"))
            if item is None:  # ERPNext reads the row's Item before any link check: 404
                raise not_found("Item", str(row.get("item_code")))
            row["item_name"] = row.get("item_name") or item["item_name"]
            row["uom"] = row.get("uom") or item["stock_uom"]
            row["stock_uom"] = item["stock_uom"]
        for row in doc["taxes"]:
            self._check_account(row["account_head"], doc["company"], f"Row {row['idx']}: ", "Account Head")
        if str(doc["due_date"]) < str(doc["posting_date"]):
            raise invalid("Due Date cannot be before Posting Date")
        compute_invoice(doc)
        doc["status"] = invoice_status(doc, self.today())

    def _check_account(self, name: str, company: str, where: str, field: str) -> None:
        """``validate_account_head``: an existing leaf account of the document's company."""
        account = self.db["Account"].get(name)
        if account is None:
            raise FrappeError("LinkValidationError", f"Could not find {where}{field}: {name}")
        if account["company"] != company:
            raise invalid(f"{where} Account <strong>{name}</strong> does not belong to Company {company}")
        if account["is_group"]:
            raise invalid(f"{where}Account <strong>{name}</strong> is a Group Account")

    def _add_missing_prices(self, doc: Doc) -> None:
        """Stock Settings' "auto insert price list rate if missing": a rate for an Item without a selling
        price adds one, with an alert in the answer's messages (kept only if the insert is)."""
        prices = self.db["__prices"]
        for row in doc.get("items") or []:
            code = row.get("item_code")
            if code in self.db["Item"] and row.get("rate") and code not in prices:
                added = f"Item Price added for {code} in Price List {site.SELLING_PRICE_LIST}"
                self.msgprint(added, alert=True)
                self.on_commit(lambda code=code, rate=row["rate"]: prices.setdefault(code, rate))

    def _on_update(self, doc: Doc, user: str, in_insert: bool = False) -> None:
        if doc["doctype"] == "Customer":
            self._create_primary_contact(doc, user, in_insert)

    def _on_trash(self, doc: Doc, user: str) -> None:
        if doc["doctype"] == "Customer":
            self._trash_customer(doc, user)
        if doc["doctype"] == "Custom Field":
            pass  # the column goes with its Custom Field document (custom_fields reads the store)

    def inserted_view(self, doc: Doc, body: Doc) -> Doc:
        """What an insert answers: an invoice inserted submitted is shown as before its on-submit updates,
        status "Draft" and `modified` its creation (the stored one is later, status Unpaid)."""
        shown = self.as_dict(doc)
        if doc["doctype"] in INVOICES and int(body.get("docstatus") or 0) == 1:
            shown.update(status="Draft", modified=doc["creation"])
        return shown

    def _defaults(self, doc: Doc) -> None:
        kind = doc["doctype"]
        if kind in INVOICES:
            if not doc.get("set_posting_time"):  # ERPNext resets the date unless "Edit Posting Date" is set
                doc["posting_date"] = self.today().isoformat()
            doc["posting_date"] = doc.get("posting_date") or self.today().isoformat()
            doc["due_date"] = doc.get("due_date") or doc["posting_date"]
            doc["company"] = doc.get("company") or self.company
            doc["currency"] = doc.get("currency") or "EUR"
            doc["conversion_rate"] = doc.get("conversion_rate") or 1.0
        if kind == "Purchase Invoice" and not doc.get("remarks"):  # PurchaseInvoice.create_remarks
            doc["remarks"] = _purchase_remarks(doc)
        if kind == "Sales Invoice":
            doc["debit_to"] = doc.get("debit_to") or f"Debtors - {self.abbr}"
            customer = self.db["Customer"].get(doc.get("customer"))
            doc["customer_name"] = doc.get("customer_name") or (customer or {}).get("customer_name")
        if kind == "Purchase Invoice":
            doc["credit_to"] = doc.get("credit_to") or f"Creditors - {self.abbr}"
            supplier = self.db["Supplier"].get(doc.get("supplier"))
            doc["supplier_name"] = doc.get("supplier_name") or (supplier or {}).get("supplier_name")
        if kind == "Item":  # Item.validate: an empty name is the code, an empty description the name
            doc["item_name"] = doc.get("item_name") or doc.get("item_code")
            doc["description"] = doc.get("description") or doc["item_name"]
        if kind == "Payment Entry":
            doc["company"] = doc.get("company") or self.company
            doc["posting_date"] = doc.get("posting_date") or self.today().isoformat()

    def _validate_payment(self, doc: Doc) -> None:
        if doc.get("payment_type") not in ("Receive", "Pay", "Internal Transfer"):
            raise invalid("Payment Type must be one of Receive, Pay and Internal Transfer")
        party_type = doc.get("party_type")
        if party_type not in ("Customer", "Supplier"):
            raise invalid(f"Invalid Party Type: {party_type}")
        party = self.db[party_type].get(doc.get("party"))
        if party is None:
            raise FrappeError("LinkValidationError", f"Could not find Party: {doc.get('party')}")
        doc["party_name"] = doc.get("party_name") or party.get(party_type.lower() + "_name")
        bank = doc.get("paid_to") if doc["payment_type"] == "Receive" else doc.get("paid_from")
        kind = (self.db["Account"].get(bank) or {}).get("account_type")
        if kind == "Bank" and not (doc.get("reference_no") and doc.get("reference_date")):
            raise invalid("Reference No and Reference Date is mandatory for Bank transaction")
        compute_payment(doc)
        if doc["unallocated_amount"] < 0:
            raise invalid("Total Allocated Amount cannot be greater than the Paid Amount")
        self._check_allocations(doc)

    def _check_allocations(self, doc: Doc) -> None:
        for row in doc.get("references") or []:
            kind, name = row.get("reference_doctype"), row.get("reference_name")
            if kind not in INVOICES:
                raise invalid(
                    f"Row #{row['idx']}: Reference Doctype must be one of Sales Invoice, Purchase Invoice"
                )
            ref = self.db[kind].get(name)
            if ref is None:
                raise FrappeError("LinkValidationError", f"Could not find Row #{row['idx']}: Name: {name}")
            if ref["docstatus"] != 1:
                raise invalid(f"Row #{row['idx']}: {kind} {name} must be submitted")
            row.update(
                total_amount=ref["grand_total"],
                outstanding_amount=ref["outstanding_amount"],
                due_date=ref.get("due_date"),
                bill_no=ref.get("bill_no"),
            )
            if float(row.get("allocated_amount") or 0) > float(ref["outstanding_amount"]) + 1e-9:
                raise invalid(
                    f"Row #{row['idx']}: Allocated Amount cannot be greater than outstanding amount."
                )

    def _allocate(self, payment: Doc, sign: int, user: str) -> None:
        """Submitted payments lower the invoices' outstanding amount (cancel restores it) via ``db_set``,
        which bumps ``modified`` without running the invoice's own hooks."""
        for row in payment["references"]:
            ref = self.db[row["reference_doctype"]][row["reference_name"]]
            amount = float(row.get("allocated_amount") or 0)
            ref["outstanding_amount"] = round(float(ref["outstanding_amount"]) + sign * amount, 2)
            ref["status"] = invoice_status(ref, self.today())
            ref.update(modified=self.now_str(), modified_by=user)

    def _validate_webhook(self, doc: Doc) -> None:
        target = DOCTYPES.get(doc.get("webhook_doctype") or "")
        if target is None:
            raise FrappeError("LinkValidationError", f"Could not find DocType: {doc.get('webhook_doctype')}")
        if doc.get("webhook_docevent") not in DOCEVENTS:
            raise invalid(f"Doc Event must be one of {', '.join(DOCEVENTS)}")
        if not target.submittable and doc["webhook_docevent"] in (
            "on_submit",
            "on_cancel",
            "on_update_after_submit",
        ):
            raise invalid("DocType must be Submittable for the selected Doc Event")
        if not re.match(r"^[a-z][a-z0-9+.-]*://[^/]+", str(doc.get("request_url"))):
            raise invalid("Check Request URL")
        if doc.get("enable_security") and not (
            doc.get("__pending_secret_webhook_secret") or doc.get("webhook_secret")
        ):
            raise invalid("Invalid Webhook Secret")
        if doc.get("request_method") not in ("POST", "PUT", "DELETE"):
            raise invalid("Request Method must be one of POST, PUT, DELETE")

    def _links_to(self, doc: Doc, submitted_only: bool) -> list[tuple[str, str]]:
        """Documents linking to ``doc`` (cancelled ones do not count), as ``check_if_doc_is_linked`` sees."""
        kind, name = doc["doctype"], doc["name"]
        found = []
        for source in ("Sales Invoice", "Purchase Invoice", "Payment Entry"):
            for other in self.db[source].values():
                if other["docstatus"] == 2 or (submitted_only and other["docstatus"] != 1):
                    continue
                refs = {(target, other.get(field)) for field, target in self.meta(source).links.items()}
                refs |= {("Item", r.get("item_code")) for r in other.get("items") or []}
                refs |= {
                    (r.get("reference_doctype"), r.get("reference_name"))
                    for r in other.get("references") or []
                }
                if source == "Payment Entry":
                    refs.add((other.get("party_type"), other.get("party")))
                if (kind, name) in refs:
                    found.append((source, other["name"]))
        return found

    def _before_submit(self, doc: Doc) -> None:
        if doc["doctype"] == "Sales Invoice":  # SalesInvoice.add_remarks
            doc["remarks"] = doc.get("remarks") or "No Remarks"
        if doc["doctype"] == "Payment Entry":
            self._check_allocations(doc)
            for field in ("paid_from", "paid_to"):  # the ledger refuses a group account
                if (self.db["Account"].get(doc[field]) or {}).get("is_group"):
                    raise invalid(
                        f"Payment Entry {doc['name']}: Account {doc[field]} is a Group Account and group "
                        "accounts cannot be used in transactions"
                    )

    def _on_submit(self, doc: Doc, user: str) -> None:
        if doc["doctype"] in INVOICES:
            doc["status"] = invoice_status(doc, self.today())
        if doc["doctype"] == "Payment Entry":
            compute_payment(doc)
            self._allocate(doc, sign=-1, user=user)

    def _on_cancel(self, doc: Doc, user: str) -> None:
        if doc["doctype"] in INVOICES:
            doc["status"] = "Cancelled"
        if doc["doctype"] == "Payment Entry":
            compute_payment(doc)
            self._allocate(doc, sign=1, user=user)

    # ---- whitelisted method ---------------------------------------------------------------------------

    def get_payment_entry(
        self,
        dt: str,
        dn: str,
        party_amount: Any = None,
        bank_account: str | None = None,
        bank_amount: Any = None,
        party_type: str | None = None,
        payment_type: str | None = None,
        reference_date: str | None = None,
        **_: Any,
    ) -> Doc:
        """An unsaved Payment Entry settling the invoice's outstanding amount (or ``party_amount``), every
        field defaulted. Its arguments come as given: over GET (or a form) ``party_amount`` is a string, and
        ERPNext fails on ``abs()`` of it with a 500 TypeError; a JSON body keeps it a number."""
        if dt not in INVOICES:
            raise invalid(f"Payment Entry against {dt} is not supported by the simulator")
        ref = self.get_doc(dt, dn)
        if isinstance(party_amount, str):
            raise printed("TypeError")
        if ref["docstatus"] != 1:
            raise invalid(f"{dt} {dn} must be submitted")
        outstanding = float(ref["outstanding_amount"] or 0)
        if outstanding <= 0:
            raise invalid(f"Can only make payment against unbilled {dt}")
        receive = dt == "Sales Invoice"
        amount = float(party_amount) if party_amount is not None else outstanding
        if bank_account and bank_account not in self.db["Account"]:
            raise not_found("Account", bank_account)
        company_doc = self.db["Company"][ref["company"]]
        bank = bank_account or site.default_bank_account(self.db["Account"], company_doc)
        party = ref["customer"] if receive else ref["supplier"]
        pe: Doc = {c: None for c in self.known("Payment Entry")}
        pe.update(
            doctype="Payment Entry",
            name=None,
            docstatus=0,
            idx=0,
            __islocal=1,
            references=[],
            payment_type=payment_type or ("Receive" if receive else "Pay"),
            company=ref["company"],
            posting_date=self.today().isoformat(),
            party_type=party_type or ("Customer" if receive else "Supplier"),
            party=party,
            party_name=ref.get("customer_name" if receive else "supplier_name"),
            paid_from=ref["debit_to"] if receive else bank,
            paid_to=bank if receive else ref["credit_to"],
            paid_from_account_currency=ref["currency"],
            paid_to_account_currency=ref["currency"],
            paid_amount=amount,
            received_amount=float(bank_amount) if bank_amount not in (None, "") else amount,
            source_exchange_rate=1.0,
            target_exchange_rate=1.0,
            reference_date=reference_date,
            title=party,
            status="Draft",
        )
        pe["references"].append(
            {
                "doctype": "Payment Entry Reference",
                "idx": 1,
                "docstatus": 0,
                "reference_doctype": dt,
                "reference_name": dn,
                "bill_no": ref.get("bill_no"),
                "due_date": ref.get("due_date"),
                "total_amount": amount if party_amount is not None else ref["grand_total"],
                "outstanding_amount": amount if party_amount is not None else outstanding,
                "allocated_amount": min(amount, outstanding),
                "exchange_rate": 1.0,
            }
        )
        compute_payment(pe)
        return pe


def _purchase_remarks(doc: Doc) -> str:
    if not doc.get("bill_no"):
        return "No Remarks"
    if not doc.get("bill_date"):
        return f"Against Supplier Invoice {doc['bill_no']}"
    dated = date.fromisoformat(str(doc["bill_date"])[:10])
    return f"Against Supplier Invoice {doc['bill_no']} dated {dated:%d/%m/%Y}"  # the site's date format
