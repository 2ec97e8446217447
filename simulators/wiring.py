"""A deployment over the simulators, as `syncengine setup` makes one on real systems: the vendor side each
vendor's declaration asks for (`provision`: Mautic's custom contact field and template emails), then the
webhooks pointed at a receiver (`subscribe`): Invoice Ninja one URL per event with our secret header, ERPNext
signed per document event, Mautic signed batches, Directus a Flow adding our secret header, Revolut signed
v2 webhooks. Used by the demo, the flow tests and the benchmarks, so they all run the same deployment. It
uses the simulators' control surface rather than the vendor APIs `setup` calls (tests/ops runs those), so it
needs no vendor credentials or Revolut consent; what it makes is declared once, in the vendor homes
(syncengine.vendors)."""

from __future__ import annotations

import secrets
from typing import Any

from syncengine.vendors import directus, erpnext, invoiceninja, mautic, revolut


def provision(sims: dict[str, Any]) -> None:
    """What `setup` creates on a fresh vendor: Mautic's custom contact fields, and its template emails at
    their default ids (a simulator that already has emails keeps them)."""
    if "mautic" in sims:
        sim = sims["mautic"]
        known = {f["alias"] for f in sim.lead_fields}
        sim.seed({"fields": [f.body() for f in mautic.CUSTOM_FIELDS if f.alias not in known]})
        if not sim.db["emails"]:
            for email in mautic.EMAILS:
                sim.add_email(email.name, email.subject, custom_html=email.html())


def subscribe(sims: dict[str, Any], receiver: str, secrets: dict[str, str]) -> None:
    """The deployment: `provision`, then our webhooks pointed at `receiver`."""
    provision(sims)
    if "invoiceninja" in sims:
        for event in invoiceninja.EVENTS:
            sims["invoiceninja"].add_webhook_target(
                f"{receiver}/webhooks/invoiceninja/{event}", events=[event],
                headers={"X-Webhook-Secret": secrets["invoiceninja"]},
            )  # fmt: skip
    if "erpnext" in sims:
        for event in erpnext.EVENTS:
            url = f"{receiver}/webhooks/erpnext/{event.split(':')[1]}"
            sims["erpnext"].add_webhook_target(url, secret=secrets["erpnext"], events=[event])
    if "mautic" in sims:
        url = f"{receiver}/webhooks/mautic"
        sims["mautic"].add_webhook_target(url, secret=secrets["mautic"], events=list(mautic.EVENTS))
    if "directus" in sims:
        sims["directus"].add_webhook_target(
            f"{receiver}/webhooks/directus", events=list(directus.EVENTS),
            headers={"X-Webhook-Secret": secrets["directus"]},
        )  # fmt: skip
    if "revolut" in sims:
        url = f"{receiver}/webhooks/revolut"
        sims["revolut"].add_webhook_target(url, secret=secrets["revolut"], events=list(revolut.EVENTS))


# Each simulator's default credentials (and ERPNext's company and accounts), as the engine's settings name
# them (see the simulators' __init__).
_CREDENTIALS = {
    "invoiceninja": {"INVOICENINJA_TOKEN": "TOKEN"},
    "erpnext": {
        "ERPNEXT_API_KEY": "erp-api-key",
        "ERPNEXT_API_SECRET": "erp-api-secret",
        "ERPNEXT_COMPANY": "My Co",
        "ERPNEXT_TAX_ACCOUNT": "VAT - MC",
        "ERPNEXT_BANK_ACCOUNT": "Bank - MC",
    },
    "mautic": {"MAUTIC_USERNAME": "admin", "MAUTIC_PASSWORD": "sim-mautic-pass"},
    "directus": {"DIRECTUS_TOKEN": "directus-static-token"},
}


def simulator_env(vendor: str, url: str) -> dict[str, str]:
    """What points the engine at one simulator (`syncengine simulate` prints it as export lines): its URL,
    its credentials, and a webhook secret for `syncengine setup` to give the subscriptions it makes."""
    if vendor == "openai":
        return {"OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": "sk-sim-openai"}
    if vendor == "revolut":  # Revolut chooses the webhook secret, and its tokens come from the consent
        return {"REVOLUT_URL": f"{url}/api/1.0"}
    return {**engine_env({vendor: url}), f"{vendor.upper()}_WEBHOOK_SECRET": secrets.token_hex(16)}


def engine_env(urls: dict[str, str]) -> dict[str, str]:
    """The engine's settings for the simulators at these URLs (vendor -> base URL): each one's `<NAME>_URL`
    and its default credentials. Revolut (OAuth consent) and OpenAI are configured by their callers."""
    env: dict[str, str] = {}
    for name, credentials in _CREDENTIALS.items():
        if name in urls:
            env[f"{name.upper()}_URL"] = urls[name]
            env.update(credentials)
    return env
