"""The receiver: a small Flask app that verifies, stores, enqueues and answers at once."""

from __future__ import annotations

import gc
import importlib
import logging

from flask import Flask, Response, jsonify
from sqlalchemy import text

from syncengine import migrate, redaction, redis_policy
from syncengine.celery_app import app as celery_app
from syncengine.db import get_engine
from syncengine.metrics import count_webhook
from syncengine.settings import get_settings
from syncengine.vendors import REGISTRY

from . import documents, metrics_view, oauth
from .receive import error, receive
from .sender import Sender

# Each vendor's sender module, as its line in the vendor registry names it.
SENDERS: dict[str, Sender] = {
    v.name: importlib.import_module(v.sender).SENDER for v in REGISTRY.values() if v.sender
}


def create_app() -> Flask:
    settings = get_settings()
    redaction.install(s.reveal() for s in settings.all_secrets())
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = Flask("syncengine")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes + 1  # see receive.receive
    app.register_blueprint(oauth.blueprint)  # GET /oauth/revolut/callback stores Revolut's tokens
    app.register_blueprint(documents.blueprint)  # POST /documents: receipts and invoices for OCR (F6)
    app.register_blueprint(metrics_view.blueprint)  # GET /metrics for Prometheus
    metrics_view.warn_if_closed(settings)

    @app.post("/webhooks/<sender>")
    @app.post("/webhooks/<sender>/<event>")
    def webhook(sender: str, event: str | None = None) -> Response:
        found = SENDERS.get(sender)
        if found is None:
            count_webhook("unknown", 404)  # never the path itself as a label: unbounded cardinality
            return error(404, f"unknown sender {sender[:32]!r}")
        response = receive(found, event)
        count_webhook(sender, response.status_code)  # in memory; flushed to Redis once a second
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        """Ready or not for anyone (a platform's health check); which check failed only for those who may
        read /metrics. A Redis that may drop any key (maxmemory-policy allkeys-*) is not ready, nor a store
        whose schema is not at this release's head (every webhook would fail)."""
        store = _store_ok()
        checks = {
            "store": store, "schema": store and _schema_ok(), "broker": _broker_ok(),
            "redis_keeps_keys": redis_policy.verdict().ready,
        }  # fmt: skip
        ready = all(checks.values())
        details = checks if metrics_view.details_allowed(settings) else {}
        response = jsonify({"status": "ok" if ready else "unavailable", **details})
        response.status_code = 200 if ready else 503
        return response

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Response:
        return error(413, f"body larger than {settings.max_body_bytes} bytes")

    @app.errorhandler(405)
    def wrong_method(_exc: Exception) -> Response:
        return error(405, "method not allowed")

    # Everything loaded so far (Flask, SQLAlchemy, Celery, kombu) lives as long as the process: keep it out
    # of the garbage collector's full passes, which otherwise walk it all and show up as latency spikes.
    gc.freeze()
    return app


def _store_ok() -> bool:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _schema_ok() -> bool:
    try:
        return migrate.behind(migrate.current()) is None
    except Exception:
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False
