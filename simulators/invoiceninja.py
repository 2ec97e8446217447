"""Invoice Ninja v5 simulator (spec ``specs/invoiceninja/api-docs.yaml``, paths ``/api/v1/...``).

Entities: clients, products, invoices, payments, expenses, vendors, and webhook subscriptions. State lives in
``self.db[kind][hashed_id]``; ``_seq`` (creation order) is the only private key and is stripped on output.

A token acts as its user: an administrator unless ``add_token`` gives it permissions (``view_client``,
``create_all`` …, as ``User::hasPermission`` reads them). Each request is authorised as its FormRequest does:
view for reads, create for ``POST`` and ``GET …/create`` (a blank entity, nothing saved), edit for ``PUT``,
``GET …/{id}/edit``, bulk actions and deletes; webhooks are an administrator's (``StoreWebhookRequest``).
A refusal is 403 "This action is unauthorized.". Deleting a webhook soft-deletes it: it stops sending but is
still listed, archived (``WebhookController::destroy`` → ``SoftDeletes``; the list is ``withTrashed``).
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators import invoiceninja_filters as filters
from simulators import invoiceninja_model as m
from simulators.base import Abort, Clock, Delivery, Simulator, route
from syncengine.vendors import invoiceninja

KINDS = ("clients", "products", "invoices", "payments", "expenses", "vendors")
SINGULAR = {
    "clients": "client",
    "products": "product",
    "invoices": "invoice",
    "payments": "payment",
    "expenses": "expense",
    "vendors": "vendor",
}
# app/Models/Webhook.php
EVENT_IDS: dict[str, int] = {
    "create_client": 1,
    "create_invoice": 2,
    "create_payment": 4,
    "create_vendor": 5,
    "update_invoice": 8,
    "delete_invoice": 9,
    "update_client": 10,
    "delete_client": 11,
    "delete_payment": 12,
    "update_vendor": 13,
    "delete_vendor": 14,
    "create_expense": 15,
    "update_expense": 16,
    "delete_expense": 17,
    "update_payment": 31,
    "archive_payment": 32,
    "archive_invoice": 33,
    "archive_client": 37,
    "archive_expense": 39,
    "restore_payment": 40,
    "restore_invoice": 41,
    "restore_client": 45,
    "restore_expense": 47,
    "archive_vendor": 48,
    "restore_vendor": 49,
    "create_product": 50,
    "update_product": 51,
    "delete_product": 52,
    "restore_product": 53,
    "archive_product": 54,
    "sent_invoice": 60,
}
# WebhookSingle backoff (lower bounds of each window), seconds before attempts 2..5
RETRY_BACKOFF = (10.0, 30.0, 60.0, 160.0)
INVALID = "The given data was invalid."
UNAUTHORIZED = "This action is unauthorized."
TOKEN = "sim.invoiceninja.token"  # where authenticate() leaves the request's token


class InvoiceNinjaSimulator(Simulator):
    vendor = "invoiceninja"
    webhook_retries = len(RETRY_BACKOFF)  # tries=5
    payment_webhook_delay = 20.0  # create_payment is dispatched with a 20 s delay (scaled like retries)
    duplicate_payment_window = 1.0  # same amount+client within ~1 s -> 429 "Duplicate request."

    engine_credentials = {"INVOICENINJA_TOKEN": "TOKEN"}

    def subscribe_engine(self, receiver: str, secret: str | None) -> None:
        """One webhook per event, each to its own URL with our secret header."""
        for event in invoiceninja.EVENTS:
            self.add_webhook_target(f"{receiver}/webhooks/invoiceninja/{event}", events=[event],
                                    headers={"X-Webhook-Secret": secret})  # fmt: skip

    def __init__(self, clock: Clock | None = None, tokens: tuple[str, ...] = ("TOKEN",)) -> None:
        self.tokens = set(tokens)  # "TOKEN" is the demo server's documented key
        self.permissions: dict[
            str, set[str]
        ] = {}  # token -> its user's permissions; absent: an administrator
        self._seeding = False
        super().__init__(clock)

    # ---- vendor hooks ------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("X-API-TOKEN") in self.tokens:
            request.environ[TOKEN] = request.headers["X-API-TOKEN"]
            return None
        return self.json({"message": "Invalid token", "errors": {}}, status=403)  # TokenAuth.php

    def add_token(self, token: str, permissions: str | None = None) -> None:
        """A token of a user who is not an administrator, with these comma-separated permissions."""
        self.tokens.add(token)
        if permissions is not None:
            self.permissions[token] = {p.strip() for p in permissions.split(",") if p.strip()}

    def _authorize(self, request: Request, action: str, kind: str) -> None:
        """``User::hasPermission``: admins may do anything; others need ``<action>_<entity>`` or
        ``<action>_all``; webhooks only an admin may change."""
        held = self.permissions.get(request.environ.get(TOKEN, ""))
        if held is None or (kind == "webhooks" and action == "view"):
            return
        if kind == "webhooks" or not {f"{action}_{SINGULAR[kind]}", f"{action}_all"} & held:
            raise Abort(self.json({"message": UNAUTHORIZED}, status=403))

    def error_response(self, status: int, message: str) -> Response:
        return self.json({"message": message}, status=status)

    def rate_limited_response(self, retry_after: int) -> Response:
        state = self.rate_limit_state()
        limit = state[0] if state else 500
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(self.now()) + retry_after),
        }
        return self.json({"message": "Too Many Attempts."}, status=429, headers=headers)

    def after_request(self, request: Request, response: Response) -> Response:
        state = self.rate_limit_state()  # self-hosted is Limit::none(): headers only under a simulated limit
        if state and response.status_code != 429:
            response.headers["X-RateLimit-Limit"] = str(state[0])
            response.headers["X-RateLimit-Remaining"] = str(state[1])
        return response

    def webhook_body(self, event: str, payload: Any) -> bytes:
        return json.dumps(payload).encode()  # the bare transformed entity, no event name, no signature

    def webhook_targets_for(self, event: str) -> list[dict[str, Any]]:
        targets = super().webhook_targets_for(event)
        event_id = str(EVENT_IDS.get(event, ""))
        for hook in self.db["webhooks"].values():
            if hook["event_id"] == event_id and not hook["is_deleted"] and not hook["archived_at"]:
                targets.append(
                    {
                        "url": hook["target_url"],
                        "secret": None,
                        "events": [event],
                        "method": hook["rest_method"].upper(),
                        "subscription_id": hook["id"],
                        "headers": {"Accept": "application/json", **(hook["headers"] or {})},
                    }
                )
        return targets

    def webhook_retry_delay(self, delivery: Delivery, status: int | None, error: str | None) -> float | None:
        """WebhookSingle: retry 4xx but 400/404/405/410; 404/405/410 delete the subscription; else stop."""
        if status is None or status < 400 or status >= 500 or status == 400:
            return None
        if status in (404, 405, 410):
            sub = delivery.target.get("subscription_id")
            with self.lock:
                if sub in self.db["webhooks"]:
                    self._trash_webhook(self.db["webhooks"][sub])
            return None
        if delivery.attempt > self.webhook_retries:
            return None
        return RETRY_BACKOFF[delivery.attempt - 1] * self.webhook_interval_scale

    def seed(self, data: Any) -> dict[str, list[str]]:
        """``{"clients": [request-shaped records] or N, ...}``; records may fix id/created_at/updated_at."""
        created: dict[str, list[str]] = {}
        with self.lock:
            self._seeding = True
            try:
                self._seed_all(data, created)
            finally:
                self._seeding = False
        return created

    def _seed_all(self, data: Any, created: dict[str, list[str]]) -> None:
        for kind in (*KINDS, "webhooks"):
            items = (data or {}).get(kind)
            if isinstance(items, int):
                items = [self._generated(kind, i) for i in range(items)]
            for item in items or []:
                created.setdefault(kind, []).append(self._seed_one(kind, dict(item)))

    # ---- plumbing ---------------------------------------------------------------------------------

    def _next_hash(self) -> str:
        return m.hash_id(self.db.next_id("_ids"))

    def _ts(self) -> int:
        return int(self.now())

    def _kind(self, kind: str) -> str:
        if kind not in KINDS:
            raise Abort(self.error_response(404, "Not found"))
        return kind

    def _get(self, kind: str, entity_id: str) -> dict[str, Any]:
        record = self.db[kind].get(entity_id)
        if record is None:
            raise Abort(self.error_response(404, "Record not found"))  # model binding failure
        return record

    def _invalid(self, request: Request, errors: dict[str, list[str]]) -> Abort:
        """Laravel answers JSON 422 only when the request expects JSON; otherwise it redirects back."""
        accept = request.headers.get("Accept", "")
        ajax = request.headers.get("X-Requested-With") == "XMLHttpRequest"
        if not (ajax or "json" in accept.split(",")[0]):
            return Abort(Response(b"", status=302, headers={"Location": request.host_url}))
        return Abort(self.json({"message": INVALID, "errors": errors}, status=422))

    def _body(self, request: Request) -> dict[str, Any]:
        body = self.body(request)
        if body is None and request.get_data():
            raise Abort(self.error_response(400, "Invalid JSON payload"))
        if body is not None and not isinstance(body, dict):
            raise self._invalid(request, {"body": ["The body must be an object."]})
        return body or {}

    def out(self, kind: str, record: dict[str, Any], include: set[str] | None = None) -> dict[str, Any]:
        data = {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}
        include = include or set()
        if kind == "invoices" and "client" in include and record["client_id"] in self.db["clients"]:
            data["client"] = self.out("clients", self.db["clients"][record["client_id"]])
        if kind == "payments" and "client" in include and record["client_id"] in self.db["clients"]:
            data["client"] = self.out("clients", self.db["clients"][record["client_id"]])
        return data

    def _wrap(self, request: Request, data: Any, meta: dict | None = None) -> Response:
        index = request.args.get("index", "data")
        if index == "none":
            return self.json(data)
        body: dict[str, Any] = {index: data}
        if meta is not None:
            body["meta"] = meta
        return self.json(body)

    def _event(self, kind: str, action: str, record: dict[str, Any]) -> None:
        """Observers send the entity with includes: invoices add ``client``; payments ``invoices,client``."""
        include = {"client"} if kind in ("invoices", "payments") else set()
        delay = (
            self.payment_webhook_delay * self.webhook_interval_scale
            if (kind, action) == ("payments", "create")
            else 0.0
        )
        self.emit(f"{action}_{SINGULAR[kind]}", self.out(kind, record, include), delay=delay)

    # ---- list -------------------------------------------------------------------------------------

    @route("GET", "/api/v1/ping")
    def ping(self, request: Request) -> Response:
        """``PingController``: the token's company and user, by name."""
        return self.json({"company_name": "Simulated Company", "user_name": "Sim User"})

    @route("GET", "/api/v1/{kind}")
    def list_entities(self, request: Request, kind: str) -> Response:
        kind = "webhooks" if kind == "webhooks" else self._kind(kind)
        self._authorize(request, "view", kind)
        return self._list(request, kind)

    def _list(self, request: Request, kind: str) -> Response:
        args = request.args
        rows = sorted(self.db[kind].values(), key=lambda r: r["_seq"])
        rows = [r for r in rows if self._matches(r, args, kind)]
        if args.get("sort"):
            column, _, direction = args["sort"].partition("|")
            # The table's `id` is its autoincrement key (the hashid only encodes it): `_seq` here.
            column = "_seq" if column == "id" else column
            if rows and column in rows[0]:
                rows.sort(key=lambda r: (r[column], r["_seq"]), reverse=direction.lower() == "desc")
        try:
            per_page = min(max(int(args.get("per_page", 20)), 1), 5000)  # BaseController::resolveQueryLimit
            page = max(int(args.get("page", 1)), 1)
        except ValueError:
            per_page, page = 20, 1
        total = len(rows)
        chunk = rows[(page - 1) * per_page : page * per_page]
        pages = max(1, math.ceil(total / per_page))
        links: dict[str, str] = {}  # Fractal prints [] when empty; the spec types it as an object
        base = f"{request.base_url}?per_page={per_page}&page="
        if page > 1:
            links["previous"] = f"{base}{page - 1}"
        if page < pages:
            links["next"] = f"{base}{page + 1}"
        pagination = {
            "total": total,
            "count": len(chunk),
            "per_page": per_page,
            "current_page": page,
            "total_pages": pages,
            "links": links,
        }
        include = set(filter(None, args.get("include", "").split(",")))
        return self._wrap(request, [self.out(kind, r, include) for r in chunk], {"pagination": pagination})

    def _matches(self, r: dict[str, Any], args: Any, kind: str) -> bool:
        for key in ("updated_at", "created_at"):
            if args.get(key):
                since = filters.parse_time(args[key])
                if since is not None and r[key] < since:
                    return False
        if args.get("is_deleted") and r["is_deleted"] != (args["is_deleted"].lower() in ("true", "1")):
            return False
        if args.get("status") and not filters.status_matches(r, set(args["status"].split(","))):
            return False
        for key in ("client_id", "vendor_id", "number", "product_key", "id_number"):
            if args.get(key) and key in r and r[key] != args[key]:
                return False
        if args.get("status_id") and "status_id" in r and r["status_id"] not in args["status_id"].split(","):
            return False
        if args.get("client_status") and kind == "invoices":
            today = datetime.fromtimestamp(self.now(), tz=UTC).date()
            if not filters.client_status_matches(r, set(args["client_status"].split(",")), today):
                return False
        if args.get("filter"):
            needle = args["filter"].lower()
            fields = ("name", "number", "id_number", "product_key", "notes", "transaction_reference")
            # ClientFilters::filter also searches the client's contacts (names and email).
            contacts = " ".join(f"{c.get('first_name')} {c.get('last_name')} {c.get('email')}"
                                for c in r.get("contacts") or [])  # fmt: skip
            if (
                not any(needle in str(r.get(f, "")).lower() for f in fields)
                and needle not in contacts.lower()
            ):
                return False
        return True

    # ---- read / write -----------------------------------------------------------------------------

    @route("GET", "/api/v1/{kind}/{entity_id}")
    def show(self, request: Request, kind: str, entity_id: str) -> Response:
        kind = "webhooks" if kind == "webhooks" else self._kind(kind)
        if entity_id == "create":  # `Create<Entity>Request`: a blank entity for a create form, nothing saved
            self._authorize(request, "create", kind)
            return self._wrap(request, self.out(kind, m.new_record(kind)))
        self._authorize(request, "view", kind)
        include = set(filter(None, request.args.get("include", "").split(",")))
        return self._wrap(request, self.out(kind, self._get(kind, entity_id), include))

    @route("GET", "/api/v1/{kind}/{entity_id}/edit")
    def edit_form(self, request: Request, kind: str, entity_id: str) -> Response:
        """`Edit<Entity>Request`: the entity for an edit form, if the user may edit it."""
        kind = "webhooks" if kind == "webhooks" else self._kind(kind)
        record = self._get(kind, entity_id)
        self._authorize(request, "edit", kind)
        return self._wrap(request, self.out(kind, record))

    @route("POST", "/api/v1/{kind}")
    def create(self, request: Request, kind: str) -> Response:
        self._authorize(request, "create", "webhooks" if kind == "webhooks" else self._kind(kind))
        if kind == "webhooks":
            return self._wrap(request, self.out("webhooks", self._save_webhook(request, None)))
        kind = self._kind(kind)
        record = self._create(request, kind, self._body(request))
        return self._wrap(request, self.out(kind, record))

    @route("PUT", "/api/v1/{kind}/{entity_id}")
    def update(self, request: Request, kind: str, entity_id: str) -> Response:
        self._authorize(request, "edit", "webhooks" if kind == "webhooks" else self._kind(kind))
        if kind == "webhooks":
            hook = self._save_webhook(request, self._get("webhooks", entity_id))
            return self._wrap(request, self.out("webhooks", hook))
        kind = self._kind(kind)
        record = self._get(kind, entity_id)
        data = {k: v for k, v in self._body(request).items() if k != "client_id"}  # owner is immutable
        self._check_unique(request, kind, data, record["id"])
        self._fill(request, kind, record, data)
        if kind == "invoices":
            self._invoice_after_save(request, record, old_amount=record["_amount"])
        record["updated_at"] = self._ts()
        self._event(kind, "update", record)
        return self._wrap(request, self.out(kind, record))

    @route("DELETE", "/api/v1/{kind}/{entity_id}")
    def delete(self, request: Request, kind: str, entity_id: str) -> Response:
        self._authorize(request, "edit", "webhooks" if kind == "webhooks" else self._kind(kind))
        if kind == "webhooks":
            hook = self._get("webhooks", entity_id)
            self._trash_webhook(hook)
            return self._wrap(request, self.out("webhooks", hook))
        kind = self._kind(kind)
        record = self._get(kind, entity_id)
        self._action(kind, record, "delete")
        return self._wrap(request, self.out(kind, record))

    @route("POST", "/api/v1/{kind}/bulk")
    def bulk(self, request: Request, kind: str) -> Response:
        """``{"action": "archive|restore|delete" (+ invoices: mark_paid|mark_sent), "ids": [...]}``."""
        kind_ = "webhooks" if kind == "webhooks" else self._kind(kind)
        self._authorize(request, "edit", kind_)
        body = self._body(request)
        action, ids = body.get("action"), body.get("ids")
        allowed = {"archive", "restore", "delete"}
        if kind_ == "invoices":
            allowed |= {"mark_paid", "mark_sent"}
        if action not in allowed or not isinstance(ids, list):
            raise self._invalid(request, {"action": ["The selected action is invalid."]})
        records = [self._get(kind_, i) for i in ids]
        for record in records:
            if kind_ == "webhooks":
                self._lifecycle(record, action)
            else:
                self._action(kind_, record, action)
        return self._wrap(request, [self.out(kind_, r) for r in records])

    @route("GET", "/api/v1/invoices/{entity_id}/{action}")
    def invoice_action(self, request: Request, entity_id: str, action: str) -> Response:
        if action not in ("mark_paid", "mark_sent", "archive", "restore", "delete"):
            return self.error_response(400, "Action not supported")
        self._authorize(request, "edit", "invoices")
        record = self._get("invoices", entity_id)
        self._action("invoices", record, action)
        return self._wrap(request, self.out("invoices", record))

    # ---- entity logic -----------------------------------------------------------------------------

    def _create(self, request: Request, kind: str, data: dict[str, Any], **fixed: Any) -> dict[str, Any]:
        record = m.new_record(kind)
        now = self._ts()
        record.update(
            id=fixed.get("id") or self._next_hash(),
            created_at=now,
            updated_at=now,
            _seq=self.db.next_id(kind),
            _amount=0.0,
        )
        if kind == "payments":
            return self._create_payment(request, record, data)
        self._check_unique(request, kind, data, None)
        if kind == "invoices":
            self._check_client(request, data)
            record["date"] = datetime.fromtimestamp(now, tz=UTC).date().isoformat()
        self._fill(request, kind, record, data)
        if kind in ("clients", "vendors"):
            record["contacts"] = m.build_contacts(data.get("contacts") or [], self._next_hash, now)
            record["client_hash" if kind == "clients" else "vendor_hash"] = self._next_hash() * 4
        if not record.get("number") and kind != "products":
            record["number"] = f"{self.db.next_id(f'_number_{kind}'):04d}"
        if "display_name" in record:
            record["display_name"] = record["name"]
        self.db[kind][record["id"]] = record
        if kind == "invoices":
            self._invoice_after_save(request, record, old_amount=0.0)
        self._event(kind, "create", record)
        return record

    def _fill(self, request: Request, kind: str, record: dict[str, Any], data: dict[str, Any]) -> None:
        errors = m.apply_input(record, data, kind)
        if errors:
            raise self._invalid(request, errors)
        if kind == "invoices" and "line_items" in data:
            record["line_items"] = m.build_items(data["line_items"])
        if kind in ("clients", "vendors") and "contacts" in data and record.get("contacts"):
            record["contacts"] = m.build_contacts(data["contacts"], self._next_hash, self._ts())
        if "name" in data and "display_name" in record:
            record["display_name"] = record["name"]

    def _check_unique(self, request: Request, kind: str, data: dict[str, Any], own_id: str | None) -> None:
        fields = {
            "clients": ("number", "id_number"),
            "invoices": ("number",),
            "vendors": ("number",),
            "expenses": ("number",),
        }.get(kind, ())
        errors = {}
        for f in fields:
            value = data.get(f)
            if value and any(r[f] == value and r["id"] != own_id for r in self.db[kind].values()):
                errors[f] = [f"The {f.replace('_', ' ')} has already been taken."]
        if errors:
            raise self._invalid(request, errors)

    def _check_client(self, request: Request, data: dict[str, Any]) -> None:
        if not data.get("client_id"):
            raise self._invalid(request, {"client_id": ["The client id field is required."]})
        if data["client_id"] not in self.db["clients"]:
            raise self._invalid(request, {"client_id": ["The selected client id is invalid."]})

    def _invoice_after_save(self, request: Request, inv: dict[str, Any], old_amount: float) -> None:
        m.compute_totals(inv)
        client = self.db["clients"][inv["client_id"]]
        if inv["status_id"] != m.DRAFT:
            client["balance"] = round(client["balance"] + inv["amount"] - old_amount, 2)
        m.refresh_status(inv)
        inv["_amount"] = inv["amount"]
        flags = request.args
        if flags.get("mark_sent") == "true" or flags.get("send_email") == "true":
            self._mark_sent(inv)
        if flags.get("paid") == "true":
            self._mark_paid(inv)

    def _mark_sent(self, inv: dict[str, Any]) -> None:
        if inv["status_id"] != m.DRAFT or inv["is_deleted"]:
            return  # MarkSent::run returns early
        inv["status_id"] = m.SENT
        m.refresh_status(inv)
        client = self.db["clients"][inv["client_id"]]
        client["balance"] = round(client["balance"] + inv["amount"], 2)
        inv["updated_at"] = client["updated_at"] = self._ts()
        self._event("invoices", "sent", inv)

    def _mark_paid(self, inv: dict[str, Any]) -> None:
        if inv["status_id"] in (m.PAID, m.CANCELLED, m.REVERSED) or inv["is_deleted"]:
            raise Abort(self.error_response(400, "invoice_cannot_be_marked_paid"))
        self._mark_sent(inv)
        payment = m.new_record("payments")
        now = self._ts()
        payment.update(
            id=self._next_hash(),
            created_at=now,
            updated_at=now,
            _seq=self.db.next_id("payments"),
            client_id=inv["client_id"],
            amount=inv["balance"],
            date=datetime.fromtimestamp(now, tz=UTC).date().isoformat(),
            number=f"{self.db.next_id('_number_payments'):04d}",
        )
        self.db["payments"][payment["id"]] = payment
        self._apply(payment, [(inv, inv["balance"])])
        self._event("payments", "create", payment)

    def _apply(self, payment: dict[str, Any], parts: list[tuple[dict[str, Any], float]]) -> None:
        """Apply payment parts to invoices (drafts are marked sent first) and move client balances."""
        client = self.db["clients"][payment["client_id"]]
        for inv, amount in parts:
            self._mark_sent(inv)
            inv["paid_to_date"] = round(inv["paid_to_date"] + amount, 2)
            m.refresh_status(inv)
            inv["updated_at"] = self._ts()
            payment["invoices"].append({"invoice_id": inv["id"], "amount": f"{amount:.2f}"})
            client["balance"] = round(client["balance"] - amount, 2)
        payment["applied"] = round(sum(a for _, a in parts), 2)
        client["paid_to_date"] = round(client["paid_to_date"] + payment["amount"], 2)
        client["updated_at"] = self._ts()

    def _create_payment(self, request: Request, record: dict[str, Any], data: dict[str, Any]) -> dict:
        """StorePaymentRequest: duplicate guard (429), then validation (422), then apply to invoices."""
        key = (data.get("client_id"), str(data.get("amount")))
        last = self.db["_recent_payments"].get(key)
        if not self._seeding and last is not None and self.now() - last < self.duplicate_payment_window:
            raise Abort(self.error_response(429, "Duplicate request."))
        self.db["_recent_payments"][key] = self.now()
        errors: dict[str, list[str]] = {}
        client_id = data.get("client_id")
        if not client_id:
            errors["client_id"] = ["The client id field is required."]
        elif client_id not in self.db["clients"]:
            errors["client_id"] = ["The selected client id is invalid."]
        ikey = data.get("idempotency_key")
        if ikey is not None and (not isinstance(ikey, str) or len(ikey) > 64):
            errors["idempotency_key"] = ["The idempotency key may not be greater than 64 characters."]
        elif ikey and any(p["idempotency_key"] == ikey for p in self.db["payments"].values()):
            errors["idempotency_key"] = ["The idempotency key has already been taken."]
        parts = self._payment_parts(data.get("invoices") or [], client_id, errors)
        errors.update(m.apply_input(record, {k: v for k, v in data.items() if k != "client_id"}, "payments"))
        if errors:
            raise self._invalid(request, errors)
        record["client_id"] = client_id
        if "amount" not in data:
            record["amount"] = round(sum(a for _, a in parts), 2)
        record["date"] = record["date"] or datetime.fromtimestamp(self.now(), tz=UTC).date().isoformat()
        record["number"] = record["number"] or f"{self.db.next_id('_number_payments'):04d}"
        self.db["payments"][record["id"]] = record
        self._apply(record, parts)
        self._event("payments", "create", record)
        return record

    def _payment_parts(self, items: list[Any], client_id: Any, errors: dict[str, list[str]]) -> list[tuple]:
        parts = []
        for i, item in enumerate(items):
            inv = self.db["invoices"].get((item or {}).get("invoice_id"))
            if inv is None or inv["client_id"] != client_id or inv["is_deleted"]:
                errors[f"invoices.{i}.invoice_id"] = [f"The selected invoices.{i}.invoice_id is invalid."]
                continue
            try:
                amount = float(item.get("amount"))
            except (TypeError, ValueError):
                errors[f"invoices.{i}.amount"] = [f"The invoices.{i}.amount field is required."]
                continue
            due = inv["amount"] - inv["paid_to_date"]
            if amount > round(due, 2) + 1e-9:
                errors["invoices"] = ["Amount cannot be greater than the invoice balance."]
            parts.append((inv, amount))
        return parts

    def _lifecycle(self, record: dict[str, Any], action: str) -> bool:
        """BaseRepository archive/restore/delete: archiving a trashed (archived or deleted) entity, restoring
        a live one or deleting a deleted one returns early, unsaved and with no event; restore also clears
        `is_deleted` (`$fromDeleted`). True when the entity changed."""
        now = self._ts()
        if action == "archive":
            if record["archived_at"] or record["is_deleted"]:
                return False
            record["archived_at"] = now
        elif action == "restore":
            if not record["archived_at"] and not record["is_deleted"]:
                return False
            record.update(archived_at=0, is_deleted=False)
        elif action == "delete":
            if record["is_deleted"]:
                return False
            record.update(is_deleted=True, archived_at=record["archived_at"] or now)
        record["updated_at"] = now
        return True

    def _action(self, kind: str, record: dict[str, Any], action: str) -> None:
        if action == "mark_paid":
            self._mark_paid(record)
        elif action == "mark_sent":
            self._mark_sent(record)
        else:
            if action == "delete" and kind == "payments" and not record["is_deleted"]:
                self._reverse_payment(record)
            if self._lifecycle(record, action):
                self._event(kind, action, record)

    def _reverse_payment(self, payment: dict[str, Any]) -> None:
        """Deleting a payment puts the applied amounts back on the invoices and the client."""
        client = self.db["clients"].get(payment["client_id"])
        for part in payment["invoices"]:
            inv = self.db["invoices"].get(part["invoice_id"])
            if inv is None:
                continue
            amount = float(part["amount"])
            inv["paid_to_date"] = round(inv["paid_to_date"] - amount, 2)
            m.refresh_status(inv)
            inv["updated_at"] = self._ts()
            if client:
                client["balance"] = round(client["balance"] + amount, 2)
        if client:
            client["paid_to_date"] = round(client["paid_to_date"] - payment["amount"], 2)

    # ---- webhook subscriptions --------------------------------------------------------------------

    def _trash_webhook(self, hook: dict[str, Any]) -> None:
        """``$webhook->delete()`` with SoftDeletes: ``deleted_at`` (``archived_at`` in the API) is set; the
        row stays, listed, and sends nothing."""
        hook["archived_at"] = hook["archived_at"] or self._ts()

    def _save_webhook(self, request: Request, hook: dict[str, Any] | None) -> dict[str, Any]:
        data = self._body(request)
        errors: dict[str, list[str]] = {}
        merged = {**(hook or {}), **data}
        if not merged.get("target_url"):
            errors["target_url"] = ["The target url field is required."]
        if not merged.get("event_id"):
            errors["event_id"] = ["The event id field is required."]
        elif int(str(merged["event_id"])) not in set(EVENT_IDS.values()):
            errors["event_id"] = ["The selected event id is invalid."]
        if str(merged.get("rest_method", "post")).lower() not in ("post", "put"):
            errors["rest_method"] = ["The selected rest method is invalid."]
        if errors:
            raise self._invalid(request, errors)
        if hook is None:
            now = self._ts()
            hook = m.new_record("webhooks")
            hook.update(id=self._next_hash(), created_at=now, _seq=self.db.next_id("webhooks"))
            self.db["webhooks"][hook["id"]] = hook
        for key in ("target_url", "format", "rest_method"):
            if key in data:
                hook[key] = str(data[key])
        if "event_id" in data:
            hook["event_id"] = str(data["event_id"])
        if "headers" in data:
            hook["headers"] = dict(data["headers"] or {})
        hook["rest_method"] = hook["rest_method"].lower()
        hook["updated_at"] = self._ts()
        return hook

    # ---- seeding ----------------------------------------------------------------------------------

    def _seed_one(self, kind: str, item: dict[str, Any]) -> str:
        fixed = {k: item.pop(k) for k in ("id", "created_at", "updated_at") if k in item}
        flags = {k: "true" for k in ("mark_sent", "paid") if item.pop(k, False)}  # invoice query flags
        request = Request.from_values(query_string=flags, headers={"X-Requested-With": "XMLHttpRequest"})
        if kind == "webhooks":
            request = Request.from_values(json=item, headers={"X-Requested-With": "XMLHttpRequest"})
            record = self._save_webhook(request, None)
        else:
            try:
                record = self._create(request, kind, item, id=fixed.get("id"))
            except Abort as exc:
                raise ValueError(exc.response.get_data(as_text=True)) from None
        if "id" in fixed and record["id"] != fixed["id"]:
            self.db[kind][fixed["id"]] = self.db[kind].pop(record["id"])
            record["id"] = fixed["id"]
        for key in ("created_at", "updated_at"):
            if key in fixed:
                record[key] = int(fixed[key])
        return record["id"]

    def _generated(self, kind: str, i: int) -> dict[str, Any]:
        n = i + 1
        if kind == "clients":
            return {
                "name": f"Client {n}",
                "contacts": [{"first_name": "C", "last_name": str(n), "email": f"c{n}@example.test"}],
            }
        if kind == "products":
            return {"product_key": f"SKU{n}", "notes": f"Product {n}", "price": 10.0 * n}
        if kind == "vendors":
            return {"name": f"Vendor {n}"}
        if kind == "expenses":
            return {"amount": 5.0 * n, "public_notes": f"Expense {n}"}
        if kind == "invoices":
            client = next(iter(self.db["clients"].values()), None) or self._create(
                Request.from_values(), "clients", {"name": "Seed client"}
            )
            return {
                "client_id": client["id"],
                "line_items": [{"product_key": f"SKU{n}", "cost": 10.0 * n, "quantity": 1}],
            }
        raise ValueError(f"cannot generate {kind}")
