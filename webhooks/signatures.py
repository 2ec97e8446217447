"""Pure signature checks, one per scheme the senders use; constant-time compares over the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from syncengine.settings import Secret


class InvalidSignature(Exception):
    """The request is not from the sender it claims to be (or is too old to trust): answer 401."""


def hmac_sha256(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest()


def require_secrets(secrets: Sequence[Secret]) -> None:
    if not secrets:
        raise InvalidSignature("no webhook secret configured for this sender")


def shared_secret(presented: str | None, secrets: Sequence[Secret]) -> None:
    """A secret header we configured on the sender's side (Invoice Ninja, Directus): compare it as is."""
    require_secrets(secrets)
    if not presented:
        raise InvalidSignature("missing secret header")
    given = presented.encode("utf-8")
    if not any(hmac.compare_digest(given, s.reveal().encode("utf-8")) for s in secrets):
        raise InvalidSignature("wrong secret")


def base64_hmac(presented: str | None, body: bytes, secrets: Sequence[Secret]) -> None:
    """base64(HMAC-SHA256(secret, raw body)), as Mautic and Frappe sign."""
    require_secrets(secrets)
    if not presented:
        raise InvalidSignature("missing signature header")
    try:
        given = base64.b64decode(presented.strip(), validate=True)
    except ValueError as exc:
        raise InvalidSignature("signature is not base64") from exc
    if not any(hmac.compare_digest(given, hmac_sha256(s.reveal(), body)) for s in secrets):
        raise InvalidSignature("signature does not match")


def revolut_v1(
    signature_header: str | None,
    timestamp_header: str | None,
    body: bytes,
    secrets: Sequence[Secret],
    now: float,
    tolerance: float,
) -> None:
    """Revolut-Signature: v1=<hex HMAC-SHA256 of "v1.{timestamp ms}.{raw body}">, possibly several
    comma-separated while a signing secret rotates; the timestamp must be within the tolerance."""
    require_secrets(secrets)
    if not signature_header or not timestamp_header:
        raise InvalidSignature("missing Revolut-Signature or Revolut-Request-Timestamp")
    try:
        sent_at = int(timestamp_header.strip()) / 1000.0
    except ValueError as exc:
        raise InvalidSignature("timestamp is not a number") from exc
    if abs(now - sent_at) > tolerance:
        if abs(now - sent_at * 1000) <= tolerance:  # a hand-made test request's commonest slip
            raise InvalidSignature(
                "Revolut-Request-Timestamp is in seconds: Revolut sends milliseconds since the epoch"
            )
        raise InvalidSignature("timestamp outside the tolerance window")
    presented = [
        part.strip().removeprefix("v1=")
        for part in signature_header.split(",")
        if part.strip().startswith("v1=")
    ]
    message = b"v1." + timestamp_header.strip().encode("ascii") + b"." + body
    expected = [hmac_sha256(s.reveal(), message).hex() for s in secrets]
    # Compare every pair: no early exit that would tell an attacker which one matched.
    matched = False
    for given in presented:
        for want in expected:
            matched |= hmac.compare_digest(given.encode("ascii", "replace"), want.encode("ascii"))
    if not matched:
        raise InvalidSignature("no signature matches")
