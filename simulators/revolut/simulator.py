"""The Revolut Business simulator: the parts put together, plus accounts and seeding.

Behaviour follows the published OpenAPI document (``shared/specs/revolut/business.yaml``) and Revolut's guides
(docs/architecture.md, Vendors' documentation); OAuth is in ``oauth.py``, webhooks v2 in ``webhooks.py``,
transactions and payments in ``ledger.py``, counterparties in ``counterparties.py``. The documented limit of
60 requests a minute is on by default (``rate_limit_per_minute``, or the ``rate_limit`` fault, changes it).
Incoming money arrives through the sandbox's ``POST /sandbox/topup``, through ``receive_payment()`` or the
``incoming`` seed key."""

from __future__ import annotations

import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import Clock, route
from simulators.revolut.common import iso
from simulators.revolut.counterparties import RevolutCounterparties
from simulators.revolut.ledger import RevolutLedger, money
from simulators.revolut.oauth import DEFAULT_SCOPES, RevolutOAuth
from syncengine.vendors import revolut


class RevolutSimulator(RevolutLedger, RevolutCounterparties, RevolutOAuth):
    """Revolut Business API 1.0 plus webhooks v2, in sandbox flavour (``oa_sand_`` tokens, sandbox routes)."""

    def subscribe_engine(self, receiver: str, secret: str | None) -> None:
        """A v2 webhook, signed (Revolut chooses its secret; here the deployment's)."""
        self.add_webhook_target(f"{receiver}/webhooks/revolut", secret=secret, events=list(revolut.EVENTS))

    def __init__(
        self,
        clock: Clock | None = None,
        clients: list[dict[str, Any]] | None = None,
        rate_limit_per_minute: int | None = 60,
    ) -> None:
        """``clients``: ``[{"client_id", "redirect_uri", "certificate" (PEM), "scopes"?}]`` as uploaded in
        the Business app; ``rate_limit_per_minute=None`` switches the documented limit off."""
        super().__init__(clock)
        self.clients = {}
        for client in clients or []:
            self.configure_client(**client)
        self.rate_limit_per_minute = rate_limit_per_minute
        self.on_reset()

    def on_reset(self) -> None:
        """Fresh business: two accounts, no tokens, the documented rate limit."""
        self.refresh_count = 0
        if self.rate_limit_per_minute:
            self.faults["rate_limit"] = {"limit": self.rate_limit_per_minute, "window": 60}
        self.add_account(name="Main", currency="EUR", balance=10000.0)
        self.add_account(name="GBP", currency="GBP", balance=2500.0)

    # ---- seeding ----------------------------------------------------------------------------------

    def seed(self, data: Any) -> Any:
        """Keys: oauth, tokens, accounts, counterparties, transactions (history), incoming (now), webhooks."""
        handlers = {
            "oauth": lambda item: self.configure_client(**item).client_id,
            "tokens": self._seed_token,
            "accounts": lambda item: self.add_account(**item)["id"],
            "counterparties": self._seed_counterparty,
            "transactions": lambda item: self._store_tx(self._fill_tx(item))["id"],
            "incoming": lambda item: self.receive_payment(**item)["id"],
            "webhooks": self._seed_webhook,
        }
        unknown = set(data or {}) - set(handlers)
        if unknown:
            raise ValueError(f"unknown seed keys: {sorted(unknown)}")
        with self.lock:
            out: dict[str, list[Any]] = {}
            for key, items in (data or {}).items():
                items = items if isinstance(items, list) else [items]
                out[key] = [handlers[key](dict(item)) for item in items]
            return out

    def _seed_token(self, item: dict[str, Any]) -> str:
        """Known tokens, as if consent had happened: ``{"access_token"?, "refresh_token"?, "scopes"?}``."""
        scopes = tuple(item.get("scopes", DEFAULT_SCOPES))
        grant = self._grant(
            item.get("client_id", "sim-client"), scopes, item.get("refresh_token"), item.get("access_token")
        )
        return grant["refresh_token"]

    def _seed_counterparty(self, item: dict[str, Any]) -> str:
        now = iso(self.now())
        item.setdefault("id", str(uuid.uuid4()))
        item.setdefault("state", "created")
        item.setdefault("created_at", now)
        item.setdefault("updated_at", item["created_at"])
        self.db["counterparties"][item["id"]] = item
        return item["id"]

    def _seed_webhook(self, item: dict[str, Any]) -> str:
        hook = {
            "id": item.get("id", str(uuid.uuid4())),
            "url": item["url"],
            "events": list(item.get("events", ["TransactionCreated", "TransactionStateChanged"])),
            "secret": item.get("signing_secret") or self._new_secret(),
            "old_secrets": [],
        }
        self.db["webhooks"][hook["id"]] = hook
        return hook["id"]

    def add_account(
        self, name: str = "Main", currency: str = "EUR", balance: float = 0.0, **extra: Any
    ) -> dict[str, Any]:
        now = iso(self.now())
        account = {
            "id": str(uuid.uuid4()),
            "name": name,
            "balance": money(balance),
            "currency": currency,
            "state": "active",
            "public": False,
            "created_at": now,
            "updated_at": now,
            **extra,
        }
        with self.lock:
            self.db["accounts"][account["id"]] = account
        return account

    # ---- accounts ---------------------------------------------------------------------------------

    @route("GET", "/api/1.0/accounts")
    def list_accounts(self, request: Request) -> Response:
        return self.json(list(self.db["accounts"].values()))

    @route("GET", "/api/1.0/accounts/{account_id}")
    def get_account(self, request: Request, account_id: str) -> Response:
        return self.json(self._account(account_id))
