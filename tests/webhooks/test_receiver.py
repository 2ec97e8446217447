"""Bad input gets a clear 4xx and is not processed; the store being down is a 503 the sender retries."""

from __future__ import annotations

import json
import logging
import time

import pytest
from sqlalchemy import func, select

from syncengine.db import reset_engines, session_scope
from syncengine.models import InboxEvent
from syncengine.settings import get_settings
from tests.support import SECRETS, dumps, free_port, sample, sign

ALL_READY = {"status": "ok", "store": True, "schema": True, "broker": True, "redis_keeps_keys": True}


def total_rows() -> int:
    with session_scope() as s:
        return s.execute(select(func.count()).select_from(InboxEvent)).scalar_one()


def test_unknown_sender_is_404(client):
    response = client.post("/webhooks/stripe", data=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 404
    assert "unknown sender" in response.json["error"]


def test_wrong_content_type_is_415(client):
    path, payload = sample("mautic", "ct")
    body = dumps(payload)
    headers = sign("mautic", body) | {"Content-Type": "application/x-www-form-urlencoded"}
    before = total_rows()
    assert client.post(path, data=body, headers=headers).status_code == 415
    assert total_rows() == before


def test_body_over_one_mebibyte_is_413(client):
    body = b'{"event": "test_events.items.create", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    before = total_rows()
    response = client.post("/webhooks/directus", data=body, headers=sign("directus", body))
    assert response.status_code == 413
    assert total_rows() == before


def test_body_of_exactly_one_mebibyte_is_accepted(client):
    head = b'{"event": "test_events.items.create", "key": "mib-%d", "pad": "' % time.time_ns()
    body = head + b"x" * (1024 * 1024 - len(head) - 2) + b'"}'
    assert len(body) == 1024 * 1024
    assert client.post("/webhooks/directus", data=body, headers=sign("directus", body)).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        b'{"event": "test_events.items.create", ',  # truncated
        b"\xff\xfe not utf-8",
        b'{"event": NaN}',
        b"[1, 2, 3]",  # JSON, but not an object
        b"[" * 100_000 + b"]" * 100_000,  # nesting deep enough to blow the parser's stack
        b'{"n": ' + b"9" * 5000 + b"}",  # a number Python refuses to parse
    ],
    ids=["truncated", "invalid-utf8", "nan", "array", "deep-nesting", "huge-number"],
)
def test_broken_json_is_400(client, body):
    before = total_rows()
    response = client.post("/webhooks/mautic", data=body, headers=sign("mautic", body))
    assert response.status_code == 400
    assert "JSON" in response.json["error"]
    assert total_rows() == before


@pytest.mark.parametrize(
    ("sender", "path", "payload"),
    [
        ("invoiceninja", "/webhooks/invoiceninja/create_client", {"name": "no id"}),
        ("invoiceninja", "/webhooks/invoiceninja", {"id": "x1"}),  # the event must be in the URL
        ("revolut", "/webhooks/revolut", {"event": "TransactionCreated", "data": {"state": "pending"}}),
        ("erpnext", "/webhooks/erpnext", {"event": "on_update", "doctype": "Customer"}),
        ("mautic", "/webhooks/mautic", {"not-a-mautic-event": []}),
        ("directus", "/webhooks/directus", {"payload": {}}),
    ],
)
def test_missing_event_id_is_400(client, sender, path, payload):
    body = dumps(payload)
    before = total_rows()
    response = client.post(path, data=body, headers=sign(sender, body))
    assert response.status_code == 400, response.json
    assert total_rows() == before


def test_nul_character_in_a_value_is_stored_verbatim(client):
    key = f"nul-{time.time_ns()}"
    body = dumps({"event": "test_events.items.create", "key": key, "payload": {"x": "a\u0000b"}})
    response = client.post("/webhooks/directus", data=body, headers=sign("directus", body))
    assert response.status_code == 202
    with session_scope() as s:
        assert s.get(InboxEvent, response.json["accepted"][0]).payload["payload"]["x"] == "a\x00b"


def test_nul_character_in_the_event_id_is_400(client):
    body = dumps({"event": "test_events.items.create", "key": "a\u0000b", "payload": {}})
    response = client.post("/webhooks/directus", data=body, headers=sign("directus", body))
    assert response.status_code == 400
    assert "NUL" in response.json["error"]


def test_duplicate_is_200_and_stores_once(client):
    path, payload = sample("erpnext", f"dup-{time.time_ns()}")
    body = dumps(payload)
    first = client.post(path, data=body, headers=sign("erpnext", body))
    second = client.post(path, data=body, headers=sign("erpnext", body))
    assert first.status_code == 202
    assert second.status_code == 200 and second.json == {"duplicate": True}


def test_mautic_batch_becomes_one_event_per_item(client):
    n = time.time_ns()
    payload = {
        "mautic.lead_post_save_new": [{"contact": {"id": n}, "timestamp": "t1"}, {"contact": {"id": n + 1}}],
        "mautic.email_on_open": [{"stat": {"id": n}, "timestamp": "t2"}],
    }
    body = dumps(payload)
    response = client.post("/webhooks/mautic", data=body, headers=sign("mautic", body))
    assert response.status_code == 202
    ids = response.json["accepted"]
    assert len(ids) == 3
    with session_scope() as s:
        types = sorted(s.get(InboxEvent, i).event_type for i in ids)
    assert types == ["mautic.email_on_open", "mautic.lead_post_save_new", "mautic.lead_post_save_new"]


@pytest.fixture()
def store_down(monkeypatch):
    """Point the receiver at a Postgres port nobody listens on."""
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    get_settings.cache_clear()
    reset_engines()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    reset_engines()


def test_store_unreachable_is_503_and_nothing_written(client, store_down):
    path, payload = sample("revolut", f"down-{time.time_ns()}")
    body = dumps(payload)
    started = time.monotonic()
    response = client.post(path, data=body, headers=sign("revolut", body))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert time.monotonic() - started < 5


def test_store_unreachable_left_no_row_behind(client):
    """Runs after the outage test: the event it tried to store is not in the real store."""
    with session_scope() as s:
        found = s.execute(
            select(InboxEvent).where(InboxEvent.event_id.like("PayoutLinkCreated:pl-down-%"))
        ).all()
    assert found == []


def test_readyz_reports_store_and_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == ALL_READY


def test_readyz_is_503_when_store_is_down(client, store_down):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["store"] is False


def test_no_secret_or_signature_in_logs(client, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for sender in SECRETS:
        path, payload = sample(sender, f"logs-{time.time_ns()}")
        body = dumps(payload)
        good = sign(sender, body)
        seen += [v for k, v in good.items() if k != "Content-Type" and "Timestamp" not in k]
        client.post(path, data=body, headers=good)
        client.post(path, data=body, headers=sign(sender, body, secret="wrong-" + SECRETS[sender]))
    logging.getLogger("probe").warning("headers were %s", json.dumps(good))
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "the receiver logged nothing: the test would prove nothing"
    for secret in SECRETS.values():
        assert secret not in text
    for value in seen:
        assert value.removeprefix("v1=") not in text


def test_a_connection_postgres_ended_between_two_webhooks_costs_the_second_no_503(client):
    """The receiver keeps its connection from one webhook to the next (syncengine.db.kept_connection).
    When Postgres ends it (a restart, an administrator), the next webhook is stored at once on a new one."""
    from sqlalchemy import text

    from syncengine.db import get_engine, kept_connection

    def send(n: str) -> int:
        path, payload = sample("directus", f"kept-{n}-{time.time_ns()}")
        body = dumps(payload)
        return client.post(path, data=body, headers=sign("directus", body)).status_code

    assert send("first") == 202
    ended = kept_connection().connection.driver_connection.get_backend_pid()
    with get_engine().connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": ended}).scalar_one()
    before = total_rows()
    assert send("second") == 202
    assert total_rows() == before + 1
    assert kept_connection().connection.driver_connection.get_backend_pid() != ended
