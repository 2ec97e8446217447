"""A deployment over the simulators, as `syncengine setup` makes one on real systems: the vendor side each
vendor's declaration asks for (`provision`: Mautic's custom contact field and template emails), then the
webhooks pointed at a receiver (`subscribe`), each simulator as `webhooks install` subscribes its vendor
(`subscribe_engine`: Invoice Ninja one URL per event with our secret header, ERPNext signed per document
event, Mautic signed batches, Directus a Flow adding our secret header, Revolut signed v2 webhooks). Used by
the demo, the flow tests and the benchmarks, so they all run the same deployment. It uses the simulators'
control surface rather than the vendor APIs `setup` calls (tests/ops runs those), so it needs no vendor
credentials or Revolut consent; what it makes is declared once, in the vendor homes (syncengine.vendors),
and how each simulator takes it is the simulator's own."""

from __future__ import annotations

import secrets
from typing import Any


def provision(sims: dict[str, Any]) -> None:
    """What `setup` creates on a fresh vendor (each simulator's `provision`: Mautic's custom contact fields
    and template emails)."""
    for sim in sims.values():
        sim.provision()


def subscribe(sims: dict[str, Any], receiver: str, secrets: dict[str, str]) -> None:
    """The deployment: `provision`, then each simulator's webhooks pointed at `receiver`
    (`subscribe_engine`, with its sender's secret)."""
    provision(sims)
    for name, sim in sims.items():
        sim.subscribe_engine(receiver, secrets.get(name))


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
    and its default credentials (`engine_credentials`). Revolut (OAuth consent) and OpenAI are configured
    by their callers."""
    from simulators import REGISTRY

    env: dict[str, str] = {}
    for name, url in urls.items():
        credentials = REGISTRY[name].engine_credentials if name in REGISTRY else {}
        if credentials:
            env[f"{name.upper()}_URL"] = url
            env.update(credentials)
    return env
