"""Revolut's ledger: transactions (list, get), payments, transfers, incoming money and sandbox simulations.

``GET /transactions`` is newest ``created_at`` first, ``from`` inclusive and ``to`` exclusive, so the next
page is ``to`` = ``created_at`` of the last item; a ``request_id`` lookup needs ``from`` and at most 14 days.
``/pay`` and ``/transfer`` reject a ``request_id`` reused within two weeks (400/3020). Every new transaction
emits ``TransactionCreated``; every sandbox state change ``TransactionStateChanged``.
"""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.revolut.common import iso, parse_ts, to_dt
from simulators.revolut.webhooks import RevolutWebhooks

IDEMPOTENCY_WINDOW = 14 * 86400.0
REQUEST_ID_WINDOW = 14 * 86400.0
STATES = ("created", "pending", "completed", "declined", "failed", "reverted")
SANDBOX_ACTIONS = {"complete": "completed", "revert": "reverted", "decline": "declined", "fail": "failed"}
OPEN_STATES = ("created", "pending")
CHARGE_BEARERS = ("shared", "debtor", "prefer_debtor")


def money(value: float) -> float:
    return round(float(value), 2)


class RevolutLedger(RevolutWebhooks):
    """Mixin: everything that creates or reads transactions; accounts live in ``self.db["accounts"]``."""

    # ---- transactions -----------------------------------------------------------------------------

    @route("GET", "/api/1.0/transactions")
    def list_transactions(self, request: Request) -> Response:
        args = request.args
        try:
            start = parse_ts(args["from"]) if args.get("from") else None
            end = parse_ts(args["to"]) if args.get("to") else to_dt(iso(self.now()))
        except ValueError:
            raise self.fail(400, 2101, "Parameters from and to must be valid timestamps") from None
        try:
            count = min(int(args.get("count", 100)), 1000)
        except ValueError:
            raise self.fail(400, 2101, "count must be a number") from None
        if count < 1:
            raise self.fail(400, 2101, "count must be between 1 and 1000")
        request_id = args.get("request_id")
        if request_id is not None:
            if start is None:
                raise self.fail(400, 3000, "Parameter from is required when request_id is provided")
            if (end - start).total_seconds() > REQUEST_ID_WINDOW:
                raise self.fail(
                    400, 3000, "The search interval must not exceed 14 days when request_id is provided"
                )
        states = args.getlist("state")
        if any(s not in STATES for s in states):
            raise self.fail(400, 2101, "Invalid state")
        account, kind = args.get("account"), args.get("type")
        picked = []
        for tx in self.db["transactions"].values():
            created = to_dt(tx["created_at"])
            if (start is not None and created < start) or created >= end:
                continue
            if account and not any(leg["account_id"] == account for leg in tx["legs"]):
                continue
            if (kind and tx["type"] != kind) or (states and tx["state"] not in states):
                continue
            if request_id is not None and tx.get("request_id") != request_id:
                continue
            picked.append(tx)
        picked.sort(key=lambda t: t["created_at"], reverse=True)
        return self.json(picked[:count])

    @route("GET", "/api/1.0/transaction/{tx_id}")
    def get_transaction(self, request: Request, tx_id: str) -> Response:
        if request.args.get("id_type") == "request_id":  # deprecated lookup, still served
            found = [t for t in self.db["transactions"].values() if t.get("request_id") == tx_id]
            tx = found[0] if found else None
        else:
            tx = self.db["transactions"].get(tx_id)
        if tx is None:
            raise self.fail(404, 3006, "Transaction not found")
        return self.json(tx)

    def _fill_tx(self, item: dict[str, Any]) -> dict[str, Any]:
        """A stored transaction from a partial one (seeded history)."""
        tx = {
            "id": str(uuid.uuid4()),
            "type": "transfer",
            "state": "completed",
            "created_at": iso(self.now()),
            **item,
        }
        tx.setdefault("updated_at", tx["created_at"])
        if tx["state"] == "completed":
            tx.setdefault("completed_at", tx["updated_at"])
        default_account = next(
            iter(self.db["accounts"].values()), {"id": str(uuid.uuid4()), "currency": "EUR"}
        )
        tx["legs"] = [
            {
                "leg_id": str(uuid.uuid4()),
                "account_id": default_account["id"],
                "currency": default_account["currency"],
                **leg,
            }
            for leg in tx.get("legs") or [{"amount": 0}]
        ]
        return tx

    def _store_tx(self, tx: dict[str, Any]) -> dict[str, Any]:
        self.db["transactions"][tx["id"]] = tx
        return tx

    def _new_tx(self, kind: str, state: str, legs: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        now = iso(self.now())
        tx = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "state": state,
            "created_at": now,
            "updated_at": now,
            **{k: v for k, v in fields.items() if v is not None},
            "legs": legs,
        }
        if state == "completed":
            tx["completed_at"] = now
        self._store_tx(tx)
        self.emit("TransactionCreated", self.event_payload("TransactionCreated", tx))
        return tx

    def _move(self, account: dict[str, Any], amount: float) -> float:
        account["balance"] = money(account["balance"] + amount)
        account["updated_at"] = iso(self.now())
        return account["balance"]

    def _set_state(self, tx: dict[str, Any], new_state: str) -> None:
        """Apply a final state; money held by an outgoing leg returns, an incoming one lands on completion."""
        old = tx["state"]
        for leg in tx["legs"]:
            account = self.db["accounts"].get(leg["account_id"])
            if account is None:
                continue
            if leg["amount"] < 0 and new_state in ("declined", "failed", "reverted"):
                leg["balance"] = self._move(account, -leg["amount"])
            elif leg["amount"] > 0 and new_state == "completed":
                leg["balance"] = self._move(account, leg["amount"])
        now = iso(self.now())
        tx.update(state=new_state, updated_at=now)
        if new_state == "completed":
            tx["completed_at"] = now
        change = {
            "id": tx["id"],
            "new_state": new_state,
            "old_state": old,
            "request_id": tx.get("request_id"),
        }
        self.emit("TransactionStateChanged", self.event_payload("TransactionStateChanged", change))

    @staticmethod
    def _result(tx: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "state", "created_at", "completed_at")
        return {k: tx[k] for k in keys if k in tx}

    # ---- money out --------------------------------------------------------------------------------

    def _check_request_id(self, data: dict[str, Any]) -> str:
        request_id = data.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise self.fail(400, 3000, "Required 'request_id' is missing")
        if len(request_id) > 40:
            raise self.fail(400, 3000, "request_id must be at most 40 characters")
        horizon = self.now() - IDEMPOTENCY_WINDOW
        for tx in self.db["transactions"].values():
            if tx.get("request_id") == request_id and to_dt(tx["created_at"]).timestamp() >= horizon:
                raise self.fail(400, 3020, f"Duplicate request: {request_id}")
        return request_id

    def _amount(self, data: dict[str, Any]) -> float:
        amount = data.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
            raise self.fail(400, 3000, "amount must be a positive number")
        return money(amount)

    @route("POST", "/api/1.0/pay")
    def pay(self, request: Request) -> Response:
        data = self.body_or_fail(request)
        request_id = self._check_request_id(data)
        account = self._account(data.get("account_id"))
        receiver = data.get("receiver") if isinstance(data.get("receiver"), dict) else {}
        cpty = self.db["counterparties"].get(receiver.get("counterparty_id"))
        if cpty is None or cpty.get("state") != "created":
            raise self.fail(404, 3006, "Counterparty not found")
        amount = self._amount(data)
        if data.get("currency") != account["currency"]:
            raise self.fail(400, 3000, f"Currency {data.get('currency')} does not match the account currency")
        if data.get("charge_bearer") not in (None, *CHARGE_BEARERS):
            raise self.fail(400, 3287, "Specified 'charge_bearer' is not supported for this transaction.")
        target = self._receiver_account(cpty, receiver.get("account_id"))
        instant = cpty.get("revtag") is not None or target.get("type") == "revolut"
        leg = {
            "leg_id": str(uuid.uuid4()),
            "account_id": account["id"],
            "amount": -amount,
            "fee": 0.0,
            "currency": account["currency"],
            "description": f"To {cpty['name']}",
            "counterparty": {
                "id": cpty["id"],
                "account_type": "revolut" if instant else "external",
                **({"account_id": target["id"]} if target.get("id") else {}),
            },
        }
        state, reason = ("completed" if instant else "pending"), None
        if account["balance"] < amount:
            state, reason = "declined", "insufficient_balance"
            leg["balance"] = account["balance"]
        else:
            leg["balance"] = self._move(account, -amount)
        tx = self._new_tx(
            "transfer",
            state,
            [leg],
            request_id=request_id,
            reason_code=reason,
            reference=data.get("reference"),
        )
        return self.json(self._result(tx))

    def _receiver_account(self, cpty: dict[str, Any], account_id: str | None) -> dict[str, Any]:
        accounts = cpty.get("accounts") or []
        if account_id:
            for acc in accounts:
                if acc.get("id") == account_id:
                    return acc
            raise self.fail(404, 3006, "Counterparty account not found")
        if len(accounts) > 1:
            raise self.fail(
                400, 3000, "receiver.account_id is required: the counterparty has several accounts"
            )
        return accounts[0] if accounts else {}

    @route("POST", "/api/1.0/transfer")
    def transfer(self, request: Request) -> Response:
        data = self.body_or_fail(request)
        request_id = self._check_request_id(data)
        source, target = (
            self._account(data.get("source_account_id")),
            self._account(data.get("target_account_id")),
        )
        amount = self._amount(data)
        if (
            source["id"] == target["id"]
            or not data.get("currency") == source["currency"] == target["currency"]
        ):
            raise self.fail(400, 3000, "Transfers move money between different accounts in the same currency")
        out_leg = {
            "leg_id": str(uuid.uuid4()),
            "account_id": source["id"],
            "amount": -amount,
            "currency": source["currency"],
            "description": f"To {target['name']}",
        }
        in_leg = {
            "leg_id": str(uuid.uuid4()),
            "account_id": target["id"],
            "amount": amount,
            "currency": target["currency"],
            "description": f"From {source['name']}",
        }
        if source["balance"] < amount:
            out_leg["balance"], in_leg["balance"] = source["balance"], target["balance"]
            tx = self._new_tx(
                "transfer",
                "declined",
                [out_leg, in_leg],
                request_id=request_id,
                reason_code="insufficient_balance",
                reference=data.get("reference"),
            )
        else:
            out_leg["balance"], in_leg["balance"] = self._move(source, -amount), self._move(target, amount)
            tx = self._new_tx(
                "transfer",
                "completed",
                [out_leg, in_leg],
                request_id=request_id,
                reference=data.get("reference"),
            )
        return self.json(self._result(tx))

    # ---- money in and sandbox simulations ---------------------------------------------------------

    def receive_payment(
        self,
        amount: float,
        reference: str = "",
        payer: str = "John Smith",
        account_id: str | None = None,
        currency: str | None = None,
        state: str = "completed",
        counterparty_id: str | None = None,
        kind: str = "transfer",
    ) -> dict[str, Any]:
        """An incoming bank transfer lands (what the engine's F5 flow matches to invoices); emits webhooks."""
        with self.lock:
            account = (
                self.db["accounts"].get(account_id)
                if account_id
                else next(
                    (a for a in self.db["accounts"].values() if currency in (None, a["currency"])), None
                )
            )
            if account is None:
                raise ValueError(f"no account for {account_id or currency}")
            counterparty = {
                "account_type": "external",
                **({"id": counterparty_id} if counterparty_id else {}),
            }
            leg = {
                "leg_id": str(uuid.uuid4()),
                "account_id": account["id"],
                "amount": money(amount),
                "currency": account["currency"],
                "description": f"Payment from {payer}",
                "counterparty": counterparty,
            }
            leg["balance"] = self._move(account, amount) if state == "completed" else account["balance"]
            return self._new_tx(kind, state, [leg], reference=reference or None)

    @route("POST", "/api/1.0/sandbox/topup")
    def sandbox_topup(self, request: Request) -> Response:
        data = self.body_or_fail(request)
        account = self._account(data.get("account_id"))
        amount = self._amount(data)
        if amount > 10000:
            raise self.fail(400, 3000, "amount must not exceed 10000")
        if data.get("currency") != account["currency"]:
            raise self.fail(400, 3000, "currency must be the account currency")
        state = data.get("state", "completed")
        if state not in ("pending", "completed", "reverted", "failed"):
            raise self.fail(400, 3000, "Invalid state")
        leg = {
            "leg_id": str(uuid.uuid4()),
            "account_id": account["id"],
            "amount": amount,
            "currency": account["currency"],
            "description": "Top-Up by Test",
        }
        leg["balance"] = self._move(account, amount) if state == "completed" else account["balance"]
        tx = self._new_tx("topup", state, [leg], reference=data.get("reference", "Test Top-up"))
        return self.json(self._result(tx))

    @route("POST", "/api/1.0/sandbox/transactions/{tx_id}/{action}")
    def sandbox_transition(self, request: Request, tx_id: str, action: str) -> Response:
        tx = self.db["transactions"].get(tx_id)
        if tx is None:
            raise self.fail(404, 3006, "Transaction not found")
        if action not in SANDBOX_ACTIONS:
            raise self.fail(400, 3000, f"Unknown action {action}")
        if tx["state"] not in OPEN_STATES:
            raise self.fail(400, 3000, f"Transaction is already {tx['state']}; the state is final")
        self._set_state(tx, SANDBOX_ACTIONS[action])
        return self.json(self._result(tx))
