"""The ERPNext v15 simulator's HTTP surface: API v2 (``/api/v2``) and v1 (``/api/resource``, ``/api/method``).

Auth is ``Authorization: token <api_key>:<api_secret>`` (or Basic of the same pair): a wrong pair is a 401
AuthenticationError, no credentials make the caller Guest (403 on documents), and a user can be limited to
some doctypes and permission types (403 PermissionError elsewhere; ``frappe.client.has_permission`` tells).
v2 answers ``{"data": …}`` plus the request's ``messages`` when it printed any; v1 resources ``{"data": …}``
and v1 methods ``{"message": …}``. Whitelisted methods read their arguments from the query string (all
strings) or the body (JSON keeps numbers). Frappe has no rate limit unless configured; the base's
``rate_limit`` fault stands for the site's ``rate_limit`` setting and answers like ``frappe/rate_limiter.py``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import Clock, route
from simulators.erpnext.doctypes import DOCTYPES
from simulators.erpnext.documents import SITE_TIME_ZONE, CustomFields, Doc
from simulators.erpnext.errors import FrappeError, invalid, printed
from simulators.erpnext.query import loads, select
from simulators.erpnext.webhooks import FrappeWebhooks
from syncengine.vendors import erpnext

PAYMENT_ENTRY_METHOD = "erpnext.accounts.doctype.payment_entry.payment_entry.get_payment_entry"
DOC_METHODS = ("submit", "cancel")
PTYPES = ("read", "write", "create", "delete", "submit", "cancel", "amend", "report")
Permissions = list[str] | dict[str, list[str]] | None  # doctypes (every permission), or doctype -> ptypes


def _v2(request: Request) -> bool:
    return request.path.startswith("/api/v2/")


def frappe_api(fn: Callable[..., Any]) -> Callable[..., Response]:
    """One request: errors rendered per API version with the message log; webhooks and commit hooks run
    only when it succeeded."""

    @functools.wraps(fn)
    def wrapper(self: ERPNextSimulator, request: Request, **kw: Any) -> Response:
        self.begin()
        try:
            response = fn(self, request, **kw)
        except FrappeError as exc:
            body = exc.body(_v2(request), self._messages)
            self.begin()
            return self.json(body, status=exc.status)
        self.flush_outbox()
        return response

    return wrapper


class ERPNextSimulator(FrappeWebhooks):
    """ERPNext v15 over a dict store; see ``doctypes.py`` for what is modelled."""

    engine_credentials = {
        "ERPNEXT_API_KEY": "erp-api-key", "ERPNEXT_API_SECRET": "erp-api-secret", "ERPNEXT_COMPANY": "My Co",
        "ERPNEXT_TAX_ACCOUNT": "VAT - MC", "ERPNEXT_BANK_ACCOUNT": "Bank - MC",
    }  # fmt: skip

    def subscribe_engine(self, receiver: str, secret: str | None) -> None:
        """One signed Webhook per (doctype, document event)."""
        for event in erpnext.EVENTS:
            self.add_webhook_target(f"{receiver}/webhooks/erpnext/{event.split(':')[1]}", secret=secret,
                                    events=[event])  # fmt: skip

    def __init__(
        self, clock: Clock | None = None, api_key: str = "erp-api-key",
        api_secret: str = "erp-api-secret",  # noqa: S107 - the simulator's well-known test credentials
        custom_fields: CustomFields | None = None, time_zone: str = SITE_TIME_ZONE,
        accounts: tuple[tuple[str, str | None, int, str, str], ...] | None = None,
    ) -> None:  # fmt: skip
        """``custom_fields``: {doctype: [field name or Custom Field document]} the site has (e.g.
        syncengine.vendors.erpnext.custom_field_seed()); ``accounts``: the accounts beyond the Standard
        chart (default: a leaf tax and a leaf bank account, as `syncengine setup` makes them; ``()`` for a
        new site); ``time_zone``: the site's, which its stamps are written in."""
        if accounts is not None:
            self.setup_accounts = accounts
        super().__init__(clock, custom_fields, time_zone)
        self.users: dict[str, dict[str, Any]] = {}
        self.add_user(api_key, api_secret)

    def add_user(
        self, api_key: str, api_secret: str, user: str = "Administrator", doctypes: Permissions = None
    ) -> None:
        """``doctypes`` limits what the user may do (role permissions): a list of doctypes allows every
        permission on them, a dict only the permission types named; None means everything."""
        if isinstance(doctypes, list):
            doctypes = {doctype: list(PTYPES) for doctype in doctypes}
        with self.lock:
            self.users[api_key] = {
                "api_secret": api_secret,
                "user": user,
                "doctypes": None if doctypes is None else {k: set(v) for k, v in doctypes.items()},
            }

    # ---- Python-side actions (what a person does in the desk UI) ----------------------------------

    def create(self, doctype: str, data: Doc, user: str = "Administrator") -> Doc:
        """Insert as the desk would, webhooks included; returns the stored document."""
        return self._act(lambda: self.insert(doctype, data, user))

    def act_on(self, doctype: str, name: str, action: str, user: str = "Administrator") -> Doc | None:
        """``submit``, ``cancel`` or ``delete`` a document as the desk would, webhooks included."""
        actions = {"submit": self.submit, "cancel": self.cancel, "delete": self.delete}
        return self._act(lambda: actions[action](self.get_doc(doctype, name), user))

    def _act(self, fn: Callable[[], Any]) -> Any:
        with self.lock:
            self.begin()
            result = fn()
            self.flush_outbox()
            return result

    def seed(self, data: Any) -> Any:
        """Keys: ``users``, ``custom_fields`` ({doctype: [field name or Custom Field document]}) and doctype
        names (lists of documents, inserted like a data import: no webhooks, given ``creation``/``modified``
        kept)."""
        data = data or {}
        unknown = set(data) - {"users", "custom_fields", *DOCTYPES}
        if unknown:
            raise ValueError(f"unknown seed keys: {sorted(unknown)}")
        out: dict[str, Any] = {}
        with self.lock:
            for user in data.get("users", []):
                self.add_user(**user)
            for doctype, fields in data.get("custom_fields", {}).items():
                for field in fields:
                    self.add_custom_field(doctype, field)
            for doctype in (k for k in data if k in DOCTYPES):
                try:
                    out[doctype] = [
                        self.insert(doctype, dict(d), seeding=True)["name"] for d in data[doctype]
                    ]
                except FrappeError as exc:
                    raise ValueError(f"{doctype}: {exc.exc_type}: {exc.message or self._messages}") from None
            self.begin()
        return out

    # ---- auth and errors --------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        request.environ["sim.user"] = None  # Guest
        header = request.headers.get("Authorization")
        if not header:
            return None
        scheme, _, credentials = header.partition(" ")
        key = secret = ""
        if scheme.lower() == "token":
            key, _, secret = credentials.strip().partition(":")
        elif scheme.lower() == "basic":
            try:
                key, _, secret = base64.b64decode(credentials.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                error = FrappeError(
                    "AuthenticationError",
                    "Failed to decode token, please provide a valid base64-encoded token.",
                )
                return self.json(error.body(_v2(request)), status=401)
        user = self.users.get(key)
        if user is None or not hmac.compare_digest(user["api_secret"].encode(), secret.encode()):
            error = FrappeError("AuthenticationError", "Invalid API key or secret")
            return self.json(error.body(_v2(request)), status=401)
        request.environ["sim.user"] = user
        return None

    def error_response(self, status: int, message: str) -> Response:
        kinds = {404: "DoesNotExistError", 403: "PermissionError", 503: "ServiceUnavailable"}
        error = FrappeError(
            kinds.get(status, "InternalServerError" if status >= 500 else "ValidationError"), message
        )
        return self.json(error.body(v2=True), status=status)

    def rate_limited_response(self, retry_after: int) -> Response:
        """``RateLimiter.respond``: plain text plus the X-RateLimit headers."""
        limit = (self.faults.get("rate_limit") or {}).get("limit", 0)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(retry_after),
            "Retry-After": str(retry_after),
        }
        return Response("Too Many Requests", status=429, headers=headers)

    def not_found_response(self, request: Request) -> Response:
        error = FrappeError("DoesNotExistError", f"Page {request.path} not found")
        return self.json(error.body(_v2(request)), status=404)

    def _user(self, request: Request, doctype: str | None = None, ptype: str = "read") -> str:
        user = request.environ.get("sim.user")
        name = user["user"] if user else "Guest"
        if doctype is not None:
            self.meta(doctype)
        if user is None or (doctype is not None and not self.permitted(user, doctype, ptype)):
            what = f"<strong>{doctype}</strong>" if doctype else "this method"
            raise self.fail(
                "PermissionError",
                f"User <strong>{name}</strong> does not have doctype access via role permission "
                f"for document {what}",
            )
        return name

    @staticmethod
    def permitted(user: dict[str, Any], doctype: str, ptype: str) -> bool:
        return user["doctypes"] is None or ptype in user["doctypes"].get(doctype, ())

    @staticmethod
    def form_dict(request: Request) -> dict[str, Any]:
        """``frappe.form_dict``: query string, then a JSON body or form fields (v1 also takes ``data=``)."""
        out: dict[str, Any] = dict(request.args.items())
        body = request.get_json(silent=True, force=True) if request.data else None
        if isinstance(body, dict):
            out.update(body)
        else:
            out.update(request.form.items())
        if isinstance(out.get("data"), str):
            parsed = loads(out.pop("data"), "data")
            if isinstance(parsed, dict):
                out.update(parsed)
        return out

    # ---- shared handlers --------------------------------------------------------------------------

    def _list(self, doctype: str, args: dict[str, Any], start: Any, length: Any) -> list[Doc]:
        meta = self.meta(doctype)
        try:
            first, size = int(start or 0), int(length)
        except (TypeError, ValueError):
            raise invalid("limit and start must be integers") from None
        return select(
            self.db[doctype].values(),
            doctype,
            meta.children,
            self.known(doctype),
            filters=args.get("filters"),
            or_filters=args.get("or_filters"),
            fields=args.get("fields"),
            order_by=args.get("order_by"),
            start=first,
            page_length=size,
        )

    def _count(self, doctype: str, filters: Any) -> int:
        meta = self.meta(doctype)
        rows = select(
            self.db[doctype].values(),
            doctype,
            meta.children,
            self.known(doctype),
            filters=filters,
            page_length=0,
        )
        return len(rows)

    def _body(self, request: Request) -> Doc:
        data = self.form_dict(request)
        data.pop("doctype", None)
        return data

    def _call(self, request: Request, method: str) -> Any:
        """Whitelisted RPC (``/api/method`` and ``/api/v2/method``)."""
        args = self.form_dict(request)
        if method in ("ping", "frappe.ping"):
            return "pong"
        if method == "frappe.client.get_time_zone":  # allow_guest
            return {"time_zone": self.time_zone}
        user = self._user(request)
        if method == "frappe.client.has_permission":
            if not {"doctype", "docname"} <= set(args):  # required arguments (over GET: no empty docname)
                raise printed("TypeError")
            return {"has_permission": self._has_permission(request, **args)}
        if method == "frappe.auth.get_logged_user":
            return user
        if method in ("frappe.client.get_count", "frappe.desk.reportview.get_count"):
            self._user(request, args.get("doctype"))
            return self._count(args["doctype"], args.get("filters"))
        if method == "frappe.client.get_list":
            self._user(request, args.get("doctype"))
            return self._list(
                args["doctype"], args, args.get("limit_start"), args.get("limit_page_length", 20)
            )
        if method == "frappe.client.get":
            self._user(request, args.get("doctype"))
            return self.as_dict(self._get_by(args["doctype"], args.get("name"), args.get("filters")))
        if method == PAYMENT_ENTRY_METHOD:  # whitelisted for any user; it reads the invoice unchecked
            return self.get_payment_entry(**args)
        raise invalid(f"Failed to get method {method} with No module named '{method.rsplit('.', 1)[0]}'")

    def _has_permission(
        self, request: Request, doctype: str, docname: str, perm_type: str = "read", **_: Any
    ) -> bool:
        """``frappe.client.has_permission``: an empty docname asks about the doctype. Asking about an unknown
        doctype reads DocType, which only a System Manager may: 403."""
        if doctype not in DOCTYPES:
            self._user(request, "DocType")
        if docname and docname not in self.db[doctype]:
            raise FrappeError("DoesNotExistError", f"{doctype} {docname} not found")
        ptype = str(perm_type).lower()
        return ptype in PTYPES and self.permitted(request.environ["sim.user"], doctype, ptype)

    def _get_by(self, doctype: str, name: str | None, filters: Any) -> Doc:
        if name:
            return self.get_doc(doctype, name)
        rows = self._list(doctype, {"filters": filters}, 0, 1)
        if not rows:
            raise FrappeError("DoesNotExistError", f"{doctype} not found")
        return self.get_doc(doctype, rows[0]["name"])

    def _ok(self, data: Any, status: int = 200, **extra: Any) -> Response:
        """``{"data": …}`` with the request's printed messages (notes, alerts) as ``messages``."""
        messages = {"messages": list(self._messages)} if self._messages else {}
        return self.json({"data": data, **extra, **messages}, status=status)

    # ---- API v2 -----------------------------------------------------------------------------------

    @route("GET", "/api/v2/document/{doctype}")
    @frappe_api
    def v2_list(self, request: Request, doctype: str) -> Response:
        self._user(request, doctype)
        args = self.form_dict(request)
        return self._ok(self._list(doctype, args, args.get("start"), args.get("limit") or 20))

    @route("POST", "/api/v2/document/{doctype}")
    @route("POST", "/api/resource/{doctype}")
    @route("POST", "/api/v1/resource/{doctype}")
    @frappe_api
    def create_doc(self, request: Request, doctype: str) -> Response:
        user = self._user(request, doctype, "create")
        body = self._body(request)
        return self._ok(self.inserted_view(self.insert(doctype, body, user), body))

    @route("GET", "/api/v2/document/{doctype}/{name}")
    @route("GET", "/api/resource/{doctype}/{name}")
    @route("GET", "/api/v1/resource/{doctype}/{name}")
    @frappe_api
    def read_doc(self, request: Request, doctype: str, name: str) -> Response:
        self._user(request, doctype)
        return self._ok(self.as_dict(self.get_doc(doctype, name)))

    @route("PATCH", "/api/v2/document/{doctype}/{name}")
    @route("PUT", "/api/v2/document/{doctype}/{name}")
    @route("PUT", "/api/resource/{doctype}/{name}")
    @route("PUT", "/api/v1/resource/{doctype}/{name}")
    @frappe_api
    def update_doc(self, request: Request, doctype: str, name: str) -> Response:
        user = self._user(request, doctype, "write")
        doc = self.save(self.get_doc(doctype, name), self._body(request), user)
        return self._ok(self.as_dict(doc))

    @route("DELETE", "/api/v2/document/{doctype}/{name}")
    @route("DELETE", "/api/resource/{doctype}/{name}")
    @route("DELETE", "/api/v1/resource/{doctype}/{name}")
    @frappe_api
    def delete_doc(self, request: Request, doctype: str, name: str) -> Response:
        user = self._user(request, doctype, "delete")
        self.delete(self.get_doc(doctype, name), user)
        return self._ok("ok", status=202)

    @route("GET", "/api/v2/document/{doctype}/{name}/method/{method}")
    @route("POST", "/api/v2/document/{doctype}/{name}/method/{method}")
    @frappe_api
    def doc_method(self, request: Request, doctype: str, name: str, method: str) -> Response:
        user = self._user(request, doctype, method if method in DOC_METHODS else "write")
        doc = self.get_doc(doctype, name)
        if method not in DOC_METHODS:
            raise FrappeError("PermissionError", "Not permitted")
        doc = self.submit(doc, user) if method == "submit" else self.cancel(doc, user)
        shown = self.as_dict(doc)
        return self._ok(shown, docs=[shown])

    @route("GET", "/api/v2/doctype/{doctype}/count")
    @frappe_api
    def count(self, request: Request, doctype: str) -> Response:
        self._user(request, doctype)
        return self._ok(self._count(doctype, request.args.get("filters")))

    @route("GET", "/api/v2/method/{method}")
    @route("POST", "/api/v2/method/{method}")
    @frappe_api
    def v2_method(self, request: Request, method: str) -> Response:
        return self._ok(self._call(request, method))

    # ---- API v1 -----------------------------------------------------------------------------------

    @route("GET", "/api/resource/{doctype}")
    @route("GET", "/api/v1/resource/{doctype}")
    @frappe_api
    def v1_list(self, request: Request, doctype: str) -> Response:
        self._user(request, doctype)
        args = self.form_dict(request)
        return self._ok(self._list(doctype, args, args.get("limit_start"), args.get("limit_page_length", 20)))

    @route("GET", "/api/method/{method}")
    @route("POST", "/api/method/{method}")
    @route("GET", "/api/v1/method/{method}")
    @route("POST", "/api/v1/method/{method}")
    @frappe_api
    def v1_method(self, request: Request, method: str) -> Response:
        return self.json({"message": self._call(request, method)})
