"""The Celery application, with the reliability settings of docs/architecture.md, Celery.

The same app runs on Redis (production) and on kombu's SQLAlchemy transport over a SQLite file (the
embedded default), so the code path is identical and only the broker URL changes.
"""

from __future__ import annotations

import importlib

from celery import Celery, signals
from kombu import Queue

from beat_schedule import BEAT_SCHEDULE

from . import redaction
from .redis_tls import ssl_options
from .settings import env_value, get_settings

QUEUES = ("intake", "sync", "ocr", "sweeps")

# Longest countdown a task may ask for (a breaker cool-down, a backoff): the broker's visibility timeout
# must stay above it or Redis would hand the same task to a second worker while the first still waits.
MAX_COUNTDOWN = 1800
VISIBILITY_TIMEOUT = 2 * MAX_COUNTDOWN
TASK_CLASS = "syncengine.outbox_task:ClaimingTask"

TASK_MODULES = [
    "tasks.dispatch", "tasks.tokens", "tasks.push", "tasks.clients", "tasks.products",
    "tasks.activities", "tasks.deletes", "tasks.invoices", "tasks.emails",
    "tasks.payments", "tasks.transfers", "tasks.ocr", "tasks.document_intake", "tasks.reconcile",
    "syncengine.task_metrics",  # counts push outcomes for /metrics (a signal handler, no task)
]  # fmt: skip


def _broker_options(embedded: bool) -> dict:
    if embedded:
        # kombu's SQLAlchemy transport hands these to create_engine for its own SQLite file.
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # A publish must fail fast when Redis is down: the receiver answers 202 from the stored row.
        "socket_connect_timeout": 1,
        "socket_timeout": 5,
        "retry_on_timeout": False,
        "health_check_interval": 25,
    }


def _seconds(configured: str | None, default: int) -> int | None:
    """A time limit from the environment; 0 switches it off."""
    return int(configured or default) or None


def _broker(broker_url: str) -> tuple[str, str | None]:
    """The broker's URL and our transport for it (syncengine.broker). rediss:// keeps kombu's own transport:
    its TLS set-up is keyed on that scheme name. kombu takes a `sqla+` prefix over any transport named, so
    the embedded broker's URL goes without it."""
    if broker_url.startswith("redis://"):
        return broker_url, "syncengine.broker:Transport"
    if broker_url.startswith("sqla+"):
        return broker_url.removeprefix("sqla+"), "syncengine.broker:EmbeddedTransport"
    return broker_url, None


def make_celery() -> Celery:
    settings = get_settings()
    redaction.install(s.reveal() for s in settings.all_secrets())
    # Every task runs under the outbox's claim when the outbox carries it (syncengine.outbox_task).
    app = Celery("syncengine", include=TASK_MODULES + _plugin_modules(), task_cls=TASK_CLASS)
    broker_url, transport = _broker(settings.broker_url)
    app.conf.update(
        broker_url=broker_url,
        broker_transport=transport,
        broker_transport_options=_broker_options(settings.embedded),
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        result_expires=None,  # no results kept: no `celery.backend_cleanup` beat entry beside BEAT_SCHEDULE
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="sync",
        task_queues=[Queue(name) for name in QUEUES],
        task_routes={
            "tasks.dispatch.process": {"queue": "intake"},
            "tasks.dispatch.redeliver": {"queue": "sweeps"},
            "tasks.ocr.redeliver_documents": {"queue": "sweeps"},
            "tasks.ocr.*": {"queue": "ocr"},
            "tasks.reconcile.*": {"queue": "sweeps"},
            "tasks.tokens.*": {"queue": "sweeps"},
            "tasks.push.*": {"queue": "sync"},
            "tasks.emails.*": {"queue": "sync"},
            "tasks.payments.*": {"queue": "sync"},
        },
        # Past the soft limit a task is retried; past the hard one its pool process is killed and the task
        # retried all the same (syncengine.outbox_task). Neither is the end of a push.
        task_time_limit=_seconds(env_value("SYNCENGINE_TASK_TIME_LIMIT"), 300),
        task_soft_time_limit=_seconds(env_value("SYNCENGINE_TASK_SOFT_TIME_LIMIT"), 240),
        worker_max_tasks_per_child=1000,
        # Flower sees tasks from the worker's events; a 'sent' event per publish would double the
        # receiver's broker traffic for nothing.
        worker_send_task_events=True,
        # Celery's stderr redirection logs a write at a time: a traceback printed at exit came out one token
        # per log line (over a thousand lines for beat losing Redis). Our tasks print nothing; Celery logs.
        worker_redirect_stdouts=False,
        task_send_sent_event=False,
        timezone="UTC",
        enable_utc=True,
        beat_schedule=BEAT_SCHEDULE,
        beat_schedule_filename=str(settings.home / "celerybeat-schedule"),
        # redbeat: renew the lock often and let it lapse fast, so a crashed beat hands over in about a
        # minute instead of the default 25, well inside the 35-minute token refresh period.
        beat_max_loop_interval=10,
        redbeat_redis_url=settings.redis_url,
        # redbeat's own client: fail fast on a dead Redis and notice a dropped connection, as the broker does.
        redbeat_redis_options={"socket_connect_timeout": 2, "socket_timeout": 5, "health_check_interval": 25},
        # rediss:// (Heroku Redis): its certificate check from REDIS_SSL_CERT_REQS (see redis_tls).
        broker_use_ssl=ssl_options(settings.redis_url, settings.redis_ssl_cert_reqs),
        redis_backend_use_ssl=ssl_options(settings.redis_url, settings.redis_ssl_cert_reqs),
        redbeat_redis_use_ssl=ssl_options(settings.redis_url, settings.redis_ssl_cert_reqs),
        redbeat_lock_timeout=60,
        redbeat_key_prefix="syncengine:redbeat:",
    )
    return app


def _plugin_modules() -> list[str]:
    """Extra task/handler modules named in SYNCENGINE_PLUGINS (comma-separated), loaded by every process."""
    return [m.strip() for m in env_value("SYNCENGINE_PLUGINS").split(",") if m.strip()]


def load_plugins() -> None:
    for module in _plugin_modules():
        importlib.import_module(module)


app = make_celery()

from . import beat_outage  # noqa: E402 - beat losing Redis says so in one line

beat_outage.install()


@signals.worker_process_init.connect
def _fresh_connections_after_fork(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    """A forked pool process must not reuse its parent's database sockets."""
    from .db import reset_engines

    reset_engines()
