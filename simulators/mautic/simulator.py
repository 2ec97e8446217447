"""The Mautic 5 simulator: auth, segments, emails (send and open tracking), forms (public submit), seeding.

Auth is HTTP Basic with a Mautic user (``api_enable_basic_auth`` on) or an OAuth2 bearer from
``/oauth/v2/token`` (``client_credentials``, 60-minute tokens on the simulator clock). The public endpoints a
browser uses (``/form/submit``, the ``/email/<hash>.gif`` pixel) need no credentials; they are how tests make
a form submission or an email open happen, with the webhooks Mautic sends for them; the contact activity API
(``simulators.mautic.activity``) lists the same opens and submissions. Every transactional send is kept in
``sent_emails()`` so tests can count emails.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import Abort, Clock, route
from simulators.mautic.admin import MauticAdmin
from simulators.mautic.common import USER
from simulators.mautic.fields import Row, api_time, default_company_fields, default_lead_fields
from simulators.mautic.listing import search_contact
from syncengine.vendors import mautic

TOKEN_TTL = 3600.0
UNAUTHORIZED = "API authorization denied."


class MauticSimulator(MauticAdmin):
    """Mautic 5 REST API (``/api``), OAuth2 token endpoint and the public tracking/form endpoints."""

    engine_credentials = {"MAUTIC_USERNAME": "admin", "MAUTIC_PASSWORD": "sim-mautic-pass"}

    def provision(self) -> None:
        """Our custom contact fields, and the template emails at their default ids (a simulator that already
        has emails keeps them)."""
        known = {f["alias"] for f in self.lead_fields}
        self.seed({"fields": [f.body() for f in mautic.CUSTOM_FIELDS if f.alias not in known]})
        if not self.db["emails"]:
            for email in mautic.EMAILS:
                self.add_email(email.name, email.subject, custom_html=email.html())

    def subscribe_engine(self, receiver: str, secret: str | None) -> None:
        """One webhook with every trigger, its batches signed."""
        self.add_webhook_target(f"{receiver}/webhooks/mautic", secret=secret, events=list(mautic.EVENTS))

    def __init__(
        self,
        clock: Clock | None = None,
        username: str = "admin",
        password: str = "sim-mautic-pass",  # noqa: S107 - the simulator's well-known test credentials (not a
        # word that shows up in logs: the engine redacts its configured secrets from every line)
        oauth_clients: dict[str, str] | None = None,
    ) -> None:
        super().__init__(clock)
        self.users = {username: password}
        self.roles: dict[str, frozenset[str]] = {}  # users not listed are administrators
        self.oauth_clients = dict(oauth_clients or {})
        self.lead_fields = default_lead_fields()
        self.company_fields = default_company_fields()

    # ---- auth -------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if not request.path.startswith("/api/"):  # the token endpoint, form posts and pixels are public
            return None
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            known = self.users.get(user)
            if known is not None and hmac.compare_digest(known.encode(), password.encode()):
                request.environ[USER] = user
                return None
        elif scheme.lower() == "bearer":
            with self.lock:
                token = self.db["oauth_tokens"].get(credentials.strip())
            if token is None:
                return self._denied("The access token provided is invalid.", "invalid_grant")
            if token["expires"] <= self.now():
                return self._denied("The access token provided has expired.", "invalid_grant")
            return None
        return self._denied(UNAUTHORIZED, "access_denied")

    def _denied(self, message: str, kind: str) -> Response:
        """``ApiSubscriber::onKernelResponse`` rewrites every 401 to this shape."""
        return self.json({"errors": [{"message": message, "code": 401, "type": kind}]}, status=401)

    @route("POST", "/oauth/v2/token")
    def oauth_token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return self.json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "Invalid grant_type parameter or parameter missing",
                },
                status=400,
            )
        secret = self.oauth_clients.get(form.get("client_id", ""))
        if secret is None or not hmac.compare_digest(secret.encode(), form.get("client_secret", "").encode()):
            return self.json(
                {"error": "invalid_client", "error_description": "The client credentials are invalid"},
                status=400,
            )
        token = secrets.token_urlsafe(32)
        self.db["oauth_tokens"][token] = {"client_id": form["client_id"], "expires": self.now() + TOKEN_TTL}
        return self.json(
            {"access_token": token, "expires_in": int(TOKEN_TTL), "token_type": "bearer", "scope": None}
        )

    # ---- segments ---------------------------------------------------------------------------------

    def segment_json(self, seg: Row) -> Row:
        return {
            "isPublished": seg.get("isPublished", True),
            "dateAdded": api_time(seg["date_added"]),
            "dateModified": api_time(seg.get("date_modified")),
            "createdBy": 1,
            "createdByUser": "Admin User",
            "id": seg["id"],
            "name": seg["name"],
            "publicName": seg.get("publicName") or seg["name"],
            "alias": seg["alias"],
            "description": seg.get("description"),
            "filters": [],
            "isGlobal": True,
            "isPreferenceCenter": False,
        }

    @route("GET", "/api/segments")
    def list_segments(self, request: Request) -> Response:
        needle = (request.args.get("search") or "").lower()
        rows = [
            s
            for s in sorted(self.db["segments"].values(), key=lambda s: s["id"])
            if needle in s["name"].lower()
        ]
        return self.envelope("lists", rows, request.args, self.segment_json)

    @route("GET", "/api/segments/{segment_id}")
    def get_segment(self, request: Request, segment_id: str) -> Response:
        return self.json({"list": self.segment_json(self.entity("segments", segment_id))})

    @route("POST", "/api/segments/new")
    def new_segment(self, request: Request) -> Response:
        data = self._input(request)
        if not data.get("name"):
            raise self.fail(400, "name: A value is required.", details={"name": ["A value is required."]})
        seg = self.add_segment(**{k: v for k, v in data.items() if k in ("name", "alias", "description")})
        return self.json({"list": self.segment_json(seg)}, status=201)

    def add_segment(self, name: str, alias: str | None = None, description: str | None = None) -> Row:
        seg = {
            "id": self.db.next_id("segments"),
            "name": name,
            "description": description,
            "alias": alias or "-".join(name.lower().split()),
            "date_added": self.db_now(),
        }
        self.db["segments"][seg["id"]] = seg
        return seg

    @route("POST", "/api/segments/{segment_id}/contact/{contact_id}/add")
    def segment_add(self, request: Request, segment_id: str, contact_id: str) -> Response:
        seg, lead = self.entity("segments", segment_id), self.entity("leads", contact_id)
        self.db["segment_leads"][(seg["id"], lead["id"])] = True
        return self.json({"success": True})

    @route("POST", "/api/segments/{segment_id}/contact/{contact_id}/remove")
    def segment_remove(self, request: Request, segment_id: str, contact_id: str) -> Response:
        seg, lead = self.entity("segments", segment_id), self.entity("leads", contact_id)
        self.db["segment_leads"].pop((seg["id"], lead["id"]), None)
        return self.json({"success": True})

    @route("GET", "/api/contacts/{contact_id}/segments")
    def contact_segments(self, request: Request, contact_id: str) -> Response:
        lead = self.entity("leads", contact_id)
        segs = [self.db["segments"][s] for (s, c) in self.db["segment_leads"] if c == lead["id"]]
        return self.json({"total": len(segs), "lists": {str(s["id"]): self.segment_json(s) for s in segs}})

    # ---- seeding ----------------------------------------------------------------------------------

    def seed(self, data: Any) -> Any:
        """Keys: users ({name: password}), roles ({user: [permissions]}: a user given a role is no longer an
        administrator), oauth_clients ({id: secret}), fields (custom contact fields),
        contacts (flat aliases, optional date_added/date_modified; no webhooks), companies, segments,
        emails, forms, hooks (API bodies)."""
        data = dict(data or {})
        known = {
            "users",
            "roles",
            "oauth_clients",
            "fields",
            "contacts",
            "companies",
            "segments",
            "emails",
            "forms",
            "hooks",
        }
        if set(data) - known:
            raise ValueError(f"unknown seed keys: {sorted(set(data) - known)}")
        out: dict[str, Any] = {}
        with self.lock:
            self.users.update(data.get("users", {}))
            self.roles.update({user: frozenset(held) for user, held in data.get("roles", {}).items()})
            self.oauth_clients.update(data.get("oauth_clients", {}))
            for f in data.get("fields", []):
                self.lead_fields.append(
                    {
                        "id": len(self.lead_fields) + 1,
                        "label": f.get("label", f["alias"]),
                        "type": f.get("type", "text"),
                        "group": f.get("group", "core"),
                        "object": "lead",
                        "is_fixed": False,
                        "alias": f["alias"],
                        "is_unique_identifier": bool(f.get("is_unique_identifier")),
                        "isPublished": f.get("isPublished", True),
                        "properties": f.get("properties") or [],
                    }
                )
                for row in self.db["leads"].values():
                    row["fields"].setdefault(f["alias"], None)
            out["contacts"] = [
                self.save_contact(None, c, seeding=True)["id"] for c in data.get("contacts", [])
            ]
            out["companies"] = [
                self.save_company(None, c, fire=False)["id"] for c in data.get("companies", [])
            ]
            out["segments"] = [self.add_segment(**s)["id"] for s in data.get("segments", [])]
            out["emails"] = [self.add_email(**e)["id"] for e in data.get("emails", [])]
            out["forms"] = [self.add_form(**f)["id"] for f in data.get("forms", [])]
            for hook in data.get("hooks", []):
                row = {
                    "id": self.db.next_id("hooks"),
                    "date_added": self.db_now(),
                    "isPublished": True,
                    "log": [],
                }
                try:
                    self._apply_hook(row, hook, replace=True)
                except Abort as exc:
                    raise ValueError(f"invalid hook: {exc.response.get_data(as_text=True)}") from None
                self.db["hooks"][row["id"]] = row
                out.setdefault("hooks", []).append(row["id"])
        return out

    def contact_by_email(self, email: str) -> Row | None:
        with self.lock:
            return next(
                (self.contact(r) for r in self.db["leads"].values() if search_contact(r, f"email:{email}")),
                None,
            )
