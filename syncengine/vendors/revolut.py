"""What is true of Revolut Business whoever uses it: the webhook events we subscribe to, and how an incoming
transaction reads as the bank's facts of a payment (the payment record's `bank` fields)."""

from __future__ import annotations

import re
from typing import Any

from syncengine.inbox import NewEvent

# What `webhooks install` subscribes to (v2 webhooks, each signed with the secret Revolut makes for it).
EVENTS = ("TransactionCreated", "TransactionStateChanged")


def change_key(tx_id: Any, state: Any) -> str | None:
    """A bank transaction changes by its state; created and state-changed events of one state collapse
    (syncengine.change_keys)."""
    if not tx_id or not state:
        return None
    return f"revolut:transaction:{tx_id}:{state}"


# Revolut filters transactions by creation only (Revolut's `GET /transactions`: `from`/`to` are creation
# times): a state change of an older transaction is seen by re-reading a trailing window
# (tasks.sweep_sources). A day covers pending card and transfer settlements.
STATE_WINDOW = 24 * 3600.0


def swept(row: dict[str, Any]) -> NewEvent:
    """A listed transaction as TransactionCreated, which carries the whole transaction in whatever state it
    is now."""
    key = change_key(row["id"], row.get("state")) or f"TransactionCreated:{row['id']}"
    payload = {
        "event": "TransactionCreated",
        "timestamp": row.get("updated_at") or row["created_at"],
        "data": row,
    }
    return NewEvent("revolut", key, "TransactionCreated", payload)


def bank_fields(tx: dict[str, Any], account: str | None) -> dict[str, Any] | None:
    """The canonical bank fields of an incoming transaction (a leg with a positive amount into `account`,
    or into any account when None), or None for anything else (our own payments out, fees)."""
    legs = [leg for leg in tx.get("legs") or [] if float(leg.get("amount") or 0) > 0]
    leg = next((leg for leg in legs if account in (None, leg.get("account_id"))), None)
    if leg is None:
        return None
    counterparty = leg.get("counterparty") or {}
    return {
        "bank_transaction_id": str(tx["id"]),
        "amount": float(leg["amount"]),
        "currency": leg.get("currency"),
        "date": str(tx.get("completed_at") or tx.get("created_at") or "")[:10],
        "reference": tx.get("reference") or "",
        "description": leg.get("description") or "",
        "payer_name": payer_from(leg),
        "payer_account": counterparty.get("account_id") or counterparty.get("id"),
        "state": tx.get("state"),
    }


def payer_from(leg: dict[str, Any]) -> str:
    """Revolut names the payer in the counterparty (when known) or the leg's "Payment from <name>"."""
    counterparty = leg.get("counterparty") or {}
    if counterparty.get("name"):
        return str(counterparty["name"])
    description = str(leg.get("description") or "")
    found = re.match(r"\s*(?:payment|transfer|money)\s+from\s+(.+)", description, re.IGNORECASE)
    return found.group(1).strip() if found else ""
