"""Every periodic job, in one place. Celery beat reads it: redbeat on Redis in production (its lock lapses
after 60 s, syncengine.celery_app, so a crashed beat hands over in about a minute), Celery's own scheduler
on the embedded default, from this same dict. Each interval says why it is what it is."""

from __future__ import annotations

from celery.schedules import crontab

from syncengine.settings import env_seconds
from tasks.sweep_sources import ALL as SWEEP_SOURCES

BEAT_SCHEDULE: dict[str, dict] = {
    # Events stored while the broker was down, or claimed by a worker that died, are published again.
    # Every minute keeps the worst-case delay after a broker outage to about a minute past the lease.
    "inbox-redelivery": {
        "task": "tasks.dispatch.redeliver",
        "schedule": env_seconds("SYNCENGINE_REDELIVERY_EVERY", 60),
        "options": {"queue": "sweeps", "expires": 55},
    },
    # Receipts and invoices stored while the broker was down, or read by a worker that died before their
    # booking was published. Every 5 minutes, for documents untouched for 15 (longer than a retry usually
    # waits): OCR is not urgent, and reading a document again early would only cost a model call.
    "document-redelivery": {
        "task": "tasks.ocr.redeliver_documents",
        "schedule": 5 * 60.0,
        "options": {"queue": "sweeps", "expires": 4 * 60},
    },
    # Revolut access tokens live 40 minutes; refreshing every 35 leaves 5 minutes for a late or retried run
    # before connectors would have to refresh on demand. One refresher at a time (connectors.revolut_tokens):
    # a refresh cancels the previous access token at once.
    "revolut-token-refresh": {
        "task": "tasks.tokens.refresh_revolut_token",
        "schedule": 35 * 60.0,
        "options": {"queue": "sweeps", "expires": 5 * 60},
    },
    # The drift report lists every carrier in full (one request per 500 objects per kind) and only
    # reports: once a day is enough to catch what no sweep can see (deletes in a Directus collection whose
    # activity log is switched off or by a Mautic API user who is no administrator, pushes that gave up),
    # and 03:30 UTC keeps the full listings out of business hours.
    "drift-report": {
        "task": "tasks.reconcile.drift_report",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "sweeps", "expires": 6 * 3600},
    },
    # Anti-entropy lists as much as the drift report, and repairs what differs by the conflict policy:
    # every 6 hours bounds how long a divergence no event or sweep can see (a push whose answer was lost,
    # an edit the vendor stamped in the past) lasts, at a cost of four full listings a day (04:50, 10:50,
    # 16:50, 22:50); 80 minutes after the drift report's start so the two never list at once.
    "anti-entropy": {
        "task": "tasks.reconcile.repair",
        "schedule": crontab(hour="4-22/6", minute=50),
        "options": {"queue": "sweeps", "expires": 3 * 3600},
    },
}

# Sweeps (docs/architecture.md, Sweeps and drift): webhooks get lost (Mautic never re-sends, Directus Flows do
# not retry, Revolut gives up after 3 tries, a system is down for an hour), so each (system, kind) lists its
# changes again: every sweep source of every vendor (tasks.sweep_sources, gathered from each vendor's
# line in syncengine.vendors.REGISTRY). An idle sweep costs one list request, so running often is cheap.
# `expires` drops a run still queued when the next one is due. A system the deployment lacks is skipped by
# the task itself.
SWEEP_EVERY = env_seconds("SYNCENGINE_SWEEP_EVERY", 5 * 60)
# Every 5 minutes bounds a lost change's delay to about 5 minutes: contacts, products, invoices, and the
# incoming payments whose booking a customer may be waiting on.
SLOW_EVERY = env_seconds("SYNCENGINE_SLOW_SWEEP_EVERY", 15 * 60)
# Every 15 minutes: deletions (archiving elsewhere is not urgent, and a tombstone wins whenever it lands),
# approved Purchase Invoices (F7 pays suppliers on their due terms, not within minutes), and Mautic email
# opens and form submissions (F8): they become a note line and an activity item for people to read, nothing
# waits on them, and only a lost webhook needs the sweep. A run costs one timeline request per 100 opens
# (and per 100 submissions) since the cursor, whatever the number of contacts, so a longer interval saves
# nothing but makes a lost note line wait longer.
SLOW_KINDS = frozenset({"deleted", "transfer", "activity"})

for _source in SWEEP_SOURCES:
    _every = SLOW_EVERY if _source.kind in SLOW_KINDS else SWEEP_EVERY
    BEAT_SCHEDULE[f"sweep-{_source.system}-{_source.kind}"] = {
        "task": "tasks.reconcile.sweep",
        "schedule": _every,
        "args": (_source.system, _source.kind),
        "options": {"queue": "sweeps", "expires": _every - 10},
    }
