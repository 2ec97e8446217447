"""`syncengine webhooks check|install` against the vendor simulators, through their documented APIs, and
against the real ERPNext and Directus peers: check reports what is missing, outdated, stale or duplicated;
install leaves exactly one subscription of ours per (event, our URL) in every vendor however often it runs
and whatever was there before (moving ours to a new URL, removing duplicates and ours elsewhere), leaves
others' subscriptions alone, and what it installed really delivers to the receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from connectors.hooks import our_path
from connectors.subscriptions import hooks
from syncengine.vendors.directus import FLOWS as DIRECTUS_FLOWS
from syncengine.vendors.erpnext import EVENTS as ERPNEXT_EVENTS
from syncengine.vendors.invoiceninja import EVENTS as INVOICENINJA_EVENTS
from tests import peers
from tests.support import ROOT, SECRETS, wait_until

FOREIGN = "https://hooks.example.test/elsewhere"  # someone else's subscriptions point here
DIRECTUS_AUTH = {"Authorization": "Bearer directus-static-token"}
# One subscription of ours per (event, URL): what every vendor holds after install.
EXPECTED = {"invoiceninja": len(INVOICENINJA_EVENTS), "erpnext": len(ERPNEXT_EVENTS), "mautic": 1,
            "directus": len(DIRECTUS_FLOWS), "revolut": 1}  # fmt: skip


def webhooks(action: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "webhooks", action, *args], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def held(sims: dict[str, Any]) -> dict[str, list[str]]:
    """Every live subscription each vendor holds, as the URL it sends to (ours and others')."""
    directus = sims["directus"]
    ops = directus.db["directus_operations"]
    return {
        "invoiceninja": [h["target_url"] for h in sims["invoiceninja"].db["webhooks"].values()
                         if not h["archived_at"] and not h["is_deleted"]],
        "erpnext": [h["request_url"] for h in sims["erpnext"].db["Webhook"].values()],
        "mautic": [h["url"] for h in sims["mautic"].db["hooks"].values()],
        "directus": [ops[f["operation"]]["options"]["url"] for f in directus.db["directus_flows"].values()],
        "revolut": [h["url"] for h in sims["revolut"].db["webhooks"].values()],
    }  # fmt: skip


def ours_at(sims: dict[str, Any], url: str) -> dict[str, int]:
    """How many live subscriptions of ours each vendor holds that send to `url`."""
    return {
        system: sum(u.startswith(url + "/webhooks/") for u in urls) for system, urls in held(sims).items()
    }


def test_install_twice_creates_each_subscription_once_and_check_reports_missing(vendors):
    sims, env = vendors

    before = webhooks("check", env)
    assert before.returncode == 1, before.stderr
    for system in hooks():
        assert f"{system:<13} missing" in before.stdout
    assert all(not urls for urls in held(sims).values())

    first = webhooks("install", env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("created") == sum(EXPECTED.values())
    # Revolut chose the signing secret: install stores it encrypted and never prints it.
    revolut_hook = next(iter(sims["revolut"].db["webhooks"].values()))
    assert revolut_hook["secret"] not in first.stdout + first.stderr
    assert "signing secret is stored encrypted" in first.stdout
    assert ours_at(sims, env["SYNCENGINE_PUBLIC_URL"]) == EXPECTED
    assert len(sims["directus"].db["directus_operations"]) == len(DIRECTUS_FLOWS)

    second = webhooks("install", env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("unchanged") == sum(EXPECTED.values()), second.stdout
    assert ours_at(sims, env["SYNCENGINE_PUBLIC_URL"]) == EXPECTED

    # What was installed is what each vendor documents, with our secret.
    hook = next(h for h in sims["invoiceninja"].db["webhooks"].values() if h["event_id"] == "1")
    assert hook["target_url"] == f"{env['SYNCENGINE_PUBLIC_URL']}/webhooks/invoiceninja/create_client"
    assert hook["headers"] == {"X-Webhook-Secret": SECRETS["invoiceninja"]}
    mautic = next(iter(sims["mautic"].db["hooks"].values()))
    assert mautic["secret"] == SECRETS["mautic"]
    assert all(str(name).startswith("syncengine ") for name in sims["erpnext"].db["Webhook"])
    # Directus: uploads go to us too (OCR, F6), with our header, through the Flow's request operation.
    [upload] = sims["directus"].flow_targets("files.upload")
    assert upload["url"] == f"{env['SYNCENGINE_PUBLIC_URL']}/webhooks/directus"
    assert upload["headers"] == {"X-Webhook-Secret": SECRETS["directus"]}

    # Someone narrows the Mautic webhook by hand: check says so, install puts it right.
    sims["mautic"].db["hooks"][mautic["id"]]["triggers"] = ["mautic.lead_post_save_new"]
    drifted = webhooks("check", env)
    assert drifted.returncode == 1 and "mautic        outdated" in drifted.stdout
    assert "updated" in webhooks("install", env).stdout
    assert webhooks("check", env).returncode == 0
    assert ours_at(sims, env["SYNCENGINE_PUBLIC_URL"]) == EXPECTED


def test_a_moved_receiver_moves_every_subscription_and_they_deliver_there(vendors):
    sims, env = vendors
    new = env["SYNCENGINE_PUBLIC_URL"]
    old = new.replace("127.0.0.1", "localhost")  # the same receiver under its former address
    assert webhooks("install", env, "--url", old).returncode == 0
    assert ours_at(sims, old) == EXPECTED

    check = webhooks("check", env, "--url", new)
    assert check.returncode == 1
    outdated = [line for line in check.stdout.splitlines() if " outdated " in line]
    assert len(outdated) == sum(EXPECTED.values()), check.stdout
    assert all(f"(sends to {old}/webhooks/" in line for line in outdated)
    assert "missing" not in check.stdout

    moved = webhooks("install", env, "--url", new)
    assert moved.returncode == 0, moved.stdout
    assert moved.stdout.count(f"moved from {old}/webhooks/") == sum(EXPECTED.values())
    assert "created" not in moved.stdout and "removed" not in moved.stdout
    assert ours_at(sims, new) == EXPECTED and ours_at(sims, old) == dict.fromkeys(EXPECTED, 0)
    assert webhooks("check", env, "--url", new).returncode == 0
    _delivers(sims, env)


def test_install_collapses_duplicates_and_stale_ones_and_leaves_others_alone(vendors):
    sims, env = vendors
    receiver, old = env["SYNCENGINE_PUBLIC_URL"], "https://old-host.example.test"
    # The Invoice Ninja: every event twice at our URL after two earlier installs.
    assert webhooks("install", env).returncode == 0
    _seed_leftovers(sims, env, old)
    others = {system: [u for u in urls if u.startswith(FOREIGN)] for system, urls in held(sims).items()}

    check = webhooks("check", env)
    assert check.returncode == 1
    report = check.stdout
    assert report.count(" duplicate ") == len(INVOICENINJA_EVENTS) + 2 + 1 + 1 + 1, report
    assert "invoiceninja  stale     delete_client at https://old-host.example.test" in report
    assert "erpnext       stale     Customer:after_insert at " in report  # an event we no longer use
    assert "erpnext       stale     Item:on_trash at https://old-host" in report

    first = webhooks("install", env)
    assert first.returncode == 0, first.stdout
    assert first.stdout.count(" removed ") == report.count(" duplicate ") + report.count(" stale ")
    assert ours_at(sims, receiver) == EXPECTED
    assert ours_at(sims, old) == dict.fromkeys(EXPECTED, 0)
    assert {
        system: [u for u in urls if u.startswith(FOREIGN)] for system, urls in held(sims).items()
    } == others
    second = webhooks("install", env)
    assert second.stdout.count("unchanged") == sum(EXPECTED.values()) and "removed" not in second.stdout
    assert webhooks("check", env).returncode == 0


def _seed_leftovers(sims: dict[str, Any], env: dict[str, str], old: str) -> None:
    """Duplicates of ours at our URL, ours at an old URL or for an event we dropped, and others' hooks."""
    receiver = env["SYNCENGINE_PUBLIC_URL"]
    secret = {"X-Webhook-Secret": SECRETS["invoiceninja"]}
    ninja = [{"target_url": f"{receiver}/webhooks/invoiceninja/{e}", "event_id": str(i), "headers": secret}
             for e, i in _ninja_ids().items()]  # fmt: skip
    ninja += [{"target_url": f"{old}/webhooks/invoiceninja/delete_client", "event_id": "11"},
              {"target_url": FOREIGN, "event_id": "1"}]  # fmt: skip
    sims["invoiceninja"].seed({"webhooks": ninja})
    erp = [
        ("Customer", "on_update", f"{receiver}/webhooks/erpnext/on_update"),
        ("Customer", "on_update", f"{receiver}/webhooks/erpnext/on_update"),
        ("Customer", "after_insert", f"{receiver}/webhooks/erpnext/after_insert"),
        ("Item", "on_trash", f"{old}/webhooks/erpnext/on_trash"),
        ("Customer", "on_update", FOREIGN),
    ]
    erp = [{"webhook_doctype": d, "webhook_docevent": e, "request_url": u} for d, e, u in erp]
    sims["erpnext"].seed({"Webhook": erp})
    triggers = ["mautic.lead_post_save_new"]
    mautic = [("syncengine", f"{receiver}/webhooks/mautic"), ("CRM", FOREIGN)]
    sims["mautic"].seed({"hooks": [{"name": n, "webhookUrl": u, "triggers": triggers} for n, u in mautic]})
    _directus_flow(env["DIRECTUS_URL"], "syncengine uploads", f"{receiver}/webhooks/directus")
    _directus_flow(env["DIRECTUS_URL"], "Slack", FOREIGN)
    sims["revolut"].seed({"webhooks": [{"url": f"{receiver}/webhooks/revolut"}, {"url": FOREIGN}]})


def _ninja_ids() -> dict[str, int]:
    from syncengine.vendors.invoiceninja import EVENT_IDS as INVOICENINJA_EVENT_IDS

    return INVOICENINJA_EVENT_IDS


def _directus_flow(base: str, name: str, url: str) -> None:
    """A Flow posting to `url` on item creation, made as a person makes one: flow, operation, link."""
    options = {"type": "action", "scope": ["items.create"], "collections": ["contacts"]}
    flow = {"name": name, "status": "active", "trigger": "event", "options": options}
    flow = requests.post(f"{base}/flows", json=flow, headers=DIRECTUS_AUTH, timeout=5)
    flow_id = flow.json()["data"]["id"]
    op = {"flow": flow_id, "key": "post", "type": "request", "position_x": 19, "position_y": 1,
          "options": {"url": url, "method": "POST", "body": "{{$trigger}}"}}  # fmt: skip
    op_id = requests.post(f"{base}/operations", json=op, headers=DIRECTUS_AUTH, timeout=5).json()["data"][
        "id"
    ]
    requests.patch(f"{base}/flows/{flow_id}", json={"operation": op_id}, headers=DIRECTUS_AUTH, timeout=5)


def _delivers(sims: dict[str, Any], env: dict[str, str]) -> None:
    """A Directus item and an Invoice Ninja client reach the receiver, which verifies our secret header and
    stores each (202; 200 would be a duplicate)."""
    tag = uuid.uuid4().hex[:8]  # the receiver lives for the session: each delivery is new to it
    item = {"ext_id": f"ops-{tag}", "email": f"ops-{tag}@example.test"}
    directus = requests.post(
        env["DIRECTUS_URL"] + "/items/contacts", json=item, headers=DIRECTUS_AUTH, timeout=5
    )
    assert directus.status_code == 200
    ninja = requests.post(
        env["INVOICENINJA_URL"] + "/api/v1/clients", json={"name": f"Ops {tag}"},
        headers={"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}, timeout=5,
    )  # fmt: skip
    assert ninja.status_code == 200, ninja.text

    def delivered(sim: Any) -> list[int | None]:
        sim.flush_webhooks(timeout=5)
        return [entry["status"] for entry in sim.webhook_log]

    assert wait_until(lambda: delivered(sims["directus"])) == [202]
    assert 202 in wait_until(lambda: delivered(sims["invoiceninja"]))


def test_installed_directus_flow_and_invoiceninja_subscription_deliver_to_the_receiver(vendors):
    sims, env = vendors
    assert webhooks("install", env).returncode == 0
    _delivers(sims, env)


def test_revolut_signing_secret_is_stored_not_shown_and_verifies_its_deliveries(vendors):
    # given: a receiver that knows no Revolut secret of its own making (REVOLUT_WEBHOOK_SECRET is ours)
    sims, env = vendors
    from syncengine import signing_secrets

    # when
    first = webhooks("install", env, "--system", "revolut")
    hook = next(iter(sims["revolut"].db["webhooks"].values()))
    tx = sims["revolut"].receive_payment(12.5, reference="stored-secret", payer="Someone")

    # then: the secret never reached the screen, it is stored, and Revolut's delivery signed with it is taken
    assert first.returncode == 0 and hook["secret"] not in first.stdout + first.stderr
    assert [s.reveal() for s in signing_secrets.stored("revolut", fresh=True)] == [hook["secret"]]
    assert tx and wait_until(lambda: [e["status"] for e in sims["revolut"].webhook_log]) == [202]
    # and: check finds nothing to do; a secret rotated at Revolut is seen, then stored by install
    assert webhooks("check", env, "--system", "revolut").returncode == 0
    hook["secret"] = "wsk_rotated_" + uuid.uuid4().hex
    assert "signing secret" in webhooks("check", env, "--system", "revolut").stdout
    assert "stored encrypted" in webhooks("install", env, "--system", "revolut").stdout
    assert [s.reveal() for s in signing_secrets.stored("revolut", fresh=True)] == [hook["secret"]]


def test_credentials_that_may_not_manage_webhooks_are_one_line_with_the_fix(vendors):
    sims, env = vendors
    sims["invoiceninja"].add_token("CLERK", "view_all,create_all,edit_all")
    sims["mautic"].seed({"users": {"clerk": "clerk-pass"}, "roles": {"clerk": ["lead:leads:full"]}})
    env = {**env, "INVOICENINJA_TOKEN": "CLERK", "MAUTIC_USERNAME": "clerk", "MAUTIC_PASSWORD": "clerk-pass"}
    done = webhooks("install", env, "--system", "invoiceninja", "--system", "mautic", "--system", "erpnext")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    [ninja] = [line for line in lines if line.startswith("invoiceninja")]
    assert " forbidden " in ninja and "webhooks are an administrator's" in ninja
    [mautic] = [line for line in lines if line.startswith("mautic")]
    assert " forbidden " in mautic and "-> give the Mautic API user's role Webhooks" in mautic
    # The vendor that accepts us is still done.
    assert sum(line.startswith("erpnext ") and " created " in line for line in lines) == len(ERPNEXT_EVENTS)
    assert "clerk-pass" not in done.stdout + done.stderr


# --- the real servers ---------------------------------------------------------------------------------


def _inbox(source: str, needle: str) -> list[str]:
    from syncengine.db import session_scope
    from syncengine.models import InboxEvent

    with session_scope() as session:
        rows = session.execute(select(InboxEvent.payload).where(InboxEvent.source == source)).scalars()
        return [str(p) for p in rows if needle in str(p)]


@pytest.fixture()
def erpnext_env(receiver: str) -> Iterator[dict[str, str]]:
    peer = peers.erpnext()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOICENINJA_", "MAUTIC_", "DIRECTUS_"))}
    env.update({k: v for k, v in peer.items() if k.startswith("ERPNEXT_") and "WEBHOOK" not in k})
    env["SYNCENGINE_PUBLIC_URL"] = receiver
    yield env
    _erpnext_cleanup(peer, receiver)


def _erpnext_cleanup(peer: dict[str, str], receiver: str) -> None:
    """Our Webhook documents go: the shared site keeps nobody's test subscriptions."""
    auth = {"Authorization": f"token {peer['ERPNEXT_API_KEY']}:{peer['ERPNEXT_API_SECRET']}"}
    url = peer["ERPNEXT_URL"] + "/api/v2/document/Webhook"
    rows = requests.get(
        url, params={"fields": '["name","request_url"]', "limit": 500}, headers=auth, timeout=30
    )
    for row in rows.json()["data"]:
        if row["request_url"].startswith(receiver):
            requests.delete(f"{url}/{requests.utils.quote(row['name'], safe='')}", headers=auth, timeout=30)


@pytest.mark.peers("erpnext")
def test_erpnext_peer_install_is_idempotent_and_delivers(erpnext_env):
    peer, receiver = peers.erpnext(), erpnext_env["SYNCENGINE_PUBLIC_URL"]
    first = webhooks("install", erpnext_env, "--system", "erpnext")
    assert first.returncode == 0, first.stdout
    # The shared site may hold another session's leftovers: those are ours elsewhere, moved here, not doubled.
    made = [line for line in first.stdout.splitlines() if " created " in line or " updated " in line]
    assert len(made) == len(ERPNEXT_EVENTS), first.stdout
    second = webhooks("install", erpnext_env, "--system", "erpnext")
    assert second.stdout.count(" unchanged ") == len(ERPNEXT_EVENTS), second.stdout
    assert webhooks("check", erpnext_env, "--system", "erpnext").returncode == 0

    # The real rq worker signs and posts a Customer save to the receiver, which verifies and stores it.
    name = f"Peer Hooks {uuid.uuid4().hex[:8]}"
    auth = {"Authorization": f"token {peer['ERPNEXT_API_KEY']}:{peer['ERPNEXT_API_SECRET']}"}
    base = peer["ERPNEXT_URL"] + "/api/v2/document/Customer"
    made = requests.post(base, json={"customer_name": name}, headers=auth, timeout=30)
    assert made.status_code == 200, made.text
    try:
        assert wait_until(lambda: _inbox("erpnext", name), timeout=60)
    finally:
        requests.delete(f"{base}/{requests.utils.quote(made.json()['data']['name'], safe='')}", headers=auth,
                        timeout=30)  # fmt: skip

    # Moved: the same documents now send elsewhere; nothing was added.
    moved = webhooks(
        "install", erpnext_env, "--system", "erpnext", "--url", receiver.replace("127.0.0.1", "localhost")
    )
    assert moved.stdout.count(" updated ") == len(ERPNEXT_EVENTS) and " created " not in moved.stdout
    back = webhooks("install", erpnext_env, "--system", "erpnext")
    assert back.stdout.count(f"moved from {receiver.replace('127.0.0.1', 'localhost')}") == len(
        ERPNEXT_EVENTS
    )


@pytest.fixture()
def directus_env(receiver: str) -> dict[str, str]:
    peer = peers.directus()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOICENINJA_", "MAUTIC_", "ERPNEXT_"))}
    env.update(
        DIRECTUS_URL=peer["DIRECTUS_URL"],
        DIRECTUS_TOKEN=peer["DIRECTUS_TOKEN"],
        SYNCENGINE_PUBLIC_URL=receiver,
    )
    return env


def _directus_call(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(method, env["DIRECTUS_URL"] + path, json=body, timeout=30,
                              headers={"Authorization": f"Bearer {env['DIRECTUS_TOKEN']}"})  # fmt: skip
    assert answer.status_code < 300, answer.text
    return answer.json()["data"] if answer.content else None


def _directus_contacts(env: dict[str, str]) -> None:
    """The `contacts` collection our Flow watches, when this Directus has none yet."""
    answer = requests.get(env["DIRECTUS_URL"] + "/collections/contacts", timeout=30,
                          headers={"Authorization": f"Bearer {env['DIRECTUS_TOKEN']}"})  # fmt: skip
    if answer.status_code == 200:
        return
    key = {"field": "id", "type": "integer", "schema": {"is_primary_key": True, "has_auto_increment": True}}
    fields = [key, {"field": "email", "type": "string"}]
    _directus_call(
        env, "POST", "/collections", {"collection": "contacts", "schema": {}, "meta": {}, "fields": fields}
    )


@pytest.mark.peers("directus")
def test_directus_peer_install_is_idempotent_moves_and_delivers(directus_env):
    env = directus_env
    first = webhooks("install", env, "--system", "directus")
    assert first.returncode == 0, first.stdout
    assert first.stdout.count(" created ") == len(DIRECTUS_FLOWS)
    assert webhooks("install", env, "--system", "directus").stdout.count(" unchanged ") == len(DIRECTUS_FLOWS)
    assert webhooks("check", env, "--system", "directus").returncode == 0

    # A real Flow run reaches the receiver (the harness lets Flows call loopback), with our header.
    _directus_contacts(env)
    email = f"peer-{uuid.uuid4().hex[:8]}@example.test"
    _directus_call(env, "POST", "/items/contacts", {"email": email})
    assert wait_until(lambda: _inbox("directus", email), timeout=60)

    # A copy of our Flow is a duplicate; a move updates the operations in place.
    flows = _directus_call(env, "GET", "/flows?limit=-1")
    ours = [f for f in flows if f["name"] in DIRECTUS_FLOWS]
    assert len(ours) == len(DIRECTUS_FLOWS)
    old = env["SYNCENGINE_PUBLIC_URL"].replace("127.0.0.1", "localhost")
    moved = webhooks("install", env, "--system", "directus", "--url", old)
    assert moved.stdout.count(" updated ") == len(DIRECTUS_FLOWS), moved.stdout
    assert webhooks("install", env, "--system", "directus").stdout.count("moved from") == len(DIRECTUS_FLOWS)
    operations = _directus_call(env, "GET", "/operations?limit=-1")
    assert sum(our_path(op["options"].get("url"), "directus") for op in operations) == len(DIRECTUS_FLOWS)


@pytest.mark.peers("directus")
def test_directus_peer_token_that_may_not_read_flows_is_one_forbidden_line(directus_env):
    env, tag = directus_env, uuid.uuid4().hex[:8]
    _directus_contacts(env)
    crud = [{"collection": "contacts", "action": a, "fields": ["*"], "permissions": {}, "validation": {}}
            for a in ("create", "read", "update", "delete")]  # fmt: skip
    policy = _directus_call(env, "POST", "/policies", {"name": f"least {tag}", "admin_access": False,
                                                       "app_access": False, "permissions": crud})  # fmt: skip
    role = _directus_call(
        env, "POST", "/roles", {"name": f"least {tag}", "policies": [{"policy": policy["id"]}]}
    )
    token = f"least-privilege-{tag}"
    user = {
        "email": f"least-{tag}@example.com",
        "password": f"pw-{tag}-123456",
        "role": role["id"],
        "token": token,
    }
    _directus_call(env, "POST", "/users", user)
    for action in ("check", "install"):
        done = webhooks(action, {**env, "DIRECTUS_TOKEN": token}, "--system", "directus")
        assert done.returncode == 1
        [line] = done.stdout.splitlines()
        assert line.startswith("directus      forbidden -") and "directus_flows" in line, line
        assert token not in done.stdout + done.stderr
