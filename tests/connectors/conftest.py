"""Fixtures for the connector tests: each vendor's simulator served on a loopback port.

Unlike tests/simulators, these tests use the session's real store (idempotency keys, locks) and Redis (the
breakers), so the root ``store`` fixture is not overridden here. Fixtures are named after their vendor.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from syncengine.vendors.erpnext import custom_field_seed

# --- Invoice Ninja and Directus -----------------------------------------------------------------------

# Tokens of these tests only (not the session's configured ones), so a leak into the logs cannot hide
# behind the redaction of configured secrets.
INVOICENINJA_TEST_TOKEN = "in-conn-token-7f3a2b91c4"
DIRECTUS_TEST_TOKEN = "dx-conn-token-5e81d0c2aa"


@pytest.fixture()
def invoiceninja_sim() -> Iterator[tuple]:
    """(simulator, base URL) of an Invoice Ninja simulator accepting INVOICENINJA_TEST_TOKEN."""
    from simulators.invoiceninja import InvoiceNinjaSimulator

    sim = InvoiceNinjaSimulator(tokens=(INVOICENINJA_TEST_TOKEN,))
    with sim.serve() as running:
        yield sim, running.url


@pytest.fixture()
def directus_sim() -> Iterator[tuple]:
    """(simulator, base URL) of a Directus simulator accepting DIRECTUS_TEST_TOKEN."""
    from simulators.directus import DirectusSimulator

    sim = DirectusSimulator(token=DIRECTUS_TEST_TOKEN)
    with sim.serve() as running:
        yield sim, running.url


# --- Revolut and OpenAI -------------------------------------------------------------------------------

OPENAI_TEST_KEY = "sk-conn-test-4c1d9e7b2f8a"


@pytest.fixture()
def revolut_sim() -> Iterator[tuple]:
    """(simulator, API base URL ending in /api/1.0) of a Revolut Business simulator (60 requests/minute)."""
    from simulators.revolut import RevolutSimulator

    sim = RevolutSimulator()
    with sim.serve() as running:
        yield sim, f"{running.url}/api/1.0"


@pytest.fixture()
def openai_sim() -> Iterator[tuple]:
    """(simulator, base URL ending in /v1) of an OpenAI simulator accepting OPENAI_TEST_KEY."""
    from simulators.openai import OpenAISimulator

    sim = OpenAISimulator(api_keys=(OPENAI_TEST_KEY,))
    with sim.serve() as running:
        yield sim, f"{running.url}/v1"


# --- ERPNext and Mautic -------------------------------------------------------------------------------

ERPNEXT_TEST_KEY = "erp-conn-key-3b7e"
ERPNEXT_TEST_SECRET = "erp-conn-secret-9d4f61a2c8"
MAUTIC_TEST_USER = "sync-user"
MAUTIC_TEST_PASSWORD = "mautic-conn-pass-6a0c2e9b"
MAUTIC_TEST_CLIENT_ID = "mautic-conn-client"
MAUTIC_TEST_CLIENT_SECRET = "mautic-conn-client-secret-1f5d8b"
# The custom fields the engine needs, as `syncengine setup` creates them (syncengine.vendors.erpnext).
ERPNEXT_CUSTOM_FIELDS = custom_field_seed()


@pytest.fixture()
def erpnext_sim() -> Iterator[tuple]:
    """(simulator, base URL) of an ERPNext simulator accepting ERPNEXT_TEST_KEY:ERPNEXT_TEST_SECRET."""
    from simulators.erpnext import ERPNextSimulator

    sim = ERPNextSimulator(
        api_key=ERPNEXT_TEST_KEY, api_secret=ERPNEXT_TEST_SECRET, custom_fields=ERPNEXT_CUSTOM_FIELDS
    )
    with sim.serve() as running:
        yield sim, running.url


@pytest.fixture()
def mautic_sim() -> Iterator[tuple]:
    """(simulator, base URL) of a Mautic simulator with a Basic user and an OAuth2 client."""
    from simulators.mautic import MauticSimulator

    sim = MauticSimulator(
        username=MAUTIC_TEST_USER,
        password=MAUTIC_TEST_PASSWORD,
        oauth_clients={MAUTIC_TEST_CLIENT_ID: MAUTIC_TEST_CLIENT_SECRET},
    )
    with sim.serve() as running:
        yield sim, running.url


@pytest.fixture()
def raw_logs(caplog) -> Iterator[Any]:
    """DEBUG logs without the redaction factory: what our code itself writes must hold no secret."""
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    caplog.set_level(logging.DEBUG)
    yield caplog
    logging.setLogRecordFactory(factory)
