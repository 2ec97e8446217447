"""`syncengine flower`: Flower, only ever behind authentication, all of it.

Flower shows every task and can revoke them and shut workers down, so it never starts open. It reads its
credentials from the environment itself (FLOWER_BASIC_AUTH, or FLOWER_AUTH_PROVIDER + FLOWER_AUTH +
FLOWER_OAUTH2_KEY/SECRET/REDIRECT_URI); we check they are there and well formed, and keep them out of the
command line, where `ps` and process listings would show them.

Flower 2 serves its own `/metrics` (task and worker names, queue activity) and `/healthcheck` without
authentication, on purpose (mher/flower#1129; its docs list them as the unauthenticated endpoints) and with
no option to change that. On a public URL they are ours to keep private, so Flower is started through this
module, which puts the two behind the same authentication as every other page before Flower builds its
routes.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from syncengine.settings import environment

OAUTH_VARS = ("FLOWER_AUTH_PROVIDER", "FLOWER_AUTH", "FLOWER_OAUTH2_KEY", "FLOWER_OAUTH2_SECRET",
              "FLOWER_OAUTH2_REDIRECT_URI")  # fmt: skip


class FlowerNotProtected(Exception):
    """Neither basic auth nor OAuth is configured."""


def auth_mode(env: Mapping[str, str]) -> str:
    """'basic' or 'oauth'; raises FlowerNotProtected when neither is complete."""
    basic = env.get("FLOWER_BASIC_AUTH", "").strip()
    if basic:
        pairs = [p.strip() for p in basic.split(",")]
        if all(user and password for user, _, password in (p.partition(":") for p in pairs)):
            return "basic"
        raise FlowerNotProtected("FLOWER_BASIC_AUTH must be user:password (several separated by commas)")
    if all(env.get(name, "").strip() for name in OAUTH_VARS):
        return "oauth"
    missing = [name for name in OAUTH_VARS if not env.get(name, "").strip()]
    raise FlowerNotProtected(
        "Flower never runs without authentication: set FLOWER_BASIC_AUTH=user:password, or Flower's "
        f"OAuth variables (missing: {', '.join(missing)})"
    )


def flower_command(env: Mapping[str, str] | None = None, port: int | None = None) -> list[str]:
    env = environment() if env is None else env
    auth_mode(env)
    port = port or int(env.get("FLOWER_PORT") or env.get("PORT") or 5555)
    return [
        sys.executable, "-m", "commands.flower_cmd", "-A", "syncengine.celery_app", "flower",
        f"--port={port}", f"--address={env.get('SYNCENGINE_BIND_HOST') or '0.0.0.0'}",
    ]  # fmt: skip


def protect_open_endpoints(handlers: list[Any]) -> None:
    """Replace Flower's unauthenticated /metrics and /healthcheck handlers with authenticated ones."""
    import tornado.web
    from flower.views import monitor

    class Metrics(monitor.Metrics):
        @tornado.web.authenticated
        async def get(self) -> None:
            await super().get()

    class Healthcheck(monitor.Healthcheck):
        @tornado.web.authenticated
        async def get(self) -> None:
            await super().get()

    protected = {monitor.Metrics: Metrics, monitor.Healthcheck: Healthcheck}
    handlers[:] = [
        (route[0], protected.get(route[1], route[1]), *route[2:]) if isinstance(route, tuple) else route
        for route in handlers
    ]


def main() -> None:
    """`python -m commands.flower_cmd <celery arguments>`: Flower's own entry point, fully protected."""
    from flower import urls
    from flower.__main__ import main as flower_main

    try:
        auth_mode(environment())  # never open, however this module is started
    except FlowerNotProtected as exc:
        sys.exit(f"refusing to start Flower: {exc}")
    protect_open_endpoints(urls.handlers)
    flower_main()


if __name__ == "__main__":
    main()
