"""What the store keeps encrypted at rest (OAuth tokens, vendors' webhook signing secrets) is encrypted with
Fernet under a key made from SYNCENGINE_SECRET_KEY."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .settings import Settings

MIN_SECRET_KEY_LENGTH = 16
_HKDF_INFO = b"syncengine oauth_tokens fernet key"


class NotConfigured(Exception):
    """No SYNCENGINE_SECRET_KEY, or one too short: nothing can be stored encrypted until it is set."""


def fernet_for(secret_key: str) -> Fernet:
    """A Fernet key as is; any other string (≥ 16 characters) stretched into one with HKDF-SHA256."""
    try:
        return Fernet(secret_key.encode())
    except ValueError:
        pass
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise NotConfigured(f"SYNCENGINE_SECRET_KEY is too short (use {MIN_SECRET_KEY_LENGTH}+ characters)")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def secret_key(settings: Settings) -> str:
    if not settings.secret_key:
        raise NotConfigured("set SYNCENGINE_SECRET_KEY to store Revolut tokens (they are encrypted at rest)")
    return settings.secret_key.reveal()


def store_cipher(settings: Settings) -> Fernet:
    """How the store encrypts what it keeps at rest; NotConfigured without a key."""
    return fernet_for(secret_key(settings))
