"""The daily drift report (issue 6): what no event told the hub shows up as a difference, in
`syncengine status --drift` and in one Directus review item, and nothing is changed to make it go away."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from tasks import drift
from tests.flows.test_contacts import directus_contacts_with, writes
from tests.flows.test_deletes import synced_contact
from tests.flows.test_sweeps import mautic_contacts_with


def run_drift(deployment) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from tasks import drift; drift.run()"],
        env=deployment.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def status_drift(deployment, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "syncengine", "status", "--drift", *flags],
        env=deployment.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def differences_of(report: dict, system: str, kind: str) -> dict[str, list[dict]]:
    """external id -> the differences naming it."""
    [found] = [k for k in report["kinds"] if (k["system"], k["kind"]) == (system, kind)]
    assert found["error"] is None
    out: dict[str, list[dict]] = {}
    for diff in found["differences"]:
        out.setdefault(str(diff["external_id"]), []).append(diff)
    return out


def test_changes_no_event_reported_are_listed_as_drift_and_filed_once_for_review(deployment):
    sims = deployment.sims
    calm, edited, deleted = (synced_contact(deployment, name) for name in ("calm", "drifted", "gone"))
    directus_id = str(directus_contacts_with(sims["directus"], edited)[0]["id"])
    mautic_id = str(mautic_contacts_with(sims["mautic"], deleted)[0]["id"])
    calm_directus = str(directus_contacts_with(sims["directus"], calm)[0]["id"])
    calm_mautic = str(mautic_contacts_with(sims["mautic"], calm)[0]["id"])
    for name in ("directus", "mautic"):
        sims[name].set_faults(drop_webhooks=1.0)  # the edit and the delete reach nobody
    try:
        response = requests.patch(
            f"{deployment.servers['directus'].url}/items/contacts/{directus_id}", json={"city": "Drift"},
            headers={"Authorization": "Bearer directus-static-token"}, timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        response = requests.delete(
            f"{deployment.servers['mautic'].url}/api/contacts/{mautic_id}/delete",
            auth=("admin", "sim-mautic-pass"),
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        for name in ("directus", "mautic"):
            sims[name].flush_webhooks(timeout=10)
    finally:
        for name in ("directus", "mautic"):
            sims[name].clear_faults()
    deployment.settle()
    written = {name: writes(sim) for name, sim in sims.items()}
    reviews = len(sims["directus"].db.get("reviews", {}))

    run_drift(deployment)

    report = json.loads(status_drift(deployment, "--json"))
    in_directus = differences_of(report, "directus", "contact")
    in_mautic = differences_of(report, "mautic", "contact")
    assert [(d["problem"], d["seen_by_hub"]) for d in in_directus[directus_id]] == [(drift.DIFFERS, False)]
    assert [d["problem"] for d in in_mautic[mautic_id]] == [drift.NOT_IN_SYSTEM]
    assert calm_directus not in in_directus and calm_mautic not in in_mautic  # agreed on: not drift
    # Contacts deleted elsewhere by earlier tests live on in Mautic by design (it cannot archive): not drift.
    assert drift.DELETED_IN_HUB not in {d["problem"] for diffs in in_mautic.values() for d in diffs}

    text = status_drift(deployment)
    assert f"{drift.DIFFERS}: external id {directus_id}," in text
    assert f"{drift.NOT_IN_SYSTEM}: external id {mautic_id}," in text
    # Nothing repaired: the only write anywhere is the one review item.
    assert {name: writes(sim) for name, sim in sims.items()} == {
        **written,
        "directus": written["directus"] + 1,
    }
    new = [r for r in sims["directus"].db["reviews"].values() if r.get("kind") == "drift"][-1]
    assert len(sims["directus"].db["reviews"]) == reviews + 1
    assert f"external id {directus_id}," in new["details"] and new["ext_id"] == f"drift:{report['ran_at']}"
    assert sims["directus"].db["contacts"][int(directus_id)]["city"] == "Drift"
    assert not mautic_contacts_with(sims["mautic"], deleted)
