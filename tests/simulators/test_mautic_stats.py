"""The Mautic simulator's Stats API over audit_log, as StatsApiController and LeadSubscriber behave."""

from __future__ import annotations

import requests

from simulators.mautic import MauticSimulator
from simulators.mautic.stats import php_serialize

AUTH = ("admin", "sim-mautic-pass")


def test_contact_saves_and_deletes_are_audited_and_listed_with_where_order_and_paging(serve):
    sim = MauticSimulator()
    url = serve(sim).url
    made = [requests.post(f"{url}/api/contacts/new", json={"email": f"a{i}@example.test"}, auth=AUTH,
                          timeout=5).json()["contact"]["id"] for i in range(3)]  # fmt: skip
    requests.patch(f"{url}/api/contacts/{made[0]}/edit", json={"firstname": "Ann"}, auth=AUTH, timeout=5)
    assert requests.delete(f"{url}/api/contacts/{made[1]}/delete", auth=AUTH, timeout=5).ok

    everything = requests.get(f"{url}/api/stats/audit_log", auth=AUTH, timeout=5).json()
    assert everything["total"] == 5
    assert [(r["object_id"], r["action"]) for r in everything["stats"]] == [
        (made[0], "create"),
        (made[1], "create"),
        (made[2], "create"),
        (made[0], "update"),
        (made[1], "delete"),
    ]
    edited = everything["stats"][3]  # Lead::$changes: each changed field as [old, new]
    assert edited["details"] == php_serialize({"fields": {"firstname": [None, "Ann"]}})
    deleted = everything["stats"][-1]
    assert deleted["bundle"] == "lead" and deleted["object"] == "lead"
    assert deleted["details"] == php_serialize({"name": "a1@example.test"})
    assert deleted["details"] == 'a:1:{s:4:"name";s:15:"a1@example.test";}'

    query = {"where[0][col]": "action", "where[0][expr]": "neq", "where[0][val]": "delete",
             "order[0][col]": "id", "order[0][dir]": "DESC", "start": 1, "limit": 2}  # fmt: skip
    page = requests.get(f"{url}/api/stats/audit_log", params=query, auth=AUTH, timeout=5).json()
    assert page["total"] == 4 and [r["action"] for r in page["stats"]] == ["create", "create"]
    assert [r["object_id"] for r in page["stats"]] == [made[2], made[1]]


def test_a_table_nobody_serves_lists_the_tables_and_a_failed_query_is_an_error_body(serve):
    sim = MauticSimulator()
    url = serve(sim).url
    other = requests.get(f"{url}/api/stats/no_such_table", auth=AUTH, timeout=5).json()
    assert "stats" not in other and "audit_log" in other["availableTables"]
    where = {"where[0][col]": "password", "where[0][expr]": "eq", "where[0][val]": "x"}
    bad = requests.get(f"{url}/api/stats/audit_log", params=where, auth=AUTH, timeout=5)
    assert bad.status_code == 200 and bad.json()["errors"][0]["message"]  # StatsApiController catches it
    assert requests.get(f"{url}/api/stats/audit_log", timeout=5).status_code == 401
