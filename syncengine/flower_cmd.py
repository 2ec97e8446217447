"""`syncengine flower`: Flower, only ever behind authentication.

Flower shows every task and can revoke them and shut workers down, so it never starts open. It reads its
credentials from the environment itself (FLOWER_BASIC_AUTH, or FLOWER_AUTH_PROVIDER + FLOWER_AUTH +
FLOWER_OAUTH2_KEY/SECRET/REDIRECT_URI); we check they are there and well formed, and keep them out of the
command line, where `ps` and process listings would show them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

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
    env = os.environ if env is None else env
    auth_mode(env)
    port = port or int(env.get("FLOWER_PORT") or env.get("PORT") or 5555)
    return [
        sys.executable, "-m", "celery", "-A", "syncengine.celery_app", "flower",
        f"--port={port}", f"--address={env.get('SYNCENGINE_BIND_HOST') or '0.0.0.0'}",
    ]  # fmt: skip
