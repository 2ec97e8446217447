"""`syncengine setup [--check]` as an operator runs it, a subprocess against the vendor simulators: on fresh
vendors `--check` changes nothing and reports each problem on one line with its fix; `setup` mends what it
can (Mautic's consent field and emails, then the webhooks) and a second run changes nothing; a vendor that
is down or refuses us is one line and the others are still set up; what only a person can fix (permissions,
an email's content, a field's type) stays a problem with what to do.

The Directus and ERPNext setups are other modules' (their own tests cover them): these tests look at the
lines of Invoice Ninja, Mautic and Revolut, and at the webhooks."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.support import ROOT, free_port

MINE = ("--system", "invoiceninja", "--system", "mautic", "--system", "revolut")


def setup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "commands.cli", "setup", *args], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=180,
    )  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


def lines(done: subprocess.CompletedProcess, system: str) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.startswith(f"{system} ")]


def problems(done: subprocess.CompletedProcess, *systems: str) -> list[str]:
    statuses = (" missing ", " wrong ", " forbidden ", " error ", " outdated ", " stale ", " duplicate ")
    return [line for s in systems for line in lines(done, s) if any(w in line for w in statuses)]


def test_check_on_fresh_vendors_reports_each_problem_with_its_fix_and_changes_nothing(vendors):
    sims, env = vendors
    done = setup(env, "--check", "--verbose")
    assert done.returncode == 1, done.stdout
    found = problems(done, "invoiceninja", "mautic", "revolut")
    assert found and all(" -> " in line for line in found), done.stdout
    mautic = "\n".join(lines(done, "mautic"))
    assert (
        "missing   contact field marketing_consent (boolean): the engine reads the contact's consent"
        in mautic
    )
    assert "missing   email 1 (MAUTIC_INVOICE_EMAIL_ID)" in mautic and "'syncengine: invoice'" in mautic
    assert "missing   email 2 (MAUTIC_RECEIPT_EMAIL_ID)" in mautic
    # Invoice Ninja needs nothing but a token that may do what the engine does: each endpoint is tried.
    ninja = "\n".join(lines(done, "invoiceninja"))
    assert "ok        token: token of Sim User at Simulated Company works" in ninja
    assert "ok        clients: may view, create, edit (edit not tried: none there yet)" in ninja
    assert "ok        payments: may view, create" in ninja
    assert "ok        webhooks: the token's user may manage them" in ninja
    # Every webhook of every vendor is missing, each on its own line with the command that mends it.
    missing_hooks = [line for line in found if " missing   webhook " in line]
    assert len(missing_hooks) == 13 + 1 + 1 and all(
        "-> run `syncengine setup --system" in x for x in missing_hooks
    )
    assert "problem(s); " in done.stdout.splitlines()[-1]
    # Nothing was changed.
    assert not sims["mautic"].db["emails"] and not sims["mautic"].db["hooks"]
    assert "marketing_consent" not in {f["alias"] for f in sims["mautic"].lead_fields}
    assert not sims["invoiceninja"].db["webhooks"] and not sims["revolut"].db["webhooks"]


def test_setup_mends_everything_then_changes_nothing_and_check_passes(vendors):
    sims, env = vendors
    first = setup(env, *MINE)
    assert first.returncode == 0, first.stdout
    assert "created   contact field marketing_consent (boolean)" in first.stdout
    assert (
        "created   email 1 (MAUTIC_INVOICE_EMAIL_ID): 'syncengine: invoice': edit its text in Mautic"
        in first.stdout
    )
    assert first.stdout.count(" created   webhook ") == 13 + 1 + 1
    assert first.stdout.splitlines()[-1].startswith("everything the engine needs is in place: ")
    emails = sims["mautic"].db["emails"]
    assert [e["name"] for e in emails.values()] == ["syncengine: invoice", "syncengine: payment receipt"]
    assert "{invoice_number}" in emails[1]["subject"] and "{payment_amount}" in emails[2]["customHtml"]

    second = setup(env, *MINE)
    assert second.returncode == 0
    assert not any(w in second.stdout for w in (" created ", " updated ", " removed ")), second.stdout
    check = setup(env, "--check", *MINE)
    assert check.returncode == 0, check.stdout
    assert check.stdout.splitlines() == [check.stdout.splitlines()[-1]]  # only problems and changes are shown
    assert (
        check.stdout.startswith("everything the engine needs is in place: ") and ", 0 mended" in check.stdout
    )
    assert len(sims["mautic"].db["emails"]) == 2 and len(sims["mautic"].db["hooks"]) == 1


def test_a_vendor_down_or_refusing_us_is_one_line_and_the_others_are_still_set_up(vendors):
    _, env = vendors
    env = {
        **env,
        "INVOICENINJA_URL": f"http://127.0.0.1:{free_port()}",
        "MAUTIC_PASSWORD": "not-the-password",
    }
    done = setup(env, *MINE)
    assert done.returncode == 1
    [ninja] = lines(done, "invoiceninja")
    assert (
        ninja.startswith("invoiceninja  error     -: ")
        and "-> check INVOICENINJA_URL and that the service answers" in ninja
    )
    [mautic] = lines(done, "mautic")
    assert (
        mautic.startswith("mautic        forbidden -: ")
        and "-> check MAUTIC_USERNAME and MAUTIC_PASSWORD" in mautic
    )
    assert "not-the-password" not in done.stdout + done.stderr
    [revolut] = lines(done, "revolut")
    assert revolut.startswith(
        f"revolut       created   webhook revolut at {env['SYNCENGINE_PUBLIC_URL']}/webhooks/"
    )


def test_what_only_a_person_can_fix_stays_a_problem_with_what_to_do(vendors):
    sims, env = vendors
    mautic = sims["mautic"]
    mautic.seed(
        {
            "fields": [{"alias": "marketing_consent", "label": "Consent", "type": "text"}],
            "users": {"clerk": "clerk-pass"},
            "roles": {"clerk": ["lead:leads:viewother", "lead:fields:full"]},
        }
    )
    newsletter = mautic.add_email("Newsletter", subject="Our news", email_type="list")
    sims["invoiceninja"].add_token("VIEWER", "view_all")
    sims["invoiceninja"].seed({"clients": 1})  # something to try editing
    env = {**env, "MAUTIC_USERNAME": "clerk", "MAUTIC_PASSWORD": "clerk-pass", "INVOICENINJA_TOKEN": "VIEWER",
           "MAUTIC_RECEIPT_EMAIL_ID": "9"}  # fmt: skip
    done = setup(env, "--system", "invoiceninja", "--system", "mautic")
    assert done.returncode == 1
    out = done.stdout
    assert (
        "wrong     contact field marketing_consent (boolean): is a text field -> Mautic cannot change a type"
        in out
    )
    segment = "a list (segment) email, not a template email; uses none of the tokens {invoice_number}"
    assert f"wrong     email {newsletter['id']} (MAUTIC_INVOICE_EMAIL_ID): {segment}" in out
    assert (
        "wrong     email 9 (MAUTIC_RECEIPT_EMAIL_ID): email 9 does not exist -> set MAUTIC_RECEIPT_EMAIL_ID"
        in out
    )
    assert "forbidden read the audit log (contact deletes whose webhook was lost)" in out
    assert "forbidden permissions: API user clerk lacks lead:leads:create (create contacts)" in out
    assert "-> grant them to API (Settings > Roles)" in out
    assert "forbidden clients: may not create, edit (contacts, their archive" in out
    assert "-> grant create_client, edit_client to the token's user" in out
    assert "forbidden webhooks: only an administrator may manage webhooks" in out
    # Nothing setup may not decide was changed: the field keeps its type, no email was created.
    assert next(f for f in mautic.lead_fields if f["alias"] == "marketing_consent")["type"] == "text"
    assert list(mautic.db["emails"]) == [newsletter["id"]]


def test_an_unset_email_id_taken_by_another_email_gets_its_own_template_once(vendors):
    sims, env = vendors
    mautic: Any = sims["mautic"]
    mautic.add_email("Welcome", subject="Hello {invoice_number}")  # email 1: usable, the operator's own
    first = setup(env, "--system", "mautic")
    # Email 2 (the receipt's default) is free: ours is created there, so nothing is left to set.
    assert "created   email 2 (MAUTIC_RECEIPT_EMAIL_ID)" in first.stdout
    assert "email 1 " not in first.stdout  # in place: the operator's own template
    mautic.db["emails"].pop(2)
    mautic.add_email("Spring sale", subject="Sale")  # id 3: the default id 2 is gone for good
    again = setup(env, "--system", "mautic")
    assert (
        "wrong     email 2 (MAUTIC_RECEIPT_EMAIL_ID): the template 'syncengine: payment receipt' is email 4"
        in again.stdout
    )
    assert "-> set MAUTIC_RECEIPT_EMAIL_ID=4" in again.stdout and again.returncode == 1
    third = setup(env, "--system", "mautic")
    assert "is email 4" in third.stdout and len(mautic.db["emails"]) == 3  # found by name, not created again
    done = setup({**env, "MAUTIC_RECEIPT_EMAIL_ID": "4"}, "--check", "--system", "mautic")
    assert done.returncode == 0, done.stdout


def test_nothing_configured_says_so(receiver):
    import os

    env = {
        k: v for k, v in os.environ.items() if not k.endswith("_URL") or k in ("DATABASE_URL", "REDIS_URL")
    }
    done = setup(env, "--check", "--url", receiver)
    assert done.returncode == 2
    assert "nothing was checked: configure a vendor first" in done.stdout
