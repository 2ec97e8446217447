"""The site the simulator starts as: one company with ERPNext's "Standard" chart of accounts (the part the
engine meets), the stock masters (item groups, UOM), and the accounts an accountant adds for the engine.

A new ERPNext site has no leaf tax account (only the "Duties and Taxes" group) and no leaf bank account (only
the "Bank Accounts" group), so its Payment Entries go to Cash. ``SETUP_ACCOUNTS`` are the two a site set up
for the engine has (``syncengine setup`` makes them from ERPNEXT_TAX_ACCOUNT and ERPNEXT_BANK_ACCOUNT); the
simulator has them unless told to start as a new site (``accounts=()``).
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]

# (account_name, parent account_name, is_group, account_type, root_type) of the Standard chart's accounts the
# engine meets (erpnext/accounts/doctype/account/chart_of_accounts/verified/standard_chart_of_accounts.py).
STANDARD_CHART: tuple[tuple[str, str | None, int, str, str], ...] = (
    ("Application of Funds (Assets)", None, 1, "", "Asset"),
    ("Current Assets", "Application of Funds (Assets)", 1, "", "Asset"),
    ("Accounts Receivable", "Current Assets", 1, "", "Asset"),
    ("Debtors", "Accounts Receivable", 0, "Receivable", "Asset"),
    ("Bank Accounts", "Current Assets", 1, "Bank", "Asset"),
    ("Cash In Hand", "Current Assets", 1, "Cash", "Asset"),
    ("Cash", "Cash In Hand", 0, "Cash", "Asset"),
    ("Source of Funds (Liabilities)", None, 1, "", "Liability"),
    ("Current Liabilities", "Source of Funds (Liabilities)", 1, "", "Liability"),
    ("Accounts Payable", "Current Liabilities", 1, "", "Liability"),
    ("Creditors", "Accounts Payable", 0, "Payable", "Liability"),
    ("Duties and Taxes", "Current Liabilities", 1, "Tax", "Liability"),
    ("Income", None, 1, "", "Income"),
    ("Direct Income", "Income", 1, "", "Income"),
    ("Sales", "Direct Income", 0, "", "Income"),
    ("Expenses", None, 1, "", "Expense"),
    ("Indirect Expenses", "Expenses", 1, "", "Expense"),
    ("Miscellaneous Expenses", "Indirect Expenses", 0, "Chargeable", "Expense"),
)
SETUP_ACCOUNTS: tuple[tuple[str, str | None, int, str, str], ...] = (
    ("VAT", "Duties and Taxes", 0, "Tax", "Liability"),
    ("Bank", "Bank Accounts", 0, "Bank", "Asset"),
)
ITEM_GROUPS = (
    {"item_group_name": "All Item Groups", "is_group": 1},
    *({"item_group_name": name, "parent_item_group": "All Item Groups", "is_group": 0}
      for name in ("Consumable", "Products", "Raw Material", "Services", "Sub Assemblies")),
)  # fmt: skip
UOMS = tuple({"uom_name": n, "must_be_whole_number": int(n != "Hour")} for n in ("Nos", "Unit", "Hour"))
SELLING_PRICE_LIST = "Standard Selling"


def company(name: str, abbr: str, currency: str = "EUR") -> Doc:
    return {
        "company_name": name, "abbr": abbr, "default_currency": currency, "country": "France",
        "default_cash_account": f"Cash - {abbr}", "default_receivable_account": f"Debtors - {abbr}",
        "default_payable_account": f"Creditors - {abbr}", "default_income_account": f"Sales - {abbr}",
    }  # fmt: skip


def accounts(name: str, abbr: str, rows: tuple[tuple[str, str | None, int, str, str], ...]) -> list[Doc]:
    """Account documents of the company, parents first (a name is `<account_name> - <abbr>`)."""
    return [
        {"account_name": account, "parent_account": f"{parent} - {abbr}" if parent else None, "company": name,
         "is_group": group, "account_type": kind, "root_type": root, "account_currency": "EUR"}
        for account, parent, group, kind, root in rows
    ]  # fmt: skip


def default_bank_account(accounts_by_name: dict[str, Doc], company_doc: Doc) -> str | None:
    """``get_default_bank_cash_account``: the company's default bank account, else its only leaf Bank
    account, else its default cash account, else its only leaf Cash account."""
    for kind, default in (("Bank", "default_bank_account"), ("Cash", "default_cash_account")):
        if company_doc.get(default):
            return str(company_doc[default])
        leaves = [
            a["name"] for a in accounts_by_name.values()
            if a["company"] == company_doc["name"] and a["account_type"] == kind and not a["is_group"]
        ]  # fmt: skip
        if len(leaves) == 1:
            return leaves[0]
    return None
