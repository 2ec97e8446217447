"""The Revolut access token refresh, run by beat every 35 minutes (the token lives 40).

Connectors also refresh on demand, so this task is what keeps them from ever having to: a quiet skip when
Revolut is not set up yet, a retry when Revolut is briefly unreachable.
"""

from __future__ import annotations

import logging

from connectors import revolut_tokens as tokens
from syncengine.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="tasks.tokens.refresh_revolut_token", bind=True, max_retries=5, time_limit=120)
def refresh_revolut_token(self) -> str:  # type: ignore[no-untyped-def]
    try:
        refreshed = tokens.default_tokens().scheduled_refresh()
    except tokens.NotConfigured as exc:
        log.info("revolut token refresh skipped: %s", exc)
        return "not configured"
    except tokens.NoTokenStored as exc:
        log.info("revolut token refresh skipped: %s", exc)
        return "no token"
    except tokens.ConsentRequired as exc:
        log.error("revolut token refresh impossible: %s", exc)
        return "consent required"
    except tokens.TokenRequestFailed as exc:
        if not exc.retryable:
            log.error("revolut token refresh failed: %s", exc)
            return "failed"
        raise self.retry(countdown=60) from None
    return "refreshed" if refreshed else "fresh"
