"""The contact activity timeline over the API: ``GET /api/contacts/activity`` (every contact) and
``GET /api/contacts/{id}/activity`` (one), listing the email stats and form submissions this simulator
records when it fires ``mautic.email_on_open`` and ``mautic.form_on_submit``, so a webhook and the listing
name the same stat or submission id.

Facts, from ``mautic/mautic`` (5.x branch, paths under ``app/bundles/``):

- Routes ``/api/contacts/activity`` → ``LeadApiController::getAllActivityAction``,
  ``/api/contacts/{id}/activity`` → ``getActivityAction`` (404 ``Item was not found.`` for an unknown
  contact) [``LeadBundle/Controller/Api/LeadApiController.php``]. Query: ``filters[search]``,
  ``filters[includeEvents][]``, ``filters[excludeEvents][]``, ``filters[dateFrom]``, ``filters[dateTo]``
  (parsed by ``new \\DateTime``, compared to the second), ``limit`` (default 25), ``page`` (default 1),
  ``order`` (``order[0]`` = ``timestamp`` | ``eventLabel``, ``order[1]`` = ``ASC`` | ``DESC``; default
  ``['timestamp', 'DESC']``).
  LeadModel.php::getEngagements``]. Each event type is queried on its own with ``LIMIT limit OFFSET
  (page-1)*limit`` ordered by its timestamp column, then all are merged and sorted (``LeadTimelineEvent::
  getEvents``): one page holds up to ``limit`` events *per type*; ``total`` is the sum of the types' totals
  and ``maxPages`` = ceil(largest type total / limit), 1 when nothing matched [``LeadBundle/Event/
  LeadTimelineEvent.php``].
- The date filter applies to each type's timestamp column, inclusive (``BETWEEN`` when both are given, else
  ``>=`` / ``<=``) [``LeadBundle/Entity/TimelineTrait.php::getTimelineResults``; ``EmailBundle/Entity/
  StatRepository.php::getLeadStats``, timestamp ``date_read`` for ``email.read``, ``date_sent`` otherwise].
- For the API (``forTimeline`` false) each event keeps ``event, eventId, eventLabel, eventType, timestamp,
  contactId`` and ``extra`` renamed ``details``, whose top-level snake_case keys become camelCase (nested
  keys are left as they are) [``LeadTimelineEvent::addEvent`` / ``prepareDetailsForAPI``]. Relative
  ``eventLabel.href`` get the site URL prepended.
- ``email.read`` / ``email.sent``: ``eventId`` ``email.read<stat id>``, label ``{label: email name, href:
  /email/view/<hash>, isExternal: true}``, ``details: {stat: {...row, lead_id removed}, type: "read"}``
  [``EmailBundle/EventListener/LeadSubscriber.php::addEmailEvents``]. The stat row's columns are
  ``getLeadStats``' select (``email_id, id, dateRead, dateSent, subject, email_name, isRead, isFailed,
  viewedInBrowser, retryCount, list_id, list_name, idHash, openDetails, storedSubject``); its
  ``timeToRead`` (a DateInterval) is left out here.
- ``form.submitted``: ``eventId`` ``form.submitted<submission id>``, label ``{label: form name, href:
  /s/forms/view/<id>}``, ``details: {submission: {id, ipAddress, form, trackingId, dateSubmitted, referer,
  page, results}, form, page}`` (serializer group ``submissionEventDetails``: no ``lead``; the contact is
  ``contactId``) [``FormBundle/EventListener/LeadSubscriber.php``, ``FormBundle/Entity/Submission.php::
  loadApiMetadata``].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from simulators.base import route
from simulators.mautic.engagement import MauticEngagement
from simulators.mautic.fields import Row, api_time

TYPE_NAMES = {"email.read": "Email read", "email.sent": "Email sent", "form.submitted": "Form submitted"}
DEFAULT_LIMIT = 25


def _when(value: str | None) -> datetime | None:
    """A DB ``Y-m-d H:i:s`` (UTC) or an API ISO stamp as an aware time, for comparing."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _nested(args: MultiDict[str, str], name: str) -> dict[str, Any]:
    """PHP's parsing of ``name[key]=v`` and ``name[key][]=v`` into one array."""
    out: dict[str, Any] = {}
    prefix = f"{name}["
    for key in args:
        if not key.startswith(prefix) or not key.endswith("]"):
            continue
        inner = key[len(prefix) : -1]
        if inner.endswith("]["):  # name[key][]
            out[inner[:-2]] = args.getlist(key)
        else:
            out[inner] = args.get(key)
    return out


def _sort_key(value: Callable[[Row], Any], text: bool) -> Callable[[Row], tuple[Any, int]]:
    """ORDER BY the type's timestamp column (or its name), the row id keeping ties in one order."""

    def key(row: Row) -> tuple[Any, int]:
        return (str(value(row)).lower() if text else _when(value(row)), row["id"])

    return key


class MauticActivity(MauticEngagement):
    """Mixin: the contact activity (timeline) API over the stats and submissions of the other mixins."""

    @route("GET", "/api/contacts/activity")
    def all_activity(self, request: Request) -> Response:
        return self._activity(request, None)

    @route("GET", "/api/contacts/{contact_id}/activity")
    def contact_activity(self, request: Request, contact_id: str) -> Response:
        lead = self.entity("leads", contact_id)
        return self._activity(request, lead["id"])

    def _activity(self, request: Request, lead_id: int | None) -> Response:
        args = request.args
        filters = {"search": "", "includeEvents": [], "excludeEvents": [], **_nested(args, "filters")}
        try:
            limit, page = int(args.get("limit", DEFAULT_LIMIT)), int(args.get("page", 1))
        except ValueError:
            raise self.fail(400, "limit and page must be integers") from None
        order = _nested(args, "order")
        order_by = [order.get("0", "timestamp"), order.get("1", "DESC")] if order else ["timestamp", "DESC"]
        try:
            # compared as `format('Y-m-d H:i:s')`: to the second
            date_from, date_to = (_when(filters.get(k)) for k in ("dateFrom", "dateTo"))
            date_from = date_from and date_from.replace(microsecond=0)
            date_to = date_to and date_to.replace(microsecond=0)
        except ValueError:  # `new \DateTime('junk')` throws: Mautic answers a 500
            raise self.fail(500, "Failed to parse time string") from None
        start = 0 if page <= 1 else (page - 1) * limit

        events: list[Row] = []
        totals: dict[str, int] = {}
        wanted, unwanted = filters["includeEvents"], filters["excludeEvents"]
        for kind, rows, stamp, label, to_event in self._timeline_types(lead_id):
            if kind in unwanted or (wanted and kind not in wanted):
                continue
            needle = str(filters.get("search") or "").lower()
            chosen = [
                r
                for r in rows
                if (date_from is None or _when(stamp(r)) >= date_from)
                and (date_to is None or _when(stamp(r)) <= date_to)
                and needle in label(r).lower()
            ]
            by_label = order_by[0] == "eventLabel"
            key = _sort_key(label if by_label else stamp, text=by_label)
            chosen.sort(key=key, reverse=str(order_by[1]).upper() == "DESC")
            totals[kind] = len(chosen)
            shown = chosen[start : start + limit] if limit > 0 else chosen
            events.extend(to_event(r) for r in shown)

        events.sort(key=lambda e: e["_sort"] if order_by[0] == "eventLabel" else _when(e["timestamp"]))
        if str(order_by[1]).upper() == "DESC":
            events.reverse()
        for e in events:
            del e["_sort"]
        largest = max(totals.values(), default=0)
        max_pages: int | float = math.ceil(largest / limit) * 1.0 if largest and limit > 0 else 1
        return self.json(
            {
                "events": events,
                "filters": filters,
                "order": order_by,
                "types": dict(sorted(TYPE_NAMES.items(), key=lambda kv: kv[1].lower())),
                "total": sum(totals.values()),
                "page": page,
                "limit": limit,
                "maxPages": max_pages,
            }
        )

    def _timeline_types(
        self, lead_id: int | None
    ) -> list[tuple[str, list[Row], Callable[[Row], Any], Callable[[Row], str], Callable[[Row], Row]]]:
        """(event type, rows, timestamp of a row, label of a row, row → API event) per subscriber."""
        stats = [s for s in self.db["email_stats"].values() if lead_id in (None, s["lead_id"])]
        subs = [
            s for s in self.db["submissions"].values() if lead_id in (None, (s.get("lead") or {}).get("id"))
        ]

        def email_name(s: Row) -> str:
            return str(self.db["emails"][s["email_id"]]["name"])

        return [
            ("email.read", [s for s in stats if s["is_read"]], lambda s: s["date_read"], email_name,
             lambda s: self._email_event(s, "read")),
            ("email.sent", stats, lambda s: s["date_sent"], email_name,
             lambda s: self._email_event(s, "sent")),
            ("form.submitted", subs, lambda s: s["dateSubmitted"], lambda s: str(s["form"]["name"]),
             self._form_event),
        ]  # fmt: skip

    def _email_event(self, stat: Row, state: str) -> Row:
        email = self.db["emails"][stat["email_id"]]
        row = {
            "email_id": email["id"],
            "id": stat["id"],
            "dateRead": api_time(stat["date_read"]),
            "dateSent": api_time(stat["date_sent"]),
            "subject": email.get("subject"),
            "email_name": email["name"],
            "isRead": int(bool(stat["is_read"])),
            "isFailed": 0,
            "viewedInBrowser": 0,
            "retryCount": 0,
            "list_id": None,
            "list_name": None,
            "idHash": stat["tracking_hash"],
            "openDetails": [],
            "storedSubject": None,
        }
        kind = f"email.{state}"
        timestamp = row["dateRead"] if state == "read" else row["dateSent"]
        return {
            "event": kind,
            "eventId": f"{kind}{stat['id']}",
            "eventLabel": {
                "label": email["name"],
                "href": f"{self.site_url}/email/view/{stat['tracking_hash']}",
                "isExternal": True,
            },
            "eventType": TYPE_NAMES[kind],
            "timestamp": timestamp,
            "contactId": stat["lead_id"],
            "details": {"stat": row, "type": state},
            "_sort": email["name"].lower(),
        }

    def _form_event(self, sub: Row) -> Row:
        form = self.db["forms"].get(sub["form"]["id"]) or sub["form"]
        shown = {k: sub.get(k) for k in ("id", "ipAddress", "form", "trackingId", "dateSubmitted", "referer")}
        return {
            "event": "form.submitted",
            "eventId": f"form.submitted{sub['id']}",
            "eventLabel": {"label": form["name"], "href": f"{self.site_url}/s/forms/view/{form['id']}"},
            "eventType": TYPE_NAMES["form.submitted"],
            "timestamp": sub["dateSubmitted"],
            "contactId": (sub.get("lead") or {}).get("id"),
            "details": {
                "submission": {**shown, "page": sub.get("page"), "results": sub.get("results") or {}},
                "form": {"id": form["id"], "name": form["name"], "alias": form["alias"]},
                "page": sub.get("page"),
            },
            "_sort": str(form["name"]).lower(),
        }
