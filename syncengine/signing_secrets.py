"""Webhook signing secrets a vendor makes for us (Revolut gives each webhook its own), kept encrypted in the
store with SYNCENGINE_SECRET_KEY, as the OAuth tokens are. `webhooks install` saves the secret it reads
from the vendor, so it never has to show it to anyone, and the receiver verifies with it beside any secret
configured in <SENDER>_WEBHOOK_SECRET.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from . import at_rest
from .db import session_scope
from .models import OAuthToken, utcnow
from .redaction import install_secrets
from .settings import Secret, Settings, get_settings

CACHE_SECONDS = 30.0  # a rotated secret reaches every receiver process within this
CACHE_NONE_SECONDS = 2.0  # "none stored" is asked again soon: `webhooks install` may be storing it now
_cache: dict[str, tuple[float, tuple[Secret, ...]]] = {}
_lock = threading.Lock()


def _row_name(sender: str) -> str:
    return f"{sender}:webhook"  # oauth_tokens.provider


def save(sender: str, secret: str, settings: Settings | None = None) -> bool:
    """Store `secret` for `sender`'s webhooks; False when it was stored already."""
    settings = settings or get_settings()
    if secret in (s.reveal() for s in stored(sender, settings, fresh=True)):
        return False
    with session_scope() as session:
        row = session.get(OAuthToken, _row_name(sender), with_for_update=True)
        if row is None:
            row = OAuthToken(provider=_row_name(sender))
            session.add(row)
        row.access_token_enc = at_rest.store_cipher(settings).encrypt(secret.encode())
        row.refreshed_at = utcnow()
    forget(sender)
    return True


def stored(sender: str, settings: Settings | None = None, *, fresh: bool = False) -> tuple[Secret, ...]:
    """The stored secret of `sender` (empty when none, or when it cannot be decrypted), cached briefly:
    the receiver asks on every webhook."""
    now = time.monotonic()
    with _lock:
        hit = _cache.get(sender)
    if hit is not None and not fresh and now - hit[0] < (CACHE_SECONDS if hit[1] else CACHE_NONE_SECONDS):
        return hit[1]
    found = _load(sender, settings or get_settings())
    with _lock:
        _cache[sender] = (now, found)
    return found


def forget(sender: str | None = None) -> None:
    with _lock:
        if sender is None:
            _cache.clear()
        else:
            _cache.pop(sender, None)


def _load(sender: str, settings: Settings) -> tuple[Secret, ...]:
    from cryptography.fernet import InvalidToken

    with session_scope() as session:
        row = session.execute(
            select(OAuthToken).where(OAuthToken.provider == _row_name(sender))
        ).scalar_one_or_none()
        encrypted = row.access_token_enc if row is not None else None
    if not encrypted:
        return ()
    try:
        secret = at_rest.store_cipher(settings).decrypt(encrypted).decode()
    except (at_rest.NotConfigured, InvalidToken):
        return ()  # no key, or another key: `webhooks install` stores it again
    install_secrets([secret])
    return (Secret(secret),)
