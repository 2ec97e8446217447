"""Every periodic job, in one place. Celery beat reads it: redbeat on Redis in production, Celery's own
scheduler on the embedded default. Each interval says why it is what it is."""

from __future__ import annotations

import os

BEAT_SCHEDULE: dict[str, dict] = {
    # Events stored while the broker was down, or claimed by a worker that died, are published again.
    # Every minute keeps the worst-case delay after a broker outage to about a minute past the lease.
    "inbox-redelivery": {
        "task": "tasks.dispatch.redeliver",
        "schedule": float(os.environ.get("SYNCENGINE_REDELIVERY_EVERY", 60)),
        "options": {"queue": "sweeps", "expires": 55},
    },
    # Revolut access tokens live 40 minutes; refreshing every 35 leaves 5 minutes for a late or retried run
    # before connectors would have to refresh on demand. One refresher at a time (syncengine.tokens): a
    # refresh cancels the previous access token at once.
    "revolut-token-refresh": {
        "task": "tasks.tokens.refresh_revolut_token",
        "schedule": 35 * 60.0,
        "options": {"queue": "sweeps", "expires": 5 * 60},
    },
}

# Contact sweeps: webhooks get lost (Mautic never re-sends, Directus Flows do not retry), so each system's
# changes are listed again. Every 5 minutes bounds a lost change's delay to about 5 minutes, and a sweep with
# nothing changed costs one list request, so running often is cheap. `expires` drops a run still queued
# when the next one is due.
SWEEP_EVERY = float(os.environ.get("SYNCENGINE_SWEEP_EVERY", 5 * 60))
for _system in ("invoiceninja", "mautic", "erpnext", "directus"):
    BEAT_SCHEDULE[f"sweep-{_system}-contact"] = {
        "task": "tasks.reconcile.sweep",
        "schedule": SWEEP_EVERY,
        "args": (_system, "contact"),
        "options": {"queue": "sweeps", "expires": SWEEP_EVERY - 10},
    }
