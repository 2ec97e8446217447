"""The vendor simulators, served, with the engine's settings for them (Revolut consent included)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import delete

from connectors.subscriptions import hooks
from simulators import REGISTRY
from simulators.wiring import engine_env
from tests import revolut_keys

REDIRECT = "https://engine.example.test/oauth/revolut/callback"


def _forget_revolut_tokens() -> None:
    from syncengine.db import session_scope
    from syncengine.models import OAuthToken

    with session_scope() as session:
        session.execute(delete(OAuthToken).where(OAuthToken.provider == "revolut"))


def _consent(sim: Any, env: dict[str, str]) -> None:
    """Real Revolut consent against the simulator: the CLI then finds the tokens in the store."""
    from connectors.revolut_tokens import RevolutTokens, consent_url
    from syncengine.settings import Settings

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
    sims = {name: REGISTRY[name]() for name in hooks()}
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
