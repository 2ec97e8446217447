"""Directus simulator behaviour as documented in apis.md §5 and observed in §9."""

from __future__ import annotations

import json

import pytest
import requests

from simulators.directus import DirectusSimulator

A = {"Authorization": "Bearer directus-static-token"}


@pytest.fixture()
def directus(serve):
    sim = DirectusSimulator()
    return sim, serve(sim).url


def get(url: str, path: str, **params) -> requests.Response:
    return requests.get(url + path, params=params, headers=A, timeout=5)


def create(url: str, collection: str, body: object) -> requests.Response:
    return requests.post(f"{url}/items/{collection}", json=body, headers=A, timeout=5)


def test_auth_errors(directus):
    _, url = directus
    r = requests.get(f"{url}/items/invoices", headers={"Authorization": "Bearer wrong"}, timeout=5)
    assert r.status_code == 401 and r.json()["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
    r = requests.get(f"{url}/items/invoices", timeout=5)
    assert r.status_code == 403 and r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert requests.get(f"{url}/items/invoices?access_token=directus-static-token", timeout=5).ok


def test_crud_timestamps_and_404s_that_are_403(directus):
    sim, url = directus
    row = create(url, "invoices", {"number": "INV-1", "amount": "120.50"}).json()["data"]
    assert row["id"] == 1 and row["date_updated"] is None and row["date_created"].endswith("Z")
    assert len(row["date_created"]) == len("2024-05-01T00:00:00.000Z")
    sim.clock.advance(5)
    patched = requests.patch(f"{url}/items/invoices/1", json={"status": "paid"}, headers=A, timeout=5)
    assert patched.json()["data"]["date_updated"] > row["date_created"]
    assert get(url, "/items/invoices/1").json()["data"]["status"] == "paid"
    r = requests.delete(f"{url}/items/invoices/1", headers=A, timeout=5)
    assert r.status_code == 204 and r.content == b""
    for r in (get(url, "/items/invoices/1"), get(url, "/items/unknown_collection")):
        assert r.status_code == 403 and r.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert get(url, "/nope").json()["errors"][0]["extensions"]["code"] == "ROUTE_NOT_FOUND"


def test_unique_field_conflict(directus):
    _, url = directus
    create(url, "contacts", {"ext_id": "mautic-1", "email": "a@x.io"})
    r = create(url, "contacts", {"ext_id": "mautic-1"})
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["extensions"]["code"] == "RECORD_NOT_UNIQUE" and err["extensions"]["field"] == "ext_id"


def test_limit_offset_page_and_meta(directus):
    sim, url = directus
    sim.seed({"items": {"invoices": [{"n": i} for i in range(250)]}})
    assert len(get(url, "/items/invoices").json()["data"]) == 100  # default limit
    assert len(get(url, "/items/invoices", limit=-1).json()["data"]) == 250
    pages = [get(url, "/items/invoices", limit=100, page=p).json()["data"] for p in (1, 2, 3)]
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [r["n"] for p in pages for r in p] == list(range(250))
    assert get(url, "/items/invoices", limit=10, offset=245).json()["data"][0]["n"] == 245
    flt = json.dumps({"n": {"_lt": 7}})
    body = get(url, "/items/invoices", limit=1, meta="filter_count", filter=flt).json()
    assert body["meta"] == {"filter_count": 7}
    assert get(url, "/items/invoices", limit=1, meta="*").json()["meta"] == {
        "total_count": 250,
        "filter_count": 250,
    }
    assert "meta" not in get(url, "/items/invoices", limit=1).json()


def test_sweep_filters_on_dates(directus):
    sim, url = directus
    t0 = sim.iso_now()
    sim.clock.advance(1)
    create(url, "invoices", {"number": "new"})
    old = create(url, "invoices", {"number": "old"}).json()["data"]
    sim.clock.advance(1)
    requests.patch(f"{url}/items/invoices/{old['id']}", json={"status": "x"}, headers=A, timeout=5)
    # date_updated is null on new rows, so a date_updated-only sweep misses them (§9)
    only_updated = get(url, "/items/invoices", **{"filter[date_updated][_gt]": t0}).json()["data"]
    assert [r["number"] for r in only_updated] == ["old"]
    either = get(
        url,
        "/items/invoices",
        **{
            "filter[_or][0][date_updated][_gt]": t0,
            "filter[_or][1][date_created][_gt]": t0,
            "sort": "date_updated,id",
        },
    ).json()["data"]
    assert [r["number"] for r in either] == ["new", "old"]  # NULLs sort first
    as_json = {"_or": [{"date_updated": {"_gte": t0}}, {"date_created": {"_gte": t0}}]}
    assert len(get(url, "/items/invoices", filter=json.dumps(as_json)).json()["data"]) == 2
    # _gt is strict at millisecond precision
    created = old["date_created"]
    assert get(url, "/items/invoices", **{"filter[date_created][_gt]": created}).json()["data"] == []
    assert len(get(url, "/items/invoices", **{"filter[date_created][_gte]": created}).json()["data"]) == 1


def test_sort_fields_search_and_operators(directus):
    sim, url = directus
    sim.seed(
        {
            "items": {
                "contacts": [
                    {"email": "b@x.io", "score": 2},
                    {"email": "a@x.io", "score": 3},
                    {"email": "c@y.io", "score": 1},
                ]
            }
        }
    )
    assert [r["score"] for r in get(url, "/items/contacts", sort="-score").json()["data"]] == [3, 2, 1]
    assert get(url, "/items/contacts", fields="email", sort="email", limit=1).json()["data"] == [
        {"email": "a@x.io"}
    ]
    assert len(get(url, "/items/contacts", search="X.IO").json()["data"]) == 2
    flt = {"_and": [{"score": {"_in": [1, 2]}}, {"email": {"_ends_with": "x.io"}}]}
    rows = get(url, "/items/contacts", filter=json.dumps(flt)).json()["data"]
    assert [r["email"] for r in rows] == ["b@x.io"]
    rows = get(url, "/items/contacts", **{"filter[email][_eq]": "c@y.io"}).json()["data"]
    assert [r["id"] for r in rows] == [3]
    r = get(url, "/items/contacts", filter="{not json")
    assert r.status_code == 400 and r.json()["errors"][0]["extensions"]["code"] == "INVALID_QUERY"


def test_batch_create_update_delete(directus):
    sim, url = directus
    rows = create(url, "products", [{"sku": "A"}, {"sku": "B"}, {"sku": "C"}]).json()["data"]
    assert [r["id"] for r in rows] == [1, 2, 3]
    body = {"keys": [1, 2], "data": {"currency": "USD"}}
    updated = requests.patch(f"{url}/items/products", json=body, headers=A, timeout=5).json()["data"]
    assert {r["date_updated"] for r in updated} == {updated[0]["date_updated"]}  # one stamp per batch
    r = requests.delete(f"{url}/items/products", json=[1, 2], headers=A, timeout=5)
    assert r.status_code == 204 and list(sim.db["products"]) == [3]


def test_flow_webhooks_trigger_shapes_secret_and_no_retry(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(
        hook_receiver.url, secret="flow-secret", events=["items.create", "items.update", "items.delete"]
    )
    create(url, "invoices", {"number": "1", "amount": "120.50"})
    requests.patch(f"{url}/items/invoices/1", json={"status": "paid"}, headers=A, timeout=5)
    requests.patch(
        f"{url}/items/invoices", json={"keys": [1], "data": {"currency": "USD"}}, headers=A, timeout=5
    )
    hook_receiver.statuses = [500]
    requests.delete(f"{url}/items/invoices/1", headers=A, timeout=5)
    assert sim.flush_webhooks(5)
    bodies = [r["json"] for r in hook_receiver.received]
    assert all(b.pop("collection") == "invoices" for b in bodies)
    assert bodies == [
        {"event": "invoices.items.create", "payload": {"number": "1", "amount": "120.50"}, "key": 1},
        {"event": "invoices.items.update", "payload": {"status": "paid"}, "keys": ["1"]},
        {"event": "invoices.items.update", "payload": {"currency": "USD"}, "keys": [1]},
        {"event": "invoices.items.delete", "payload": ["1"], "keys": ["1"]},
    ]
    headers = hook_receiver.received[0]["headers"]
    assert headers["X-Webhook-Secret"] == "flow-secret" and headers["User-Agent"].startswith("axios/")
    assert [e["result"] for e in sim.webhook_log][-1] == "failed" and len(sim.webhook_log) == 4  # no retry


def test_flow_scoped_to_one_collection(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(hook_receiver.url, events=["contacts.items.create"])
    create(url, "invoices", {"number": "1"})
    create(url, "contacts", {"email": "a@x.io"})
    assert sim.flush_webhooks(5)
    assert [r["json"]["collection"] for r in hook_receiver.received] == ["contacts"]


def test_file_upload_assets_and_the_files_upload_event(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(hook_receiver.url, events=["files.upload", "items.create"])
    data = b"%PDF-1.7\n" + bytes(range(256))
    answer = requests.post(
        f"{url}/files", headers=A, data={"title": "March invoice"}, timeout=5,
        files={"file": ("invoice-03.pdf", data, "application/pdf")},
    )  # fmt: skip
    row = answer.json()["data"]
    assert answer.status_code == 200 and row["type"] == "application/pdf" and row["filesize"] == len(data)
    assert row["filename_download"] == "invoice-03.pdf" and row["filename_disk"] == f"{row['id']}.pdf"
    assert get(url, f"/files/{row['id']}").json()["data"] == row
    asset = get(url, f"/assets/{row['id']}")
    assert asset.content == data and asset.headers["Content-Type"] == "application/pdf"
    assert get(url, "/assets/00000000-0000-0000-0000-000000000000").status_code == 403
    assert requests.get(f"{url}/assets/{row['id']}", timeout=5).status_code == 403  # the public role
    assert sim.flush_webhooks(5)
    [event] = [r["json"] for r in hook_receiver.received]  # an upload is no items.create
    assert event["event"] == "files.upload" and event["key"] == row["id"]
    assert event["collection"] == "directus_files" and event["payload"]["title"] == "March invoice"
    assert "id" not in event["payload"]


def test_rate_limit_and_error_shapes(directus):
    sim, url = directus
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 3})
    r = get(url, "/items/invoices")
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    assert r.json()["errors"][0]["extensions"]["code"] == "REQUESTS_EXCEEDED"
    sim.set_faults(outage=True)
    assert get(url, "/items/invoices").json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


def test_seeded_uuid_collection(directus):
    sim, url = directus
    sim.seed(
        {
            "collections": {"files_in": {"pk_type": "uuid", "unique": ["sha256"], "timestamps": False}},
            "items": {"files_in": [{"sha256": "ab"}]},
        }
    )
    [row] = get(url, "/items/files_in").json()["data"]
    assert len(row["id"]) == 36 and "date_created" not in row
    assert get(url, f"/items/files_in/{row['id']}").json()["data"]["sha256"] == "ab"
