"""The two ERPNext targets the connector's contract tests run against: the simulator, always, and the real
ERPNext v15 of tests/peers.py with `pytest -m peers` or SYNCENGINE_TEST_PEERS=erpnext.

The real site is shared and never reset: a test names what it creates uniquely (`Target.unique`). Before
the first test on it, `syncengine setup`'s ERPNext part runs there (custom fields, accounts), as an
operator would run it; on the simulator the same declaration is seeded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest
import requests

from connectors.erpnext import ERPNextConnector
from tests.connectors import helpers
from tests.connectors.conftest import ERPNEXT_CUSTOM_FIELDS, ERPNEXT_TEST_KEY, ERPNEXT_TEST_SECRET

TARGETS = ["simulator", pytest.param("peer", marks=pytest.mark.peers("erpnext"))]


@dataclass
class Target:
    kind: str  # "simulator" or "peer"
    url: str
    key: str
    secret: str = field(repr=False)
    company: str
    abbr: str
    sim: Any = None  # the simulator, for the simulator target

    @property
    def tax_account(self) -> str:
        return f"VAT - {self.abbr}"

    @property
    def bank_account(self) -> str:
        return f"Bank - {self.abbr}"

    def env(self) -> dict[str, str]:
        """The engine's ERPNext settings for this target."""
        return {
            "ERPNEXT_URL": self.url, "ERPNEXT_API_KEY": self.key, "ERPNEXT_API_SECRET": self.secret,
            "ERPNEXT_COMPANY": self.company, "ERPNEXT_TAX_ACCOUNT": self.tax_account,
            "ERPNEXT_BANK_ACCOUNT": self.bank_account,
        }  # fmt: skip

    def connector(self, **kwargs: Any) -> ERPNextConnector:
        kwargs.setdefault("breaker", helpers.breaker("erpnext"))
        kwargs.setdefault("sleep", helpers.Sleeps(real=True))
        kwargs.setdefault("company", self.company)
        kwargs.setdefault("bank_account", self.bank_account)
        return ERPNextConnector(self.url, api_key=self.key, api_secret=self.secret, **kwargs)

    def raw(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A request as a plain client sends it, for what the connector would never send."""
        headers = {"Authorization": f"token {self.key}:{self.secret}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    @staticmethod
    def unique(prefix: str) -> str:
        return f"{prefix} {uuid.uuid4().hex[:8]}"


@cache
def _peer() -> Target:
    """The real server, set up for the engine once per session (what `syncengine setup` does)."""
    from connectors.erpnext_setup import ERPNextSetup
    from syncengine.settings import Settings
    from tests import peers

    env = peers.erpnext()
    company = env.get("ERPNEXT_COMPANY", "Test Co")
    target = Target(
        "peer", env["ERPNEXT_URL"], env["ERPNEXT_API_KEY"], env["ERPNEXT_API_SECRET"], company, ""
    )
    target.abbr = target.connector().get("Company", company)["abbr"]
    setup = ERPNextSetup(target.connector(), Settings.from_env(target.env()))
    problems = [str(f) for f in setup.schema(apply=True) + setup.permissions() if f.problem]
    assert not problems, "syncengine setup left problems on the ERPNext peer:\n" + "\n".join(problems)
    return target


def target_for(kind: str) -> Iterator[Target]:
    if kind == "peer":
        yield _peer()
        return
    from simulators.erpnext import ERPNextSimulator

    sim = ERPNextSimulator(
        api_key=ERPNEXT_TEST_KEY, api_secret=ERPNEXT_TEST_SECRET, custom_fields=ERPNEXT_CUSTOM_FIELDS
    )
    with sim.serve() as running:
        yield Target(
            "simulator", running.url, ERPNEXT_TEST_KEY, ERPNEXT_TEST_SECRET, sim.company, sim.abbr, sim
        )
