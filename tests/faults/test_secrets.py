"""No configured secret leaks: not in the receiver's or the workers' logs, not in task arguments (read from
the worker's task events, exactly what Flower shows: ids only), not in stored error messages, and not in
clear anywhere in the database (Revolut's OAuth tokens are stored encrypted) — every text, JSON and binary
column of every table is scanned. Runs after the other fault tests, so their logs and rows are scanned too.

The Invoice Ninja simulator's fixed token "TOKEN" is a common word that legitimately appears everywhere,
so it is left out of the scan; every other secret is distinctive."""

from __future__ import annotations

import os
import re
import threading
from typing import Any

import requests
from sqlalchemy import text

from connectors import revolut_tokens as tokens
from syncengine.db import get_engine
from tests.conftest import WORK
from tests.connectors.test_tokens import certificate, connect, key, key_pem, revolut  # noqa: F401 - fixtures
from tests.faults.conftest import Stack, client_body, post_client, retire, unique
from tests.flows.test_contacts import customers_with
from tests.support import SECRETS, wait_until

ID_LIKE = re.compile(r"[\w.:-]{1,64}")
TEXT_TYPES = ("text", "character varying", "json", "jsonb", "character")


def configured_secrets(stack: Stack) -> list[str]:
    values = [*SECRETS.values(), os.environ["SYNCENGINE_SECRET_KEY"]]
    names = ("ERPNEXT_API_KEY", "ERPNEXT_API_SECRET", "DIRECTUS_TOKEN", "MAUTIC_PASSWORD")
    values += [stack.env[k] for k in names]
    return values


def task_events(stack: Stack, stop: threading.Event, seen: list[dict[str, Any]]) -> None:
    """What Flower sees: the workers' events (task-received carries argsrepr/kwargsrepr). Worker heartbeats
    arrive every few seconds, so the loop notices `stop` soon."""
    with stack.celery() as app, app.connection_for_read() as conn:
        receiver = app.events.Receiver(conn, handlers={"*": seen.append})

        def keep(event: dict[str, Any]) -> None:
            seen.append(event)
            receiver.should_stop = stop.is_set()

        receiver.handlers = {"*": keep}
        receiver.capture(limit=None, timeout=None, wakeup=False)


def last_error(inbox_id: int) -> str | None:
    with get_engine().connect() as conn:
        found = conn.execute(text("SELECT last_error FROM inbox_events WHERE id = :i"), {"i": inbox_id})
        return found.scalar()


def db_hits(needle: str) -> list[str]:
    """table.column of every text, JSON or binary column holding `needle` in clear."""
    hits = []
    with get_engine().connect() as conn:
        columns = conn.execute(text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND (data_type = ANY(:types) OR data_type = 'bytea')"
        ), {"types": list(TEXT_TYPES)}).all()  # fmt: skip
        for table, column, data_type in columns:
            match = (f'position(convert_to(:n, \'UTF8\') in "{column}") > 0' if data_type == "bytea"
                     else f'"{column}"::text LIKE \'%\' || :n || \'%\'')  # fmt: skip
            found = conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE {match}'), {"n": needle})  # noqa: S608 - names from the catalogue
            if found.scalar_one():
                hits.append(f"{table}.{column}")
    return hits


def test_no_secret_in_logs_task_arguments_errors_or_the_database(stack: Stack, revolut):  # noqa: F811
    assert connect(revolut).status_code == 200  # Revolut consent: OAuth tokens stored through the callback
    stored = tokens.default_tokens().stored()
    assert stored is not None

    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    listener = threading.Thread(target=task_events, args=(stack, stop, seen), daemon=True)
    listener.start()
    try:
        tag = unique()
        email, body = client_body(f"secrets-{tag}")
        assert post_client(stack, body).status_code == 202
        failing = stack.send("directus", f"secrets-{tag}", test={"fail_times": 99})
        assert failing.status_code == 202
        (failing_id,) = failing.json()["accepted"]
        try:
            wait_until(lambda: customers_with(stack.sims["erpnext"], email), timeout=60)
            wait_until(lambda: last_error(failing_id), timeout=60)
            wait_until(lambda: any(e.get("name") == "tasks.push.push" for e in seen), timeout=30)
        finally:
            retire([failing_id])
    finally:
        stop.set()
        listener.join(timeout=10)

    # Task arguments are ids (and system/kind names), never payloads or secrets.
    assert seen, "no task events captured: the test would prove nothing"
    seen = [e for e in seen if e.get("type") == "task-received"]
    for event in seen:
        for value in (event.get("args"), event.get("kwargs")):
            assert value is None or len(value) < 200, event
        args = re.findall(r"'([^']*)'|(\d+)", event.get("args") or "")
        for quoted, number in args:
            assert number or ID_LIKE.fullmatch(quoted), event

    secrets = [*configured_secrets(stack), stored.access_token, stored.refresh_token]
    pem_line = os.environ["REVOLUT_PRIVATE_KEY"].splitlines()[1]
    secrets.append(pem_line)
    logs = {path.name: path.read_text(errors="replace") for path in WORK.glob("*.log")}
    assert any("inbox" in text_ for text_ in logs.values()), "no worker log to scan"
    for secret in secrets:
        assert secret not in " ".join(e.get("args", "") + e.get("kwargs", "") for e in seen)
        leaked = [name for name, content in logs.items() if secret in content]
        assert leaked == [], (secret[:6], leaked)
        assert db_hits(secret) == [], secret[:6]
    # The encrypted token is there, just not in clear (the scan would be vacuous on an empty table).
    with get_engine().connect() as conn:
        sealed = conn.execute(text("SELECT count(*) FROM oauth_tokens WHERE access_token_enc IS NOT NULL"))
        assert sealed.scalar()
        errors = conn.execute(text("SELECT count(*) FROM inbox_events WHERE last_error <> ''")).scalar()
    assert errors, "no stored error message was scanned"
    assert requests.get(stack.receiver + "/healthz", timeout=5).status_code == 200
