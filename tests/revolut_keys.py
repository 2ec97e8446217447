"""What Revolut tests share: throw-away RSA keys and certificates for its OAuth (JWT client assertions),
made per test run and never committed (the private key in PKCS#8 PEM as REVOLUT_PRIVATE_KEY, the public
half or a self-signed certificate as uploaded to Revolut), and a token provider the simulator issues to."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def self_signed(key: rsa.RSAPrivateKey) -> str:
    """A certificate valid from five minutes ago for a day, as Revolut accepts for X509 upload."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncengine-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class SimTokens:
    """A TokenProvider double: a token issued by the simulator, replaced once per stale token."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.token = sim.issue_tokens()["access_token"]
        self.refreshes = 0
        self.lock = threading.Lock()

    def access_token(self) -> str:
        return self.token

    def on_unauthorized(self, stale_token: str) -> str:
        with self.lock:
            if stale_token == self.token:
                self.token = self.sim.issue_tokens()["access_token"]
                self.refreshes += 1
            return self.token
