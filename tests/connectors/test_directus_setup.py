"""`syncengine setup` for Directus (connectors.directus_setup) on the simulator and on the real Directus 11.17
(tests.directus_target): a Directus without our schema is reported and then made ready, what cannot be
changed safely is reported with what to do, and the token's permissions are read without a side effect."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from connectors.directus_setup import DirectusSetup
from connectors.setup import PROBLEMS, Finding
from simulators.directus import DirectusSimulator
from syncengine.settings import Settings
from syncengine.vendors.directus import COLLECTIONS
from tests import directus_target as targets
from tests.directus_target import TARGETS, DirectusTarget
from tests.support import ROOT


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Iterator[DirectusTarget]:
    yield from targets.serve(request.param)


def run(target: DirectusTarget, apply: bool, token: str | None = None) -> list[Finding]:
    setup = DirectusSetup(target.connector(token), Settings.from_env({}))
    return setup.schema(apply) + setup.permissions()


def lines(findings: list[Finding]) -> dict[str, str]:
    """subject -> status of the findings that are problems (or changes)."""
    return {f.subject: f.status for f in findings if f.status not in ("ok", "skipped")}


def test_a_directus_without_our_schema_is_reported_then_made_ready(serve_fresh):
    target = serve_fresh
    check = run(target, apply=False)
    assert lines(check) == {f"collection {name}": "missing" for name in COLLECTIONS}
    assert all("run `syncengine setup --system directus`" in str(f) for f in check if f.problem)
    assert target.sim.collections == {}  # --check changed nothing
    made = run(target, apply=True)
    assert lines(made) == {f"collection {name}": "created" for name in COLLECTIONS}
    assert not any(f.problem for f in run(target, apply=False))
    assert run(target, apply=True) == run(target, apply=False)  # idempotent: nothing more to do


@pytest.fixture()
def serve_fresh() -> Iterator[DirectusTarget]:
    sim = DirectusSimulator(token=targets.ADMIN_TOKEN, collections=[])
    with sim.serve() as running:
        yield DirectusTarget("sim", running.url, targets.ADMIN_TOKEN, targets.LIMITED_TOKEN, sim)


def test_what_is_wrong_is_mended_where_safe_and_reported_where_not(target):
    call = target.call
    assert call("DELETE", "/collections/transfers").status_code == 204
    call("DELETE", "/fields/contacts/phone")
    call("DELETE", "/fields/products/cost")
    call("POST", "/fields/products", json={"field": "cost", "type": "string", "meta": {}})  # empty
    call("DELETE", "/fields/invoices/balance")
    call("POST", "/fields/invoices", json={"field": "balance", "type": "string", "meta": {}})
    number = target.unique("INV")
    target.create("invoices", {"number": number, "balance": "see notes"})  # holds a value now
    call("PATCH", "/fields/contacts/marketing_consent", json={"meta": {"special": None}})
    call("PATCH", "/fields/payments/ext_id", json={"schema": {"is_unique": False}})
    call("PATCH", "/collections/reviews", json={"meta": {"accountability": None}})
    try:
        check = run(target, apply=False)
        assert lines(check) == {
            "collection transfers": "missing", "field contacts.phone": "missing",
            "field contacts.marketing_consent": "wrong", "field products.cost": "wrong",
            "field invoices.balance": "wrong", "field payments.ext_id": "wrong",
            "collection reviews": "wrong",
        }  # fmt: skip
        [balance] = [f for f in check if f.subject == "field invoices.balance"]
        assert "holds values" in balance.detail and "copy them aside" in balance.fix
        made = run(target, apply=True)
        assert lines(made) == {
            "collection transfers": "created", "field contacts.phone": "created",
            "field contacts.marketing_consent": "updated", "field products.cost": "updated",
            "field invoices.balance": "wrong", "field payments.ext_id": "updated",
            "collection reviews": "updated",
        }  # fmt: skip
        assert lines(run(target, apply=False)) == {"field invoices.balance": "wrong"}
    finally:  # what a person would do: the value aside, the field recreated by setup; and the grant back
        call("DELETE", "/fields/invoices/balance")
        run(target, apply=True)
        target.grant_limited("transfers")
    assert not any(f.problem for f in run(target, apply=False))


def test_a_unique_key_with_duplicates_is_left_for_a_person(target):
    call = target.call
    call("PATCH", "/fields/expenses/ext_id", json={"schema": {"is_unique": False}})
    dup = target.unique("dup")
    target.create("expenses", [{"ext_id": dup}, {"ext_id": dup}])
    try:
        [finding] = [f for f in run(target, apply=True) if f.problem]
        assert (finding.subject, finding.status) == ("field expenses.ext_id", "wrong")
        assert "merge or clear the duplicate values of ext_id" in finding.fix
    finally:
        keys = call("GET", "/items/expenses", params={"filter[ext_id][_eq]": dup}).json()["data"]
        call("DELETE", "/items/expenses", json=[row["id"] for row in keys])
        run(target, apply=True)
    assert not any(f.problem for f in run(target, apply=False))


def test_the_least_privilege_token_is_told_what_it_lacks(target):
    """CRUD on the collections is all the engine's items need; the activity log (delete sweep), revisions
    (dating a change read back), files (OCR intake) and Flows (`webhooks install` only) are each one line
    naming the grant. The schema cannot be read, so the fields are checked through the items API."""
    findings = run(target, apply=False, token=target.limited)
    problems = {f.subject: f for f in findings if f.problem}
    assert set(problems) == {"schema", "directus_activity", "directus_revisions", "directus_files",
                             "directus_flows", "directus_operations"}  # fmt: skip
    assert (
        problems["directus_activity"].fix
        == "grant read on directus_activity to the policy of DIRECTUS_TOKEN's user"
    )
    assert problems["directus_files"].status == "forbidden"
    assert "only `webhooks install` needs it" in problems["directus_flows"].fix
    assert "create, read, update, delete" in problems["directus_flows"].fix
    assert "admin token" in problems["schema"].fix
    assert {f.subject for f in findings if f.status == "ok"} == {f"collection {name}" for name in COLLECTIONS}
    assert {f.status for f in findings} <= PROBLEMS | {"ok"}


def test_a_missing_action_on_a_collection_is_named(serve_fresh):
    target = serve_fresh
    run(target, apply=True)
    target.sim.policies[target.limited] = {
        name: {"create", "read", "update", "delete"} for name in COLLECTIONS
    }
    target.sim.policies[target.limited]["reviews"] -= {"delete", "update"}
    [reviews] = [f for f in run(target, apply=False, token=target.limited) if f.subject == "items of reviews"]
    assert reviews.status == "forbidden" and reviews.detail == "update, delete refused"
    assert (
        reviews.fix == "grant update, delete on reviews (all fields) to the policy of DIRECTUS_TOKEN's user"
    )


def test_setup_check_from_the_command_line(serve_fresh):
    env = dict(os.environ, DIRECTUS_URL=serve_fresh.url, DIRECTUS_TOKEN=serve_fresh.token)
    env.pop("SYNCENGINE_PUBLIC_URL", None)

    def setup(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "commands.cli", "setup", "--system", "directus", *args]
        return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)

    check = setup("--check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "missing   collection contacts: missing (17 fields, unique email)" in check.stdout
    assert serve_fresh.sim.collections == {}
    made = setup()
    assert made.returncode == 0, made.stdout + made.stderr
    assert setup("--check").returncode == 0
