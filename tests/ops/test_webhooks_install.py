"""`syncengine webhooks check|install` against the vendor simulators, through their documented APIs:
check reports what is missing, install creates each subscription once however often it runs, and what
it installed really delivers to the receiver."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import delete

from simulators import REGISTRY
from simulators.wiring import engine_env
from syncengine.subscriptions import ERPNEXT_EVENTS, INVOICENINJA_EVENTS
from tests import revolut_keys
from tests.support import ROOT, SECRETS, wait_until

SYSTEMS = ("invoiceninja", "erpnext", "mautic", "directus", "revolut")
REDIRECT = "https://engine.example.test/oauth/revolut/callback"


def _forget_revolut_tokens() -> None:
    from syncengine.db import session_scope
    from syncengine.models import OAuthToken

    with session_scope() as session:
        session.execute(delete(OAuthToken).where(OAuthToken.provider == "revolut"))


def _consent(sim: Any, env: dict[str, str]) -> None:
    """Real Revolut consent against the simulator: the CLI then finds the tokens in the store."""
    from syncengine.settings import Settings
    from syncengine.tokens import RevolutTokens, consent_url

    key = revolut_keys.new_key()
    env["REVOLUT_PRIVATE_KEY"] = revolut_keys.private_pem(key)
    sim.configure_client(env["REVOLUT_CLIENT_ID"], REDIRECT, revolut_keys.public_pem(key))
    settings = Settings.from_env(env)
    _forget_revolut_tokens()
    answer = requests.get(consent_url(settings), allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0]
    RevolutTokens(settings, now=sim.clock.now).exchange_code(code)


@pytest.fixture()
def vendors(receiver: str) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    sims = {name: REGISTRY[name]() for name in SYSTEMS}
    servers = {name: sim.serve() for name, sim in sims.items()}
    env = dict(
        os.environ,
        SYNCENGINE_PUBLIC_URL=receiver,
        **engine_env({name: server.url for name, server in servers.items()}),
        REVOLUT_URL=servers["revolut"].url + "/api/1.0", REVOLUT_CLIENT_ID="ops-test-client",
        REVOLUT_REDIRECT_URI=REDIRECT,
    )  # fmt: skip
    _consent(sims["revolut"], env)
    try:
        yield sims, env
    finally:
        _forget_revolut_tokens()
        for server in servers.values():
            server.stop()


def webhooks(action: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "syncengine.cli", "webhooks", action], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def subscriptions(sims: dict[str, Any]) -> dict[str, int]:
    return {
        "invoiceninja": len(sims["invoiceninja"].db["webhooks"]),
        "erpnext": len(sims["erpnext"].db["Webhook"]),
        "mautic": len(sims["mautic"].db["hooks"]),
        "directus": len(sims["directus"].db["directus_flows"]),
        "directus operations": len(sims["directus"].db["directus_operations"]),
        "revolut": len(sims["revolut"].db["webhooks"]),
    }


def test_install_twice_creates_each_subscription_once_and_check_reports_missing(vendors):
    sims, env = vendors

    before = webhooks("check", env)
    assert before.returncode == 1, before.stderr
    for system in SYSTEMS:
        assert f"{system:<13} missing" in before.stdout
    assert all(n == 0 for n in subscriptions(sims).values())

    first = webhooks("install", env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created") == len(INVOICENINJA_EVENTS) + len(ERPNEXT_EVENTS) + 4
    # Revolut chose the signing secret: install shows it once, for REVOLUT_WEBHOOK_SECRET.
    revolut_hook = next(iter(sims["revolut"].db["webhooks"].values()))
    assert f"REVOLUT_WEBHOOK_SECRET to its signing secret {revolut_hook['secret']}" in first.stdout
    expected = {"invoiceninja": len(INVOICENINJA_EVENTS), "erpnext": len(ERPNEXT_EVENTS), "mautic": 1,
                "directus": 2, "directus operations": 2, "revolut": 1}  # fmt: skip
    assert subscriptions(sims) == expected

    second = webhooks("install", env)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout and "updated" not in second.stdout
    assert second.stdout.count("unchanged") == sum(expected.values()) - 2  # a Flow and its operation: one
    assert subscriptions(sims) == expected

    # What was installed is what each vendor documents, with our secret.
    hook = next(h for h in sims["invoiceninja"].db["webhooks"].values() if h["event_id"] == "1")
    assert hook["target_url"] == f"{env['SYNCENGINE_PUBLIC_URL']}/webhooks/invoiceninja/create_client"
    assert hook["headers"] == {"X-Webhook-Secret": SECRETS["invoiceninja"]}
    mautic = next(iter(sims["mautic"].db["hooks"].values()))
    assert mautic["secret"] == SECRETS["mautic"]
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
    assert subscriptions(sims) == expected


def test_installed_directus_flow_and_invoiceninja_subscription_deliver_to_the_receiver(vendors):
    sims, env = vendors
    assert webhooks("install", env).returncode == 0
    directus = requests.post(
        env["DIRECTUS_URL"] + "/items/contacts", json={"ext_id": "ops-1", "email": "ops@example.test"},
        headers={"Authorization": "Bearer directus-static-token"}, timeout=5,
    )  # fmt: skip
    assert directus.status_code == 200
    ninja = requests.post(
        env["INVOICENINJA_URL"] + "/api/v1/clients", json={"name": "Ops Ltd"},
        headers={"X-API-TOKEN": "TOKEN", "X-Requested-With": "XMLHttpRequest"}, timeout=5,
    )  # fmt: skip
    assert ninja.status_code == 200, ninja.text

    def delivered(sim: Any) -> list[int | None]:
        sim.flush_webhooks(timeout=5)
        return [entry["status"] for entry in sim.webhook_log]

    # The receiver verified our secret header and stored each event (202; 200 would be a duplicate).
    assert wait_until(lambda: delivered(sims["directus"])) == [202]
    assert 202 in wait_until(lambda: delivered(sims["invoiceninja"]))
