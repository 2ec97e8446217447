"""GET /metrics for Prometheus; behind a bearer token when SYNCENGINE_METRICS_TOKEN is set, since the
web dyno is public on Heroku and Dokku."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from syncengine import metrics
from syncengine.settings import get_settings

blueprint = Blueprint("metrics", __name__)


@blueprint.get("/metrics")
def scrape() -> Response:
    token = get_settings().metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.reveal().encode()):
            return Response("unauthorized\n", status=401, mimetype="text/plain")
    return Response(metrics.render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
