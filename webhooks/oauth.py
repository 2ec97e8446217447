"""OAuth callbacks: Revolut redirects the operator's browser here with a code after consent.

The code lives 2 minutes and is single use, so it is exchanged at once, in the request. The answer says what
happened (a page for a browser, JSON otherwise) and never shows a token.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from markupsafe import escape

from syncengine import redaction, tokens

log = logging.getLogger(__name__)

blueprint = Blueprint("oauth", __name__)


@blueprint.get("/oauth/revolut/callback")
def revolut_callback() -> Response:
    code = request.args.get("code", "")
    redaction.install([code])  # the access log line of this very request carries it
    if request.args.get("error"):
        reason = request.args.get("error_description") or request.args["error"]
        return _answer(400, "error", f"Revolut did not grant access: {reason[:200]}")
    if not code:
        return _answer(
            400, "error", "no authorization code in the callback; start again with the consent URL"
        )
    try:
        expires_at = tokens.exchange_code(code)
    except tokens.NotConfigured as exc:
        return _answer(503, "error", str(exc))
    except tokens.TokenRequestFailed as exc:
        log.warning("revolut code exchange failed: %s", exc)
        hint = (
            "" if exc.retryable else " (codes live 2 minutes and work once: run `syncengine revolut consent`)"
        )
        return _answer(502 if exc.retryable else 400, "error", f"{exc}{hint}")
    except tokens.TokenError as exc:
        return _answer(400, "error", str(exc))
    return _answer(
        200,
        "connected",
        f"Revolut is connected; the access token is valid until {expires_at:%Y-%m-%d %H:%M:%S} UTC "
        "and is refreshed automatically",
        expires_at=expires_at.isoformat(),
    )


def _answer(status: int, outcome: str, message: str, **extra: str) -> Response:
    """JSON for API clients and scripts, a one-line page for the operator's browser."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        title = "Revolut connected" if outcome == "connected" else "Revolut connection failed"
        page = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(message)}</p>"
        return Response(page, status=status, mimetype="text/html")
    response = jsonify({"provider": "revolut", "status": outcome, "message": message, **extra})
    response.status_code = status
    return response
