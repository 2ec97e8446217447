"""GET /metrics for Prometheus, and who may read the operational details (/metrics, /readyz's checks).

The web dyno is public on Heroku and Dokku, and the details say a lot (inbox counts, breaker states, when
the Revolut token expires): they need `Authorization: Bearer <SYNCENGINE_METRICS_TOKEN>`. Without a token
they are open only when the receiver binds a loopback address (SYNCENGINE_BIND_HOST=127.0.0.1, a local
run); otherwise /metrics answers 403 with what to set, and the receiver still starts, since it is also the
webhook intake.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, request

from syncengine import metrics
from syncengine.settings import Settings, get_settings

log = logging.getLogger(__name__)

blueprint = Blueprint("metrics", __name__)

CLOSED = (
    "set SYNCENGINE_METRICS_TOKEN and scrape with the header `Authorization` set to `Bearer` and that token "
    "(without a token, /metrics answers only on a loopback-bound receiver: SYNCENGINE_BIND_HOST=127.0.0.1)"
)


def details_allowed(settings: Settings | None = None) -> bool:
    """Whether this request may read the operational details."""
    settings = settings or get_settings()
    if settings.metrics_token is None:
        return settings.on_loopback
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), settings.metrics_token.reveal().encode())


def warn_if_closed(settings: Settings) -> None:
    """One line at start, so the operator learns why a scrape gets 403 before a scraper does."""
    if settings.metrics_token is None and not settings.on_loopback:
        log.warning("/metrics is closed: %s", CLOSED)


@blueprint.get("/metrics")
def scrape() -> Response:
    settings = get_settings()
    if not details_allowed(settings):
        if settings.metrics_token is None:
            return Response(CLOSED + "\n", status=403, mimetype="text/plain")
        return Response(
            "unauthorized\n", status=401, mimetype="text/plain", headers={"WWW-Authenticate": "Bearer"}
        )
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
