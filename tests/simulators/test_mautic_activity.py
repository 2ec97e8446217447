"""Mautic 5's contact activity API (``/api/contacts/activity``): the envelope, per-type paging with
``maxPages``, the inclusive date filter, ordering, and events naming the stat and submission ids that the
``email_on_open`` / ``form_on_submit`` webhooks carry (the activity sweep relies on both)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from simulators.mautic import MauticSimulator

AUTH = ("admin", "sim-mautic-pass")
EVENTS = ("email.read", "form.submitted")


@pytest.fixture()
def mautic(serve, hook_receiver):
    sim = MauticSimulator()
    base = serve(sim).url
    sim.add_webhook_target(hook_receiver.url, events=["mautic.email_on_open", "mautic.form_on_submit"])

    def call(path: str, params: list | dict | None = None, **kw) -> requests.Response:
        kw.setdefault("auth", AUTH)
        return requests.get(base + path, params=params, timeout=5, **kw)

    return sim, base, call


def opened(sim: MauticSimulator, base: str, contact_id: int, email_id: int) -> dict:
    sent = requests.post(f"{base}/api/emails/{email_id}/contact/{contact_id}/send", auth=AUTH, json={},
                         timeout=5)  # fmt: skip
    assert sent.json() == {"success": True}
    stat = sim.sent_emails(email_id=email_id, contact_id=contact_id)[-1]
    assert requests.get(f"{base}/email/{stat['tracking_hash']}.gif", timeout=5).status_code == 200
    return stat


def submitted(sim: MauticSimulator, base: str, form_id: int, email: str) -> dict:
    data = {"mauticform[email]": email, "mauticform[message]": "Hi", "mauticform[formId]": str(form_id)}
    assert requests.post(f"{base}/form/submit", data=data, timeout=5).status_code == 200
    return max(sim.db["submissions"].values(), key=lambda s: s["id"])


def stamp(sim: MauticSimulator) -> str:
    return datetime.fromtimestamp(sim.now(), tz=UTC).replace(microsecond=0).isoformat()


def listing(page: int = 1, limit: int = 25, order: str = "ASC", **filters: str) -> list[tuple[str, str]]:
    params = [(f"filters[{k}]", v) for k, v in filters.items()]
    params += [("filters[includeEvents][]", e) for e in EVENTS]
    params += [("order[0]", "timestamp"), ("order[1]", order)]
    return [*params, ("limit", str(limit)), ("page", str(page))]


def test_the_listing_names_the_webhooks_stat_and_submission(mautic, hook_receiver):
    sim, base, call = mautic
    contact = sim.seed({"contacts": [{"email": "ann@example.test", "firstname": "Ann"}]})["contacts"][0]
    email = sim.add_email("Autumn news", subject="Our autumn news")
    form = sim.add_form("Contact us", [{"alias": "email", "leadField": "email"}, {"alias": "message"}])
    stat = opened(sim, base, contact, email["id"])
    sim.clock.advance(5)
    submission = submitted(sim, base, form["id"], "ann@example.test")
    sim.flush_webhooks()

    body = call("/api/contacts/activity", listing()).json()
    assert set(body) == {"events", "filters", "order", "types", "total", "page", "limit", "maxPages"}
    assert (body["total"], body["page"], body["limit"], body["maxPages"]) == (2, 1, 25, 1.0)
    assert body["order"] == ["timestamp", "ASC"]
    assert body["filters"]["includeEvents"] == list(EVENTS) and body["filters"]["search"] == ""
    assert body["types"]["email.read"] == "Email read" and body["types"]["form.submitted"] == "Form submitted"
    read, form_event = body["events"]  # oldest first
    assert set(read) == {"event", "eventId", "eventLabel", "eventType", "timestamp", "contactId", "details"}
    assert (read["event"], read["eventId"], read["contactId"]) == ("email.read", f"email.read{stat['id']}",
                                                                   contact)  # fmt: skip
    assert read["eventLabel"]["label"] == "Autumn news" and read["eventLabel"]["isExternal"] is True
    assert read["eventLabel"]["href"].startswith(f"{base}/email/view/")
    assert read["details"]["type"] == "read" and "lead_id" not in read["details"]["stat"]
    assert read["details"]["stat"]["email_id"] == email["id"]  # nested keys stay snake_case
    assert read["details"]["stat"]["subject"] == "Our autumn news"
    assert (form_event["event"], form_event["eventId"]) == (
        "form.submitted",
        f"form.submitted{submission['id']}",
    )
    assert form_event["contactId"] == contact and "lead" not in form_event["details"]["submission"]
    assert form_event["details"]["submission"]["results"] == {"email": "ann@example.test", "message": "Hi"}
    assert form_event["details"]["form"]["name"] == "Contact us"

    delivered = [r["json"] for r in hook_receiver.received]
    webhook_stat = next(
        p["mautic.email_on_open"][0]["stat"] for p in delivered if "mautic.email_on_open" in p
    )
    webhook_sub = next(p["mautic.form_on_submit"][0]["submission"] for p in delivered
                       if "mautic.form_on_submit" in p)  # fmt: skip
    assert webhook_stat["id"] == read["details"]["stat"]["id"]
    assert webhook_stat["dateRead"] == read["details"]["stat"]["dateRead"] == read["timestamp"]
    assert webhook_sub["id"] == form_event["details"]["submission"]["id"]
    assert webhook_sub["dateSubmitted"] == form_event["timestamp"]

    one = call(f"/api/contacts/{contact}/activity", listing()).json()
    assert [e["eventId"] for e in one["events"]] == [e["eventId"] for e in body["events"]]
    missing = call("/api/contacts/99999/activity")
    assert missing.status_code == 404 and missing.json()["errors"][0]["message"] == "Item was not found."
    assert call("/api/contacts/activity", auth=None).status_code == 401


def test_paging_is_per_type_and_max_pages_follows_the_fullest(mautic):
    sim, base, call = mautic
    contact = sim.seed({"contacts": [{"email": "bo@example.test"}]})["contacts"][0]
    email = sim.add_email("News")
    form = sim.add_form("Signup", [{"alias": "email", "leadField": "email"}])
    stats = []
    for _ in range(5):
        stats.append(opened(sim, base, contact, email["id"]))
        sim.clock.advance(1)
    subs = [submitted(sim, base, form["id"], "bo@example.test") for _ in range(2)]

    pages = [call("/api/contacts/activity", listing(page=p, limit=2)).json() for p in (1, 2, 3)]
    assert [p["maxPages"] for p in pages] == [3.0, 3.0, 3.0] and {p["total"] for p in pages} == {7}
    # each type's page: 2 reads + 2 submissions, 2 reads + none, 1 read
    assert [len(p["events"]) for p in pages] == [4, 2, 1]
    reads = [e["details"]["stat"]["id"] for p in pages for e in p["events"] if e["event"] == "email.read"]
    assert reads == [s["id"] for s in stats]
    forms = [
        e["details"]["submission"]["id"] for p in pages for e in p["events"] if e["event"] == "form.submitted"
    ]
    assert forms == [s["id"] for s in subs]
    first = pages[0]["events"]
    assert [e["timestamp"] for e in first] == sorted(e["timestamp"] for e in first)

    newest_first = call("/api/contacts/activity", listing(limit=2, order="DESC")).json()["events"]
    assert [e["details"]["stat"]["id"] for e in newest_first if e["event"] == "email.read"] == [
        stats[4]["id"], stats[3]["id"]
    ]  # fmt: skip
    default = call("/api/contacts/activity").json()  # no order: timestamp DESC, limit 25, every type
    assert default["limit"] == 25 and default["order"] == ["timestamp", "DESC"]
    assert {e["event"] for e in default["events"]} == {"email.read", "email.sent", "form.submitted"}


def test_the_date_filter_is_inclusive_on_each_types_stamp(mautic):
    sim, base, call = mautic
    contact = sim.seed({"contacts": [{"email": "cy@example.test"}]})["contacts"][0]
    email = sim.add_email("News")
    early = opened(sim, base, contact, email["id"])
    sim.clock.advance(60)
    boundary = stamp(sim)
    late = opened(sim, base, contact, email["id"])
    sim.clock.advance(60)
    after = stamp(sim)
    sim.clock.advance(60)
    opened(sim, base, contact, email["id"])

    since = call("/api/contacts/activity", listing(dateFrom=boundary)).json()
    assert [e["details"]["stat"]["id"] for e in since["events"]][:1] == [late["id"]]
    assert early["id"] not in [e["details"]["stat"]["id"] for e in since["events"]]
    window = call("/api/contacts/activity", listing(dateFrom=boundary, dateTo=after)).json()
    assert [e["details"]["stat"]["id"] for e in window["events"]] == [late["id"]] and window["total"] == 1
    naive = boundary.replace("T", " ").removesuffix("+00:00")  # `new \DateTime` reads this in UTC too
    assert call("/api/contacts/activity", listing(dateFrom=naive)).json()["total"] == since["total"]
