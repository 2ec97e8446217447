"""app.json (Heroku and Dokku) is valid JSON and lists every environment variable the code reads, with a
description; its add-ons, formation and health checks match the Procfile and the receiver."""

from __future__ import annotations

import json
import re

from commands.flower_cmd import OAUTH_VARS
from syncengine.settings import _SERVICE_VARS, SERVICES
from tests.support import ROOT

APP = json.loads((ROOT / "app.json").read_text())
PACKAGES = ("syncengine", "tasks", "webhooks", "connectors", "commands")
# The first argument of an environment read: os.environ.get("X"), os.environ["X"], os.getenv("X"),
# env.get("X") / env["X"] (settings reads a mapping), _secret(env, "X"), _flag(env.get("X")).
READ = re.compile(
    r"""(?:environ\.get|environ\[|getenv|env\.get|env\[|_secrets?\(env,)\s*\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)
TEST_ONLY = ("SYNCENGINE_TEST_",)


def variables_read_by_the_code() -> set[str]:
    files = [ROOT / "beat_schedule.py"] + [f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")]
    found = {name for f in files for name in READ.findall(f.read_text())}
    for service in SERVICES:  # settings builds these names: <SERVICE>_URL, _WEBHOOK_SECRET, its own vars
        prefix = service.upper()
        secret_vars, option_vars = _SERVICE_VARS[service]
        found |= {f"{prefix}_URL", f"{prefix}_WEBHOOK_SECRET"}
        found |= {f"{prefix}_{v}" for v in (*secret_vars, *option_vars)}
    found |= set(OAUTH_VARS)  # Flower reads these itself; `syncengine flower` checks them
    return {name for name in found if not name.startswith(TEST_ONLY)}


def test_every_variable_the_code_reads_is_listed_with_a_description():
    read = variables_read_by_the_code()
    assert {"DATABASE_URL", "REDIS_URL", "SYNCENGINE_SECRET_KEY", "MAUTIC_CLIENT_SECRET"} <= read  # it scans
    missing = sorted(read - set(APP["env"]))
    assert missing == [], f"add to app.json: {missing}"
    for name, spec in APP["env"].items():
        assert spec["description"].strip(), name
        assert isinstance(spec.get("required", False), bool), name


def test_required_flags_and_generated_secrets():
    env = APP["env"]
    assert env["SYNCENGINE_SECRET_KEY"]["required"] is True
    assert env["SYNCENGINE_SECRET_KEY"]["generator"] == "secret"
    assert env["REDIS_SSL_CERT_REQS"]["value"] == "none"  # Heroku Redis's self-signed certificate
    for name in ("INVOICENINJA_WEBHOOK_SECRET", "ERPNEXT_WEBHOOK_SECRET", "MAUTIC_WEBHOOK_SECRET",
                 "DIRECTUS_WEBHOOK_SECRET"):  # fmt: skip
        assert env[name]["generator"] == "secret", name


def test_addons_formation_and_healthchecks_match_the_procfile():
    from tests.ops.test_procfile_roles import procfile

    assert {a["plan"] for a in APP["addons"]} == {"heroku-postgresql", "heroku-redis"}
    roles = set(procfile()) - {"release"}  # release runs on every deploy, it is not scaled
    assert set(APP["formation"]) == roles
    assert APP["formation"]["beat"]["quantity"] == 1  # exactly one scheduler
    paths = {check["path"] for check in APP["healthchecks"]["web"]}
    assert paths == {"/healthz", "/readyz"}
    assert any(c["type"] == "startup" and c["path"] == "/readyz" for c in APP["healthchecks"]["web"])


def test_the_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(name for name in APP["env"] if f"`{name}`" not in readme)
    assert undocumented == [], f"add to README's Configuration table: {undocumented}"
