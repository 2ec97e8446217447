"""A no-op Celery task for the flows benchmark's baseline, loaded through SYNCENGINE_PLUGINS."""

from __future__ import annotations

import redis

from syncengine.celery_app import app
from syncengine.settings import get_settings


@app.task(name="bench.noop", acks_late=True)
def noop(counter: str) -> None:
    redis.Redis.from_url(get_settings().redis_url).incr(counter)
