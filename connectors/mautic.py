"""Mautic 5 over its REST API: contacts, companies, segments, transactional email, webhook subscriptions.

Inputs are flat field aliases (``{"email": …, "firstname": …}``) and outputs Mautic's own objects
(``{"id": …, "dateModified": …, "fields": {"all": {…}}}``); mapping to the canonical record lives elsewhere.

Auth: HTTP Basic with a Mautic user, or OAuth2 ``client_credentials``: the token is cached per process (per
site and client) until shortly before it expires, and fetched again after a 401 (``on_auth_expired``).

Sending an email is the one effect Mautic cannot tell us about afterwards: there is no idempotency key and
no way to read back whether a given send happened. We choose **at most once**: a send is keyed per (template,
contact, business object) in our store; a send whose answer is ambiguous (timeout, 5xx, worker killed
mid-call) is never repeated, it fails with ``EmailMaybeSent`` (logged as an error) so an operator can
check the contact's email history in Mautic and resend on purpose. A duplicate receipt or invoice email is
worse than a manual resend. A send that certainly did not reach Mautic (429, connection refused, breaker
open) is retried normally.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.base import Connector, pages_by_id, segment
from connectors.php_values import unserialize
from syncengine.errors import Ambiguous, AuthExpired, Permanent, Retryable, SyncError
from syncengine.idempotency import Attempt, Effect, once
from syncengine.locks import lock
from syncengine.redaction import redact, register_secrets
from syncengine.settings import Secret, get_settings

log = logging.getLogger(__name__)

Contact = dict[str, Any]
Where = Sequence[tuple[str, str, Any]]  # (column, expr, value): DB column names for contacts
DEFAULT_PAGE = 30  # Mautic's default_pagelimit
FIELDS_PAGE = 100  # contact fields asked per page (a site has about 40)
CHANGES = 25  # the saves looked at; a field changed back and forth more often is dated by dateModified
# The contact timeline events an activity (F8) is made of, and how many of each type one request asks for
# (the endpoint's default is 25; one request then covers up to 200 engagements since the cursor).
ACTIVITY_EVENTS = ("email.read", "form.submitted")
ACTIVITY_PAGE = 100
TOKEN_MARGIN = 60.0  # fetch a new token this many seconds before the old one expires
_NO_AUTH = "X-Syncengine-No-Auth"  # internal marker: the token request carries no credentials
# Recovery points of an email send (see the module docstring).
SENDING, NOT_SENT = "sending", "not-sent"

_tokens: dict[tuple[str, str], tuple[str, float]] = {}  # (site, client id) -> (token, monotonic expiry)
_tokens_lock = threading.Lock()
_fetch_lock = threading.Lock()


def forget_tokens() -> None:
    """Drop every cached OAuth2 token of this process (tests; a rotated client secret)."""
    with _tokens_lock:
        _tokens.clear()


class EmailMaybeSent(Permanent):
    """A transactional send may have happened: it is not repeated; an operator checks and resends."""


def _errors(body: Any) -> str:
    """The messages of Mautic's ``{"errors": [{"code", "message", "details"}]}``."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return "; ".join(str(e.get("message")) for e in body["errors"] if isinstance(e, dict))
    if isinstance(body, dict) and body.get("error"):
        return str(body.get("error_description") or body["error"])
    return str(body or "")[:300]


def mautic_time(value: datetime | str) -> str:
    """``where`` values compare against DB columns: ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def where_params(clauses: Where) -> dict[str, str]:
    """PHP-style nested query keys: ``where[0][col]=…&where[0][expr]=…&where[0][val]=…``."""
    params: dict[str, str] = {}
    for i, (col, expr, val) in enumerate(clauses):
        params[f"where[{i}][col]"] = col
        params[f"where[{i}][expr]"] = expr
        if val is not None:
            params[f"where[{i}][val]"] = str(val)
    return params


def email_effect(email_id: int, contact_id: int, ref: str, resend: int = 0) -> Effect:
    """The key of one transactional send: template + contact + business object (``invoice:INV-7``).
    ``resend`` > 0 is an operator's deliberate resend after an EmailMaybeSent."""
    key = f"send_email:mautic:{email_id}:{contact_id}:{ref}" + (f":resend-{resend}" if resend else "")
    request = {"email": email_id, "contact": contact_id, "ref": ref, "resend": resend}
    return Effect(key=key, system="mautic", operation="send_email", request=request)


class MauticConnector(Connector):
    """Mautic 5 ``/api``; see the module docstring for auth and for the email-once choice."""

    service = "mautic"

    def __init__(
        self, base_url: str, *, username: str | None = None, password: str | Secret | None = None,
        client_id: str | None = None, client_secret: str | Secret | None = None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(base_url, **kwargs)
        self._password = _secret(password)
        self._client_secret = _secret(client_secret)
        self.username, self.client_id = username, client_id
        if not (client_id and self._client_secret) and not (username and self._password):
            raise ValueError("Mautic needs USERNAME/PASSWORD (Basic) or CLIENT_ID/CLIENT_SECRET (OAuth2)")
        register_secrets([s.reveal() for s in (self._password, self._client_secret) if s])

    @classmethod
    def from_settings(cls, **kwargs: Any) -> MauticConnector:
        svc = get_settings().services["mautic"]
        if not svc.url:
            raise Permanent("Mautic is not configured (MAUTIC_URL)")
        return cls(
            svc.url, username=svc.options.get("username"), password=svc.credentials.get("password"),
            client_id=svc.options.get("client_id"), client_secret=svc.credentials.get("client_secret"),
            **kwargs,
        )  # fmt: skip

    @property
    def oauth(self) -> bool:
        return bool(self.client_id and self._client_secret)

    # --- hooks -------------------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str]) -> None:
        if headers.pop(_NO_AUTH, None):
            return
        if self.oauth:
            headers["Authorization"] = f"Bearer {self._token()}"
            return
        pair = f"{self.username}:{self._password.reveal()}".encode()  # type: ignore[union-attr]
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    def on_auth_expired(self) -> bool:
        """A refused bearer token is dropped and fetched again, once; Basic credentials cannot refresh."""
        if not self.oauth:
            return False
        with _tokens_lock:
            _tokens.pop(self._token_key(), None)
        return True

    def classify(self, response: requests.Response) -> SyncError | None:
        """The base's classes, with Mautic's error messages in a permanent failure."""
        error = super().classify(response)
        if not isinstance(error, Permanent):
            return error
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        where = f"{self.service} {response.request.method} {response.url.split('?', 1)[0]}"
        message = f"{where} answered {response.status_code}: {redact(_errors(body))[:300]}"
        return Permanent(message, response.status_code, body)

    # --- OAuth2 client credentials -----------------------------------------------------------------

    def _token_key(self) -> tuple[str, str]:
        return (self.base_url, str(self.client_id))

    def _token(self) -> str:
        with _tokens_lock:
            cached = _tokens.get(self._token_key())
        if cached and cached[1] > time.monotonic():
            return cached[0]
        with _fetch_lock:  # one fetch per process; the threads that waited use its token
            with _tokens_lock:
                cached = _tokens.get(self._token_key())
            if cached and cached[1] > time.monotonic():
                return cached[0]
            return self._fetch_token()

    def _fetch_token(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": str(self.client_id),
            "client_secret": self._client_secret.reveal(),  # type: ignore[union-attr]
        }
        response = self.request(
            "POST", "/oauth/v2/token", data=form, headers={_NO_AUTH: "1"}, idempotent=True
        )
        body = response.json()
        token, lifetime = str(body["access_token"]), float(body.get("expires_in") or 3600)
        register_secrets([token])
        with _tokens_lock:
            _tokens[self._token_key()] = (token, time.monotonic() + max(0.0, lifetime - TOKEN_MARGIN))
        log.info("%s: new OAuth2 access token for %s, valid %.0f s", self.service, self.client_id, lifetime)
        return token

    # --- listing -----------------------------------------------------------------------------------

    def list_page(
        self, entity: str, *, start: int = 0, limit: int = DEFAULT_PAGE, where: Where = (),
        order_by: str = "id", order_dir: str = "ASC", search: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:  # fmt: skip
        """``(total, rows)`` of ``GET /api/{entity}``; rows keep the order of the id-keyed envelope."""
        params: dict[str, Any] = {"start": start, "limit": limit, "orderBy": order_by}
        params["orderByDir"] = order_dir
        params.update(where_params(where))
        if search:
            params["search"] = search
        params.update(extra or {})
        body = self.get_json(f"/api/{entity}", params=params)
        rows = body.get(entity) or {}
        return int(body.get("total") or 0), list(rows.values()) if isinstance(rows, dict) else list(rows)

    def iter_entities(
        self, entity: str, *, where: Where = (), order_by: str = "id", page_size: int = DEFAULT_PAGE,
        search: str | None = None,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """Every row, paged with ``start`` + ``limit`` until ``total`` is reached or a page is short."""
        start = 0
        while True:
            total, rows = self.list_page(
                entity, start=start, limit=page_size, where=where, order_by=order_by, search=search
            )
            yield from rows
            start += len(rows)
            if len(rows) < page_size or start >= total:
                return

    def iter_contacts(self, *, page_size: int = DEFAULT_PAGE, search: str | None = None) -> Iterator[Contact]:
        return self.iter_entities("contacts", page_size=page_size, search=search)

    def iter_modified_contacts(
        self, since: datetime | str, *, page_size: int = DEFAULT_PAGE
    ) -> Iterator[Contact]:
        """The sweep: contacts with ``date_modified >= since``, by id.

        Paged by key (``id > last``), not by offset: a contact edited during the sweep keeps its place and
        a deletion shifts nothing, so no row is skipped. Ordering by ``date_modified`` instead would give
        ties (second resolution) no stable order. The caller's next cursor is the largest ``dateModified``."""

        def page(last_id: int) -> list[Contact]:
            clauses = [("date_modified", "gte", mautic_time(since)), ("id", "gt", last_id)]
            return self.list_page("contacts", limit=page_size, where=clauses, order_by="id")[1]

        return pages_by_id(page, page_size)

    def iter_deleted_contacts(
        self, since: datetime | str, *, page_size: int = DEFAULT_PAGE
    ) -> Iterator[dict[str, Any]]:
        """Contacts deleted since ``since``: the ``audit_log`` rows Mautic writes on a contact delete, read
        through the Stats API (``GET /api/stats/audit_log``, administrators only), the one place a deleted
        contact is still named (``object_id``). Paged by key (``id > last``), oldest first."""

        def page(last_id: int) -> list[dict[str, Any]]:
            clauses = [("bundle", "eq", "lead"), ("object", "eq", "lead"), ("action", "eq", "delete"),
                       ("date_added", "gte", mautic_time(since)), ("id", "gt", last_id)]  # fmt: skip
            params = {**where_params(clauses), "order[0][col]": "id", "order[0][dir]": "ASC",
                      "start": 0, "limit": page_size}  # fmt: skip
            body = self.get_json("/api/stats/audit_log", params=params)
            if body.get("errors"):  # the Stats API answers a failed query with a 200 and its error
                raise Permanent(f"Mautic stats query failed: {body['errors'][0].get('message')}")
            if "stats" not in body:  # Mautic lists its tables instead when it will not serve this one
                log.warning("Mautic did not serve its audit log (the API user must be an administrator): "
                            "deleted contacts are left to their webhook and the drift report")  # fmt: skip
                return []
            return body["stats"] or []

        return pages_by_id(page, page_size)

    def contact_changes(
        self, contact_id: int | str, limit: int = CHANGES
    ) -> list[tuple[dict[str, Any], str]]:
        """The contact's last saves, newest first: (alias -> the value that save set, `date_added`), from the
        `audit_log` rows LeadSubscriber writes on a save (details: Lead::$changes, each field [old, new]).
        Empty when Mautic will not serve its audit log (administrators only; warned once per site)."""
        clauses = [("bundle", "eq", "lead"), ("object", "eq", "lead"), ("object_id", "eq", int(contact_id)),
                   ("action", "neq", "delete")]  # fmt: skip
        params = {**where_params(clauses), "order[0][col]": "id", "order[0][dir]": "DESC", "start": 0,
                  "limit": limit}  # fmt: skip
        body = self.get_json("/api/stats/audit_log", params=params)
        if "stats" not in body or body.get("errors"):
            self.warn_once(
                "audit log",
                "Mautic did not serve its audit log (the API user must be an "
                "administrator): a contact's changes are dated by its dateModified alone",
            )
            return []
        saves = []
        for row in body["stats"] or []:
            try:
                fields = (unserialize(row.get("details") or "N;") or {}).get("fields") or {}
                saves.append(({alias: pair[1] for alias, pair in fields.items()}, row["date_added"]))
            except (ValueError, TypeError, KeyError, AttributeError, IndexError):
                continue  # a row whose details are not a save's changes dates nothing
        return saves

    def iter_activity(
        self, since: datetime, *, events: Sequence[str] = ACTIVITY_EVENTS, page_size: int = ACTIVITY_PAGE
    ) -> Iterator[dict[str, Any]]:
        """Timeline events of every contact stamped at or after ``since``: ``GET /api/contacts/activity``.

        Mautic pages each event type on its own (``limit`` events per type per page) and says how many
        pages the fullest type needs (``maxPages``), so the loop follows ``maxPages``, not a short page.
        Oldest first: events recorded during the listing land after the pages already read. Ties within a
        second have no stable order across requests; the sweep's lookback re-reads them. The events come
        as Mautic lists them (``{event, eventId, timestamp, contactId, details}``), page after page."""
        page = 1
        while True:
            params: list[tuple[str, Any]] = [
                ("filters[dateFrom]", since.astimezone(UTC).replace(microsecond=0).isoformat()),  # zoned
                *(("filters[includeEvents][]", e) for e in events),
                ("order[0]", "timestamp"), ("order[1]", "ASC"), ("limit", page_size), ("page", page),
            ]  # fmt: skip
            body = self.get_json("/api/contacts/activity", params=params)
            yield from body.get("events") or []
            if page >= int(float(body.get("maxPages") or 1)):
                return
            page += 1

    # --- contacts ----------------------------------------------------------------------------------

    def get_contact(self, contact_id: int) -> Contact:
        return self.get_json(f"/api/contacts/{_id(contact_id)}")["contact"]

    def find_contact(self, email: str) -> Contact | None:
        """The oldest contact with this email (compared exactly, case-insensitively), or None."""
        _, rows = self.list_page("contacts", limit=5, where=[("email", "eq", email)], order_by="id")
        wanted = email.strip().lower()
        return next((r for r in rows if str(_field(r, "email") or "").lower() == wanted), None)

    def unique_identifiers(self) -> frozenset[str]:
        """The aliases of the published contact fields Mautic matches a new contact on (`isUniqueIdentifier`:
        `email` alone unless a person chose others): `POST /api/contacts/new` giving one of them equal to
        an existing contact's answers that contact, updated (200), instead of a second one. Listing the
        fields needs `lead:fields:view`."""
        aliases: set[str] = set()
        start = 0
        while True:
            body = self.get_json("/api/fields/contact", params={"start": start, "limit": FIELDS_PAGE})
            rows = body.get("fields") or []
            rows = list(rows.values()) if isinstance(rows, dict) else list(rows)
            aliases.update(
                str(row.get("alias")) for row in rows
                if row.get("isUniqueIdentifier", row.get("isUniqueIdentifer"))  # Mautic's own spelling too
                and row.get("isPublished", True) not in (False, 0, "0")
            )  # fmt: skip
            start += len(rows)
            if len(rows) < FIELDS_PAGE or start >= int(body.get("total") or 0):
                return frozenset(aliases)

    def create_contact(self, fields: Mapping[str, Any]) -> Contact:
        """``POST /api/contacts/new``: 201 new, 200 when Mautic matched an existing contact on a unique
        identifier (email); both are success and answer the contact."""
        return self.request("POST", "/api/contacts/new", json=dict(fields)).json()["contact"]

    def ensure_contact(self, effect: Effect, fields: Mapping[str, Any]) -> Contact:
        """Create once, keyed by email: looked up under the email's lock before creating."""
        email = str(fields.get("email") or "").strip()
        if not email:
            raise Permanent("a Mautic contact without an email cannot be created once (no marker)")
        return self.create_once(
            effect, marker=f"contact:{email.lower()}",
            find=lambda: self.find_contact(email), create=lambda attempt: self.create_contact(fields),
        )  # fmt: skip

    def update_contact(self, contact_id: int, fields: Mapping[str, Any]) -> Contact:
        """PATCH: only the given fields change (404 if the contact is gone); a repeat is harmless."""
        path = f"/api/contacts/{_id(contact_id)}/edit"
        return self.request("PATCH", path, json=dict(fields), idempotent=True).json()["contact"]

    def delete_contact(self, contact_id: int) -> bool:
        """True if we deleted it, False if it was already gone (a repeat after a lost answer)."""
        return self.delete_if_present(f"/api/contacts/{_id(contact_id)}/delete")

    # --- segments and companies --------------------------------------------------------------------

    def iter_segments(self) -> Iterator[dict[str, Any]]:
        return self._iter_keyed("segments", "lists")

    def _iter_keyed(self, path: str, key: str, page_size: int = DEFAULT_PAGE) -> Iterator[dict[str, Any]]:
        """Entities whose URL and envelope key differ (``/api/segments`` answers ``lists``)."""
        start = 0
        while True:
            body = self.get_json(f"/api/{path}", params={"start": start, "limit": page_size})
            rows = list((body.get(key) or {}).values())
            yield from rows
            start += len(rows)
            if len(rows) < page_size or start >= int(body.get("total") or 0):
                return

    def add_to_segment(self, segment_id: int, contact_id: int) -> None:
        """Membership is a set: adding twice is harmless, so the call is retried like a read."""
        self.request(
            "POST", f"/api/segments/{_id(segment_id)}/contact/{_id(contact_id)}/add", idempotent=True
        )

    def remove_from_segment(self, segment_id: int, contact_id: int) -> None:
        self.request(
            "POST", f"/api/segments/{_id(segment_id)}/contact/{_id(contact_id)}/remove", idempotent=True
        )

    def iter_companies(self, *, page_size: int = DEFAULT_PAGE) -> Iterator[dict[str, Any]]:
        return self.iter_entities("companies", page_size=page_size)

    def create_company(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Mautic identifies companies by name (an existing name answers 200), so a repeat is harmless."""
        response = self.request("POST", "/api/companies/new", json=dict(fields), idempotent=True)
        return response.json()["company"]

    def update_company(self, company_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        path = f"/api/companies/{_id(company_id)}/edit"
        return self.request("PATCH", path, json=dict(fields), idempotent=True).json()["company"]

    def add_company_contact(self, company_id: int, contact_id: int) -> None:
        self.request(
            "POST", f"/api/companies/{_id(company_id)}/contact/{_id(contact_id)}/add", idempotent=True
        )

    # --- transactional email -----------------------------------------------------------------------

    def send_email(
        self, email_id: int, contact_id: int, *, ref: str, tokens: Mapping[str, Any] | None = None,
        attachments: Sequence[int] = (), resend: int = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """Send template ``email_id`` to the contact, at most once per (template, contact, ``ref``).

        A repeat (retried task, duplicate event) returns the stored result without sending. Tokens are not
        part of the key: the same email for the same object is one email, whatever it says."""
        effect = email_effect(email_id, contact_id, ref, resend)
        body: dict[str, Any] = {"tokens": dict(tokens or {})}
        if attachments:
            body["assetAttachments"] = list(attachments)
        return once(effect, lambda attempt: self._send_email(attempt, email_id, contact_id, body))

    def _send_email(
        self, attempt: Attempt, email_id: int, contact_id: int, body: dict[str, Any]
    ) -> dict[str, Any]:
        if attempt.recovering and attempt.recovery_point == SENDING:
            raise self._maybe_sent(attempt, email_id, contact_id, "an earlier try stopped during the call")
        attempt.checkpoint(SENDING)
        path = f"/api/emails/{_id(email_id)}/contact/{_id(contact_id)}/send"
        try:
            response = self.request("POST", path, json=body)
        except Ambiguous as exc:
            raise self._maybe_sent(attempt, email_id, contact_id, str(exc)) from exc
        except (Retryable, AuthExpired):
            attempt.checkpoint(NOT_SENT)  # refused before anything was sent: the next try may send
            raise
        result = response.json()
        if not result.get("success"):
            raise Permanent(f"mautic refused to send email {email_id} to contact {contact_id}: {result}")
        return {"success": True, "email_id": email_id, "contact_id": contact_id}

    def _maybe_sent(self, attempt: Attempt, email_id: int, contact_id: int, why: str) -> EmailMaybeSent:
        message = (
            f"email {email_id} to contact {contact_id} may have been sent ({why}); not sending again "
            f"(at most once). Check the contact's email history in Mautic and resend by hand if missing."
        )
        log.error("%s: %s [key %s]", self.service, message, attempt.key)
        return EmailMaybeSent(message)

    # --- webhooks (for `webhooks install`) ---------------------------------------------------------

    def iter_hooks(self) -> Iterator[dict[str, Any]]:
        return self._iter_keyed("hooks", "hooks")

    def create_hook(
        self, *, name: str, url: str, triggers: Sequence[str], secret: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"name": name, "webhookUrl": url, "triggers": list(triggers)}
        body["isPublished"] = True
        if secret:
            body["secret"] = secret
        if description:
            body["description"] = description
        return self.request("POST", "/api/hooks/new", json=body).json()["hook"]

    def ensure_hook(
        self, *, name: str, url: str, triggers: Sequence[str], secret: str | None = None
    ) -> dict[str, Any]:
        """One subscription per URL: an existing one is edited to the wanted triggers, not duplicated."""
        with lock(f"{self.service}:hook:{url}"):
            existing = next((h for h in self.iter_hooks() if h.get("webhookUrl") == url), None)
            if existing is None:
                return self.create_hook(name=name, url=url, triggers=triggers, secret=secret)
            body: dict[str, Any] = {"triggers": list(triggers), "isPublished": True}
            if secret:
                body["secret"] = secret
            path = f"/api/hooks/{_id(existing['id'])}/edit"
            return self.request("PATCH", path, json=body, idempotent=True).json()["hook"]

    def delete_hook(self, hook_id: int) -> bool:
        return self.delete_if_present(f"/api/hooks/{_id(hook_id)}/delete")


def _secret(value: str | Secret | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value or None
    return Secret(value) if value else None


def _field(contact: Contact, alias: str) -> Any:
    fields = contact.get("fields") or {}
    return (fields.get("all") or {}).get(alias)


def _id(value: Any) -> str:
    """Mautic's ids are integers."""
    return segment(value, "integer", what="mautic id")
