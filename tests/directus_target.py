"""The Directus a conformance test talks to: the simulator, or the real Directus 11.17 of tests.peers, with
the same two tokens on each: the admin's, and a least-privilege one whose policy allows create, read, update
and delete on the engine's collections and nothing else.

`serve` makes either, for a fixture parametrized over TARGETS (the real one marked `peers("directus")`), so
one test body proves the simulator answers as the vendor does. The real server is shared by the whole
session: it gets the declared collections once (by `syncengine setup`'s own code), and tests name what
they make uniquely (`target.unique()`) and look only at their own items.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import requests

from syncengine.breaker import Breaker, RedisBreakerStore
from syncengine.shared_state import get_redis
from syncengine.vendors.directus import COLLECTIONS, ITEM_ACTIONS
from tests import peers

ADMIN_TOKEN = "dx-target-admin-token-4d1e"  # the simulator's; the real one's comes from its harness
LIMITED_TOKEN = "dx-target-limited-token-7c2a9f"
LIMITED_EMAIL = "syncengine-least-privilege@example.com"
POLICY = "syncengine least privilege"
TARGETS = ["sim", pytest.param("real", marks=pytest.mark.peers("directus"))]


@dataclass
class DirectusTarget:
    kind: str  # "sim" or "real"
    url: str
    token: str  # admin access
    limited: str  # CRUD on the declared collections only
    sim: Any = None  # the DirectusSimulator, for a "sim" target

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def create(self, collection: str, body: Any, token: str | None = None) -> Any:
        answer = self.call("POST", f"/items/{collection}", json=body, token=token)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def unique(self, prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def scratch_collection(self, *fields: str, unique: tuple[str, ...] = ()) -> str:
        """A collection of this test's own (string fields), made through the API on either target."""
        name = f"scratch_{uuid.uuid4().hex[:8]}"
        body = [
            {"field": f, "type": "string", "meta": {}, "schema": {"is_unique": f in unique}} for f in fields
        ]
        pk = {"field": "id", "type": "integer", "meta": {"hidden": True},
              "schema": {"is_primary_key": True, "has_auto_increment": True}}  # fmt: skip
        answer = self.call(
            "POST", "/collections", json={"collection": name, "schema": {}, "fields": [pk, *body]}
        )
        assert answer.status_code == 200, answer.text
        return name

    def grant_limited(self, collection: str) -> None:
        """CRUD on `collection` for the limited token again (Directus drops a collection's permissions with
        it, so a collection deleted and made again has none)."""
        if self.sim is not None:
            self.sim.grant(self.limited, collection, *ITEM_ACTIONS)
            return
        query = {"filter[name][_eq]": POLICY, "fields": "id"}
        policy = self.call("GET", "/policies", params=query).json()["data"][0]["id"]
        grants = [{"policy": policy, "collection": collection, "action": a, "fields": ["*"],
                   "permissions": {}, "validation": {}} for a in ITEM_ACTIONS]  # fmt: skip
        assert self.call("POST", "/permissions", json=grants).status_code == 200

    def connector(self, token: str | None = None, **kwargs: Any) -> Any:
        from connectors.directus import Directus

        breaker = Breaker(f"directus-test-{uuid.uuid4().hex[:8]}", RedisBreakerStore(get_redis()))
        return Directus(self.url, token or self.token, breaker=breaker, **kwargs)


@cache
def real_directus() -> tuple[str, str]:
    """(URL, admin token) of the session's real Directus, with the declared collections and the limited
    user made once."""
    env = peers.directus()
    url, token = env["DIRECTUS_URL"], env["DIRECTUS_TOKEN"]
    target = DirectusTarget("real", url, token, LIMITED_TOKEN)
    from connectors.directus_setup import DirectusSetup
    from syncengine.settings import Settings

    made = DirectusSetup(target.connector(), Settings.from_env({})).schema(apply=True)  # setup's own code
    assert not [f for f in made if f.problem], "\n".join(map(str, made))
    _limited_user(target)
    return url, token


def _limited_user(target: DirectusTarget) -> None:
    """A policy with CRUD on the declared collections, a role with it, a user with LIMITED_TOKEN."""
    users = target.call("GET", "/users", params={"filter[email][_eq]": LIMITED_EMAIL}).json()["data"]
    if users:
        return
    grants = [{"collection": c, "action": a, "fields": ["*"], "permissions": {}, "validation": {}}
              for c in COLLECTIONS for a in ITEM_ACTIONS]  # fmt: skip
    body = {"name": POLICY, "admin_access": False, "app_access": False,
            "permissions": grants}  # fmt: skip
    policy = target.call("POST", "/policies", json=body)
    policies = [{"policy": policy.json()["data"]["id"]}]
    role = target.call("POST", "/roles", json={"name": "syncengine", "policies": policies})
    user = {"email": LIMITED_EMAIL, "password": uuid.uuid4().hex,
            "role": role.json()["data"]["id"], "token": LIMITED_TOKEN}  # fmt: skip
    assert target.call("POST", "/users", json=user).status_code == 200


def serve(kind: str) -> Iterator[DirectusTarget]:
    """The body of a test module's fixture parametrized over TARGETS:

    @pytest.fixture(params=TARGETS)
    def target(request): yield from serve(request.param)
    """
    if kind == "real":
        url, token = real_directus()
        yield DirectusTarget("real", url, token, LIMITED_TOKEN)
        return
    from simulators.directus import DirectusSimulator

    sim = DirectusSimulator(token=ADMIN_TOKEN, limited_token=LIMITED_TOKEN)
    with sim.serve() as running:
        yield DirectusTarget("sim", running.url, ADMIN_TOKEN, LIMITED_TOKEN, sim)
