"""Every periodic job, in one place. Celery beat reads it: redbeat on Redis in production, Celery's own
scheduler on the embedded default. Each interval says why it is what it is."""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict] = {
    # Events stored while the broker was down, or claimed by a worker that died, are published again.
    # Every minute keeps the worst-case delay after a broker outage to about a minute past the lease.
    "inbox-redelivery": {
        "task": "tasks.dispatch.redeliver",
        "schedule": 60.0,
        "options": {"queue": "sweeps", "expires": 55},
    },
}
