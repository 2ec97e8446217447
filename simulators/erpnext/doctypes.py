"""The ERPNext doctypes the engine touches: their columns, child tables, naming and money arithmetic.

Only declared columns are stored, as Frappe's ``db_insert`` only writes table columns: an unknown key in a
create body is silently dropped, and filtering or selecting on it fails (417 "Field not permitted in
query"). Custom fields (``custom_*``) exist only once created through the Custom Field doctype, or seeded
(the simulator's ``custom_fields``, e.g. from syncengine.vendors.erpnext), as on a real site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STANDARD = ("name", "owner", "creation", "modified", "modified_by", "docstatus", "idx")
CHILD_STANDARD = (*STANDARD, "parent", "parenttype", "parentfield")


# Mandatory columns of child rows (labels as Frappe prints them in "Value missing for" messages).
_TAX_MANDATORY = {"charge_type": "Type", "account_head": "Account Head", "description": "Description"}
CHILD_MANDATORY: dict[str, dict[str, str]] = {
    "Sales Taxes and Charges": _TAX_MANDATORY, "Purchase Taxes and Charges": _TAX_MANDATORY,
}  # fmt: skip


def label(fieldname: str) -> str:
    """A column's label as Frappe prints it in messages (its standard labels are the field name, titled)."""
    return fieldname.replace("_", " ").title()


@dataclass
class DocType:
    name: str
    columns: tuple[str, ...]
    naming: str = "hash"  # "field:<f>", "customer", "series:<prefix>", "contact", "hash"
    children: dict[str, str] = field(default_factory=dict)  # table field -> child doctype
    links: dict[str, str] = field(default_factory=dict)  # link field -> doctype it must exist in
    mandatory: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    submittable: bool = False
    secrets: tuple[str, ...] = ()  # Password fields: stored apart, read back masked
    # `track_changes`: each save that changes a field writes a Version document with the diff (set in
    # ERPNext's customer.json, supplier.json, item.json; Frappe's Document.save_version; versions.py)
    track_changes: bool = False

    def known(self, custom: tuple[str, ...] = ()) -> frozenset[str]:
        return frozenset((*STANDARD, *self.columns, *self.children, *custom))


def _cols(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_INVOICE = _cols(
    "title naming_series company posting_date posting_time set_posting_time due_date currency "
    "conversion_rate "
    "is_return return_against remarks status total_qty total net_total total_taxes_and_charges grand_total "
    "rounding_adjustment rounded_total disable_rounded_total outstanding_amount paid_amount base_grand_total "
    "base_net_total base_rounded_total taxes_and_charges update_stock"
)
CHILDREN: dict[str, tuple[str, ...]] = {
    "Sales Invoice Item": _cols(
        "item_code item_name description qty uom stock_uom conversion_factor rate amount net_rate net_amount "
        "income_account cost_center warehouse"
    ),
    "Purchase Invoice Item": _cols(
        "item_code item_name description qty uom stock_uom rate amount net_rate net_amount expense_account "
        "cost_center warehouse"
    ),
    "Sales Taxes and Charges": _cols(
        "charge_type account_head description rate tax_amount total cost_center"
    ),
    "Purchase Taxes and Charges": _cols(
        "charge_type account_head description rate tax_amount total cost_center category add_deduct_tax"
    ),
    "Payment Entry Reference": _cols(
        "reference_doctype reference_name bill_no due_date total_amount outstanding_amount allocated_amount "
        "exchange_rate"
    ),
    "Contact Email": _cols("email_id is_primary"),
    "Contact Phone": _cols("phone is_primary_phone is_primary_mobile_no"),
    "Dynamic Link": _cols("link_doctype link_name link_title"),
    "Webhook Header": _cols("key value"),
    "Webhook Data": _cols("fieldname key"),
}

DOCTYPES: dict[str, DocType] = {
    d.name: d
    for d in (
        DocType(
            "Customer",
            _cols(
                "naming_series customer_name customer_type customer_group territory disabled email_id "
                "mobile_no tax_id default_currency website language customer_primary_contact"
            ),
            naming="customer",
            mandatory=("customer_name",),
            defaults={"customer_type": "Company", "disabled": 0},
            track_changes=True,
        ),
        DocType(
            "Supplier",
            _cols(
                "supplier_name supplier_type supplier_group country disabled email_id mobile_no tax_id "
                "default_currency website"
            ),
            naming="field:supplier_name",
            mandatory=("supplier_name",),
            defaults={"supplier_type": "Company", "supplier_group": "All Supplier Groups", "disabled": 0},
            track_changes=True,
        ),
        DocType(
            "Item",
            _cols(
                "item_code item_name item_group stock_uom is_stock_item description disabled standard_rate "
                "valuation_rate is_sales_item is_purchase_item brand"
            ),
            naming="field:item_code",
            mandatory=("item_code", "item_group", "stock_uom"),
            links={"item_group": "Item Group", "stock_uom": "UOM"},
            defaults={
                "is_stock_item": 1,
                "disabled": 0,
                "is_sales_item": 1,
                "is_purchase_item": 1,
                "standard_rate": 0.0,
                "valuation_rate": 0.0,
            },
            track_changes=True,
        ),
        DocType(
            "Sales Invoice",
            (
                *_INVOICE,
                "customer",
                "customer_name",
                "debit_to",
                "po_no",
                "contact_email",
                "customer_address",
            ),
            naming="series:ACC-SINV-.YYYY.-",
            defaults={"is_return": 0},
            children={"items": "Sales Invoice Item", "taxes": "Sales Taxes and Charges"},
            links={"customer": "Customer"},
            mandatory=("customer", "company", "posting_date", "due_date", "debit_to"),
            submittable=True,
        ),
        DocType(
            "Purchase Invoice",
            (*_INVOICE, "supplier", "supplier_name", "credit_to", "bill_no", "bill_date"),
            naming="series:ACC-PINV-.YYYY.-",
            defaults={"is_return": 0},
            children={"items": "Purchase Invoice Item", "taxes": "Purchase Taxes and Charges"},
            links={"supplier": "Supplier"},
            mandatory=("supplier", "company", "posting_date", "credit_to"),
            submittable=True,
        ),
        DocType(
            "Payment Entry",
            _cols(
                "naming_series payment_type company posting_date mode_of_payment party_type party party_name "
                "paid_from paid_to paid_from_account_currency paid_to_account_currency paid_amount "
                "received_amount base_paid_amount base_received_amount source_exchange_rate "
                "target_exchange_rate reference_no reference_date total_allocated_amount unallocated_amount "
                "difference_amount remarks status title bank_account"
            ),
            naming="series:ACC-PAY-.YYYY.-",
            children={"references": "Payment Entry Reference"},
            mandatory=(
                "payment_type",
                "company",
                "posting_date",
                "party_type",
                "party",
                "paid_from",
                "paid_to",
                "paid_amount",
                "received_amount",
            ),
            submittable=True,
        ),
        DocType(
            "Contact",
            _cols(
                "first_name middle_name last_name full_name email_id phone mobile_no company_name status "
                "is_primary_contact designation unsubscribed"
            ),
            naming="contact",
            children={"email_ids": "Contact Email", "phone_nos": "Contact Phone", "links": "Dynamic Link"},
            defaults={"status": "Passive", "unsubscribed": 0, "is_primary_contact": 0},
        ),
        DocType(
            "Custom Field",
            _cols(
                "dt label fieldname fieldtype options unique no_copy insert_after reqd read_only hidden "
                "is_system_generated"
            ),
            naming="custom_field",
            mandatory=("dt",),
            defaults={"fieldtype": "Data", "unique": 0, "no_copy": 0, "reqd": 0, "read_only": 0, "hidden": 0},
        ),
        DocType(
            "Account",
            _cols(
                "account_name account_number company parent_account is_group account_type root_type "
                "report_type account_currency disabled"
            ),
            naming="account",
            mandatory=("account_name", "company"),
            links={"company": "Company"},
            defaults={"is_group": 0, "disabled": 0, "account_type": ""},
        ),
        DocType(
            "Company",
            _cols(
                "company_name abbr default_currency country default_cash_account default_bank_account "
                "default_receivable_account default_payable_account default_income_account"
            ),
            naming="field:company_name",
            mandatory=("company_name", "abbr", "default_currency"),
        ),
        DocType(
            "Item Group",
            _cols("item_group_name parent_item_group is_group"),
            naming="field:item_group_name",
            mandatory=("item_group_name",),
            defaults={"is_group": 0},
        ),
        DocType(
            "UOM",
            _cols("uom_name must_be_whole_number enabled"),
            naming="field:uom_name",
            mandatory=("uom_name",),
            defaults={"enabled": 1, "must_be_whole_number": 0},
        ),
        DocType("Deleted Document", _cols("deleted_name deleted_doctype data restored new_name")),
        DocType("Version", _cols("ref_doctype docname data table_html")),
        DocType(
            "Webhook",
            _cols(
                "webhook_doctype webhook_docevent enabled condition request_url is_dynamic_url "
                "request_method "
                "request_structure timeout enable_security webhook_secret webhook_json background_jobs_queue"
            ),
            naming="prompt",
            children={"webhook_headers": "Webhook Header", "webhook_data": "Webhook Data"},
            mandatory=("webhook_doctype", "webhook_docevent", "request_url"),
            defaults={
                "enabled": 1,
                "request_method": "POST",
                "request_structure": "",
                "timeout": 5,
                "enable_security": 0,
                "is_dynamic_url": 0,
            },
            secrets=("webhook_secret",),
        ),
        DocType(
            "Webhook Request Log",
            _cols("webhook reference_doctype reference_document headers data user url response error"),
        ),
    )
}
