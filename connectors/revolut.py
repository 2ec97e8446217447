"""Revolut Business API 1.0 (docs/architecture.md, Vendors' documentation): accounts, transactions,
counterparties, payments and transfers.

Money moves at most once. `/pay` and `/transfer` carry `request_id` = the Attempt's vendor key; a reused one
is answered 400/3020 and means "already done", so the transaction is read back by `request_id`. A request
that may have landed (timeout, dropped connection, 5xx) is never sent again blindly: it surfaces as
Ambiguous, and the next attempt (`Attempt.recovering`) reads the transaction back before paying.

Revolut allows 60 requests a minute per business; a sliding-window limiter shared by every process (Redis)
keeps us under it, and a 429 pauses every process for its Retry-After. On the embedded default (no Redis)
the limiter counts per process only: with several worker processes the vendor's 429 + Retry-After, which
the base honours, is what remains.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import requests
from sqlalchemy.orm import Session

from syncengine.errors import Ambiguous, Permanent, Retryable, SyncError
from syncengine.idempotency import Attempt, Effect, once
from syncengine.settings import get_settings

from .base import Connector, segment
from .revolut_rate import RateLimiter

log = logging.getLogger(__name__)

DUPLICATE_REQUEST = 3020  # 400 {"code": 3020, "message": "Duplicate request: <request_id>"}
COUNTERPARTY_EXISTS = 3012  # 422, params.counterparty_id names the existing one
# The request_id filter allows a window of at most 14 days; a day of margin for clock skew.
REQUEST_ID_LOOKBACK = timedelta(days=13)


class TokenProvider(Protocol):
    """Hands out the Revolut access token; `connectors.revolut_tokens` in production."""

    def access_token(self) -> str: ...

    def on_unauthorized(self, stale_token: str) -> str | None: ...


class RevolutConnector(Connector):
    """Revolut Business with a bearer token from a TokenProvider; base URL is REVOLUT_URL (…/api/1.0)."""

    service = "revolut"

    def __init__(
        self, base_url: str | None = None, *, tokens: TokenProvider | None = None,
        limiter: RateLimiter | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        base_url = base_url or get_settings().services["revolut"].url
        if not base_url:
            raise Permanent("REVOLUT_URL is not set")
        super().__init__(base_url, **kwargs)
        self._tokens = tokens
        self.limiter = limiter or RateLimiter.for_service(self.service)
        self._sent = threading.local()  # the token each thread last sent, for on_unauthorized

    @classmethod
    def from_settings(cls, **kwargs: Any) -> RevolutConnector:
        """REVOLUT_URL, tokens from `connectors.revolut_tokens` (what `connectors.connector_for`
        calls)."""
        return cls(**kwargs)

    @property
    def tokens(self) -> TokenProvider:
        if self._tokens is None:
            from connectors import (
                revolut_tokens as tokens,  # the module's functions are the production provider
            )

            self._tokens = tokens
        return self._tokens

    # --- hooks --------------------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> None:
        token = _token_call(self.tokens.access_token)
        self._sent.token = token
        headers["Authorization"] = f"Bearer {token}"

    def on_auth_expired(self) -> bool:
        """A 401: ask the provider for one refresh (it refreshes once across processes)."""
        stale = getattr(self._sent, "token", "")
        fresh = _token_call(self.tokens.on_unauthorized, stale)
        return bool(fresh) and fresh != stale

    def classify(self, response: requests.Response) -> SyncError | None:
        error = super().classify(response)
        if response.status_code == 429 and isinstance(error, Retryable):
            self.limiter.pause(error.retry_after if error.retry_after is not None else 1.0)
        return error

    def _send(self, method, path, params, json, data, headers) -> requests.Response:  # type: ignore[no-untyped-def]
        self.limiter.acquire()  # every attempt counts against the vendor's limit, retries included
        return super()._send(method, path, params, json, data, headers)

    # --- reading --------------------------------------------------------------------------------------

    def accounts(self) -> list[dict[str, Any]]:
        return self.get_json("/accounts")

    def transactions(
        self, since: datetime | str | None = None, until: datetime | str | None = None, *,
        account: str | None = None, page_size: int = 100, **filters: Any,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Transactions created in [since, until), newest first, every one once (the sweep's reader)."""
        params = {"from": _iso(since), "account": account, **filters}
        yield from self._pages("/transactions", _compact(params), "to", _iso(until), "count", page_size)

    def transaction(self, tx_id: str) -> dict[str, Any]:
        return self.get_json(f"/transaction/{segment(tx_id, 'uuid', what='revolut transaction id')}")

    def find_by_request_id(self, request_id: str, since: datetime | None = None) -> dict[str, Any] | None:
        """The transaction we created with this request_id, if any (Revolut allows a ≤ 14-day window)."""
        earliest = datetime.now(UTC) - REQUEST_ID_LOOKBACK
        start = max(since, earliest) if since is not None else earliest
        found = self.get_json("/transactions", params={"request_id": request_id, "from": _iso(start)})
        return found[0] if found else None

    def counterparties(self, *, page_size: int = 100, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every counterparty (newest first), paged with `created_before`; filters: name, iban, bic…"""
        yield from self._pages(
            "/counterparties", _compact(filters), "created_before", None, "limit", page_size
        )

    def counterparty(self, counterparty_id: str) -> dict[str, Any]:
        return self.get_json(
            f"/counterparty/{segment(counterparty_id, 'uuid', what='revolut counterparty id')}"
        )

    def _pages(
        self, path: str, params: dict[str, Any], cursor: str, bound: str | None, size_name: str, size: int
    ) -> Iterator[dict[str, Any]]:
        """Newest-first pages whose next upper bound (exclusive) is the last item's `created_at`. The bound
        is set a microsecond after it, so items sharing that instant are read again and de-duplicated
        instead of lost; a full page of one instant (nothing new) steps past it with a warning."""
        previous: set[str] = set()
        while True:
            query = {**params, size_name: size, **({cursor: bound} if bound else {})}
            page = self.get_json(path, params=query)
            fresh = [item for item in page if item["id"] not in previous]
            yield from fresh
            if len(page) < size:
                return
            last = page[-1]["created_at"]
            if not fresh:
                log.warning("revolut %s: over %s items created at %s; some may be skipped", path, size, last)
            bound = _just_after(last) if fresh else last
            previous = {item["id"] for item in page}

    # --- counterparties -------------------------------------------------------------------------------

    def create_counterparty(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST /counterparty; a Revtag added before (422/3012) answers with the existing counterparty."""
        try:
            return self.request("POST", "/counterparty", json=dict(body)).json()
        except Permanent as exc:
            existing = (
                _error_params(exc).get("counterparty_id") if _error_code(exc) == COUNTERPARTY_EXISTS else None
            )
            if existing:
                return self.counterparty(str(existing))
            raise

    def find_counterparty(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """One with the same bank details (a Revtag is found by create's 3012 answer instead)."""
        keys = ("iban", "bic") if body.get("iban") else ("account_no", "sort_code")
        filters = {k: body[k] for k in keys if body.get(k)}
        if not filters:
            return None
        return next(iter(self.get_json("/counterparties", params={**filters, "limit": 1})), None)

    def ensure_counterparty(
        self, effect: Effect, body: Mapping[str, Any], on_finish: Callable[[Session, Any], None] | None = None
    ) -> dict[str, Any]:
        """Create the counterparty once: Revolut has no idempotency key for it, so look up first."""
        marker = body.get("revtag") or body.get("iban") or f"{body.get('account_no')}:{body.get('sort_code')}"
        return self.create_once(
            effect,
            marker=f"counterparty:{marker}",
            find=lambda: self.find_counterparty(body),
            create=lambda _attempt: self.create_counterparty(body),
            on_finish=on_finish,
        )

    # --- moving money ---------------------------------------------------------------------------------

    def pay(
        self, effect: Effect, *, account_id: str, counterparty_id: str, amount: Decimal | float | str,
        currency: str, reference: str | None = None, receiver_account_id: str | None = None,
        charge_bearer: str | None = None, on_finish: Callable[[Session, Any], None] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Pay a counterparty once for this effect; returns {id, state, created_at, request_id…}."""
        receiver = _compact({"counterparty_id": counterparty_id, "account_id": receiver_account_id})
        body = _compact(
            {"account_id": account_id, "receiver": receiver, "amount": _amount(amount), "currency": currency,
             "reference": reference, "charge_bearer": charge_bearer}
        )  # fmt: skip
        return once(effect, lambda attempt: self.send_money("/pay", body, attempt), on_finish=on_finish)

    def transfer(
        self, effect: Effect, *, source_account_id: str, target_account_id: str,
        amount: Decimal | float | str, currency: str, reference: str | None = None,
        on_finish: Callable[[Session, Any], None] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Move money between our own accounts once for this effect."""
        body = _compact(
            {"source_account_id": source_account_id, "target_account_id": target_account_id,
             "amount": _amount(amount), "currency": currency, "reference": reference}
        )  # fmt: skip
        return once(effect, lambda attempt: self.send_money("/transfer", body, attempt), on_finish=on_finish)

    def send_money(self, path: str, body: Mapping[str, Any], attempt: Attempt) -> dict[str, Any]:
        """One attempt at /pay or /transfer (for tasks that compose their own `once`).

        Recovering from an attempt that may have landed, read back first. The POST is not `idempotent`
        for the base's retry loop on purpose: a timeout or 5xx raises Ambiguous instead of being resent
        inline, so the read-back always comes first; 401 and 429 (nothing happened) are retried inline."""
        request_id = attempt.vendor_key
        if attempt.recovering and (found := self.find_by_request_id(request_id)) is not None:
            log.info("revolut %s %s: found on recovery, not sent again", path, request_id)
            return _outcome(found, request_id)
        try:
            answer = self.request("POST", path, json={**body, "request_id": request_id}, idempotent=False)
        except Permanent as exc:
            if _error_code(exc) != DUPLICATE_REQUEST:
                raise
            return self._read_back(request_id)
        return _outcome(answer.json(), request_id)

    def _read_back(self, request_id: str) -> dict[str, Any]:
        """Revolut says the request_id was used: the transaction it made is the answer."""
        found = self.find_by_request_id(request_id)
        if found is None:  # in flight at Revolut, or older than the look-back window
            raise Ambiguous(
                f"revolut: request_id {request_id} already used but not found yet", retry_after=5.0
            )
        log.info("revolut request_id %s already used: read back transaction %s", request_id, found["id"])
        return _outcome(found, request_id)


def _token_call(call: Callable[..., str | None], *args: Any) -> str | None:
    """Token failures in our classes: a refused grant or missing config needs a human, not retries."""
    try:
        return call(*args)
    except SyncError:
        raise
    except Exception as exc:
        from connectors import revolut_tokens as tokens

        if not isinstance(exc, tokens.TokenError):
            raise
        if getattr(exc, "retryable", False):
            raise Retryable(f"revolut token: {exc}", retry_after=5.0) from None
        raise Permanent(f"revolut token: {exc}") from None


def _outcome(tx: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """The same stored answer whether it came from the POST or a read-back."""
    keys = ("id", "state", "created_at", "completed_at", "reason_code")
    return {"request_id": request_id, **{k: tx[k] for k in keys if tx.get(k) is not None}}


def _error_code(exc: Permanent) -> int | None:
    body = exc.body if isinstance(exc.body, dict) else {}
    code = body.get("code")
    return code if isinstance(code, int) else None


def _error_params(exc: Permanent) -> dict[str, Any]:
    params = exc.body.get("params") if isinstance(exc.body, dict) else None
    return params if isinstance(params, dict) else {}


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _amount(value: Decimal | float | str) -> float:
    """Revolut takes a JSON number in major units; Decimal and strings are accepted from our records."""
    amount = Decimal(str(value))
    if not amount.is_finite() or amount <= 0:
        raise Permanent(f"amount must be a positive number, got {value!r}")
    return float(amount)


def _iso(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _just_after(created_at: str) -> str:
    return _iso(datetime.fromisoformat(created_at) + timedelta(microseconds=1)) or created_at
