"""Emails and forms: transactional sends, the open-tracking pixel and public form submissions.

Each send is stored as a stat (``sent_emails()`` lets tests count emails); opening ``/email/<hash>.gif``
marks it read and fires ``mautic.email_on_open`` (key ``stat``); posting ``mauticform[...]`` to
``/form/submit`` identifies or creates the contact and fires ``mautic.form_on_submit`` (key ``submission``).
"""

from __future__ import annotations

import base64
import secrets

from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.mautic.contacts import MauticContacts
from simulators.mautic.fields import Row, api_time

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")


class MauticEngagement(MauticContacts):
    """Mixin: ``/api/emails``, ``/api/forms`` and the browser-facing endpoints that create activity."""

    # ---- emails -----------------------------------------------------------------------------------

    def email_json(self, email: Row) -> Row:
        return {
            "isPublished": email.get("isPublished", True),
            "dateAdded": api_time(email["date_added"]),
            "dateModified": api_time(email.get("date_modified")),
            "createdBy": 1,
            "createdByUser": "Admin User",
            "id": email["id"],
            "name": email["name"],
            "subject": email.get("subject", email["name"]),
            "emailType": email.get("emailType", "template"),
            "language": "en",
            "customHtml": email.get("customHtml"),
            "plainText": email.get("plainText"),
            "sentCount": email.get("sent_count", 0),
            "readCount": email.get("read_count", 0),
        }

    def add_email(
        self,
        name: str,
        subject: str | None = None,
        email_type: str = "template",
        custom_html: str | None = None,
        published: bool = True,
    ) -> Row:
        email = {
            "id": self.db.next_id("emails"),
            "name": name,
            "subject": subject or name,
            "emailType": email_type,
            "customHtml": custom_html,
            "isPublished": published,
            "date_added": self.db_now(),
        }
        self.db["emails"][email["id"]] = email
        return email

    @route("GET", "/api/emails")
    def list_emails(self, request: Request) -> Response:
        needle = (request.args.get("search") or "").lower()
        rows = [
            e
            for e in sorted(self.db["emails"].values(), key=lambda e: e["id"])
            if needle in e["name"].lower()
        ]
        return self.envelope("emails", rows, request.args, self.email_json)

    @route("POST", "/api/emails/new")
    def new_email(self, request: Request) -> Response:
        """``CommonApiController::newEntityAction``: 201 with the email; a name is required."""
        self.require(request, "email:emails:create")
        data = self.body(request) or {}
        if not data.get("name"):
            raise self.fail(400, "name: A value is required.", details={"name": ["A value is required."]})
        email = self.add_email(
            str(data["name"]), data.get("subject"), str(data.get("emailType") or "template"),
            data.get("customHtml"), data.get("isPublished", True) not in (False, 0, "0"),
        )  # fmt: skip
        return self.json({"email": self.email_json(email)}, status=201)

    @route("GET", "/api/emails/{email_id}")
    def get_email(self, request: Request, email_id: str) -> Response:
        return self.json({"email": self.email_json(self.entity("emails", email_id))})

    @route("POST", "/api/emails/{email_id}/contact/{contact_id}/send")
    def send_email(self, request: Request, email_id: str, contact_id: str) -> Response:
        """``EmailApiController::sendLeadAction``: transactional, DNC ignored, every call sends again."""
        email, lead = self.entity("emails", email_id), self.entity("leads", contact_id)
        data = self.body(request) or {}
        tokens = data.get("tokens") if isinstance(data.get("tokens"), dict) else {}
        address = lead["fields"].get("email")
        if not address:
            return self.json({"success": False, "failed": {str(lead["id"]): "Contact has no email address"}})
        stat = {
            "id": self.db.next_id("email_stats"),
            "email_id": email["id"],
            "lead_id": lead["id"],
            "email_address": address,
            "date_sent": self.db_now(),
            "tracking_hash": secrets.token_hex(10),
            "is_read": False,
            "date_read": None,
            "open_count": 0,
            "tokens": tokens,
            "source": "api",
            "attachments": data.get("assetAttachments") or [],
        }
        self.db["email_stats"][stat["id"]] = stat
        email["sent_count"] = email.get("sent_count", 0) + 1
        return self.json({"success": True})

    def sent_emails(self, email_id: int | None = None, contact_id: int | None = None) -> list[Row]:
        """Every send so far (a copy), oldest first; tests count these to prove "exactly once"."""
        with self.lock:
            return [
                dict(s)
                for s in sorted(self.db["email_stats"].values(), key=lambda s: s["id"])
                if email_id in (None, s["email_id"]) and contact_id in (None, s["lead_id"])
            ]

    @route("GET", "/email/{tracking_hash}.gif")
    def open_pixel(self, request: Request, tracking_hash: str) -> Response:
        """The tracking pixel: marks the stat read and fires ``mautic.email_on_open`` with key ``stat``."""
        stat = next((s for s in self.db["email_stats"].values() if s["tracking_hash"] == tracking_hash), None)
        if stat is not None:
            now = self.db_now()
            stat.update(is_read=True, open_count=stat["open_count"] + 1, last_opened=now)
            stat["date_read"] = stat["date_read"] or now
            email = self.db["emails"][stat["email_id"]]
            email["read_count"] = email.get("read_count", 0) + (stat["open_count"] == 1)
            lead = self.db["leads"].get(stat["lead_id"])
            self.fire("mautic.email_on_open", stat=self._stat_json(stat, email, lead))
        return Response(PIXEL, mimetype="image/gif")

    def _stat_json(self, stat: Row, email: Row, lead: Row | None) -> Row:
        return {
            "id": stat["id"],
            "emailAddress": stat["email_address"],
            "ipAddress": None,
            "dateSent": api_time(stat["date_sent"]),
            "isRead": stat["is_read"],
            "isFailed": False,
            "viewedInBrowser": False,
            "dateRead": api_time(stat["date_read"]),
            "trackingHash": stat["tracking_hash"],
            "retryCount": 0,
            "source": stat["source"],
            "openCount": stat["open_count"],
            "lastOpened": api_time(stat.get("last_opened")),
            "openDetails": [],
            "email": self.email_json(email),
            "lead": self.contact(lead) if lead else None,
        }

    # ---- forms ------------------------------------------------------------------------------------

    def form_json(self, form: Row) -> Row:
        return {
            "isPublished": form.get("isPublished", True),
            "dateAdded": api_time(form["date_added"]),
            "id": form["id"],
            "name": form["name"],
            "alias": form["alias"],
            "formType": "standalone",
            "fields": [
                {
                    "id": i,
                    "label": f.get("label", f["alias"]),
                    "alias": f["alias"],
                    "type": f.get("type", "text"),
                    "leadField": f.get("leadField"),
                }
                for i, f in enumerate(form["fields"], 1)
            ],
        }

    def add_form(self, name: str, fields: list[Row], alias: str | None = None) -> Row:
        """``fields``: ``[{"alias": "email", "leadField": "email"}, …]`` (``leadField`` maps to a contact)."""
        form = {
            "id": self.db.next_id("forms"),
            "name": name,
            "alias": alias or "".join(name.lower().split())[:10],
            "fields": fields,
            "date_added": self.db_now(),
        }
        self.db["forms"][form["id"]] = form
        return form

    @route("GET", "/api/forms")
    def list_forms(self, request: Request) -> Response:
        rows = sorted(self.db["forms"].values(), key=lambda f: f["id"])
        return self.envelope("forms", rows, request.args, self.form_json)

    @route("GET", "/api/forms/{form_id}")
    def get_form(self, request: Request, form_id: str) -> Response:
        return self.json({"form": self.form_json(self.entity("forms", form_id))})

    @route("GET", "/api/forms/{form_id}/submissions")
    def form_submissions(self, request: Request, form_id: str) -> Response:
        form = self.entity("forms", form_id)
        subs = [s for s in self.db["submissions"].values() if s["form"]["id"] == form["id"]]
        start, limit = self.page(request.args)
        shown = subs[start : start + limit] if limit else subs[start:]
        return self.json({"total": len(subs), "submissions": shown})

    @route("POST", "/form/submit")
    def submit_form(self, request: Request) -> Response:
        """A browser posting ``mauticform[...]``: find or create the contact by email, then the events."""
        values = {
            k[len("mauticform[") : -1]: v for k, v in request.form.items() if k.startswith("mauticform[")
        }
        form_id = request.args.get("formId") or values.pop("formId", None)
        form = self.entity("forms", form_id)
        mapped = {f["leadField"]: values.get(f["alias"]) for f in form["fields"] if f.get("leadField")}
        existing = self.find_duplicate(mapped)
        lead = self.save_contact(existing, {k: v for k, v in mapped.items() if v not in (None, "")})
        results = {f["alias"]: values.get(f["alias"], "") for f in form["fields"]}
        submission = {
            "id": self.db.next_id("submissions"),
            "ipAddress": {"ipAddress": request.remote_addr},
            "form": {"id": form["id"], "name": form["name"], "alias": form["alias"]},
            "lead": self.contact(lead),
            "trackingId": None,
            "dateSubmitted": api_time(self.db_now()),
            "referer": request.referrer,
            "page": None,
            "results": results,
        }
        self.db["submissions"][submission["id"]] = submission
        self.fire("mautic.form_on_submit", submission=submission)
        return Response("<html><body>Thank you for your submission.</body></html>", mimetype="text/html")
