"""The `state` of an OAuth consent: issued by `syncengine revolut consent`, signed with a key derived from
SYNCENGINE_SECRET_KEY and valid for a few minutes, so the callback can refuse, before doing any work, every
request that did not start with our own consent URL (RFC 6749 §10.12: the authorization server hands the
`state` back unchanged with the code).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

LIFETIME = 15 * 60  # seconds: time to log in to Revolut and approve with 2FA; its code then lives 2 minutes
MAX_LENGTH = 128  # anything longer is not one of ours, and is not worth hashing
_HKDF_INFO = b"syncengine oauth state"


class InvalidState(ValueError):
    """The callback's `state` is missing, forged, for another provider or too old: the message says which."""


def _key(secret_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())


def _sign(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issue(secret_key: str, provider: str, now: float) -> str:
    """`<provider>.<expires>.<nonce>.<signature>`: URL-safe, so it travels as a query value unchanged."""
    payload = f"{provider}.{int(now) + LIFETIME}.{secrets.token_urlsafe(12)}"
    return f"{payload}.{_sign(_key(secret_key), payload)}"


def check(state: str, secret_key: str, provider: str, now: float) -> None:
    """Raise InvalidState unless `state` is one we issued for `provider` and it has not expired."""
    if not state:
        raise InvalidState("no state in the callback")
    if len(state) > MAX_LENGTH or state.count(".") != 3:
        raise InvalidState("the state is not one syncengine issued")
    payload, _, signature = state.rpartition(".")
    if not hmac.compare_digest(signature.encode(), _sign(_key(secret_key), payload).encode()):
        raise InvalidState("the state is not one syncengine issued")
    issued_for, expires, _nonce = payload.split(".")
    if issued_for != provider:
        raise InvalidState(f"the state was issued for {issued_for}, not {provider}")
    if not expires.isdigit() or int(expires) < now:
        raise InvalidState(f"the consent URL is older than {LIFETIME // 60} minutes")
