"""The Mautic activity sweep (issue 6, F8): email opens and form submissions whose webhooks Mautic dropped
(it never re-sends one) are recovered from the contact timeline (`/api/contacts/activity`) as one Directus
activity item and one Invoice Ninja note line each; a second sweep and the late webhook add nothing, and a
sweep over many unchanged activities costs one list request."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import func, select

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tasks import reconcile
from tests.flows.test_activities import activities_with, note_lines, open_email
from tests.flows.test_contacts import clients_with, directus_contacts_with, mautic_contact, writes
from tests.flows.test_sweeps import run_sweep
from tests.support import sign, wait_until

ACTIVITY_PATH = "/api/contacts/activity"


def swept(output: str) -> tuple[int, int]:
    """(listed, new) of the `mautic activity` line `syncengine sweep` prints."""
    found = re.search(r"mautic activity: (\d+) listed, (\d+) new", output)
    assert found, output
    return int(found[1]), int(found[2])


def inbox_rows(pattern: str) -> int:
    with session_scope() as s:
        return s.execute(select(func.count()).where(InboxEvent.event_id.like(pattern))).scalar_one()


def submit_form(deployment, form_id: int, address: str, message: str) -> dict:
    data = {"mauticform[email]": address, "mauticform[message]": message, "mauticform[formId]": form_id}
    posted = requests.post(f"{deployment.servers['mautic'].url}/form/submit", data=data, timeout=10)
    assert posted.status_code == 200, posted.text
    return max(deployment.sims["mautic"].db["submissions"].values(), key=lambda s: s["id"])


def test_activities_whose_webhooks_were_dropped_arrive_by_one_sweep_once(deployment):
    sims, mautic = deployment.sims, deployment.sims["mautic"]
    address = f"act-sweep-{uuid.uuid4().hex[:8]}@example.test"
    contact = mautic_contact(deployment, address, "Ida")
    wait_until(lambda: clients_with(sims["invoiceninja"], address)
               and directus_contacts_with(sims["directus"], address), timeout=60)  # fmt: skip
    deployment.settle()
    reconcile.set_cursor("mautic", "activity", datetime.now(UTC) - timedelta(seconds=2))
    form = mautic.add_form("Callback", [{"alias": "email", "leadField": "email"}, {"alias": "message"}])

    first_log = len(mautic.webhook_log)
    mautic.set_faults(drop_webhooks=1.0)
    try:
        stats = [open_email(deployment, contact["id"]) for _ in range(2)]
        submission = submit_form(deployment, form["id"], address, "Call me back")
        mautic.flush_webhooks(timeout=10)
    finally:
        mautic.clear_faults()
    activity_events = ("mautic.email_on_open", "mautic.form_on_submit")
    dropped = [d for d in list(mautic.webhook_log)[first_log:]
               if d["result"] == "dropped" and d["event"] in activity_events]  # fmt: skip
    assert sorted(d["event"] for d in dropped) == [*["mautic.email_on_open"] * 2, "mautic.form_on_submit"]
    deployment.settle()
    refs = [f"mautic:email_open:{s['id']}" for s in stats] + [f"mautic:form_submit:{submission['id']}"]
    assert not any(activities_with(sims["directus"], ref) for ref in refs), "a webhook was not dropped"

    listed, new = swept(run_sweep(deployment, "mautic", "activity", lookback=0))
    assert listed >= 3 and new == 3  # (an earlier test's activity in the cursor's second is listed too)

    def everywhere() -> bool:
        return all(
            activities_with(sims["directus"], ref) and note_lines(sims["invoiceninja"], address, ref)
            for ref in refs
        )

    wait_until(everywhere, timeout=60)
    deployment.settle()
    for ref in refs:
        assert len(activities_with(sims["directus"], ref)) == 1
        assert len(note_lines(sims["invoiceninja"], address, ref)) == 1
    opened = activities_with(sims["directus"], refs[0])[0]
    assert opened["type"] == "email_open" and opened["subject"] == "Our autumn news"
    assert str(opened["contact"]) == str(directus_contacts_with(sims["directus"], address)[0]["id"])
    form_item = activities_with(sims["directus"], refs[2])[0]
    assert form_item["type"] == "form_submit" and form_item["details"]["results"]["message"] == "Call me back"

    # The sweep again (its lookback re-lists all three) and then the late webhooks: nothing new anywhere.
    before = {name: writes(sim) for name, sim in sims.items()}
    listed, new = swept(run_sweep(deployment, "mautic", "activity"))
    assert listed >= 3 and new == 0
    for delivery in dropped:
        body = delivery["body"].encode()
        url = f"{deployment.receiver}/webhooks/mautic"
        late = requests.post(url, data=body, headers=sign("mautic", body), timeout=10)
        assert late.status_code == 200 and late.json().get("duplicate"), late.text
    deployment.settle()
    assert {name: writes(sim) for name, sim in sims.items()} == before
    for stat in stats:
        assert inbox_rows(f"mautic.email_on_open:stat:{stat['id']}:%") == 1
    assert inbox_rows(f"mautic.form_on_submit:submission:{submission['id']}:%") == 1


def test_a_sweep_over_many_unchanged_activities_makes_one_list_request(deployment):
    """More opens and submissions than Mautic's default page (25) of each type: one request still."""
    mautic = deployment.sims["mautic"]
    address = f"act-many-{uuid.uuid4().hex[:8]}@example.test"
    lead = mautic.seed({"contacts": [{"email": address, "firstname": "Many"}]})["contacts"][0]  # no webhook
    email = mautic.add_email(f"digest-{uuid.uuid4().hex[:6]}")
    form = mautic.add_form("Survey", [{"alias": "email", "leadField": "email"}])
    reconcile.set_cursor("mautic", "activity", datetime.now(UTC) - timedelta(seconds=2))
    now = mautic.db_now()
    with mautic.lock:  # a data import: 30 read stats and 30 submissions, no webhooks
        for n in range(30):
            stat_id = mautic.db.next_id("email_stats")
            mautic.db["email_stats"][stat_id] = {
                "id": stat_id, "email_id": email["id"], "lead_id": lead, "email_address": address,
                "date_sent": now, "tracking_hash": uuid.uuid4().hex[:20], "is_read": True, "date_read": now,
                "open_count": 1, "tokens": {}, "source": "api", "attachments": [],
            }  # fmt: skip
            sub_id = mautic.db.next_id("submissions")
            mautic.db["submissions"][sub_id] = {
                "id": sub_id, "ipAddress": None, "trackingId": None, "referer": None, "page": None,
                "form": {"id": form["id"], "name": form["name"], "alias": form["alias"]},
                "lead": {"id": lead}, "dateSubmitted": now.replace(" ", "T") + "+00:00",
                "results": {"email": address, "n": str(n)},
            }  # fmt: skip

    listed, new = swept(run_sweep(deployment, "mautic", "activity", lookback=0))
    assert listed >= 60 and new == 60
    deployment.settle()  # a contact the hub does not know: each is ignored with a log line
    lists = len(mautic.requests_log("GET", path=ACTIVITY_PATH))
    written = {name: writes(sim) for name, sim in deployment.sims.items()}

    listed, new = swept(run_sweep(deployment, "mautic", "activity"))  # the lookback re-lists all 60 (and
    assert listed >= 60 and new == 0  # whatever earlier tests' activities are within it)
    deployment.settle()
    assert len(mautic.requests_log("GET", path=ACTIVITY_PATH)) == lists + 1
    assert {name: writes(sim) for name, sim in deployment.sims.items()} == written
