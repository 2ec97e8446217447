"""OAuth callbacks: Revolut redirects the operator's browser here with a code after consent.

Anyone can reach this URL, so a request must carry the signed `state` of a consent URL that `syncengine
revolut consent` issued minutes ago; anything else is refused before any work (no lock, nothing sent to
Revolut). Exchanges are rate-limited across every web process. The code lives 2 minutes and is single use,
so it is exchanged at once, in the request. The answer says what happened (a page for a browser, JSON
otherwise) and never shows a token.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from markupsafe import escape

from connectors import revolut_tokens as tokens
from syncengine import oauth_state, rate_limit

log = logging.getLogger(__name__)

blueprint = Blueprint("oauth", __name__)

# A person consents a few times a year; a handful of tries a minute is plenty, and bounds what a leaked
# consent URL can make us send to Revolut.
EXCHANGES = rate_limit.Limit("oauth:revolut:exchange", count=5, per=60)
START_AGAIN = "run `syncengine revolut consent` and open the URL it prints"


@blueprint.get("/oauth/revolut/callback")
def revolut_callback() -> Response:
    if request.args.get("error"):
        reason = request.args.get("error_description") or request.args["error"]
        return _answer(400, "error", f"Revolut did not grant access: {reason[:200]}")
    try:
        tokens.check_state(request.args.get("state", ""))
    except tokens.NotConfigured as exc:
        return _answer(503, "error", str(exc))
    except oauth_state.InvalidState as exc:
        return _answer(400, "error", f"{exc}: {START_AGAIN}")
    code = request.args.get("code", "")
    if not code:
        return _answer(400, "error", f"no authorization code in the callback: {START_AGAIN}")
    wait = rate_limit.allow(EXCHANGES)
    if wait:
        return _answer(429, "error", f"too many attempts: try again in {wait} s", retry_after=wait)
    return _exchange(code)


def _exchange(code: str) -> Response:
    try:
        expires_at = tokens.exchange_code(code)
    except tokens.NotConfigured as exc:
        return _answer(503, "error", str(exc))
    except tokens.TokenRequestFailed as exc:
        log.warning("revolut code exchange failed: %s", exc)
        hint = "" if exc.retryable else f" (codes live 2 minutes and work once: {START_AGAIN})"
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


def _answer(status: int, outcome: str, message: str, retry_after: int = 0, **extra: str) -> Response:
    """JSON for API clients and scripts, a one-line page for the operator's browser."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        title = "Revolut connected" if outcome == "connected" else "Revolut connection failed"
        page = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(message)}</p>"
        response = Response(page, status=status, mimetype="text/html")
    else:
        response = jsonify({"provider": "revolut", "status": outcome, "message": message, **extra})
        response.status_code = status
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response
