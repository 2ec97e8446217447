"""TLS options for rediss:// URLs (Heroku Redis), shared by the broker, redbeat and our own Redis client.

Heroku Redis serves a self-signed certificate, so Heroku documents `ssl_cert_reqs=CERT_NONE`; that is
REDIS_SSL_CERT_REQS=none (app.json sets it). The default stays `required`: verify unless told not to.
"""

from __future__ import annotations

import ssl

CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


def cert_reqs(name: str) -> ssl.VerifyMode:
    try:
        return CERT_REQS[name]
    except KeyError:
        raise ValueError(f"REDIS_SSL_CERT_REQS must be one of {', '.join(CERT_REQS)}, not {name!r}") from None


def ssl_options(url: str | None, cert_reqs_name: str) -> dict[str, ssl.VerifyMode] | None:
    """Celery's broker_use_ssl / redis_backend_use_ssl for a rediss:// URL; None for anything else."""
    if not url or not url.startswith("rediss://"):
        return None
    return {"ssl_cert_reqs": cert_reqs(cert_reqs_name)}


def client_kwargs(url: str | None, cert_reqs_name: str) -> dict[str, ssl.VerifyMode]:
    """Keyword arguments for redis.Redis.from_url."""
    return ssl_options(url, cert_reqs_name) or {}
