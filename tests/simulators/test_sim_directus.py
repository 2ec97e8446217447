"""What Directus answers, asked of the simulator and of the real Directus 11.17 alike (tests.directus_target):
each test body runs on both, so the simulator answers as the vendor does. Tests that need the simulator's
own powers (its clock, seeding stamps of the past, webhook targets, faults) run on it alone."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from simulators.directus import DirectusSimulator
from tests import directus_target as targets
from tests.directus_target import TARGETS, DirectusTarget

A = {"Authorization": "Bearer directus-static-token"}
DIRECTUS_FIELDS = 'collection "directus_fields"'


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[DirectusTarget]:
    yield from targets.serve(request.param)


@pytest.fixture()
def directus(serve):
    sim = DirectusSimulator()
    return sim, serve(sim).url


def get(url: str, path: str, **params) -> requests.Response:
    return requests.get(url + path, params=params, headers=A, timeout=5)


def create(url: str, collection: str, body: object) -> requests.Response:
    return requests.post(f"{url}/items/{collection}", json=body, headers=A, timeout=5)


def error(answer: requests.Response) -> tuple[int, str, str]:
    first = answer.json()["errors"][0]
    return answer.status_code, first["extensions"]["code"], first["message"]


# --- both targets -------------------------------------------------------------------------------------------


def test_auth_errors(target):
    r = target.call("GET", "/items/invoices", token="wrong")
    assert error(r) == (401, "INVALID_CREDENTIALS", "Invalid user credentials.")
    r = requests.get(f"{target.url}/items/invoices", timeout=5)
    assert error(r)[:2] == (403, "FORBIDDEN")
    assert requests.get(f"{target.url}/items/invoices?access_token={target.token}", timeout=5).ok
    assert requests.get(f"{target.url}/server/ping", timeout=5).text == "pong"


def test_crud_timestamps_and_missing_items(target):
    row = target.create("invoices", {"number": target.unique("INV"), "total": "120.50"})
    assert row["date_updated"] is None and row["date_created"].endswith("Z")
    assert len(row["date_created"]) == len("2024-05-01T00:00:00.000Z")
    assert row["total"] == 120.5  # SQLite: a decimal is a JSON number
    time.sleep(0.01)
    patched = target.call("PATCH", f"/items/invoices/{row['id']}", json={"status": "paid"}).json()["data"]
    assert patched["date_updated"] > row["date_created"] and patched["status"] == "paid"
    r = target.call("DELETE", f"/items/invoices/{row['id']}")
    assert r.status_code == 204 and r.content == b""
    missing = (403, "FORBIDDEN", "You don't have permission to access this.")
    assert error(target.call("GET", f"/items/invoices/{row['id']}")) == missing
    assert error(target.call("GET", "/items/invoices/abc")) == missing
    r = target.call("PATCH", f"/items/invoices/{row['id']}", json={"status": "late"})
    assert r.status_code == 204 and r.content == b""  # the admin's PATCH of a missing item
    assert target.call("DELETE", f"/items/invoices/{row['id']}").status_code == 204  # again: 204
    r = target.call("GET", "/items/unknown_collection")
    message = 'You don\'t have permission to access collection "unknown_collection" or it does not exist.'
    assert error(r) == (403, "FORBIDDEN", message + " Queried in root.")
    assert error(target.call("GET", "/nope"))[:2] == (404, "ROUTE_NOT_FOUND")


def test_a_least_privilege_token(target):
    """CRUD on the collections only: a missing item's PATCH and DELETE are 403 (not the admin's 204), an
    unknown field in a PATCH is 403 (the admin's is dropped), and the system collections are refused."""
    row = target.create("contacts", {"email": f"{target.unique()}@x.io"}, token=target.limited)
    key = row["id"]
    assert target.call("DELETE", f"/items/contacts/{key}", token=target.limited).status_code == 204
    r = target.call("PATCH", f"/items/contacts/{key}", json={"name": "x"}, token=target.limited)
    assert error(r)[:2] == (403, "FORBIDDEN") and '"update" for the field(s) "name"' in error(r)[2]
    r = target.call("DELETE", f"/items/contacts/{key}", token=target.limited)
    assert error(r)[:2] == (403, "FORBIDDEN") and 'perform "delete" for collection "contacts"' in error(r)[2]
    alive = target.create("contacts", {"email": f"{target.unique()}@x.io", "bogus": 1}, token=target.limited)
    assert "bogus" not in alive  # a create drops it for anyone
    r = target.call("PATCH", f"/items/contacts/{alive['id']}", json={"bogus": 1}, token=target.limited)
    assert error(r)[:2] == (403, "FORBIDDEN") and 'field "bogus" in collection "contacts"' in error(r)[2]
    for path in ("/activity", "/files", f"/files/{uuid.uuid4()}", f"/assets/{uuid.uuid4()}", "/flows",
                 "/operations", "/collections"):  # fmt: skip
        system = {"assets": "files"}.get(path.split("/")[1], path.split("/")[1])
        r = target.call("GET", path, token=target.limited)
        assert error(r)[:2] == (403, "FORBIDDEN") and f'collection "directus_{system}"' in error(r)[2], path
    r = target.call("GET", "/fields", token=target.limited)
    assert (
        error(r)[2]
        == f'You don\'t have permission to perform "read" for {DIRECTUS_FIELDS} or it does not exist.'
    )
    me = target.call("GET", "/permissions/me", token=target.limited).json()["data"]
    assert me["contacts"]["create"] == {"access": "full", "fields": ["*"]}
    assert me["contacts"]["share"] == {"access": "none"} and "directus_activity" not in me
    assert set(target.call("GET", "/users/me", token=target.limited).json()["data"]) == {"id"}
    admin = target.call("GET", "/permissions/me").json()["data"]
    assert admin["directus_activity"]["read"] == {"access": "full", "fields": ["*"]}


def test_unique_field_conflict(target):
    ext = target.unique("mautic")
    target.create("reviews", {"ext_id": ext, "title": "a"})
    r = target.call("POST", "/items/reviews", json={"ext_id": ext})
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["extensions"] == {
        "collection": "reviews",
        "field": "ext_id",
        "value": ext,
        "code": "RECORD_NOT_UNIQUE",
    }
    assert err["message"] == f'Value "{ext}" for field "ext_id" in collection "reviews" has to be unique.'


def test_a_unique_field_is_told_by_its_schema_and_compares_case_sensitively(target):
    """`GET /fields/{collection}/{field}` says whether a field is unique, to a token that may read the
    collection too; the unique index compares as SQLite's `=` does, so a value differing in case is another
    value (which is why contacts, looked up by email whatever its case, are never created first)."""
    for token in (target.token, target.limited):
        field = target.call("GET", "/fields/products/sku", token=token)
        assert field.status_code == 200 and field.json()["data"]["schema"]["is_unique"] is True
    assert target.call("GET", "/fields/products/name").json()["data"]["schema"]["is_unique"] is False
    hidden = target.scratch_collection("code", unique=("code",))  # the limited token may not read it
    refused = target.call("GET", f"/fields/{hidden}/code", token=target.limited)
    assert refused.status_code == 403 and refused.json()["errors"][0]["message"] == (
        f'You don\'t have permission to perform "read" for collection "{hidden}" or it does not exist.'
    )
    sku = target.unique("Sku")
    target.create("products", {"sku": sku})
    assert target.create("products", {"sku": sku.lower()})["sku"] == sku.lower()
    taken = target.call("POST", "/items/products", json={"sku": sku})
    assert taken.status_code == 400 and taken.json()["errors"][0]["extensions"]["code"] == "RECORD_NOT_UNIQUE"


def test_values_as_sqlite_keeps_them(target):
    """Unknown fields dropped; numbers from text; booleans with cast-boolean; dates in UTC; bad text kept in
    a number column; an invalid date 400, an invalid timestamp 500."""
    sku = target.unique("sku")
    row = target.create("products", {"sku": sku, "price": "12.50", "cost": "1e3", "tax_rate": "", "nope": 1})
    assert (row["price"], row["cost"], row["tax_rate"], row["archived"]) == (12.5, 1000, "", False)
    assert "nope" not in row
    row = target.call("PATCH", f"/items/products/{row['id']}", json={"price": "abc", "archived": 1}).json()[
        "data"
    ]
    assert (row["price"], row["archived"]) == ("abc", True)
    body = {"ext_id": target.unique("act"), "occurred_at": "2024-05-01T10:00:00+02:00", "contact": "12",
            "details": '{"a": 1}'}  # fmt: skip
    row = target.create("activities", body)
    assert (row["occurred_at"], row["contact"], row["details"]) == ("2024-05-01T08:00:00.000Z", 12, {"a": 1})
    row = target.create("invoices", {"number": target.unique("INV"), "date": "2024-05-01T23:30:00-05:00"})
    assert row["date"] == "2024-05-02"
    r = target.call("POST", "/items/invoices", json={"number": target.unique("INV"), "date": "2024-13-45"})
    assert error(r) == (400, "INVALID_PAYLOAD", 'Invalid payload. Invalid Date format in field "date".')
    r = target.call("POST", "/items/activities", json={"ext_id": target.unique(), "occurred_at": "garbage"})
    assert error(r) == (500, "INTERNAL_SERVER_ERROR", "Invalid time value")


def test_query_errors(target):
    nope = (403, "FORBIDDEN", 'field "nope" in collection "invoices"')
    cases = {
        (("filter[nope][_eq]", "1"),): nope,
        (("fields", "id,nope"),): nope,
        (("sort", "-nope"),): nope,
        (("filter[number][_bogus]", "1"),): (400, "INVALID_QUERY", 'does not contain the "_bogus" filter'),
        (("filter", "{bad"),): (400, "INVALID_QUERY", "Invalid query. Invalid JSON for filter object."),
        (("limit", "x"),): (400, "INVALID_QUERY", 'Invalid query. "limit" must be a number.'),
    }
    for params, (status, code, text) in cases.items():
        status_, code_, message = error(target.call("GET", "/items/invoices", params=dict(params)))
        assert (status_, code_) == (status, code) and text in message, params


def test_limit_offset_page_and_meta(target):
    tag = target.unique("INV")
    keys = [r["id"] for r in target.create("invoices", [{"number": f"{tag}-{i:03d}"} for i in range(25)])]
    mine = {"filter[number][_starts_with]": tag, "sort": "id"}
    pages = [target.call("GET", "/items/invoices", params={**mine, "limit": 10, "page": p}).json()["data"]
             for p in (1, 2, 3)]  # fmt: skip
    assert [len(p) for p in pages] == [10, 10, 5] and [r["id"] for p in pages for r in p] == keys
    rows = target.call("GET", "/items/invoices", params={**mine, "limit": 10, "offset": 22}).json()["data"]
    assert [r["id"] for r in rows] == keys[22:]
    assert len(target.call("GET", "/items/invoices", params={**mine, "limit": -1}).json()["data"]) == 25
    flt = json.dumps({"number": {"_in": [f"{tag}-000", f"{tag}-001"]}})
    body = target.call(
        "GET", "/items/invoices", params={"limit": 1, "meta": "filter_count", "filter": flt}
    ).json()
    assert body["meta"] == {"filter_count": 2} and len(body["data"]) == 1
    assert "meta" not in target.call("GET", "/items/invoices", params={**mine, "limit": 1}).json()
    with_fields = target.call(
        "GET", "/items/invoices", params={**mine, "fields": "number", "limit": 1}
    ).json()
    assert with_fields["data"] == [{"number": f"{tag}-000"}]


def test_sweep_filters_on_dates(target):
    tag = target.unique("INV")
    t0 = target.create("invoices", {"number": f"{tag}-t0"})["date_created"]
    time.sleep(0.02)
    new = target.create("invoices", {"number": f"{tag}-new"})
    old = target.create("invoices", {"number": f"{tag}-old"})
    time.sleep(0.02)
    target.call("PATCH", f"/items/invoices/{old['id']}", json={"status": "x"})
    mine = {"filter[_and][0][number][_starts_with]": tag}
    only_updated = {**mine, "filter[_and][1][date_updated][_gt]": t0}
    rows = target.call("GET", "/items/invoices", params=only_updated).json()["data"]
    assert [r["number"] for r in rows] == [f"{tag}-old"]  # date_updated is null on new rows
    either = {
        "filter[_and][0][number][_starts_with]": tag,
        "filter[_and][1][_or][0][date_updated][_gt]": t0,
        "filter[_and][1][_or][1][date_created][_gt]": t0,
        "sort": "date_updated,id",
    }
    rows = target.call("GET", "/items/invoices", params=either).json()["data"]
    assert [r["number"] for r in rows] == [f"{tag}-new", f"{tag}-old"]  # NULLs sort first
    strict = {**mine, "filter[_and][1][date_created][_gt]": new["date_created"], "sort": "id"}
    assert [r["id"] for r in target.call("GET", "/items/invoices", params=strict).json()["data"]] == (
        [old["id"]] if old["date_created"] > new["date_created"] else []
    )  # _gt is strict at millisecond precision


def test_batch_create_update_delete_and_the_activity_log(target):
    tag = target.unique("sku")
    rows = target.create("products", [{"sku": f"{tag}-{i}"} for i in range(3)])
    keys = [r["id"] for r in rows]
    missing = 987654321
    body = {"keys": [keys[0], keys[1], missing], "data": {"currency": "USD"}}
    updated = target.call("PATCH", "/items/products", json=body).json()["data"]
    assert [r["id"] for r in updated] == keys[:2]  # the missing key is left out
    assert {r["date_updated"] for r in updated} == {updated[0]["date_updated"]}  # one stamp per batch
    r = target.call("DELETE", "/items/products", json=[keys[0], keys[1], missing])
    assert r.status_code == 204
    left = target.call("GET", "/items/products", params={"filter[sku][_starts_with]": tag}).json()["data"]
    assert [row["id"] for row in left] == keys[2:]
    query = {"filter[collection][_eq]": "products", "filter[item][_in]": f"{keys[0]},{missing}",
             "fields": "action,item", "sort": "id"}  # fmt: skip
    activity = target.call("GET", "/activity", params=query).json()["data"]
    assert activity == [
        {"action": "create", "item": str(keys[0])},
        {"action": "update", "item": str(keys[0])},
        {"action": "update", "item": str(missing)},  # a missing item's update and delete are logged too
        {"action": "delete", "item": str(keys[0])},
        {"action": "delete", "item": str(missing)},
    ]
    full = target.call("GET", "/activity", params={"limit": 1, "sort": "-id"}).json()["data"][0]
    fields = {"id", "action", "user", "timestamp", "ip", "user_agent", "collection", "item", "origin"}
    assert set(full) == fields | {"revisions"}


def test_files_and_assets(target):
    data = b"%PDF-1.7\n" + bytes(range(256))
    answer = target.call("POST", "/files", data={"title": "March invoice"},
                         files={"file": ("invoice-03.pdf", data, "application/pdf")})  # fmt: skip
    row = answer.json()["data"]
    assert answer.status_code == 200 and row["type"] == "application/pdf" and row["filesize"] == len(data)
    assert row["filename_download"] == "invoice-03.pdf" and row["filename_disk"] == f"{row['id']}.pdf"
    assert len(row["uploaded_on"]) == len("2024-05-01T00:00:00")  # SQLite: no zone, no milliseconds
    assert target.call("GET", f"/files/{row['id']}").json()["data"] == row
    asset = target.call("GET", f"/assets/{row['id']}")
    assert asset.content == data and asset.headers["Content-Type"] == "application/pdf"
    assert asset.headers["Content-Disposition"] == 'inline; filename="invoice-03.pdf"'
    gone = target.call("GET", "/files", params={"filter[id][_eq]": str(uuid.uuid4())})
    assert gone.json() == {"data": []}
    for path in (f"/files/{uuid.uuid4()}", f"/assets/{uuid.uuid4()}"):
        assert error(target.call("GET", path)) == (
            403,
            "FORBIDDEN",
            "You don't have permission to access this.",
        )
    assert requests.get(f"{target.url}/assets/{row['id']}", timeout=5).status_code == 403  # the public role


def test_the_schema_endpoints(target):
    name = target.scratch_collection("label")
    fields = {f["field"]: f for f in target.call("GET", f"/fields/{name}").json()["data"]}
    assert set(fields) == {"id", "label"} and fields["label"]["schema"]["data_type"] == "varchar"
    amount = {"field": "amount", "type": "decimal", "meta": {},
              "schema": {"numeric_precision": 15, "numeric_scale": 2}}  # fmt: skip
    created = target.call("POST", f"/fields/{name}", json=amount)
    assert created.json()["data"]["type"] == "float"  # SQLite
    r = target.call("POST", f"/fields/{name}", json={"field": "stamp", "type": "timestamp"})
    assert r.json()["data"]["meta"]["special"] == ["cast-timestamp"]
    stamp = {"field": "stamp", "type": "timestamp", "schema": {}}
    r = target.call("POST", "/collections", json={"collection": f"{name}_x", "schema": {}, "fields": [stamp]})
    assert error(r)[:2] == (400, "FAILED_VALIDATION")  # in a new collection, a timestamp needs `meta`
    target.create(name, [{"label": "same"}, {"label": "same"}])
    r = target.call("PATCH", f"/fields/{name}/label", json={"schema": {"is_unique": True}})
    assert error(r)[:2] == (400, "RECORD_NOT_UNIQUE")
    r = target.call("PATCH", f"/fields/{name}/label", json={"type": "integer"})
    assert r.json()["data"]["type"] == "string"  # a new type is ignored
    assert target.call("DELETE", f"/fields/{name}/label").status_code == 204
    assert error(target.call("GET", f"/fields/{name}/label"))[:2] == (403, "FORBIDDEN")
    meta = target.call("PATCH", f"/collections/{name}", json={"meta": {"accountability": None}}).json()[
        "data"
    ]
    assert meta["meta"]["accountability"] is None
    assert target.call("DELETE", f"/collections/{name}").status_code == 204
    assert error(target.call("GET", f"/collections/{name}"))[:2] == (403, "FORBIDDEN")


def test_the_flows_api(target):
    """What `webhooks install` calls: a Flow, its request operation attached, listed by name; deleting the
    Flow deletes its operations."""
    name = target.unique("flow")
    options = {"type": "action", "scope": ["items.create"], "collections": ["contacts"]}
    flow = target.call("POST", "/flows", json={"name": name, "status": "active", "trigger": "event",
                                               "options": options}).json()["data"]  # fmt: skip
    assert (flow["operation"], flow["operations"], flow["icon"]) == (None, [], None)
    assert len(flow["date_created"]) == len("2024-05-01T00:00:00")  # SQLite
    request = {"url": "http://127.0.0.1:9/hook", "method": "POST", "body": "{{$trigger}}", "headers": []}
    op = {"flow": flow["id"], "key": "send", "name": "Send", "type": "request", "position_x": 19,
          "position_y": 1, "options": request}  # fmt: skip
    operation = target.call("POST", "/operations", json=op).json()["data"]
    patched = target.call("PATCH", f"/flows/{flow['id']}", json={"operation": operation["id"]}).json()["data"]
    assert patched["operation"] == operation["id"] and patched["operations"] == [operation["id"]]
    [listed] = target.call("GET", "/flows", params={"filter[name][_in]": name, "limit": -1}).json()["data"]
    assert listed["options"] == options
    assert target.call("GET", f"/operations/{operation['id']}").json()["data"]["options"] == request
    r = target.call("POST", "/flows", json={})
    assert error(r) == (400, "FAILED_VALIDATION", 'Validation failed for field "name". Value is required.')
    r = target.call("POST", "/operations", json={**op, "flow": str(uuid.uuid4())})
    assert error(r) == (400, "INVALID_FOREIGN_KEY", "Invalid foreign key.")
    assert target.call("DELETE", f"/flows/{flow['id']}").status_code == 204
    assert error(target.call("GET", f"/operations/{operation['id']}"))[:2] == (403, "FORBIDDEN")


# --- the simulator alone: seeded stamps, webhook targets, faults --------------------------------------------


def test_a_seed_names_only_fields_the_collection_has(directus):
    sim, _ = directus
    with pytest.raises(ValueError, match="contacts has no field score"):
        sim.seed({"items": {"contacts": [{"email": "a@x.io", "score": 2}]}})
    keys = sim.seed(
        {"items": {"contacts": [{"email": "a@x.io", "date_created": "2024-05-01T10:00:00.000Z"}]}}
    )
    assert sim.db["contacts"][keys["contacts"][0]]["date_created"] == "2024-05-01T10:00:00.000Z"


def test_search_and_operators(directus):
    sim, url = directus
    sim.seed({"items": {"contacts": [{"email": "b@x.io", "city": "2"}, {"email": "a@x.io", "city": "3"},
                                     {"email": "c@y.io", "city": "1"}]}})  # fmt: skip
    assert [r["city"] for r in get(url, "/items/contacts", sort="-city").json()["data"]] == ["3", "2", "1"]
    assert len(get(url, "/items/contacts", search="X.IO").json()["data"]) == 2
    flt = {"_and": [{"city": {"_in": ["1", "2"]}}, {"email": {"_ends_with": "x.io"}}]}
    rows = get(url, "/items/contacts", filter=json.dumps(flt)).json()["data"]
    assert [r["email"] for r in rows] == ["b@x.io"]


def test_flow_webhooks_trigger_shapes_secret_and_no_retry(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(
        hook_receiver.url, secret="flow-secret", events=["items.create", "items.update", "items.delete"]
    )
    create(url, "invoices", {"number": "1", "total": "120.50"})
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
        {"event": "invoices.items.create", "payload": {"number": "1", "total": "120.50"}, "key": 1},
        {"event": "invoices.items.update", "payload": {"status": "paid"}, "keys": ["1"]},
        {"event": "invoices.items.update", "payload": {"currency": "USD"}, "keys": [1]},
        {"event": "invoices.items.delete", "payload": ["1"], "keys": ["1"]},
    ]
    headers = hook_receiver.received[0]["headers"]
    assert headers["X-Webhook-Secret"] == "flow-secret" and headers["User-Agent"].startswith("axios/")
    assert [e["result"] for e in sim.webhook_log][-1] == "failed" and len(sim.webhook_log) == 4  # no retry


def test_a_second_delete_fires_the_flow_again(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(hook_receiver.url, events=["items.delete"])
    create(url, "contacts", {"email": "a@x.io"})
    for _ in range(2):
        assert requests.delete(f"{url}/items/contacts/1", headers=A, timeout=5).status_code == 204
    assert sim.flush_webhooks(5)
    assert [r["json"]["keys"] for r in hook_receiver.received] == [["1"], ["1"]]


def test_flow_scoped_to_one_collection(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(hook_receiver.url, events=["contacts.items.create"])
    create(url, "invoices", {"number": "1"})
    create(url, "contacts", {"email": "a@x.io"})
    assert sim.flush_webhooks(5)
    assert [r["json"]["collection"] for r in hook_receiver.received] == ["contacts"]


def test_an_upload_emits_files_upload_and_no_items_create(directus, hook_receiver):
    sim, url = directus
    sim.add_webhook_target(hook_receiver.url, events=["files.upload", "items.create"])
    answer = requests.post(f"{url}/files", headers=A, data={"title": "March invoice"}, timeout=5,
                           files={"file": ("invoice-03.pdf", b"%PDF-1.7", "application/pdf")})  # fmt: skip
    row = answer.json()["data"]
    assert sim.flush_webhooks(5)
    [event] = [r["json"] for r in hook_receiver.received]
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


def test_a_fresh_directus_has_no_collections_and_a_seeded_uuid_one(serve):
    sim = DirectusSimulator(collections=[])
    url = serve(sim).url
    assert get(url, "/collections").json() == {"data": []}
    assert error(get(url, "/items/contacts"))[:2] == (403, "FORBIDDEN")
    sim.seed({"collections": {"files_in": {"fields": ["sha256"], "pk_type": "uuid", "timestamps": False}},
              "items": {"files_in": [{"sha256": "ab"}]}})  # fmt: skip
    [row] = get(url, "/items/files_in").json()["data"]
    assert len(row["id"]) == 36 and "date_created" not in row
    assert get(url, f"/items/files_in/{row['id']}").json()["data"]["sha256"] == "ab"
